"""Azure AI Inference: route a ChatCompletionsClient to a TLM backend (TLM options travel in
`model_extras`), and patch another so its own answers are scored."""

from _local_server import openai_server
from azure.ai.inference import ChatCompletionsClient
from azure.ai.inference.models import SystemMessage, UserMessage
from azure.core.credentials import AzureKeyCredential

import tlm_hooks

QUESTION = [SystemMessage("Answer briefly."), UserMessage("What is 7 times 8?")]

with openai_server() as (root, model):
    # a) Workflow 3: the endpoint is the TLM backend. route() merges TLM options into each call's
    #    model_extras, keeping the client's own model_extras and the call's (those win).
    client = ChatCompletionsClient(
        endpoint=f"{root}/api",
        credential=AzureKeyCredential("local"),
        model_extras={"options": {"log": ["explanation"]}},
    )
    tlm_hooks.route(client, quality_preset="base")
    response = client.complete(model=model, messages=QUESTION, max_tokens=32)
    print(
        "routed:   ",
        response.choices[0].message.content,
        "| score",
        round(response.tlm_metadata["trustworthiness_score"], 3),
    )
    print("explained:", response["tlm_metadata"]["log"]["explanation"])  # also a key, kept by as_dict()
    stream = client.complete(model=model, messages=QUESTION, max_tokens=32, stream=True)
    text = "".join(update.choices[0].delta.content or "" for update in stream if update.choices)
    print("streamed: ", text, "| score", round(stream.tlm_metadata["trustworthiness_score"], 3))
    tlm_hooks.unpatch(client)
    client.close()

    # b) score mode: any Azure endpoint answers; the hook asks it for token logprobs and scores
    #    the answer with them (no extra LLM call), then the policy acts on a low score.
    client = ChatCompletionsClient(endpoint=f"{root}/v1", credential=AzureKeyCredential("local"))
    tlm_hooks.patch(
        client, policy=tlm_hooks.TrustPolicy(threshold=0.7, on_low_trust=[tlm_hooks.fallbacks.AppendWarning()])
    )
    for question in ("What is the capital of France?", "What is the square root of 1764?"):
        response = client.complete(model=model, messages=[UserMessage(question)], max_tokens=40)
        print(type(response).__name__, "|", question)
        print("  answer:", response.choices[0].message.content)
        print(
            "  score: ",
            round(response.tlm_metadata["trustworthiness_score"], 3),
            response.tlm_metadata.get("fallbacks", []),
        )
    tlm_hooks.unpatch(client)
    client.close()
