"""The official ollama and openai clients get the same answers through the proxy as directly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import ollama
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory
from tests.relay.support import MODEL, base_url

# Fields that differ between two runs of the same request (clocks, random ids).
_VOLATILE = frozenset(
    {
        "created_at",
        "created",
        "id",
        "expires_at",
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    }
)
_CHAT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Why is the sky blue?"}]
_OPTS = {"num_predict": 12, "seed": 3}


def stable(value: Any) -> Any:
    """`value` as plain data without the volatile fields."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list | tuple):
        return [stable(v) for v in value]
    return value


async def ollama_async(url: str, op: str) -> Any:
    client = ollama.AsyncClient(host=url)
    match op:
        case "chat":
            return await client.chat(model=MODEL, messages=_CHAT, options=_OPTS)
        case "chat_stream":
            return [p async for p in await client.chat(MODEL, _CHAT, stream=True, options=_OPTS)]
        case "generate":
            return await client.generate(model=MODEL, prompt="Hello", options=_OPTS)
        case "generate_stream":
            stream = await client.generate(MODEL, "Hello", stream=True, options=_OPTS)
            return [p async for p in stream]
        case "embed":
            return await client.embed(model=MODEL, input=["one", "two"])
        case "list":
            return await client.list()
        case "ps":
            return await client.ps()
        case "show":
            return await client.show(MODEL)
        case "pull":
            return [p async for p in await client.pull(MODEL, stream=True)]
    raise AssertionError(op)


def ollama_sync(url: str, op: str) -> Any:
    client = ollama.Client(host=url)
    match op:
        case "chat":
            return client.chat(model=MODEL, messages=_CHAT, options=_OPTS)
        case "chat_stream":
            return list(client.chat(MODEL, _CHAT, stream=True, options=_OPTS))
        case "generate":
            return client.generate(model=MODEL, prompt="Hello", options=_OPTS)
        case "generate_stream":
            return list(client.generate(MODEL, "Hello", stream=True, options=_OPTS))
        case "embed":
            return client.embed(model=MODEL, input=["one", "two"])
        case "list":
            return client.list()
        case "ps":
            return client.ps()
        case "show":
            return client.show(MODEL)
        case "pull":
            return list(client.pull(MODEL, stream=True))
    raise AssertionError(op)


async def openai_async(url: str, op: str) -> Any:
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused") as client:
        match op:
            case "chat":
                return await client.chat.completions.create(
                    model=MODEL, messages=_CHAT, max_tokens=12, seed=3
                )
            case "chat_stream":
                stream = await client.chat.completions.create(
                    model=MODEL, messages=_CHAT, max_tokens=12, seed=3, stream=True
                )
                return [chunk async for chunk in stream]
            case "completion":
                return await client.completions.create(model=MODEL, prompt="Hello", max_tokens=12)
            case "embed":
                return await client.embeddings.create(model=MODEL, input="one")
            case "models":
                return await client.models.list()
    raise AssertionError(op)


def openai_sync(url: str, op: str) -> Any:
    with openai.OpenAI(base_url=url + "/v1", api_key="unused") as client:
        match op:
            case "chat":
                return client.chat.completions.create(
                    model=MODEL, messages=_CHAT, max_tokens=12, seed=3
                )
            case "chat_stream":
                stream = client.chat.completions.create(
                    model=MODEL, messages=_CHAT, max_tokens=12, seed=3, stream=True
                )
                return list(stream)
            case "completion":
                return client.completions.create(model=MODEL, prompt="Hello", max_tokens=12)
            case "embed":
                return client.embeddings.create(model=MODEL, input="one")
            case "models":
                return client.models.list().data
    raise AssertionError(op)


def in_thread(fn: Callable[[str, str], Any]) -> Callable[[str, str], Awaitable[Any]]:
    """Run a blocking client off the loop that serves the simulator and the proxy."""

    async def run(url: str, op: str) -> Any:
        return await asyncio.to_thread(fn, url, op)

    return run


_OLLAMA_OPS = ["chat", "chat_stream", "generate", "generate_stream", "embed", "list", "ps", "show"]
_OPENAI_OPS = ["chat", "chat_stream", "completion", "embed", "models"]
CASES = (
    [("ollama-async", op) for op in [*_OLLAMA_OPS, "pull"]]
    + [("ollama-sync", op) for op in _OLLAMA_OPS]
    + [("openai-async", op) for op in _OPENAI_OPS]
    + [("openai-sync", op) for op in _OPENAI_OPS]
)
RUNNERS: dict[str, Callable[[str, str], Awaitable[Any]]] = {
    "ollama-async": ollama_async,
    "ollama-sync": in_thread(ollama_sync),
    "openai-async": openai_async,
    "openai-sync": in_thread(openai_sync),
}


async def test_every_client_call_matches_direct(
    simulator: SimulatorFactory, proxy: ProxyFactory
) -> None:
    """Each call returns through the proxy exactly what it returns from the simulator directly."""
    sim = await simulator(lanes=2)
    direct = base_url(sim)
    proxied = base_url(await proxy(upstream=direct, lanes=2))
    await ollama_async(direct, "generate")  # load the model, so `ps` agrees from the start
    mismatches = []
    for kind, op in CASES:
        run = RUNNERS[kind]
        expected, actual = stable(await run(direct, op)), stable(await run(proxied, op))
        if expected != actual:
            mismatches.append((kind, op, expected, actual))
    assert mismatches == []


def unknown_model_error(url: str) -> tuple[int, str]:
    try:
        ollama.Client(host=url).chat(model="missing-model", messages=_CHAT)
    except ollama.ResponseError as exc:
        return exc.status_code, exc.error
    raise AssertionError("no error for an unknown model")


def openai_unknown_model_error(url: str) -> tuple[int, str]:
    with openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client:
        try:
            client.chat.completions.create(model="missing-model", messages=_CHAT)
        except openai.NotFoundError as exc:
            return exc.status_code, exc.message
    raise AssertionError("no error for an unknown model")


@pytest.mark.parametrize("call", [unknown_model_error, openai_unknown_model_error])
async def test_unknown_model_errors_match_direct(
    simulator: SimulatorFactory, proxy: ProxyFactory, call: Callable[[str], tuple[int, str]]
) -> None:
    """An unknown model raises the same 404 error in each client, through the proxy too."""
    sim = await simulator()
    direct = base_url(sim)
    proxied = base_url(await proxy(upstream=direct))
    expected = await asyncio.to_thread(call, direct)
    assert expected[0] == 404
    assert await asyncio.to_thread(call, proxied) == expected
