"""Workflow 1: score a completion you already have, without patching anything."""

from _local_server import openai_server
from openai import OpenAI

import tlm_hooks

with openai_server() as (root, model):
    client = OpenAI(base_url=f"{root}/v1", api_key="local")
    kwargs = {
        "model": model,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How many legs does a spider have?"}],
        "logprobs": True,  # the default scorer reads the answer's token probabilities
        "max_tokens": 40,
    }
    response = client.chat.completions.create(**kwargs)
    result = tlm_hooks.score_completion(response, options={"options": {"log": ["explanation"]}}, **kwargs)
    print("answer:     ", response.choices[0].message.content)
    print("score:      ", round(result["trustworthiness_score"], 3))
    print("explanation:", result["log"]["explanation"])
