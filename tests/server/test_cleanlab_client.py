"""Cleanlab's official client (``cleanlab-tlm``), unchanged, against a real ``tlm-hooks serve``
process on the embedded model; and the seeds' REST payloads sent with ``requests``.

Every test runs twice: on the embedded model (marked ``embedded_model``), and on a scripted
OpenAI-compatible upstream (``--model URL``), which checks the wire formats in seconds.
The client reads ``CLEANLAB_API_BASE_URL`` when it is imported and its VPC classes read
``BASE_URL`` per call, so each scenario runs as a script in a fresh interpreter with only those
variables and the key set, as a user would run it. The script prints what it got as one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_openai import FakeOpenAI

# generous: on a machine busy with other work a judge call of the embedded model can take 20 s
pytestmark = pytest.mark.timeout(1200)

KEY = "sk-cleanlab-client-compat"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Server:
    base: str
    model: str  # the name of the model that answers

    @property
    def substituted(self) -> str:
        return f"is not served here; answered by '{self.model}'"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pythonpath() -> str:
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


@pytest.fixture(
    scope="module", params=[pytest.param("embedded", marks=pytest.mark.embedded_model), pytest.param("upstream")]
)
def server(request: pytest.FixtureRequest, fake_server: FakeOpenAI) -> Iterator[Server]:
    pytest.importorskip("cleanlab_tlm", reason="the official client is in the dev extra: pip install cleanlab-tlm")
    if request.param == "embedded":
        pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
        from tlm_hooks.local import DEFAULT_MODEL_NAME, default_model_path

        try:
            default_model_path()
        except Exception as exc:  # noqa: BLE001 - the weights package is missing
            pytest.skip(str(exc))
        model, name = ["--threads", "1"], DEFAULT_MODEL_NAME  # one thread degrades gracefully on a busy machine
    else:
        fake_server.reset()
        model, name = ["--model", fake_server.url, "--upstream-model", "served"], "served"
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    env.pop("TLM_HOOKS_API_KEYS", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tlm_hooks.cli",
            "serve",
            "--port",
            str(port),
            "--api-key",
            KEY,
            "--timeout",
            "300",
            *model,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        # stopped with SIGINT below: the child must not inherit SIGINT as ignored (nohup, `make test &`)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            raise AssertionError(f"tlm-hooks serve exited early: {process.communicate()[0]}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("tlm-hooks serve did not come up within 180 s")
        time.sleep(0.3)
    try:
        yield Server(base, name)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        assert KEY not in output  # the key never reaches the server's log


def run_client(server: Server, script: str, **env: str) -> Any:
    """Run ``script`` in a fresh interpreter configured like a user's; its last output line is JSON."""
    base = server.base
    environ = {
        **os.environ,
        "CLEANLAB_API_BASE_URL": f"{base}/api",
        "BASE_URL": f"{base}/api",
        "CLEANLAB_TLM_API_KEY": KEY,
        "TLM_TEST_KEY": KEY,
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], env=environ, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _score(value: Any) -> float:
    assert isinstance(value, float) and 0.0 <= value <= 1.0, value
    return value


# -- TLM ------------------------------------------------------------------------------------------


