"""The processes under test: the simulator, `lanes serve`, nginx (apt) and LiteLLM (own venv)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.procs import Service, free_port, python_argv, start_service

__all__ = [
    "LITELLM_KEY",
    "SIM_MODEL",
    "SimTiming",
    "Skipped",
    "start_floor",
    "start_lanes",
    "start_litellm",
    "start_nginx",
    "start_simhost",
    "start_simulator",
]

BENCH_DIR = Path(__file__).resolve().parent
SIM_MODEL = "qwen2.5:7b-instruct"
LITELLM_VENV = BENCH_DIR / ".venv-litellm"
LITELLM_KEY = "sk-bench-" + secrets.token_hex(16)


@dataclass(frozen=True)
class Skipped:
    """A contender that could not run, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class SimTiming:
    """The simulator's timing model."""

    lanes: int = 1
    load_seconds: float = 0.0
    prefill_tps: float = 1e9
    decode_tps: float = 1e9
    batch_alpha: float = 1.0
    max_queue: int = 100_000

    def flags(self) -> list[str]:
        return [
            f"--lanes={self.lanes}",
            f"--load-seconds={self.load_seconds}",
            f"--prefill-tps={self.prefill_tps}",
            f"--decode-tps={self.decode_tps}",
            f"--batch-alpha={self.batch_alpha}",
            f"--max-queue={self.max_queue}",
        ]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def _isolated_env(tmp: Path) -> dict[str, str]:
    """An empty config file, so a user's ~/.config/ollama-lanes never leaks into a run."""
    config = tmp / "empty-config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.touch()  # sync on purpose: called before any service starts
    return {"LANES_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}


async def start_simulator(timing: SimTiming, tmp: Path) -> Service:
    """`lanes simulate` on a free port with `timing`."""
    port = free_port()
    argv = python_argv("-m", "proxy", "simulate", f"--listen=127.0.0.1:{port}", *timing.flags())
    return await start_service(
        "simulator", argv, port=port, log_dir=tmp, ready_path="/api/version", env=_isolated_env(tmp)
    )


async def start_lanes(
    upstream: str, tmp: Path, *, lanes: int, max_queue: int = 20_000, extra: Sequence[str] = ()
) -> Service:
    """`lanes serve` on a free port in front of `upstream`, with `extra` flags."""
    port = free_port()
    argv = python_argv(
        "-m",
        "proxy",
        "serve",
        f"--listen=127.0.0.1:{port}",
        f"--upstream={upstream}",
        f"--lanes={lanes}",
        f"--max-queue={max_queue}",
        *extra,
    )
    return await start_service(
        "lanes serve", argv, port=port, log_dir=tmp, ready_path="/stats", env=_isolated_env(tmp)
    )


async def start_floor(upstream: str, tmp: Path) -> Service:
    """The Python floor (bench/floor.py): a bare aiohttp pass-through in front of `upstream`."""
    port = free_port()
    argv = python_argv("-m", "bench.floor", str(port), upstream)
    return await start_service(
        "floor", argv, port=port, log_dir=tmp, ready_path="/api/version", env=_isolated_env(tmp)
    )


async def _run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace")


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


async def find_or_install_nginx(install: bool) -> str | Skipped:
    """The nginx binary, installing Debian's nginx-light with apt when allowed and missing."""
    binary = _nginx_binary()
    if binary:
        return binary
    if not install:
        return Skipped("nginx", "nginx is not installed (smoke mode does not install it)")
    if not shutil.which("apt-get"):
        return Skipped("nginx", "nginx is not installed and apt-get is not available")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    code, out = await _run("apt-get", "install", "-y", "-q", "nginx-light", env=env)
    if code != 0:
        code, out = await _run("apt-get", "install", "-y", "-q", "nginx", env=env)
    binary = _nginx_binary()
    if code != 0 or not binary:
        last = out.strip().splitlines()[-1:] or ["no output"]
        return Skipped("nginx", f"apt-get install nginx-light failed: {last[0][:160]}")
    return binary


def render_nginx_conf(prefix: Path, port: int, upstream_port: int) -> Path:
    """Write nginx.conf for one worker in `prefix` from the template; returns its path."""
    prefix.mkdir(parents=True, exist_ok=True)
    template = (BENCH_DIR / "nginx.conf.template").read_text()
    conf = prefix / "nginx.conf"
    conf.write_text(
        template.format(workers=1, prefix=prefix, port=port, upstream_port=upstream_port)
    )
    return conf


async def start_nginx(upstream_port: int, tmp: Path, *, install: bool) -> Service | Skipped:
    """nginx with the usual Ollama recipe (see nginx.conf.template), one worker process."""
    binary = await find_or_install_nginx(install)
    if isinstance(binary, Skipped):
        return binary
    port = free_port()
    prefix = tmp / f"nginx-{upstream_port}"
    conf = render_nginx_conf(prefix, port, upstream_port)
    argv = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    try:
        service = await start_service(
            "nginx", argv, port=port, log_dir=tmp, ready_path="/api/version"
        )
    except RuntimeError as exc:
        return Skipped("nginx", f"nginx did not start: {_last_line(str(exc))}")
    return service


async def find_or_install_litellm(install: bool) -> Path | Skipped:
    """The LiteLLM venv's `litellm`, running bench/install_litellm.sh when allowed."""
    binary = LITELLM_VENV / "bin" / "litellm"
    if _is_file(binary):
        return binary
    if not install:
        return Skipped(
            "LiteLLM", "not installed in bench/.venv-litellm (smoke mode skips installs)"
        )
    code, out = await _run("bash", str(BENCH_DIR / "install_litellm.sh"), str(LITELLM_VENV))
    if code != 0 or not _is_file(binary):
        last = out.strip().splitlines()[-1:] or ["no output"]
        return Skipped("LiteLLM", f"pip install 'litellm[proxy]' failed: {last[0][:160]}")
    return binary


def _is_file(path: Path) -> bool:
    return path.is_file()


def render_litellm_config(path: Path, upstream: str) -> Path:
    """Write LiteLLM's config: model `bench` is `openai/<SIM_MODEL>` at the upstream's /v1."""
    path.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        f"      model: openai/{SIM_MODEL}\n"
        f"      api_base: {upstream}/v1\n"
        "      api_key: none\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  telemetry: false\n"
    )
    return path


