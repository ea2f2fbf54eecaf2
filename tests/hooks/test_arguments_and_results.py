"""The caller's arguments are never mutated; route options deep-merge under the caller's; the
returned objects pickle and deep-copy with their tlm_metadata."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pydantic
import pytest
from fake_openai import Reply
from hookutil import drain, prob, resolve, score_of
from openai.types.chat import ChatCompletion

import tlm_hooks

# pydantic 2.6+ compares models by their fields; older 2.x compares the whole instance __dict__
FIELDS_ONLY_EQ = tuple(int(part) for part in pydantic.VERSION.split(".")[:2]) >= (2, 6)


def _arguments() -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
        ],
        "extra_body": {"options": {"log": ["explanation"], "max_tokens": 7}, "user_tag": {"a": [1, 2]}},
        "extra_headers": {"X-Custom": "yes"},
    }


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("mode", ["score", "route"])
async def test_caller_arguments_are_not_mutated(
    fake: Any, make_client: Any, is_async: bool, mode: str, stream: bool
) -> None:
    client = make_client(is_async)
    if mode == "route":
        tlm_hooks.route(
            client,
            quality_preset="high",
            options={"model": "route-model", "max_tokens": 100, "log": ["per_component_score"]},
        )
        fake.push(Reply(tlm_score=0.8))
    else:
        tlm_hooks.patch(client)
    arguments = _arguments()
    before = copy.deepcopy(arguments)
    nested_options = arguments["extra_body"]["options"]
    result = await resolve(client.chat.completions.create(model="m", stream=stream, **arguments))
    if stream:
        await drain(result, is_async=is_async)
    assert arguments == before
    assert arguments["extra_body"]["options"] is nested_options and nested_options == before["extra_body"]["options"]
    seen = fake.requests[0]
    assert seen.headers["x-custom"] == "yes"
    assert seen.body["messages"] == before["messages"]
    assert seen.body["user_tag"] == {"a": [1, 2]}
    if mode == "route":
        assert seen.body["quality_preset"] == "high"
        # deep merge: both sides' keys arrive; on a conflict the caller's value wins
        assert seen.body["options"] == {"model": "route-model", "max_tokens": 7, "log": ["explanation"]}
        assert "logprobs" not in seen.body
    else:
        assert seen.body["options"] == before["extra_body"]["options"]
        assert seen.body["logprobs"] is True


async def test_route_options_without_caller_extra_body(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.route(client, quality_preset="low", task="classification", options={"log": ["explanation"]})
    fake.push(Reply(tlm_score=0.42))
    result = await resolve(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]))
    body = fake.requests[0].body
    assert body["quality_preset"] == "low" and body["task"] == "classification"
    assert body["options"] == {"log": ["explanation"]}
    assert result.tlm_metadata["trustworthiness_score"] == 0.42
    assert result.tlm_metadata["log"]["explanation"] == "scripted explanation"


def test_route_does_not_share_state_between_calls(fake: Any, make_client: Any) -> None:
    """The merged body of one call must not leak into the next (no shared nested dicts)."""
    client = make_client()
    tlm_hooks.route(client, options={"log": ["explanation"]})
    client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "a"}], extra_body={"options": {"model": "x"}}
    )
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "b"}])
    assert fake.requests[0].body["options"] == {"log": ["explanation"], "model": "x"}
    assert fake.requests[1].body["options"] == {"log": ["explanation"]}


@pytest.mark.parametrize("mode", ["score", "route"])
async def test_result_pickles_and_deepcopies_with_metadata(
    fake: Any, make_client: Any, is_async: bool, mode: str
) -> None:
    client = make_client(is_async)
    if mode == "score":
        tlm_hooks.patch(client)
        fake.push(Reply(logprob=-0.25))
        expected = prob(-0.25)
    else:
        tlm_hooks.route(client)
        fake.push(Reply(tlm_score=0.61))
        expected = 0.61
    result = await resolve(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]))
    assert score_of(result) == pytest.approx(expected)
    for clone in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result), copy.copy(result)):
        assert type(clone) is ChatCompletion
        assert clone is not result
        assert clone.tlm_metadata == result.tlm_metadata
        assert score_of(clone) == pytest.approx(expected)
        assert clone.choices[0].message.content == result.choices[0].message.content
    deep = copy.deepcopy(result)
    deep.tlm_metadata["trustworthiness_score"] = 0.0
    assert score_of(result) == pytest.approx(expected)  # a deep copy does not share the dict


async def test_stream_response_pickles_with_metadata(fake: Any, make_client: Any) -> None:
    client = make_client()
    tlm_hooks.patch(client)
    fake.push(Reply(logprob=-0.3))
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    list(stream)
    whole = pickle.loads(pickle.dumps(stream.tlm_response))
    assert score_of(whole) == pytest.approx(prob(-0.3))


async def test_scored_result_dumps_and_compares_like_the_sdks_own(fake: Any, make_client: Any, is_async: bool) -> None:
    """``tlm_metadata`` is an attribute, not part of the model: ``model_dump``, ``to_json``,
    ``to_dict``, ``repr`` and ``==`` are exactly those of the unhooked response."""
    messages = [{"role": "user", "content": "hi"}]
    plain = await resolve(make_client(is_async).chat.completions.create(model="m", messages=messages))
    client = tlm_hooks.patch(make_client(is_async), scorer=lambda request: 0.7)
    scored = await resolve(client.chat.completions.create(model="m", messages=messages))
    assert scored.tlm_metadata == {"trustworthiness_score": 0.7}
    assert not hasattr(plain, "tlm_metadata")
    assert scored.model_dump() == plain.model_dump()
    assert "tlm_metadata" not in scored.model_dump_json()
    assert scored.to_json() == plain.to_json()
    assert scored.to_dict() == plain.to_dict()
    assert repr(scored) == repr(plain)
    assert (scored == plain and plain == scored) is FIELDS_ONLY_EQ  # documented: pydantic >= 2.6
    assert scored.model_extra == plain.model_extra
    for clone in (pickle.loads(pickle.dumps(scored)), copy.deepcopy(scored), scored.model_copy(deep=True)):
        assert clone.tlm_metadata == {"trustworthiness_score": 0.7}
        assert (clone == plain) is FIELDS_ONLY_EQ
        assert clone.model_dump() == plain.model_dump()


async def test_streamed_answer_keeps_metadata_out_of_its_dump(fake: Any, make_client: Any, is_async: bool) -> None:
    client = tlm_hooks.patch(make_client(is_async), scorer=lambda request: 0.7)
    stream = await resolve(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
    await drain(stream, is_async=is_async)
    whole = stream.tlm_response
    assert whole.tlm_metadata == {"trustworthiness_score": 0.7}
    assert "tlm_metadata" not in whole.model_dump() and "tlm_metadata" not in repr(whole)
    assert pickle.loads(pickle.dumps(whole)).tlm_metadata == whole.tlm_metadata


async def test_backend_metadata_stays_in_the_response_as_received(fake: Any, make_client: Any, is_async: bool) -> None:
    """Routed to a TLM backend, ``tlm_metadata`` is part of what the server sent: the SDK keeps it
    as an extra field, and the hook leaves it there (so it is in ``model_dump`` as without the hook)."""
    fake.push(Reply(tlm_score=0.61), Reply(tlm_score=0.61))
    messages = [{"role": "user", "content": "hi"}]
    plain = await resolve(make_client(is_async).chat.completions.create(model="m", messages=messages))
    client = tlm_hooks.route(make_client(is_async))
    routed = await resolve(client.chat.completions.create(model="m", messages=messages))
    assert routed.tlm_metadata["trustworthiness_score"] == pytest.approx(0.61)
    assert routed.model_dump()["tlm_metadata"] == routed.tlm_metadata
    assert plain.model_dump()["tlm_metadata"]["trustworthiness_score"] == pytest.approx(0.61)


async def test_assigning_tlm_metadata_reads_back_what_was_assigned(fake: Any, make_client: Any) -> None:
    """Code that sets ``response.tlm_metadata`` itself (the seeds' Workflow 2 decorator) reads back
    its own value: on a scored response it replaces the hook's score (still out of the dump); on
    an unscored one it is an extra field, as pydantic makes it without tlm-hooks."""
    messages = [{"role": "user", "content": "hi"}]
    scored = tlm_hooks.patch(make_client(), scorer=lambda request: 0.7).chat.completions.create(model="m", messages=messages)
    scored.tlm_metadata = {"trustworthiness_score": 0.2}
    assert scored.tlm_metadata == {"trustworthiness_score": 0.2}
    assert "tlm_metadata" not in scored.model_dump()
    assert pickle.loads(pickle.dumps(scored)).tlm_metadata == {"trustworthiness_score": 0.2}
    plain = make_client().chat.completions.create(model="m", messages=messages)
    plain.tlm_metadata = {"trustworthiness_score": 0.4}
    assert plain.tlm_metadata == {"trustworthiness_score": 0.4}
    assert plain.model_dump()["tlm_metadata"] == {"trustworthiness_score": 0.4}
    del plain.tlm_metadata
    assert not hasattr(plain, "tlm_metadata")