def test_tlm_prompt_score_try_presets_log_timeout_and_explanation(server: Server) -> None:
    out = run_client(
        server,
        """
        import json, warnings
        from cleanlab_tlm import TLM

        out = {}
        tlm = TLM("base", options={"max_tokens": 64, "log": ["perplexity"]}, timeout=240)  # sends max_timeout
        out["prompt"] = tlm.prompt("What is the capital of France? Answer in one word.")
        out["score"] = tlm.get_trustworthiness_score("What is 2+2?", "4")
        with warnings.catch_warnings():  # the deprecated try_* take lists: they cover the list forms too
            warnings.simplefilter("ignore", DeprecationWarning)
            out["try_prompt"] = tlm.try_prompt(["What is 2+2?", "Name one color."])
            out["try_scores"] = tlm.try_get_trustworthiness_score(["What is 2+2?", "What is 3+3?"], ["4", "7"])
        out["explanation"] = tlm.get_explanation(prompt="What is 2+2?", response="5", tlm_result=out["score"])
        medium = TLM("medium", options={"num_consistency_samples": 0, "max_tokens": 64})
        out["medium"] = medium.get_trustworthiness_score("What is the capital of France?", "Paris")
        logged = TLM("base", options={"log": ["explanation"], "num_consistency_samples": 1, "max_tokens": 64})
        out["logged"] = logged.get_trustworthiness_score("What is the capital of France?", "Paris")
        print(json.dumps(out))
        """,
    )
    prompt = out["prompt"]
    assert prompt["response"].strip() and set(prompt) == {"response", "trustworthiness_score", "log"}
    _score(prompt["trustworthiness_score"])
    assert 0.0 < prompt["log"]["perplexity"] <= 1.0  # from the generated answer's own logprobs
    assert any(server.substituted in line for line in prompt["log"]["warnings"])  # the client sent gpt-4.1-mini
    _score(out["score"]["trustworthiness_score"])
    # a given response has no logprobs: perplexity is null and the reply says why
    assert out["score"]["log"]["perplexity"] is None and any("perplexity" in w for w in out["score"]["log"]["warnings"])
    assert len(out["try_prompt"]) == 2
    assert all(item["response"] and _score(item["trustworthiness_score"]) is not None for item in out["try_prompt"])
    assert [_score(s["trustworthiness_score"]) for s in out["try_scores"]] and len(out["try_scores"]) == 2
    assert isinstance(out["explanation"], str) and out["explanation"].strip()
    _score(out["medium"]["trustworthiness_score"])
    assert out["logged"]["log"]["explanation"].strip()


def test_tlm_error_classes_for_a_wrong_key_and_a_bad_option(server: Server) -> None:
    out = run_client(
        server,
        """
        import json, time
        from cleanlab_tlm import TLM
        from cleanlab_tlm.errors import AuthError, TlmBadRequestError

        out = {}
        for name, make in [
            ("auth", lambda: TLM("base", api_key="sk-not-the-key")),
            ("option", lambda: TLM("base", options={"num_self_reflections": 11})),  # client check skipped below
            ("misspelt", lambda: TLM("base", options={"num_self_reflection": 1})),
        ]:
            start = time.monotonic()
            try:
                make().get_trustworthiness_score("What is 2+2?", "4")
                out[name] = ["no error", 0.0, ""]
            except (AuthError, TlmBadRequestError) as exc:
                out[name] = [type(exc).__name__, time.monotonic() - start, str(getattr(exc, "message", exc))]
        print(json.dumps(out))
        """,
        CLEANLAB_TLM_SKIP_VALIDATE_TLM_OPTIONS="true",  # so our server, not the client, judges the options
    )
    name, seconds, _ = out["auth"]
    assert name == "AuthError" and seconds < 5  # not retried
    name, seconds, message = out["option"]
    assert name == "TlmBadRequestError" and seconds < 5  # not retried: a 422, not a 400
    assert "options.num_self_reflections" in message and "0 to 10" in message
    name, seconds, message = out["misspelt"]
    assert name == "TlmBadRequestError" and seconds < 5 and "options.num_self_reflection" in message


# -- TrustworthyRAG -------------------------------------------------------------------------------


def test_trustworthy_rag_score_and_generate_with_the_default_evals(server: Server) -> None:
    out = run_client(
        server,
        """
        import json
        from cleanlab_tlm.utils.rag import TrustworthyRAG

        rag = TrustworthyRAG("base", options={"max_tokens": 64})
        context = "The first month of the year is January."
        query = "What is the first month of the year?"
        out = {
            "evals": [e.name for e in rag.get_evals()],
            "score": rag.score(query=query, context=context, response="January"),
            "generate": rag.generate(query=query, context=context),
        }
        scored = dict(out["score"])
        out["explanation"] = rag.get_explanation(query=query, context=context, response="January", tlm_result=scored)
        print(json.dumps(out))
        """,
    )
    names = ["context_sufficiency", "response_groundedness", "response_helpfulness", "query_ease"]
    assert out["evals"] == names
    assert list(out["score"]) == ["trustworthiness", *names]
    assert all(_score(out["score"][name]["score"]) is not None for name in ["trustworthiness", *names])
    assert out["generate"]["response"].strip() and list(out["generate"]) == ["response", "trustworthiness", *names]
    _score(out["generate"]["trustworthiness"]["score"])
    assert isinstance(out["explanation"], str) and out["explanation"].strip()


