"""Never less safe than Ollama alone: Host and Origin rules, tokens, targets (real sockets)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from proxy.relay.app import GATE
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.relay.raw import raw_request

MODEL = "llama3.2:latest"
GENERATE = {"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 2}}


async def _call(
    url: str, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url + path, headers=headers, json=body) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


ROUTES = [
    ("POST", "/api/generate", GENERATE),
    (
        "POST",
        "/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
    ),
    ("GET", "/api/tags", None),
    ("GET", "/api/version", None),
    ("GET", "/v1/models", None),
    ("GET", "/stats", None),
    ("GET", "/metrics", None),
    ("OPTIONS", "/api/chat", None),
]


class TestHostCheck:
    @pytest.mark.parametrize(("method", "path", "body"), ROUTES)
    async def test_a_rebinding_host_gets_403_on_every_route(
        self,
        simulator: SimulatorFactory,
        proxy: ProxyFactory,
        method: str,
        path: str,
        body: Any,
    ) -> None:
        """A page whose name was re-pointed at 127.0.0.1 reaches no route, not even /stats."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        status, _, raw = await _call(base_url(prx), method, path, {"Host": "evil.example"}, body)
        assert status == 403
        error = json.loads(raw)["error"]
        message = error["message"] if path.startswith("/v1/") else error
        assert "Host 'evil.example' is not allowed" in message
        assert prx.app[GATE].busy == 0

    @pytest.mark.parametrize("host", ["localhost:11435", "lanes.local", "127.0.0.1", "[::1]:1"])
    async def test_local_hosts_pass(
        self, simulator: SimulatorFactory, proxy: ProxyFactory, host: str
    ) -> None:
        """Names and addresses Ollama accepts reach the route."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        status, _, _ = await _call(base_url(prx), "GET", "/api/tags", {"Host": host})
        assert status == 200

    async def test_a_listen_beyond_loopback_skips_the_check(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """With a non-loopback listen (which needs a token) any Host passes, as with Ollama."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, listen="0.0.0.0:0", auth_token="tok")
        head = {"Host": "lanes.example.org", "Authorization": "Bearer tok"}
        assert (await _call(base_url(prx), "GET", "/api/tags", head))[0] == 200


class TestOrigin:
    async def test_a_foreign_origin_gets_403(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A cross-origin request from an origin Ollama would refuse is refused."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        head = {"Origin": "https://evil.example"}
        status, _, raw = await _call(base_url(prx), "POST", "/api/generate", head, GENERATE)
        assert status == 403
        assert "Origin 'https://evil.example' is not allowed" in json.loads(raw)["error"]
        assert (await _call(base_url(prx), "GET", "/stats", head))[0] == 403

    async def test_an_allowed_origin_gets_cors_headers(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A default origin gets its answer with Ollama's CORS headers, streamed ones too."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        head = {"Origin": "http://localhost:3000"}
        status, got, _ = await _call(base_url(prx), "POST", "/api/generate", head, GENERATE)
        assert status == 200
        assert got["Access-Control-Allow-Origin"] == "http://localhost:3000"
        assert got["Vary"] == "Origin"
        assert "X-Lanes-Queue-Ms" in got["Access-Control-Expose-Headers"]

    async def test_the_setting_and_the_environment_add_origins(
        self, simulator: SimulatorFactory, proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """allowed_origins and OLLAMA_ORIGINS (read when the app is built) extend the list."""
        monkeypatch.setenv("OLLAMA_ORIGINS", "https://from-env.example")
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, allowed_origins=["https://from-setting.example"])
        for origin in ("https://from-env.example", "https://from-setting.example"):
            status, got, _ = await _call(base_url(prx), "GET", "/api/tags", {"Origin": origin})
            assert (status, got["Access-Control-Allow-Origin"]) == (200, origin)

    async def test_the_same_origin_needs_no_cors(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A page served by the proxy itself (Origin = http:// + Host) is no CORS request."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        url = base_url(prx)
        status, got, _ = await _call(url, "GET", "/stats", {"Origin": url})
        assert status == 200
        assert "Access-Control-Allow-Origin" not in got


class TestPreflight:
    async def test_preflights_are_answered_without_a_lane_or_a_token(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """OPTIONS from an allowed origin: 204 with the allow headers, though a token is set."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, auth_token="tok")
        head = {
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-stainless-os",
        }
        status, got, _ = await _call(base_url(prx), "OPTIONS", "/v1/chat/completions", head)
        assert status == 204
        assert got["Access-Control-Allow-Origin"] == "http://localhost:5173"
        assert "Authorization" in got["Access-Control-Allow-Headers"]
        assert (await sim_requests(sim)) == 0

    async def test_a_preflight_from_a_foreign_origin_gets_403(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """The Origin check runs before the preflight answer."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        head = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        assert (await _call(base_url(prx), "OPTIONS", "/api/chat", head))[0] == 403


async def sim_requests(sim: TestServer) -> int:
    """Requests the simulator has seen, over every model."""
    async with aiohttp.ClientSession() as s, s.get(base_url(sim) + "/_sim/stats") as resp:
        doc = await resp.json()
    return sum(int(m["requests"]) for m in doc["models"].values())


class TestToken:
    @pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
    async def test_the_scheme_is_compared_in_any_case(
        self, simulator: SimulatorFactory, proxy: ProxyFactory, scheme: str
    ) -> None:
        """`bearer tok` is as good as `Bearer tok`; a wrong token is 401 with the challenge."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, auth_token="tok")
        url = base_url(prx)
        assert (await _call(url, "GET", "/api/tags", {"Authorization": f"{scheme} tok"}))[0] == 200
        status, got, _ = await _call(url, "GET", "/api/tags", {"Authorization": f"{scheme} no"})
        assert (status, got["WWW-Authenticate"]) == (401, "Bearer")

    async def test_undecodable_authorization_bytes_are_401(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """Bytes that are not text in Authorization are a wrong token, not a crash."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, auth_token="tok")
        answer = await raw_request(
            prx,
            b"GET /api/tags HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer \xff\xfe\xfd\r\nConnection: close\r\n\r\n",
        )
        assert answer.status == 401
        assert "error" in answer.json()


class TestTargets:
    @pytest.mark.parametrize(
        "target",
        [b"http://169.254.169.254/api/generate", b"http://127.0.0.1:1/api/tags"],
    )
    async def test_absolute_form_targets_are_refused(
        self, simulator: SimulatorFactory, proxy: ProxyFactory, target: bytes
    ) -> None:
        """`GET http://host/path` is a 400 with a JSON error; nothing reaches an upstream."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        answer = await raw_request(
            prx, b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        assert answer.status == 400
        assert "origin-form" in answer.json()["error"]
        assert await sim_requests(sim) == 0

    async def test_the_upstream_host_cannot_be_chosen_by_the_path(
        self, aiohttp_server: AiohttpServer, proxy: ProxyFactory
    ) -> None:
        """A path that looks like an authority (`//evil/x`) stays a path on the upstream."""
        seen: list[tuple[str, str]] = []

        async def record(request: web.Request) -> web.Response:
            seen.append((request.host, request.raw_path))
            return web.json_response({"ok": True})

        upstream = web.Application()
        upstream.router.add_route("*", "/{tail:.*}", record)
        up = await aiohttp_server(upstream)
        prx = await proxy(base_url(up).replace("127.0.0.1", "localhost"), lanes=1)
        answer = await raw_request(
            prx,
            b"GET //evil.example/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        assert answer.status == 200
        assert (f"localhost:{up.port}", "//evil.example/x?y=1") in seen
