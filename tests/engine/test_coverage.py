"""A score made with less than its preset asked says so in ``tlm_metadata`` (``log.warnings``,
``log.signals``), also without ``options.log``; a score whose every judge call failed is a
failure naming the judge; long prompts keep their question and are flagged. Real loopback
judges throughout (tests/engine/judge_server.py)."""

from __future__ import annotations

import math
import socket
from typing import Any

import openai
import pytest

import tlm_hooks
from engine.judge_server import judge_server
from tlm_hooks import ScoreRequest, TLMScorer, TokenLogprob, TrustPolicy, TrustResult, TrustScoringError
from tlm_hooks.errors import JudgeConnectionError, JudgeTimeoutError
from tlm_hooks.llm import OpenAICompatibleBackend, RetryPolicy
from tlm_hooks.scorers.signals.fit import QUESTION_CHARS, SAMPLE_PROMPT_CHARS, cut, fit_messages, fit_question

SURE = (TokenLogprob("4", math.log(0.9)),)
FAST = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02)
MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


def dead_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def judge_at(url: str, **kwargs: Any) -> OpenAICompatibleBackend:
    kwargs.setdefault("retry", FAST)
    return OpenAICompatibleBackend(model="judge-x", base_url=url, api_key="k", **kwargs)


def request(**kwargs: Any) -> ScoreRequest:
    kwargs.setdefault("prompt", "What is 2+2?")
    return ScoreRequest(response="4", response_logprobs=SURE, **kwargs)


# -- less than asked, said in tlm_metadata -----------------------------------------------------------


async def test_a_complete_score_says_what_ran_and_warns_of_nothing() -> None:
    with judge_server(refuse_n=False, delay=0) as server:
        result = await TLMScorer("medium", judge=judge_at(server.url)).ascore(request())
    log = result.to_dict()["log"]
    assert "warnings" not in log
    assert log["signals"] == {
        "token_probability": {"asked": 1, "ran": 1},
        "self_reflection": {"asked": 2, "ran": 2},
        "consistency": {"asked": 4, "ran": 4},
    }


async def test_failed_sampling_is_said_in_tlm_metadata_without_options_log() -> None:
    with judge_server(refuse_n=False, fail_kinds=frozenset({"sample"}), delay=0) as server:
        result = await TLMScorer("medium", judge=judge_at(server.url)).ascore(request())
    assert result.ok and "consistency" not in result.components and "self_reflection" in result.components
    meta = result.to_dict()
    assert "explanation" not in meta["log"]  # nothing was asked through options.log
    assert meta["log"]["signals"]["consistency"] == {"asked": 4, "ran": 0}
    [warning] = meta["log"]["warnings"]
    assert warning.startswith("consistency: 1 of 1 sampling requests failed") and "HTTP 500" in warning
    assert "scripted judge failure" not in warning  # no server text is quoted (it may echo secrets)
    assert TrustResult.from_dict(meta) == result  # the metadata round-trips


async def test_a_failed_reflection_is_left_out_and_counted() -> None:
    with judge_server(refuse_n=False, fail_kinds=frozenset({"letter"}), delay=0) as server:
        result = await TLMScorer("medium", judge=judge_at(server.url)).ascore(request())
    assert result.ok and result.signals["self_reflection"] == {"asked": 2, "ran": 1}
    assert result.components["self_reflection"] == 1.0  # the one that answered; the failure is not a 0.5
    assert result.warnings == (
        "self_reflection: 1 of 2 judge calls failed and were left out (InternalServerError: HTTP 500)",
    )


async def test_failed_agreement_checks_are_said() -> None:
    scorer = TLMScorer("low", options={"similarity_measure": "semantic"})
    with judge_server(refuse_n=False, fail_kinds=frozenset({"agreement"}), delay=0) as server:
        scorer.judge = judge_at(server.url)
        result = await scorer.ascore(request())
    assert result.ok and result.components["consistency"] == 0.5
    assert any(
        w.startswith("consistency: 3 of 3 agreement checks failed and count as uncertain") for w in result.warnings
    )