# -- TLMChatCompletion: the seeds' Workflows 1 and 2 (VPC) and the hosted flavour -------------------


def test_chat_completions_vpc_workflows_and_hosted_score(server: Server) -> None:
    out = run_client(
        server,
        """
        import functools, json, os
        import requests
        from openai import OpenAI
        from openai.types.chat import ChatCompletion
        from pydantic import BaseModel
        from cleanlab_tlm.utils.vpc.chat_completions import TLMChatCompletion
        from cleanlab_tlm.utils.chat_completions import TLMChatCompletion as HostedTLMChatCompletion

        KEY = os.environ["TLM_TEST_KEY"]
        auth = {"Authorization": f"Bearer {KEY}"}
        out = {}
        # the app's own LLM (here: the same server, standing in for Azure/OpenAI)
        client = OpenAI(base_url=os.environ["BASE_URL"], api_key=KEY)

        # Workflow 1: score an existing completion
        openai_kwargs = {
            "model": "gpt-4.1-mini",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
            "logprobs": True,
            "top_logprobs": 3,
            "max_tokens": 24,  # not in the seed: keeps the embedded model's answer (and its scoring) short
        }
        response = client.chat.completions.create(**openai_kwargs)
        tlm = TLMChatCompletion(
            quality_preset="medium",
            options={"model": "azure/gpt-4.1-mini", "log": ["explanation"]},
            request_headers=auth,
        )
        out["workflow1"] = tlm.score(response=response, **openai_kwargs)
        try:
            TLMChatCompletion(quality_preset="medium", options={"model": "azure/gpt-4.1-mini"}).score(
                response=response, **openai_kwargs
            )
            out["no_key"] = "no error"
        except requests.exceptions.HTTPError as exc:
            out["no_key"] = str(exc)

        # Workflow 2: a decorator that attaches the score to every create()
        def add_trust_scoring(tlm_instance):
            def trust_score_decorator(fn):
                @functools.wraps(fn)
                def wrapper(**kwargs):
                    response = fn(**kwargs)
                    score_result = tlm_instance.score(response=response, **kwargs)
                    response.tlm_metadata = score_result
                    return response
                return wrapper
            return trust_score_decorator

        fast = TLMChatCompletion(
            quality_preset="base", options={"model": "azure/gpt-4.1-mini", "log": ["explanation"]}, request_headers=auth
        )
        client.chat.completions.create = add_trust_scoring(fast)(client.chat.completions.create)
        decorated = client.chat.completions.create(**openai_kwargs)
        out["workflow2"] = {"content": decorated.choices[0].message.content, "tlm_metadata": decorated.tlm_metadata}

        # hosted flavour: plain (through get_confidence_score) and with structured outputs
        hosted = HostedTLMChatCompletion("base", options={"max_tokens": 64})
        out["hosted"] = hosted.score(response=response, **openai_kwargs)

        class Capital(BaseModel):
            city: str
            country: str

        structured = ChatCompletion.model_validate({
            "id": "chatcmpl-structured", "object": "chat.completion", "created": 1, "model": "gpt-4.1-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": '{"city": "Paris", "country": "France"}'}}],
        })
        per_field = HostedTLMChatCompletion("base", options={"log": ["per_field_score"], "max_tokens": 64})
        out["structured"] = per_field.score(
            response=structured, messages=openai_kwargs["messages"], response_format=Capital
        )
        out["untrustworthy"] = per_field.get_untrustworthy_fields(
            response=structured, tlm_result=out["structured"], threshold=1.01, display_details=False
        )
        print(json.dumps(out))
        """,
    )
    workflow1 = out["workflow1"]
    _score(workflow1["trustworthiness_score"])
    assert workflow1["log"]["explanation"].strip()
    assert "401" in out["no_key"]  # the VPC client sends no key unless given request_headers
    _score(out["workflow2"]["tlm_metadata"]["trustworthiness_score"])
    assert out["workflow2"]["content"].strip() and out["workflow2"]["tlm_metadata"]["log"]["explanation"]
    _score(out["hosted"]["trustworthiness_score"])
    structured = out["structured"]
    _score(structured["trustworthiness_score"])
    fields = structured["log"]["per_field_score"]  # honoured: one entry per field of the answer
    assert set(fields) == {"city", "country"} and all(0 <= f["score"] <= 1 and f["explanation"] for f in fields.values())
    # the client's own helper reads our per-field scores (threshold above 1: every field, lowest first)
    assert out["untrustworthy"] == sorted(fields, key=lambda name: fields[name]["score"])


