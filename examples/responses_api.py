"""The Responses API: a patched client scores `responses.create` (plain and streamed) and the
`responses.stream(...)` helper; a routed client gets the server's score for its options."""

from _local_server import openai_server
from openai import OpenAI

import tlm_hooks

ASK = {"instructions": "Answer in one sentence.", "input": "What is the capital of France?", "max_output_tokens": 30}


def main(root: str, model: str) -> None:
    client = tlm_hooks.patch(OpenAI(base_url=f"{root}/v1", api_key="local"))
    reply = client.responses.create(model=model, **ASK)
    print("answer:", reply.output_text.strip())
    print("score: ", round(reply.tlm_metadata["trustworthiness_score"], 3))

    # streamed: events arrive as usual; the score is computed when `response.completed` arrives
    # (or `response.incomplete`, when the answer hit max_output_tokens)
    stream = client.responses.create(model=model, **ASK, stream=True)
    for event in stream:
        if event.type == "response.output_text.delta":
            print(event.delta, end="", flush=True)
        elif event.type in ("response.completed", "response.incomplete"):
            print("\nstreamed score:", round(event.response.tlm_metadata["trustworthiness_score"], 3))

    # the SDK's stream helper: the score is on the last event's response (and on
    # `helper.get_final_response()` when the answer completed)
    with client.responses.stream(model=model, **ASK) as helper:
        last = list(helper)[-1]
    print("helper score:", round(last.response.tlm_metadata["trustworthiness_score"], 3))
    tlm_hooks.unpatch(client)

    # route mode: the server scores, with the options sent in extra_body
    routed = tlm_hooks.route(
        OpenAI(base_url=f"{root}/v1", api_key="local"), options={"log": ["explanation"]}, quality_preset="base"
    )
    answer = routed.responses.create(model=model, **ASK)
    print("routed score:", round(answer.tlm_metadata["trustworthiness_score"], 3))
    tlm_hooks.unpatch(routed)


with openai_server() as (root, model):
    main(root, model)