async def test_warnings_are_also_in_the_explanation_free_hooked_metadata(fake: Any) -> None:
    with judge_server(refuse_n=False, fail_kinds=frozenset({"sample"}), delay=0) as server:
        client = openai.OpenAI(base_url=fake.url, api_key="k")
        tlm_hooks.patch(client, scorer=TLMScorer("medium", judge=judge_at(server.url)))
        response = client.chat.completions.create(model="app", messages=MESSAGES)
    log = response.tlm_metadata["log"]
    assert log["signals"]["consistency"]["ran"] == 0 and log["warnings"][0].startswith("consistency:")


# -- every judge call failed: a failure, naming the judge ----------------------------------------------


async def test_an_unreachable_judge_is_a_failure_not_a_token_probability_score() -> None:
    url = dead_url()
    result = await TLMScorer("medium", judge=judge_at(url)).ascore(request())
    assert result.trustworthiness_score is None and not result.ok
    assert result.error_type == "JudgeConnectionError"
    assert url in (result.error or "") and "'judge-x'" in (result.error or "")
    assert "every judge call failed (3 of 3)" in (result.error or "")


def test_an_unreachable_judge_under_a_fail_closed_policy_raises(fake: Any) -> None:
    url = dead_url()
    scorer = TLMScorer("medium", options={"model": "judge-x", "model_provider": {"api_base": url}})
    client = openai.OpenAI(base_url=fake.url, api_key="k")
    tlm_hooks.patch(client, scorer=scorer, policy=TrustPolicy(on_error="raise"))
    with pytest.raises(TrustScoringError) as info:
        client.chat.completions.create(model="app", messages=MESSAGES)
    assert url in str(info.value) and "judge-x" in str(info.value)
    tlm_hooks.unpatch(client)
    tlm_hooks.patch(client, scorer=scorer)  # fail-open (the default): the answer, with the error
    response = client.chat.completions.create(model="app", messages=MESSAGES)
    meta = response.tlm_metadata
    assert meta["trustworthiness_score"] is None and url in meta["error"]["message"]


async def test_connection_errors_name_the_url_without_its_secrets() -> None:
    url = dead_url()
    secret_url = url.replace("http://", "http://user:pw-SECRET@") + "?token=tok-SECRET"
    with pytest.raises(JudgeConnectionError) as info:
        await judge_at(secret_url).acomplete(MESSAGES)
    message = str(info.value)
    assert url in message and "'judge-x'" in message and "after 2 attempts" in message
    assert "SECRET" not in message
    assert isinstance(info.value, ConnectionError) and isinstance(info.value.__cause__, openai.APIConnectionError)


async def test_timeouts_name_the_url() -> None:
    with judge_server(delay=1.5) as server:
        with pytest.raises(JudgeTimeoutError) as info:
            await judge_at(server.url, timeout=0.3, retry=RetryPolicy(max_retries=0)).acomplete(MESSAGES)
    assert server.url in str(info.value) and isinstance(info.value, TimeoutError)
    assert isinstance(info.value.__cause__, openai.APITimeoutError)


# -- long prompts: the question is kept, the cut is said -------------------------------------------------

QUESTION = "Which city is the capital of France?"
FILLER = "Background note number {i} about nothing in particular. "


