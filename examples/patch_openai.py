"""Patch an OpenAI client once: every completion comes back with `tlm_metadata`."""

from _local_server import openai_server
from openai import OpenAI

import tlm_hooks

with openai_server() as (root, model):
    client = OpenAI(base_url=f"{root}/v1", api_key="local")
    tlm_hooks.patch(
        client,  # default scorer: the answer's own token probabilities, no extra LLM call
        policy=tlm_hooks.TrustPolicy(threshold=0.7, on_low_trust=[tlm_hooks.fallbacks.AppendWarning()]),
    )
    for question in ("What is the capital of France?", "What is the square root of 1764?"):
        response = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}], max_tokens=40)
        print(type(response).__name__, "|", question)
        print("  answer:", response.choices[0].message.content)
        print("  score: ", round(response.tlm_metadata["trustworthiness_score"], 3), response.tlm_metadata.get("fallbacks", []))
    tlm_hooks.unpatch(client)
