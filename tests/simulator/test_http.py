"""The simulator over real sockets: endpoints, wire formats and error bodies."""

from __future__ import annotations

import json

import aiohttp
import pytest

from proxy.simulator.jobs import parse_keep_alive
from tests.fixtures_sim import SimulatorFactory, base_url, sim_stats
from tests.simulator.helpers import post_json, read_ndjson

STAT_FIELDS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


class TestMetadata:
    async def test_root_and_version(self, simulator: SimulatorFactory) -> None:
        """GET and HEAD / answer `Ollama is running`; /api/version names the version."""
        sim = await simulator()
        async with aiohttp.ClientSession() as session:
            async with session.get(base_url(sim) + "/") as resp:
                assert (resp.status, await resp.text()) == (200, "Ollama is running")
                assert resp.content_type == "text/plain"
            async with session.head(base_url(sim) + "/") as resp:
                assert resp.status == 200
            async with session.get(base_url(sim) + "/api/version") as resp:
                assert await resp.json() == {"version": "0.33.0-sim"}

    async def test_unknown_route_and_wrong_method(self, simulator: SimulatorFactory) -> None:
        """Unknown paths get gin's 404 text; known paths with a wrong method get 405."""
        sim = await simulator()
        async with aiohttp.ClientSession() as session:
            async with session.get(base_url(sim) + "/api/nope") as resp:
                assert (resp.status, await resp.text()) == (404, "404 page not found")
                assert resp.headers["Content-Type"] == "text/plain"
            async with session.get(base_url(sim) + "/api/generate") as resp:
                assert (resp.status, await resp.text()) == (405, "405 method not allowed")

    async def test_foreign_host_is_refused_with_an_empty_403(
        self, simulator: SimulatorFactory
    ) -> None:
        """Bound to loopback, a Host outside the local names gets 403 and no body."""
        sim = await simulator()
        url = base_url(sim) + "/api/version"
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers={"Host": "evil.example.com"}) as resp:
                assert (resp.status, await resp.read()) == (403, b"")
            for host in ("localhost:11434", "box.local", "10.1.2.3", "[::1]:80"):
                async with session.get(url, headers={"Host": host}) as resp:
                    assert resp.status == 200, host

    async def test_tags_ps_and_show(self, simulator: SimulatorFactory) -> None:
        """Tags list every model; ps shows a loaded one with context_length; show has info."""
        sim = await simulator()
        url = base_url(sim)
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/api/tags") as resp:
                names = [m["name"] for m in (await resp.json())["models"]]
            assert names == [
                "qwen2.5:7b-instruct",
                "llama3.2:latest",
                "all-minilm:latest",
                "qwen3-vl:8b",
            ]
            async with session.get(url + "/api/ps") as resp:
                assert await resp.json() == {"models": []}
            body = {"model": "llama3.2", "prompt": "", "options": {"num_ctx": 8192}}
            assert (await post_json(session, sim, "/api/generate", body))[0] == 200
            async with session.get(url + "/api/ps") as resp:
                (row,) = (await resp.json())["models"]
            assert (row["name"], row["context_length"]) == ("llama3.2:latest", 8192)
            assert row["expires_at"].endswith("Z")
            status, text = await post_json(session, sim, "/api/show", {"model": "llama3.2"})
            info = json.loads(text)
            assert status == 200
            assert info["model_info"]["llama.context_length"] == 131072
            assert info["capabilities"] == ["completion", "tools"]

    async def test_pull_streams_progress(self, simulator: SimulatorFactory) -> None:
        """Pull streams status lines ending in success; an unknown model ends in an error."""
        sim = await simulator()
        async with aiohttp.ClientSession() as session:
            _, text = await post_json(session, sim, "/api/pull", {"model": "llama3.2"})
            lines = read_ndjson(text)
            assert lines[0] == {"status": "pulling manifest"}
            assert lines[-1] == {"status": "success"}
            _, text = await post_json(session, sim, "/api/pull", {"model": "nope"})
            assert "error" in read_ndjson(text)[-1]

    async def test_v1_models(self, simulator: SimulatorFactory) -> None:
        """/v1/models lists models the OpenAI way."""
        sim = await simulator()
        async with (
            aiohttp.ClientSession() as session,
            session.get(base_url(sim) + "/v1/models") as resp,
        ):
            data = await resp.json()
        assert data["object"] == "list"
        assert {"id", "object", "created", "owned_by"} == set(data["data"][0])


