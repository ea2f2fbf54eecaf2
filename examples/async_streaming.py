"""Async client, streamed: chunks arrive as usual; the score is on the stream when it ends."""

import asyncio

from _local_server import openai_server
from openai import AsyncOpenAI

import tlm_hooks


async def main(root: str, model: str) -> None:
    client = AsyncOpenAI(base_url=f"{root}/v1", api_key="local")
    tlm_hooks.patch(client)
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Name three fruits."}], max_tokens=40, stream=True
    )
    async with stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
    print("\nscore:", round(stream.tlm_metadata["trustworthiness_score"], 3))
    tlm_hooks.unpatch(client)


with openai_server() as (root, model):
    asyncio.run(main(root, model))
