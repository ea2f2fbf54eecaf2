"""litellm apps: patch litellm itself, route a Router to a TLM backend, or add a callback.

Runs offline: litellm's OpenAI-compatible provider (``openai/<model>`` + ``api_base``) talks to
the embedded model served on 127.0.0.1 (see _local_server.py).
"""

import os
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm's bundled cost map: no download

import litellm  # noqa: E402
from _local_server import openai_server  # noqa: E402

import tlm_hooks  # noqa: E402
from tlm_hooks.integrations.litellm import TLMCallback  # noqa: E402

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]

with openai_server() as (root, model):
    provider = {"model": f"openai/{model}", "api_base": f"{root}/v1", "api_key": "local"}

    # a) patch(litellm): every litellm.completion/acompletion (and every Router) is scored
    tlm_hooks.patch(litellm)
    response = litellm.completion(**provider, messages=QUESTION, max_tokens=24)
    print("patched:  ", response.choices[0].message.content, "| score", round(response.tlm_metadata["trustworthiness_score"], 3))
    stream = litellm.completion(**provider, messages=QUESTION, max_tokens=24, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    print("streamed: ", text, "| score", round(stream.tlm_metadata["trustworthiness_score"], 3))
    tlm_hooks.unpatch(litellm)

    # b) route(router): TLM options go to the backend in extra_body, its tlm_metadata comes back
    deployment = {**provider, "api_base": f"{root}/api"}  # the server's TLM routes
    router = litellm.Router(model_list=[{"model_name": "answers", "litellm_params": deployment}])
    tlm_hooks.route(router, quality_preset="base", options={"log": ["explanation"]})
    response = router.completion(model="answers", messages=QUESTION, max_tokens=24)
    print("routed:   ", response.choices[0].message.content, "| score", round(response.tlm_metadata["trustworthiness_score"], 3))
    tlm_hooks.unpatch(router)

    # c) a callback instead of a patch: scored off the call path, recorded for the loggers after it
    litellm.callbacks = [TLMCallback()]  # LogprobScorer: the app asks for logprobs
    response = litellm.completion(**provider, messages=QUESTION, max_tokens=24, logprobs=True)
    deadline = time.monotonic() + 60
    while "tlm_metadata" not in response._hidden_params and time.monotonic() < deadline:
        time.sleep(0.05)  # the score lands once litellm's logging thread has run the callback
    print("callback: ", response.choices[0].message.content, "| score", round(response.tlm_metadata["trustworthiness_score"], 3))
    litellm.callbacks = []