def litellm_version() -> str | None:
    """The installed LiteLLM version, read from the venv's metadata."""
    found = sorted(LITELLM_VENV.glob("lib/python*/site-packages/litellm-*.dist-info"))
    return found[-1].name.removeprefix("litellm-").removesuffix(".dist-info") if found else None


async def start_litellm(upstream: str, tmp: Path, *, install: bool) -> Service | Skipped:
    """LiteLLM proxy with one model `bench` = `openai/<SIM_MODEL>` at the upstream's /v1."""
    binary = await find_or_install_litellm(install)
    if isinstance(binary, Skipped):
        return binary
    port = free_port()
    config = render_litellm_config(tmp / f"litellm-{port}.yaml", upstream)
    argv = [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    env = {
        "LITELLM_MASTER_KEY": LITELLM_KEY,  # it refuses to start without one
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the cost map at start
        "LITELLM_LOG": "ERROR",
        "NO_DOCS": "True",
    }
    try:
        return await start_service(
            "LiteLLM",
            argv,
            port=port,
            log_dir=tmp,
            ready_path="/health/liveliness",
            env=env,
            limit_s=120.0,
        )
    except RuntimeError as exc:
        return Skipped("LiteLLM", f"litellm did not start: {_last_line(str(exc))}")


async def start_simhost(timing: SimTiming, tmp: Path) -> Service:
    """The simulator app with a request timeline (bench/simhost.py) on a free port."""
    port = free_port()
    settings = {
        "lanes": timing.lanes,
        "load_seconds": timing.load_seconds,
        "prefill_tps": timing.prefill_tps,
        "decode_tps": timing.decode_tps,
        "batch_alpha": timing.batch_alpha,
        "max_queue": timing.max_queue,
    }
    spec = json.dumps({"port": port, "settings": settings})
    argv = python_argv("-m", "bench.simhost", spec)
    return await start_service(
        "simulator", argv, port=port, log_dir=tmp, ready_path="/api/version", env=_isolated_env(tmp)
    )