def long_messages(chars: int = 83_000) -> list[dict[str, str]]:
    filler = "".join(FILLER.format(i=i) for i in range(chars // len(FILLER)))[:chars]
    return [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": f"{filler}\n\n{QUESTION}"},
    ]


async def test_an_83k_prompt_keeps_its_question_and_is_flagged() -> None:
    messages = long_messages()
    with judge_server(refuse_n=False, context_chars=20_000, delay=0) as server:
        result = await TLMScorer("medium", judge=judge_at(server.url)).ascore(request(prompt=None, messages=messages))
    assert result.ok and {"self_reflection", "consistency"} <= set(result.components)
    assert result.signals["consistency"] == {"asked": 4, "ran": 4}
    total = len("\n".join(f"{m['role']}: {m['content']}" for m in messages))
    assert f"prompt cut to {QUESTION_CHARS:,} of {total:,} characters for the judge" in result.warnings[0]
    assert result.warnings[1].startswith("consistency: the prompt (") and "context window" in result.warnings[1]
    reflections = [a for a in server.asked if a.kind in ("word_yes", "letter")]
    assert len(reflections) == 2 and all(QUESTION in a.last_user and a.refused is None for a in reflections)
    refused, answered = (
        [a for a in server.asked if a.kind == "sample" and a.refused],
        [a for a in server.asked if a.kind == "sample" and not a.refused],
    )
    assert [a.chars for a in refused] == [sum(len(m["content"]) for m in messages)]  # the whole prompt, once
    assert len(answered) == 1 and answered[0].n == 4  # the overflow did not pass for a refusal of n
    assert answered[0].last_user.endswith(QUESTION) and answered[0].chars <= SAMPLE_PROMPT_CHARS


def test_cut_marks_what_it_drops_and_respects_the_limit() -> None:
    text = "".join(str(i % 10) for i in range(10_000))
    short = cut(text, 500)
    assert len(short) <= 500 and short.startswith(text[:200]) and short.endswith(text[-200:])
    assert "characters cut" in short
    assert cut("small", 500) == "small"


def test_fit_question_keeps_the_last_user_turn_whole_and_cuts_what_comes_before() -> None:
    earlier = "x" * 50_000
    req = ScoreRequest(
        response="Paris",
        messages=[
            {"role": "system", "content": "S" * 3000},
            {"role": "user", "content": earlier},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": QUESTION},
        ],
    )
    text, full = fit_question(req)
    assert len(text) <= QUESTION_CHARS and full > 50_000
    assert text.endswith(f"user: {QUESTION}") and text.startswith("system: SSS") and "characters cut" in text


def test_fit_messages_keeps_system_and_the_latest_turns() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "a" * 20_000},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": QUESTION},
    ]
    fitted = fit_messages(messages, 6000)
    assert [m["role"] for m in fitted] == ["system", "assistant", "user"]
    assert fitted[0]["content"] == "Be brief." and fitted[-1]["content"] == QUESTION
    assert fitted[1]["content"].startswith("[… 1 earlier message cut …]")
    assert messages[1]["content"] == "a" * 20_000  # the caller's messages are not changed


def test_tlm_client_results_carry_the_warnings_without_options_log() -> None:
    from tlm_hooks import TLM

    with judge_server(refuse_n=False, fail_kinds=frozenset({"sample"}), delay=0) as server:
        tlm = TLM("medium", scorer=TLMScorer("medium", judge=judge_at(server.url)))
        out = tlm.get_trustworthiness_score("What is 2+2?", "4")
    assert set(out) == {"trustworthiness_score", "log"} and set(out["log"]) == {"warnings"}
    assert out["log"]["warnings"][0].startswith("consistency: 1 of 1 sampling requests failed")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync_client", "async_client"])
async def test_azure_inference_connection_errors_name_the_endpoint(is_async: bool) -> None:
    pytest.importorskip("azure.ai.inference")
    from azure.ai.inference import ChatCompletionsClient
    from azure.ai.inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient
    from azure.core.credentials import AzureKeyCredential

    from tlm_hooks.llm.azure_inference import AzureInferenceBackend

    url = dead_url()
    cls = AsyncChatCompletionsClient if is_async else ChatCompletionsClient
    client = cls(endpoint=url, credential=AzureKeyCredential("k"))
    try:
        backend = AzureInferenceBackend(client, model="judge-x", retry=RetryPolicy(max_retries=0))
        with pytest.raises(JudgeConnectionError) as info:
            await backend.acomplete(MESSAGES)
    finally:
        closed = client.close()
        if closed is not None:
            await closed
    assert url in str(info.value) and "'judge-x'" in str(info.value)


async def test_litellm_connection_errors_name_the_api_base() -> None:
    pytest.importorskip("litellm")
    from tlm_hooks.llm import LiteLLMBackend

    url = dead_url()
    backend = LiteLLMBackend("openai/judge-x", api_base=url, api_key="k", max_retries=0)
    with pytest.raises(JudgeConnectionError) as info:
        await backend.acomplete(MESSAGES)
    assert url in str(info.value) and "'openai/judge-x'" in str(info.value)