class TestErrors:
    @pytest.mark.parametrize(
        ("path", "body", "status", "expected"),
        [
            ("/api/generate", b"", 400, {"error": "missing request body"}),
            (
                "/api/generate",
                b"xyz",
                400,
                {"error": "invalid character 'x' looking for beginning of value"},
            ),
            ("/api/generate", b'{"model":"llama9"}', 404, {"error": "model 'llama9' not found"}),
            ("/api/chat", b'{"model":""}', 400, {"error": "model is required"}),
            (
                "/api/embed",
                b'{"model":"llama9","input":"x"}',
                404,
                {"error": 'model "llama9" not found, try pulling it first'},
            ),
            (
                "/api/embed",
                b'{"model":"all-minilm","input":3}',
                400,
                {"error": "invalid input type"},
            ),
            (
                "/api/chat",
                b'{"model":"all-minilm","messages":[{"role":"user","content":"x"}]}',
                400,
                {"error": '"all-minilm" does not support chat'},
            ),
            (
                "/v1/chat/completions",
                b'{"model":"llama3.2","messages":[]}',
                400,
                {
                    "error": {
                        "message": "[] is too short - 'messages'",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
            ),
        ],
    )
    async def test_error_bodies(
        self,
        simulator: SimulatorFactory,
        path: str,
        body: bytes,
        status: int,
        expected: object,
    ) -> None:
        """Errors carry Ollama's status and exact message (the OpenAI envelope on /v1)."""
        sim = await simulator()
        async with (
            aiohttp.ClientSession() as session,
            session.post(base_url(sim) + path, data=body) as resp,
        ):
            assert (status, expected) == (resp.status, await resp.json())
            assert resp.headers["Content-Type"] == "application/json; charset=utf-8"

    def test_keep_alive_parsing(self) -> None:
        """Numbers are seconds, strings are Go durations, a bare numeric string fails."""
        assert parse_keep_alive("10m") == 600.0
        assert parse_keep_alive("1h30m") == 5400.0
        assert parse_keep_alive(-1) == -1.0
        assert parse_keep_alive("0") == 0.0
        with pytest.raises(Exception, match='missing unit in duration "300"'):
            parse_keep_alive("300")


class TestNative:
    async def test_generate_streams_ndjson(self, simulator: SimulatorFactory) -> None:
        """One line per token, then a final line with integer-nanosecond stats and context."""
        sim = await simulator()
        body = {
            "model": "llama3.2",
            "prompt": "Why is the sky blue?",
            "options": {"num_predict": 7},
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(base_url(sim) + "/api/generate", json=body) as resp,
        ):
            assert resp.headers["Content-Type"] == "application/x-ndjson"
            lines = read_ndjson(await resp.text())
        *chunks, final = lines
        assert len(chunks) == 7
        assert list(chunks[0]) == ["model", "created_at", "response", "done"]
        assert chunks[0]["model"] == "llama3.2"
        assert (final["done"], final["done_reason"], final["response"]) == (True, "length", "")
        assert final["eval_count"] == 7
        assert final["prompt_eval_count"] == 5
        assert all(isinstance(final[k], int) and final[k] > 0 for k in STAT_FIELDS)
        assert final["total_duration"] >= final["load_duration"] + final["eval_duration"]
        assert len(final["context"]) == 12

    async def test_chat_without_stream_returns_one_object(
        self, simulator: SimulatorFactory
    ) -> None:
        """stream:false gives the final object with the whole text, and no context."""
        sim = await simulator()
        body = {
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "hello"}],
            "stream": False,
        }
        async with aiohttp.ClientSession() as session:
            status, text = await post_json(session, sim, "/api/chat", body)
        reply = json.loads(text)
        assert status == 200
        assert reply["done_reason"] == "stop"
        assert 20 <= reply["eval_count"] <= 200
        assert reply["message"]["content"].endswith(".")
        assert "context" not in reply

    async def test_replies_are_deterministic(self, simulator: SimulatorFactory) -> None:
        """The same seed and prompt give the same text."""
        sim = await simulator()
        body = {"model": "llama3.2", "prompt": "same", "stream": False}
        async with aiohttp.ClientSession() as session:
            first = json.loads((await post_json(session, sim, "/api/generate", body))[1])
            second = json.loads((await post_json(session, sim, "/api/generate", body))[1])
        assert first["response"] == second["response"]

    async def test_empty_prompt_loads_and_keep_alive_zero_unloads(
        self, simulator: SimulatorFactory
    ) -> None:
        """Empty prompt: done_reason load; with keep_alive 0: unload, and ps is empty again."""
        sim = await simulator()
        async with aiohttp.ClientSession() as session:
            _, text = await post_json(session, sim, "/api/generate", {"model": "llama3.2"})
            reply = json.loads(text)
            assert list(reply) == ["model", "created_at", "response", "done", "done_reason"]
            assert reply["done_reason"] == "load"
            body = {"model": "llama3.2", "messages": [], "keep_alive": 0}
            _, text = await post_json(session, sim, "/api/chat", body)
            assert json.loads(text)["done_reason"] == "unload"
            async with session.get(base_url(sim) + "/api/ps") as resp:
                assert (await resp.json())["models"] == []
        assert (await sim_stats(sim))["models"]["llama3.2:latest"]["loads"] == 1

    async def test_embed_and_legacy_embeddings(self, simulator: SimulatorFactory) -> None:
        """embed returns one unit vector per input; embeddings returns one vector."""
        sim = await simulator()
        async with aiohttp.ClientSession() as session:
            body = {"model": "all-minilm", "input": ["a b c", "d e f"]}
            _, text = await post_json(session, sim, "/api/embed", body)
            reply = json.loads(text)
            assert reply["model"] == "all-minilm"
            assert [len(v) for v in reply["embeddings"]] == [384, 384]
            assert 0.99 < sum(x * x for x in reply["embeddings"][0]) < 1.01
            assert reply["prompt_eval_count"] == 4
            body = {"model": "all-minilm", "prompt": "a b c"}
            _, text = await post_json(session, sim, "/api/embeddings", body)
            assert reply["embeddings"][0] == json.loads(text)["embedding"]
            _, text = await post_json(session, sim, "/api/embed", {"model": "all-minilm"})
            assert json.loads(text)["embeddings"] == []


