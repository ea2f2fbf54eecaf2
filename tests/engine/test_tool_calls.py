"""Tool calls scored as a decision: structural comparison of calls, the tool schemas shown to the
judge, ``options.score_tool_calls``, and the fallbacks on a low-trust tool call, through a hooked
`openai` client against the loopback fake."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fake_openai import FakeOpenAI, Reply
from openai import OpenAI
from openai.types.chat import ChatCompletion

import tlm_hooks
from engine.conftest import FakeJudge
from engine.judge_server import judge_server
from tlm_hooks import TLMScorer, TrustPolicy, fallbacks
from tlm_hooks.errors import TrustScoringError, UntrustworthyResponseError
from tlm_hooks.llm import OpenAICompatibleBackend, RetryPolicy
from tlm_hooks.scorers.signals.structural import calls_agreement, calls_from_chat, calls_from_text, value_agreement
from tlm_hooks.scorers.signals.tool_calls import NOT_SCORED, SAMPLED_NATIVELY, SAMPLED_WITH, function_tools

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "description": "Local time in a city", "parameters": {"type": "object"}},
}
MESSAGES = [{"role": "user", "content": "What's the weather in Paris for the next 2 days?"}]


def chat_call(name: str, arguments: Any, call_id: str = "call_1") -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def sample(name: str, arguments: dict[str, Any]) -> str:
    return json.dumps({"name": name, "arguments": arguments})


# -- structural comparison ---------------------------------------------------------------------


def test_arguments_compare_as_json_with_key_order_ignored() -> None:
    a = calls_from_chat([chat_call("get_weather", '{"city": "Paris", "days": 2}')])
    b = calls_from_chat([chat_call("get_weather", '{"days": 2, "city": "Paris"}')])
    assert calls_agreement(a, b) == 1.0


@pytest.mark.parametrize(("left", "right", "agree"), [(1, 1.0, True), ("1", 1.0, True), ("2.50", 2.5, True),
                                                      (1, 2, False), (True, 1, False), ("Paris", "paris ", True),
                                                      ("Paris", "Lyon", False), (None, 0, False)])  # fmt: skip
def test_scalar_values_compare_numbers_as_numbers(left: Any, right: Any, agree: bool) -> None:
    assert value_agreement(left, right) == (1.0 if agree else 0.0)


def test_a_missing_argument_lowers_agreement_but_the_same_function_still_counts() -> None:
    full = calls_from_chat([chat_call("get_weather", {"city": "Paris", "days": 2})])
    missing = calls_from_chat([chat_call("get_weather", {"city": "Paris"})])
    other_tool = calls_from_chat([chat_call("get_time", {"city": "Paris", "days": 2})])
    partial = calls_agreement(full, missing)
    assert 0.5 < partial < 1.0
    assert calls_agreement(full, other_tool) == 0.0
    assert calls_agreement(full, []) == 0.0  # a sample that answered in text


def test_extra_or_missing_calls_count_against_agreement() -> None:
    one = calls_from_chat([chat_call("get_weather", {"city": "Paris"})])
    two = calls_from_chat([chat_call("get_weather", {"city": "Paris"}), chat_call("get_time", {"city": "Paris"}, "c2")])
    assert calls_agreement(one, two) == 0.5
    assert calls_agreement(two, list(reversed(two))) == 1.0  # paired by function, not by position


def test_judge_replies_with_calls_in_text_are_read_in_the_usual_shapes() -> None:
    forms = [
        'Sure! {"name": "get_weather", "arguments": {"city": "Paris"}}',
        '```json\n[{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}]\n```',
        '{"tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}',
    ]
    for text in forms:
        (call,) = calls_from_text(text)
        assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    assert calls_from_text("It is sunny in Paris.") == []


def test_unparseable_arguments_never_agree_fully() -> None:
    broken = calls_from_chat([chat_call("get_weather", "{city: Paris")])
    assert broken[0].arguments is None
    assert calls_agreement(broken, broken) == 0.5


# -- through a hooked client ---------------------------------------------------------------------


def _client(fake: FakeOpenAI) -> OpenAI:
    return OpenAI(base_url=fake.url, api_key="k", max_retries=0)


def _hook(client: OpenAI, judge: Any, policy: TrustPolicy | None = None, **options: Any) -> OpenAI:
    scorer = TLMScorer("low", options={"log": ["explanation"], **options}, judge=judge)
    return tlm_hooks.patch(client, scorer=scorer, policy=policy)


def test_agreeing_sampled_calls_score_higher_than_a_different_tool(fake: FakeOpenAI) -> None:
    right = chat_call("get_weather", {"city": "Paris", "days": 2})
    results = {}
    for label, samples in {
        "agree": [sample("get_weather", {"days": 2, "city": "Paris"})],
        "other_tool": [sample("get_time", {"city": "Paris"})],
    }.items():
        judge = FakeJudge(samples=samples, verdict="good")
        client = _hook(_client(fake), judge)
        fake.push(Reply(tool_call=right))
        completion = client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL, TIME_TOOL])
        assert isinstance(completion, ChatCompletion)
        assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"  # untouched
        results[label] = completion.tlm_metadata
        tlm_hooks.unpatch(client)
    agree, other = results["agree"], results["other_tool"]
    assert agree["log"]["per_component_score"]["consistency"] == 1.0
    assert other["log"]["per_component_score"]["consistency"] == 0.0
    assert agree["trustworthiness_score"] > other["trustworthiness_score"]
    log = agree["log"]["tool_calls"]
    assert log["scored"] is True and log["sampled_with"] == SAMPLED_WITH and log["tools_given"] == 2
    assert log["calls"] == ['get_weather({"city": "Paris", "days": 2})']


def test_the_judge_sees_the_tool_schemas_and_the_decision(fake: FakeOpenAI) -> None:
    judge = FakeJudge(samples=[sample("get_weather", {"city": "Paris", "days": 2})])
    client = _hook(_client(fake), judge)
    fake.push(Reply(tool_call=chat_call("get_weather", {"city": "Paris", "days": 2})))
    client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL, TIME_TOOL])
    reflections = [c for c in judge.calls if c.kind != "sample"]
    sampling = [c for c in judge.calls if c.kind == "sample"]
    assert reflections and sampling
    for seen in reflections:
        prompt = seen.messages[-1]["content"]
        assert "get_time: Local time in a city" in prompt and '"days"' in prompt
        assert 'call get_weather with arguments {"city": "Paris", "days": 2}' in prompt
        assert "right tool" in prompt
    system = sampling[0].messages[0]
    assert system["role"] == "system" and "get_weather" in system["content"] and '"arguments"' in system["content"]
    assert sampling[0].messages[-1] == MESSAGES[-1]


def test_tool_calls_over_http_to_an_openai_compatible_judge(fake: FakeOpenAI) -> None:
    with judge_server(answer=sample("get_weather", {"city": "paris", "days": "2"}), delay=0.0) as server:
        judge = OpenAICompatibleBackend(model="j", base_url=server.url, api_key="k", retry=RetryPolicy(max_retries=0))
        client = _hook(_client(fake), judge)
        fake.push(Reply(tool_call=chat_call("get_weather", {"city": "Paris", "days": 2})))
        completion = client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
        assert "sample" in server.kinds()
    metadata = completion.tlm_metadata
    assert metadata["log"]["per_component_score"]["consistency"] == 1.0  # "paris"/"2" agree with "Paris"/2
    assert metadata["log"]["signals"]["consistency"]["ran"] == 3


def _http_judge(server: Any) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(model="j", base_url=server.url, api_key="k", retry=RetryPolicy(max_retries=0))


@pytest.mark.parametrize(
    ("judge_call", "consistency"),
    [
        (chat_call("get_weather", {"days": 2, "city": "Paris"}, "call_j"), 1.0),  # key order and ids ignored
        (chat_call("get_time", {"city": "Paris"}, "call_j"), 0.0),
    ],
)
def test_a_judge_with_native_tools_is_offered_the_tools_and_its_real_calls_compared(
    fake: FakeOpenAI, judge_call: dict[str, Any], consistency: float
) -> None:
    earlier = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [chat_call("get_time", {"city": "Paris"}, "call_0")]},
        {"role": "tool", "tool_call_id": "call_0", "content": "14:05"},
    ]
    # the judge's text answer names the other tool: only its real call can be what is compared
    with judge_server(answer=sample("get_time", {}), tool_call=judge_call, delay=0.0) as server:
        client = _hook(_client(fake), _http_judge(server))
        fake.push(Reply(tool_call=chat_call("get_weather", {"city": "Paris", "days": 2})))
        completion = client.chat.completions.create(model="m", messages=earlier, tools=[WEATHER_TOOL, TIME_TOOL])
        sampling = [a for a in server.asked if a.kind == "sample"]
        reflections = [a for a in server.asked if a.kind != "sample"]
    assert sampling and all(a.tools == ["get_weather", "get_time"] for a in sampling)
    assert all(a.roles == ["user", "assistant", "tool"] for a in sampling)  # the conversation as it was sent
    assert reflections and all(a.tools == [] for a in reflections)  # verdicts are asked in text
    metadata = completion.tlm_metadata
    assert metadata["log"]["per_component_score"]["consistency"] == consistency
    assert metadata["log"]["tool_calls"]["sampled_with"] == SAMPLED_NATIVELY


def test_a_judge_that_answers_a_tool_offer_in_text_disagrees_with_the_call(fake: FakeOpenAI) -> None:
    with judge_server(answer="You should check a weather website.", delay=0.0) as server:
        client = _hook(_client(fake), _http_judge(server))
        fake.push(Reply(tool_call=chat_call("get_weather", {"city": "Paris", "days": 2})))
        completion = client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    assert completion.tlm_metadata["log"]["per_component_score"]["consistency"] == 0.0
    assert completion.tlm_metadata["log"]["tool_calls"]["sampled_with"] == SAMPLED_NATIVELY


def test_a_judge_server_that_refuses_tools_is_asked_for_json_text_and_it_is_remembered(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    with judge_server(answer=sample("get_weather", {"city": "Paris", "days": 2}), refuse_tools=True,
                      delay=0.0) as server:  # fmt: skip
        client = _hook(_client(fake), _http_judge(server))
        metadata, offered = [], []
        for city in ("Paris", "Rome"):  # two different requests: the second is not a cached score
            fake.push(Reply(tool_call=chat_call("get_weather", {"city": city, "days": 2})))
            question = [{"role": "user", "content": f"What's the weather in {city} for the next 2 days?"}]
            with caplog.at_level(logging.WARNING, logger="tlm_hooks"):
                completion = client.chat.completions.create(model="m", messages=question, tools=[WEATHER_TOOL])
            metadata.append(completion.tlm_metadata)
            offered.append(sum(1 for a in server.asked if a.tools))
    first, second = metadata
    assert offered[0] > 0 and offered[1] == offered[0]  # refused once, then not offered again
    assert all(a.refused == 400 for a in server.asked if a.tools)
    assert first["log"]["tool_calls"]["sampled_with"] == SAMPLED_WITH  # the score still has its samples
    assert first["log"]["per_component_score"]["consistency"] == 1.0
    assert any("refused the tools parameter" in w for w in first["log"]["warnings"])
    assert second["log"]["tool_calls"]["sampled_with"] == SAMPLED_WITH
    assert second["log"]["signals"]["consistency"]["ran"] == 3
    assert not any("refused" in w for w in second["log"].get("warnings", []))
    assert sum("refused the tools parameter" in r.message for r in caplog.records) == 1  # logged once


def test_only_function_tools_are_offered_to_the_judge_chat_shaped() -> None:
    flat = {"type": "function", "name": "get_time", "description": "Local time", "parameters": {"type": "object"},
            "strict": None}  # fmt: skip
    assert function_tools([WEATHER_TOOL, flat, {"type": "web_search"}, {"type": "function"}]) == [
        {"type": "function", "function": WEATHER_TOOL["function"]},
        {"type": "function", "function": {"name": "get_time", "description": "Local time",
                                          "parameters": {"type": "object"}}},
    ]  # fmt: skip


def test_score_tool_calls_off_passes_the_turn_unscored_with_a_reason(fake: FakeOpenAI) -> None:
    judge = FakeJudge()
    policy = TrustPolicy(threshold=0.99, on_low_trust=[fallbacks.Raise()], on_error="raise")
    client = _hook(_client(fake), judge, policy=policy, score_tool_calls=False)
    fake.push(Reply(tool_call=chat_call("get_weather", {"city": "Paris"})))
    completion = client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    metadata = completion.tlm_metadata
    assert metadata["trustworthiness_score"] is None and metadata["log"]["skipped"] == NOT_SCORED
    assert "error" not in metadata and metadata["log"]["per_component_score"]["llm_calls"] == 0
    assert judge.calls == []  # nothing was asked of the judge
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_score_tool_calls_off_with_another_scorer_is_honoured_by_the_hook(fake: FakeOpenAI) -> None:
    seen: list[Any] = []
    client = tlm_hooks.patch(
        _client(fake), scorer=lambda request: seen.append(request) or 0.9, options={"score_tool_calls": False}
    )
    fake.push(Reply(tool_call=chat_call("get_weather", {"city": "Paris"})))
    completion = client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    assert seen == [] and completion.tlm_metadata["log"]["skipped"] == NOT_SCORED
    completion = client.chat.completions.create(model="m", messages=MESSAGES)  # a text turn is scored
    assert completion.tlm_metadata["trustworthiness_score"] == 0.9


def test_score_tool_calls_must_be_a_bool() -> None:
    with pytest.raises(tlm_hooks.InvalidOptionError, match="options.score_tool_calls"):
        TLMScorer(options={"score_tool_calls": "no"})


def test_text_and_tool_calls_are_both_scored_and_the_lower_counts() -> None:
    completion = ChatCompletion.model_validate(
        {
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
                "role": "assistant", "content": "Let me check the weather.",
                "tool_calls": [chat_call("get_weather", {"city": "Paris"})]}}],
        }
    )  # fmt: skip
    # the judge answers in text (no call) and doubts only the tool call
    judge = FakeJudge(
        samples=["Let me check the weather."], verdict_for=lambda prompt: "bad" if "right tool" in prompt else "good"
    )
    scorer = TLMScorer("low", judge=judge)
    metadata = tlm_hooks.score_completion(completion, scorer=scorer, messages=MESSAGES, tools=[WEATHER_TOOL])
    parts = metadata["log"]["scored_parts"]
    assert set(parts) == {"text", "tool_calls"}
    assert metadata["trustworthiness_score"] == min(parts.values())
    assert parts["tool_calls"] < 0.2 < 0.9 < parts["text"]
    assert set(metadata["log"]["signals"]) >= {"text.consistency", "tool_calls.consistency"}
    text_prompts = [c.messages[-1]["content"] for c in judge.calls if c.kind != "sample"]
    assert any("Let me check the weather." in p and "call get_weather" not in p for p in text_prompts)


# -- fallbacks on a low-trust tool call -------------------------------------------------------------


def _low(fake: FakeOpenAI, handler: Any) -> tuple[OpenAI, FakeJudge]:
    judge = FakeJudge(samples=[sample("get_time", {"city": "Rome"})], verdict="bad")
    policy = TrustPolicy(threshold=0.9, on_low_trust=[handler])
    client = _hook(_client(fake), judge, policy=policy)
    fake.push(Reply(tool_call=chat_call("get_weather", {"city": "Paris"})))
    return client, judge


def test_append_warning_leaves_a_tool_call_intact(fake: FakeOpenAI) -> None:
    client, _ = _low(fake, fallbacks.AppendWarning())
    completion = client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    message = completion.choices[0].message
    assert message.content is None and completion.choices[0].finish_reason == "stop"
    assert message.tool_calls[0].function.arguments == '{"city": "Paris"}'
    assert completion.tlm_metadata["fallbacks"] == ["append_warning"]
    assert completion.tlm_metadata["trustworthiness_score"] < 0.9


def test_append_warning_on_text_with_tool_calls_appends_to_the_text_only() -> None:
    completion = ChatCompletion.model_validate(
        {
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
                "role": "assistant", "content": "Checking.", "tool_calls": [chat_call("get_weather", {"city": "Paris"})]}}],
        }
    )  # fmt: skip
    from tlm_hooks.adapters.openai import ADAPTER

    warned = ADAPTER.with_text(completion, "Checking. [warning]")
    assert warned.choices[0].message.content == "Checking. [warning]"
    assert warned.choices[0].message.tool_calls == completion.choices[0].message.tool_calls
    replaced = ADAPTER.with_text(completion, "A person will review this.")
    assert replaced.choices[0].message.tool_calls is None and replaced.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "Checking."  # the original is not mutated


def test_raise_on_a_low_trust_tool_call(fake: FakeOpenAI) -> None:
    client, _ = _low(fake, fallbacks.Raise())
    with pytest.raises(UntrustworthyResponseError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    assert info.value.response.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_human_review_holds_the_call_back(fake: FakeOpenAI) -> None:
    reviewed: list[Any] = []
    client, _ = _low(fake, fallbacks.HumanReview(reviewed.append, holding_text="On hold."))
    completion = client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    assert completion.choices[0].message.content == "On hold."
    assert completion.choices[0].message.tool_calls is None  # the app does not run the doubted call
    (event,) = reviewed
    assert event.response.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert event.request.tool_calls and event.request.tools[0]["function"]["name"] == "get_weather"


def test_a_user_function_sees_the_tool_calls(fake: FakeOpenAI) -> None:
    def swap_city(event: Any) -> Any:
        response = event.response.model_copy(deep=True)
        response.choices[0].message.tool_calls[0].function.arguments = '{"city": "Lyon"}'
        return response

    client, _ = _low(fake, swap_city)
    completion = client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    assert completion.choices[0].message.tool_calls[0].function.arguments == '{"city": "Lyon"}'


def test_skipped_is_not_a_scoring_failure_for_fail_closed_policies(caplog: pytest.LogCaptureFixture) -> None:
    policy = TrustPolicy(on_error="raise")
    skipped = tlm_hooks.TrustResult(None, skipped=NOT_SCORED)
    with caplog.at_level(logging.WARNING, logger="tlm_hooks"):
        policy.check_error(skipped)  # neither raises nor warns
    assert caplog.records == []
    with pytest.raises(TrustScoringError):
        policy.check_error(tlm_hooks.TrustResult.failed("boom"))
    assert tlm_hooks.TrustResult.from_dict(skipped.to_dict()) == skipped


def test_the_server_honours_score_tool_calls_whichever_scorer_it_picks() -> None:
    from starlette.testclient import TestClient

    from engine.test_per_field import _JsonModel
    from tlm_hooks.scorers import LogprobScorer
    from tlm_hooks.server import create_app

    completion = {
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
            "role": "assistant", "content": None, "tool_calls": [chat_call("get_weather", {"city": "Paris"})]}}],
    }  # fmt: skip
    client = TestClient(create_app(_JsonModel({}), scorer=LogprobScorer()))
    body = {"messages": MESSAGES, "tools": [WEATHER_TOOL], "completion": completion}
    skipped = client.post("/api/chat/score", json={**body, "options": {"score_tool_calls": False}}).json()
    assert skipped["tlm_metadata"]["trustworthiness_score"] is None
    assert skipped["tlm_metadata"]["log"]["skipped"] == NOT_SCORED and "error" not in skipped["tlm_metadata"]
    scored = client.post("/api/chat/score", json=body).json()
    assert "skipped" not in (scored["tlm_metadata"].get("log") or {})  # on by default: the scorer ran


def test_only_a_bad_request_about_tools_counts_as_refusing_them() -> None:
    from tlm_hooks.scorers.signals.tool_calls import refused_tools

    class Rejected(Exception):
        def __init__(self, status: int, message: str) -> None:
            super().__init__(message)
            self.status_code = status

    assert refused_tools(Rejected(400, '"auto" tool choice requires --enable-auto-tool-choice'))
    assert refused_tools(Rejected(422, "unsupported parameter: tools"))
    assert not refused_tools(Rejected(400, "max_tokens is too large"))  # the request's own error
    assert not refused_tools(Rejected(500, "tool server crashed"))
    assert not refused_tools(Rejected(400, "This model's maximum context length is 8192 tokens (tools included)"))
