"""Lists and batches keep order; sync works inside a running loop; clients are closed; plugs into patch()."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest
from cleanlab_fakes import API_KEY, PROMPT_REPLY, SCORE_REPLY, Service, ok, status

import tlm_hooks
from tlm_hooks import CleanlabTLM, InvalidOptionError, ScoreRequest
from tlm_hooks.scorers.base import Scorer


def echo_score_now(request: httpx.Request) -> httpx.Response:
    """Score = the prompt's number / 10; prompt "bad" is rejected."""
    body = json.loads(request.content)
    if body["prompt"] == "bad":
        return status(400, {"detail": "prompt 'bad' is not allowed"})
    number = int(body["prompt"])
    return ok({"confidence_score": number / 10, "response": f"answer {number}", "deberta_success": True})


def _delay(request: httpx.Request) -> float:
    """Later items answer sooner, so completion order differs from input order."""
    prompt = json.loads(request.content)["prompt"]
    return 0.0 if prompt == "bad" else 0.002 * (9 - int(prompt))


def echo_score(request: httpx.Request) -> httpx.Response:
    time.sleep(_delay(request))
    return echo_score_now(request)


async def aecho_score(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(_delay(request))
    return echo_score_now(request)


PROMPTS = ["1", "2", "bad", "4", "5", "6", "7"]


def check_list(out: list[dict], *, with_response: bool) -> None:
    assert len(out) == len(PROMPTS)
    for prompt, item in zip(PROMPTS, out, strict=True):
        if prompt == "bad":
            assert item["trustworthiness_score"] is None
            assert item["error"]["type"] == "CleanlabBadRequestError"
            assert "not allowed" in item["error"]["message"]
            assert ("response" in item) is with_response
        else:
            assert item["trustworthiness_score"] == int(prompt) / 10
            assert "error" not in item
            if with_response:
                assert item["response"] == f"answer {prompt}"


def test_prompt_list_keeps_order_with_one_failure(make_tlm, service: Service) -> None:
    service.default = echo_score
    check_list(make_tlm(max_concurrency=4).prompt(PROMPTS), with_response=True)
    assert len(service.requests) == len(PROMPTS)


def test_score_list_keeps_order_with_one_failure(make_tlm, service: Service) -> None:
    service.default = echo_score
    out = make_tlm().get_trustworthiness_score(PROMPTS, ["r"] * len(PROMPTS))
    check_list(out, with_response=False)


async def test_async_lists_keep_order_with_one_failure(make_tlm, service: Service) -> None:
    service.default = aecho_score
    tlm = make_tlm(max_concurrency=3)
    check_list(await tlm.prompt_async(PROMPTS), with_response=True)
    check_list(await tlm.get_trustworthiness_score_async(PROMPTS, ["r"] * len(PROMPTS)), with_response=False)


async def test_async_list_respects_max_concurrency(make_tlm, service: Service) -> None:
    running, peak = 0, 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return ok(SCORE_REPLY)

    service.default = slow
    await make_tlm(max_concurrency=2).prompt_async(["q"] * 6)
    assert peak == 2


def test_single_failure_raises_but_list_does_not(make_tlm, service: Service) -> None:
    service.default = echo_score
    tlm = make_tlm()
    with pytest.raises(tlm_hooks.errors.CleanlabBadRequestError):
        tlm.prompt("bad")
    assert tlm.prompt(["bad"])[0]["error"]["type"] == "CleanlabBadRequestError"
    assert tlm.prompt([]) == []


@pytest.mark.parametrize(
    ("prompt", "response"),
    [("p", ["r"]), (["p"], "r"), (["p", "q"], ["r"]), (b"p", "r"), (["p", 3], ["r", "s"])],
)
def test_mismatched_score_inputs_are_rejected(make_tlm, service: Service, prompt, response) -> None:
    with pytest.raises(InvalidOptionError):
        make_tlm().get_trustworthiness_score(prompt, response)
    assert service.requests == []


def test_score_batch_and_ascore_batch_keep_order(make_tlm, service: Service) -> None:
    service.default = echo_score
    tlm = make_tlm()
    requests = [ScoreRequest(response="r", prompt=p) for p in PROMPTS]
    results = tlm.score_batch(requests)
    assert [r.trustworthiness_score for r in results] == [None if p == "bad" else int(p) / 10 for p in PROMPTS]
    assert results[2].error_type == "CleanlabBadRequestError"
    service.default = echo_score_now
    aresults = asyncio.run(tlm.ascore_batch(requests))
    assert [r.trustworthiness_score for r in aresults] == [r.trustworthiness_score for r in results]


def test_is_a_scorer(make_tlm) -> None:
    tlm = make_tlm(max_concurrency=5)
    assert isinstance(tlm, Scorer) and isinstance(tlm, tlm_hooks.BaseScorer)
    assert tlm.max_concurrency == 5


async def test_sync_calls_work_inside_a_running_loop(make_tlm, service: Service) -> None:
    asyncio.get_running_loop()  # a loop is running here
    service.push(ok(PROMPT_REPLY), ok(SCORE_REPLY))
    tlm = make_tlm()
    assert tlm.prompt("q")["response"] == PROMPT_REPLY["response"]
    assert tlm.score(ScoreRequest(response="r", prompt="p")).trustworthiness_score == SCORE_REPLY["confidence_score"]
    assert threading.current_thread() is threading.main_thread()


async def test_sync_and_async_paths_use_their_own_clients(service: Service) -> None:
    sync_seen, async_seen = Service(), Service()
    client, aclient = sync_seen.client(), async_seen.async_client()
    async with CleanlabTLM(API_KEY, http_client=client, async_http_client=aclient) as tlm:
        tlm.prompt("q")
        await tlm.prompt_async("q")
    assert len(sync_seen.requests) == 1 and len(async_seen.requests) == 1
    client.close()
    await aclient.aclose()


def test_close_closes_owned_clients_only() -> None:
    tlm = CleanlabTLM(API_KEY)
    client, aclient = tlm._sync_client(), tlm._async_client_for_use()
    tlm.close()
    assert client.is_closed and aclient.is_closed
    assert not tlm._sync_client().is_closed  # a later call opens a new one
    tlm.close()

    given, agiven = httpx.Client(), httpx.AsyncClient()
    with CleanlabTLM(API_KEY, http_client=given, async_http_client=agiven) as tlm2:
        assert tlm2._sync_client() is given
    assert not given.is_closed and not agiven.is_closed
    given.close()
    asyncio.run(agiven.aclose())


async def test_aclose_closes_owned_clients() -> None:
    async with CleanlabTLM(API_KEY) as tlm:
        client, aclient = tlm._sync_client(), tlm._async_client_for_use()
    assert client.is_closed and aclient.is_closed


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_plugs_in_as_the_scorer_of_a_patched_openai_client(fake, service: Service, is_async: bool) -> None:
    service.default = ok({"confidence_score": 0.4242, "log": {"explanation": "mocked"}, "deberta_success": True})
    http_client, async_http_client = service.client(), service.async_client()
    tlm = CleanlabTLM(API_KEY, http_client=http_client, async_http_client=async_http_client)
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    client = cls(base_url=fake.url, api_key="openai-test-key", max_retries=0)
    messages = [{"role": "user", "content": "What is 2+2?"}]
    try:
        tlm_hooks.patch(client, scorer=tlm)
        if is_async:
            response = await client.chat.completions.create(model="fake-model", messages=messages)
        else:
            response = client.chat.completions.create(model="fake-model", messages=messages)
    finally:
        await tlm.aclose()
        await client.close() if is_async else client.close()
        http_client.close()
        await async_http_client.aclose()
    assert response.tlm_metadata["trustworthiness_score"] == 0.4242
    assert response.tlm_metadata["log"]["explanation"] == "mocked"
    assert len(service.requests) == 1
    body = service.body()
    assert str(service.requests[0].url) == "https://api.cleanlab.ai/api/v0/trustworthy_llm/get_confidence_score"
    assert body["prompt"] == "user: What is 2+2?" and body["response"] == "The answer is 4."


def test_owned_async_client_is_per_event_loop() -> None:
    tlm = CleanlabTLM(API_KEY)

    async def current() -> httpx.AsyncClient:
        first = tlm._async_client_for_use()
        assert tlm._async_client_for_use() is first  # same loop, same client
        return first

    one, two = asyncio.run(current()), asyncio.run(current())
    assert one is not two
    tlm.close()
    assert two.is_closed


def test_importing_the_backend_does_not_import_httpx() -> None:
    code = "import sys, tlm_hooks, tlm_hooks.backends; tlm_hooks.CleanlabTLM('k'); print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
