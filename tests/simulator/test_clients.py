"""The official ollama and openai Python clients work against the simulator."""

from __future__ import annotations

import asyncio
import json

import ollama
import openai

from tests.fixtures_sim import SimulatorFactory, base_url

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


class TestOllamaClient:
    async def test_sync_client(self, simulator: SimulatorFactory) -> None:
        """chat, generate (streamed and not), embed, list, ps and show with ollama.Client."""
        sim = await simulator()
        client = ollama.Client(host=base_url(sim))

        def exercise() -> None:
            reply = client.chat(model="llama3.2", messages=MESSAGES, options={"num_predict": 5})
            assert (reply.eval_count, reply.done_reason) == (5, "length")
            parts = list(client.generate(model="llama3.2", prompt="hi", stream=True))
            assert parts[-1].done
            assert not parts[0].done
            assert "".join(p.response or "" for p in parts).strip()
            vectors = client.embed(model="all-minilm", input=["a", "b"]).embeddings
            assert len(vectors) == 2
            assert "all-minilm:latest" in [m.model for m in client.list().models]
            assert {"llama3.2:latest", "all-minilm:latest"} == {m.model for m in client.ps().models}
            assert client.show("llama3.2").details.family == "llama"  # type: ignore[union-attr]

        await asyncio.to_thread(exercise)

    async def test_async_client(self, simulator: SimulatorFactory) -> None:
        """The same calls with ollama.AsyncClient, chat streamed, generate not."""
        sim = await simulator()
        client = ollama.AsyncClient(host=base_url(sim))
        pieces = [
            part.message.content or ""
            async for part in await client.chat(model="llama3.2", messages=MESSAGES, stream=True)
        ]
        assert len(pieces) > 5
        reply = await client.generate(model="llama3.2", prompt="hi", options={"num_predict": 3})
        assert reply.eval_count == 3
        assert len((await client.embed(model="all-minilm", input="x")).embeddings[0]) == 384
        assert len((await client.list()).models) == 4
        assert len((await client.ps()).models) == 2
        assert (await client.show("qwen2.5:7b-instruct")).modelinfo

    async def test_format_schema_through_the_client(self, simulator: SimulatorFactory) -> None:
        """format=<schema> returns JSON valid for the schema."""
        sim = await simulator()
        client = ollama.AsyncClient(host=base_url(sim))
        schema = {
            "type": "object",
            "properties": {"mood": {"enum": ["calm", "busy"]}, "n": {"type": "integer"}},
            "required": ["mood", "n"],
        }
        reply = await client.chat(model="llama3.2", messages=MESSAGES, format=schema)
        data = json.loads(reply.message.content or "")
        assert data["mood"] in ("calm", "busy")
        assert isinstance(data["n"], int)


class TestOpenAIClient:
    async def test_async_client(self, simulator: SimulatorFactory) -> None:
        """chat (streamed and not), completions, embeddings and models on /v1."""
        sim = await simulator()
        client = openai.AsyncOpenAI(base_url=base_url(sim) + "/v1", api_key="x")
        try:
            reply = await client.chat.completions.create(
                model="llama3.2", messages=[{"role": "user", "content": "hi"}], max_tokens=4
            )
            assert reply.choices[0].finish_reason == "length"
            assert reply.usage.completion_tokens == 4  # type: ignore[union-attr]
            stream = await client.chat.completions.create(
                model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            assert text.endswith(".")
            done = await client.completions.create(model="llama3.2", prompt="x", max_tokens=2)
            assert len(done.choices[0].text) == 8
            vectors = await client.embeddings.create(model="all-minilm", input=["a", "b"])
            assert [len(d.embedding) for d in vectors.data] == [384, 384]
            models = await client.models.list()
            assert len(models.data) == 4
        finally:
            await client.close()

    async def test_sync_client(self, simulator: SimulatorFactory) -> None:
        """The sync OpenAI client streams a chat in a thread; JSON mode gives JSON."""
        sim = await simulator()

        def exercise() -> None:
            with openai.OpenAI(base_url=base_url(sim) + "/v1", api_key="x") as client:
                chunks = list(
                    client.chat.completions.create(
                        model="llama3.2",
                        messages=[{"role": "user", "content": "hi"}],
                        stream=True,
                        max_tokens=3,
                    )
                )
                assert chunks[-1].choices[0].finish_reason == "length"
                reply = client.chat.completions.create(
                    model="llama3.2",
                    messages=[{"role": "user", "content": "answer in JSON"}],
                    response_format={"type": "json_object"},
                )
                assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)

        await asyncio.to_thread(exercise)
