"""What patching litellm does beyond one call: which entry points a patch covers, one score per
call however litellm nests its calls, originals restored, the metadata's life on `ModelResponse`,
the logprobs refusal rule, fallbacks, early-closed streams, and the hook failing open."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import litellm
import openai
import pytest
from fake_openai import Reply
from litellm.types.utils import ModelResponse, ModelResponseStream
from litutil import MESSAGES, call, drain, prob, text_of_chunks

import tlm_hooks
from tlm_hooks import TrustPolicy
from tlm_hooks.fallbacks import AppendWarning
from tlm_hooks.integrations.litellm.patching import FAMILY
from tlm_hooks.types import ScoreRequest


class Recorder:
    """A scorer function that records each request and answers a fixed score."""

    def __init__(self, score: float = 0.9) -> None:
        self.score = score
        self.requests: list[ScoreRequest] = []

    def __call__(self, request: ScoreRequest) -> float:
        self.requests.append(request)
        return self.score


def _unhooked(response: Any) -> bool:
    return not hasattr(response, "tlm_metadata") and "tlm_metadata" not in response._hidden_params


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_router_inside_a_patched_litellm_is_scored_once(
    fake: Any, provider: Any, router: Any, is_async: bool, stream: bool
) -> None:
    """The Router calls litellm.acompletion, which calls an openai client: with all three hooked
    (patch(litellm) covers Routers; patch_all adds openai), the call is still scored once."""
    recorder = Recorder()
    tlm_hooks.patch_all(scorer=recorder, sdks=("openai",))
    tlm_hooks.patch(litellm, scorer=recorder)
    fake.push(Reply(text="Four."))
    result = await call("router", is_async, provider, router, stream=stream)
    if stream:
        await drain(result, is_async=is_async)
    assert len(recorder.requests) == 1
    request = recorder.requests[0]
    assert request.response == "Four."
    assert list(request.messages or ()) == MESSAGES
    assert request.model == "grp"  # what the app asked the Router for
    assert result.tlm_metadata["trustworthiness_score"] == pytest.approx(0.9)


async def test_patch_all_covers_litellm_and_scores_once(fake: Any, provider: Any, router: Any) -> None:
    recorder = Recorder(0.8)
    tlm_hooks.patch_all(scorer=recorder)  # openai and litellm, both installed here
    assert tlm_hooks.is_patched(litellm) and tlm_hooks.is_patched(router)
    fake.push(Reply(text="Four."))
    response = litellm.completion(**provider, messages=MESSAGES)
    assert len(recorder.requests) == 1
    assert response.tlm_metadata["trustworthiness_score"] == pytest.approx(0.8)
    assert recorder.requests[0].model == "openai/m"


def test_patch_router_hooks_only_that_router(fake: Any, provider: Any, router: Any) -> None:
    other = litellm.Router(model_list=[{"model_name": "grp", "litellm_params": dict(provider)}], num_retries=0)
    recorder = Recorder()
    tlm_hooks.patch(router, scorer=recorder)
    assert tlm_hooks.is_patched(router)
    assert not tlm_hooks.is_patched(other) and not tlm_hooks.is_patched(litellm)
    assert _unhooked(other.completion(model="grp", messages=MESSAGES))
    assert _unhooked(litellm.completion(**provider, messages=MESSAGES))
    assert not recorder.requests
    assert router.completion(model="grp", messages=MESSAGES).tlm_metadata["trustworthiness_score"] == 0.9
    assert len(recorder.requests) == 1
    assert tlm_hooks.unpatch(router) is True
    assert tlm_hooks.unpatch(router) is False
    assert _unhooked(router.completion(model="grp", messages=MESSAGES))


def test_a_routers_own_config_wins_over_the_modules(fake: Any, router: Any) -> None:
    tlm_hooks.patch(litellm, scorer=Recorder(0.9))
    tlm_hooks.route(router, quality_preset="low")
    fake.push(Reply(text="Four.", tlm_score=0.21))
    response = router.completion(model="grp", messages=MESSAGES)
    assert response.tlm_metadata["trustworthiness_score"] == pytest.approx(0.21)
    assert fake.requests[-1].body["quality_preset"] == "low"


def test_import_before_patching_keeps_the_original(fake: Any, provider: Any) -> None:
    """``from litellm import completion`` binds the function as it was then: not hooked."""
    from litellm import completion as imported_before

    tlm_hooks.patch(litellm, scorer=Recorder())
    assert _unhooked(imported_before(**provider, messages=MESSAGES))
    from litellm import completion as imported_after

    assert imported_after(**provider, messages=MESSAGES).tlm_metadata["trustworthiness_score"] == 0.9


def test_unpatch_puts_back_the_exact_originals(router: Any) -> None:
    before = (litellm.completion, litellm.acompletion, litellm.main.completion, litellm.main.acompletion)
    router_before = (litellm.Router.completion, litellm.Router.acompletion)
    tlm_hooks.patch(litellm)
    tlm_hooks.route(router)
    assert litellm.completion is not before[0] and litellm.main.acompletion is not before[3]
    assert len(FAMILY.wrapped()) == 6
    assert tlm_hooks.unpatch(litellm) is True
    assert FAMILY.wrapped()  # the router still needs the wrappers
    tlm_hooks.unpatch(router)
    assert FAMILY.wrapped() == []
    assert (litellm.completion, litellm.acompletion, litellm.main.completion, litellm.main.acompletion) == before
    assert (litellm.Router.completion, litellm.Router.acompletion) == router_before
    tlm_hooks.patch_all(sdks=("litellm",))
    tlm_hooks.unpatch_all()
    assert litellm.completion is before[0] and litellm.Router.acompletion is router_before[1]
    assert not tlm_hooks.is_patched(litellm)


def test_metadata_stays_out_of_the_dump_and_survives_copies(fake: Any, provider: Any) -> None:
    tlm_hooks.patch(litellm)
    fake.push(Reply(text="Four.", logprob=-0.2))
    response = litellm.completion(**provider, messages=MESSAGES)
    expected = prob(-0.2)
    assert response.tlm_metadata["trustworthiness_score"] == pytest.approx(expected)
    assert "tlm_metadata" not in response.model_dump()
    assert "tlm_metadata" not in response.model_dump_json()
    for clone in (pickle.loads(pickle.dumps(response)), copy.deepcopy(response), copy.copy(response)):
        assert clone.tlm_metadata["trustworthiness_score"] == pytest.approx(expected)


def test_backend_metadata_stays_where_litellm_put_it(fake: Any, provider: Any) -> None:
    """In route mode the backend's tlm_metadata is an extra field of the response as received."""
    tlm_hooks.route(litellm)
    fake.push(Reply(text="Four.", tlm_score=0.44))
    response = litellm.completion(**provider, messages=MESSAGES, extra_body={"quality_preset": "best"})
    assert response.model_dump()["tlm_metadata"] == {"trustworthiness_score": 0.44}
    assert response.tlm_metadata["trustworthiness_score"] == pytest.approx(0.44)
    assert fake.requests[-1].body["quality_preset"] == "best"  # the caller's own extra_body wins