class TestOpenAI:
    async def test_chat_stream_is_sse(self, simulator: SimulatorFactory) -> None:
        """Role first, content chunks, an empty finish delta, usage, then [DONE]."""
        sim = await simulator()
        body = {
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "max_tokens": 3,
            "stream_options": {"include_usage": True},
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(base_url(sim) + "/v1/chat/completions", json=body) as resp,
        ):
            assert resp.headers["Content-Type"] == "text/event-stream"
            text = await resp.text()
        events = [e.removeprefix("data: ") for e in text.split("\n\n") if e]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        assert [c["choices"][0]["delta"] for c in chunks[3:4]] == [{}]
        assert chunks[3]["choices"][0]["finish_reason"] == "length"
        assert chunks[4]["usage"] == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
        assert len({c["id"] for c in chunks}) == 1

    async def test_completions_without_stream(self, simulator: SimulatorFactory) -> None:
        """/v1/completions answers a text_completion with usage."""
        sim = await simulator()
        body = {"model": "llama3.2", "prompt": "Once", "max_tokens": 4}
        async with aiohttp.ClientSession() as session:
            status, text = await post_json(session, sim, "/v1/completions", body)
        reply = json.loads(text)
        assert (status, reply["object"]) == (200, "text_completion")
        assert reply["id"].startswith("cmpl-")
        assert len(reply["choices"][0]["text"]) == 16
        assert reply["usage"]["completion_tokens"] == 4
