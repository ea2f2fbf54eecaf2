"""Workflow 3: the client talks to a TLM backend; TLM options travel in `extra_body`."""

from _local_server import openai_server
from openai import OpenAI

import tlm_hooks

with openai_server() as (root, model):
    # a) route(): options merged into every request, the backend's tlm_metadata read back
    client = OpenAI(base_url=f"{root}/api", api_key="local")
    tlm_hooks.route(client, quality_preset="base")
    caller_body = {"options": {"log": ["explanation"]}}  # merged with the route's options
    response = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What is 7 times 8?"}], max_tokens=48, extra_body=caller_body
    )
    print("routed:   ", response.choices[0].message.content, "| score", round(response.tlm_metadata["trustworthiness_score"], 3))
    print("explained:", response.tlm_metadata["log"]["explanation"])
    assert caller_body == {"options": {"log": ["explanation"]}}, "the caller's extra_body is never modified"
    tlm_hooks.unpatch(client)

    # b) with_tlm_options(): the same for a bare create function
    plain = OpenAI(base_url=f"{root}/api", api_key="local")
    create = tlm_hooks.with_tlm_options(quality_preset="base")(plain.chat.completions.create)
    response = create(model=model, messages=[{"role": "user", "content": "Name a primary color."}], max_tokens=24)
    print("decorated:", response.choices[0].message.content, "| score", round(response.tlm_metadata["trustworthiness_score"], 3))