def test_a_model_refusing_logprobs_is_called_again_and_not_asked_twice(fake: Any, provider: Any) -> None:
    tlm_hooks.patch(litellm)
    fake.push(Reply(status=400, error_param="logprobs"), Reply(text="Four."), Reply(text="Four."))
    response = litellm.completion(**provider, messages=MESSAGES)
    assert response.choices[0].message.content == "Four."
    assert [("logprobs" in r.body) for r in fake.requests] == [True, False]
    assert response.tlm_metadata["trustworthiness_score"] is None
    assert response.tlm_metadata["error"]["type"] == "MissingLogprobs"  # said, not a made-up score
    litellm.completion(**provider, messages=MESSAGES)
    assert "logprobs" not in fake.requests[-1].body


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_append_warning_on_a_low_score(fake: Any, provider: Any, router: Any, is_async: bool) -> None:
    policy = TrustPolicy(threshold=0.5, on_low_trust=[AppendWarning(" [low trust: {score:.2f}]")])
    tlm_hooks.patch(litellm, scorer=Recorder(0.1), policy=policy)
    fake.push(Reply(text="Four."))
    response = await call("litellm", is_async, provider, router)
    assert type(response) is ModelResponse
    assert response.choices[0].message.content == "Four. [low trust: 0.10]"

    fake.push(Reply(text="Four."))
    stream = await call("litellm", is_async, provider, router, stream=True)
    chunks = await drain(stream, is_async=is_async)
    assert type(chunks[-1]) is ModelResponseStream  # the warning arrives as one more chunk
    assert text_of_chunks(chunks) == "Four. [low trust: 0.10]"


def test_a_stream_closed_early_is_scored_as_partial(fake: Any, provider: Any) -> None:
    recorder = Recorder()
    tlm_hooks.patch(litellm, scorer=recorder)
    fake.push(Reply(text="One two three four."))
    with litellm.completion(**provider, messages=MESSAGES, stream=True) as stream:
        first = next(iter(stream))
    assert type(first) is ModelResponseStream
    assert len(recorder.requests) == 1
    assert "four" not in recorder.requests[0].response
    assert stream.tlm_metadata["trustworthiness_score"] == pytest.approx(0.9)


def test_a_failing_scorer_never_breaks_the_call(fake: Any, provider: Any) -> None:
    def broken(request: ScoreRequest) -> float:
        raise RuntimeError("scorer down")

    tlm_hooks.patch(litellm, scorer=broken)
    fake.push(Reply(text="Four."))
    response = litellm.completion(**provider, messages=MESSAGES)
    assert response.choices[0].message.content == "Four."
    assert response.tlm_metadata["trustworthiness_score"] is None
    assert "scorer down" in str(response.tlm_metadata)


def test_bad_arguments_are_refused_before_any_call(fake: Any) -> None:
    with pytest.raises(tlm_hooks.PatchError, match="scorer must be"):
        tlm_hooks.patch(litellm, scorer=42)  # type: ignore[arg-type]
    assert not tlm_hooks.is_patched(litellm)
    assert not fake.requests


def test_sdk_errors_are_litellms_own(fake: Any, provider: Any) -> None:
    tlm_hooks.patch(litellm)
    fake.push(Reply(status=429, headers={"retry-after": "0"}))
    with pytest.raises(litellm.RateLimitError) as info:
        litellm.completion(**provider, messages=MESSAGES, max_retries=0)
    assert isinstance(info.value, openai.RateLimitError)