# -- the seeds' REST payloads (seed 001), sent with requests as the seed does ------------------------

MODEL = "gpt-4o-mini"
QUALITY_PRESET = "base"  # the seed uses "medium"; "base" keeps this test short on the embedded model
DEFAULT_EVAL_NAMES = ["context_sufficiency", "response_groundedness", "response_helpfulness", "query_ease"]


def _post(server: Server, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    requests = pytest.importorskip("requests")
    headers = {"authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    response_json: dict[str, Any] = requests.request(
        "POST", server.base + path, headers=headers, data=json.dumps(payload), timeout=600
    ).json()
    del response_json["deberta_success"]  # as the seed's helpers do
    return response_json


def test_seed_rest_payloads(server: Server) -> None:
    from cleanlab_tlm.utils.rag import get_default_evals

    default_evals = [e.__dict__ for e in get_default_evals()]
    options = {"model": MODEL, "log": ["explanation"]}
    prompt = _post(
        server,
        "/api/v0/trustworthy_llm/prompt",
        {
            "task": "default",
            "quality": QUALITY_PRESET,
            "prompt": "What's the first month of the year?",
            "options": options,
        },
    )
    assert prompt["response"].strip() and prompt["log"]["explanation"]
    _score(prompt["confidence_score"])
    assert f"options.model '{MODEL}' {server.substituted}" in prompt["log"]["warnings"]

    scored = _post(
        server,
        "/api/v0/trustworthy_llm/get_confidence_score",
        {
            "task": "classification",
            "quality": QUALITY_PRESET,
            "prompt": "Classify this text as positive or negative: 'I love this product!'",
            "response": "negative",
            "options": options,
        },
    )
    _score(scored["confidence_score"])
    assert scored["log"]["explanation"]

    context = "The first month of the year is January."
    query = "What's the first month of the year?"
    rag_prompt = f"Given the context provided, answer the question. Context: {context} Question: {query} Response:"
    rag = {"context": context, "query": query, "prompt": rag_prompt, "quality": QUALITY_PRESET, "options": options}
    rag_score = _post(
        server,
        "/api/v1/rag_trustworthy_llm/score",
        {**rag, "response": {"response": "February"}, "evals": default_evals},
    )
    assert set(rag_score) == {"trustworthiness", *DEFAULT_EVAL_NAMES}
    _score(rag_score["trustworthiness"]["score"])
    assert rag_score["trustworthiness"]["log"]["explanation"]
    rag_generate = _post(server, "/api/v1/rag_trustworthy_llm/generate", {**rag, "evals": default_evals})
    assert set(rag_generate) == {"response", "trustworthiness", *DEFAULT_EVAL_NAMES}
    assert rag_generate["response"].strip()
    assert all(_score(rag_generate[name]["score"]) is not None for name in DEFAULT_EVAL_NAMES)
