"""tlm_hooks.patch on LlamaIndex LLMs: instances, classes and subclasses, all eight methods."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, Generator
from typing import Any

import pytest
from li_util import METHODS, CountingScorer, ScriptedLLM, metadata
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse
from llama_index.core.llms import LLM, CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback

import tlm_hooks
from tlm_hooks import TrustPolicy, fallbacks
from tlm_hooks.errors import PatchError, TrustScoringError, UntrustworthyResponseError
from tlm_hooks.integrations.llamaindex import patching

QUESTION = [ChatMessage(role="user", content="What is the capital of France?")]


async def call(llm: Any, method: str, **kwargs: Any) -> tuple[Any, list[Any]]:
    """Call ``method`` the way an app would; returns (the response or stream, the chunks)."""
    arg: Any = list(QUESTION) if "chat" in method else "What is the capital of France?"
    out = getattr(llm, method)(arg, **kwargs)
    if inspect.isawaitable(out):
        out = await out
    if method.startswith("astream"):
        return out, [chunk async for chunk in out]
    if method.startswith("stream"):
        return out, list(out)
    return out, []


def final(method: str, out: Any, chunks: list[Any]) -> Any:
    """The scored whole answer: the response itself, or the stream's assembled one."""
    return out.tlm_response if "stream" in method else out


@pytest.mark.parametrize("method", METHODS)
async def test_each_method_is_scored_once_with_metadata_in_additional_kwargs(llm: ScriptedLLM, method: str) -> None:
    scorer = CountingScorer(0.8)
    tlm_hooks.patch(llm, scorer=scorer)
    out, chunks = await call(llm, method)
    assert scorer.calls == 1
    request = scorer.requests[0]
    assert request.response == "The answer is Paris."
    if "chat" in method:
        assert request.messages == ({"role": "user", "content": "What is the capital of France?"},)
    else:
        assert request.prompt == "What is the capital of France?"
    assert request.model == "scripted"
    response = final(method, out, chunks)
    expected = ChatResponse if "chat" in method else CompletionResponse
    assert isinstance(response, expected)
    assert metadata(response) == {"trustworthiness_score": 0.8}
    if "stream" in method:
        assert isinstance(out, AsyncGenerator if method.startswith("a") else Generator)  # still a generator to the app
        assert [c.delta for c in chunks] == ["The", " answer", " is", " Paris."]
        assert out.tlm_metadata == {"trustworthiness_score": 0.8}
        assert all("tlm_metadata" not in c.additional_kwargs for c in chunks)  # chunks pass through untouched


async def test_unpatched_llm_returns_the_same_as_before(llm: ScriptedLLM) -> None:
    other = ScriptedLLM()
    tlm_hooks.patch(other, scorer=CountingScorer())
    response = llm.chat(list(QUESTION))
    assert "tlm_metadata" not in response.additional_kwargs
    assert not tlm_hooks.is_patched(llm) and tlm_hooks.is_patched(other)


def test_patching_a_class_covers_existing_future_instances_and_subclasses() -> None:
    scorer = CountingScorer(0.6)

    class Echo(ScriptedLLM):
        pass

    before = Echo()
    tlm_hooks.patch(ScriptedLLM, scorer=scorer)

    class DefinedLater(ScriptedLLM):  # overrides complete without calling super()
        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            return CompletionResponse(text="later: " + prompt)

    assert metadata(before.complete("q")) == {"trustworthiness_score": 0.6}
    assert metadata(Echo().chat(list(QUESTION))) == {"trustworthiness_score": 0.6}
    later = DefinedLater().complete("q")
    assert later.text == "later: q" and metadata(later) == {"trustworthiness_score": 0.6}
    assert scorer.calls == 3
    assert tlm_hooks.is_patched(DefinedLater) and tlm_hooks.is_patched(DefinedLater())

    class Unrelated(CustomLLM):  # a sibling class: not hooked
        @property
        def metadata(self) -> Any:
            return ScriptedLLM().metadata

        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            return CompletionResponse(text="x")

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            raise NotImplementedError

    assert "tlm_metadata" not in Unrelated().chat(list(QUESTION)).additional_kwargs
    assert scorer.calls == 3 and not tlm_hooks.is_patched(Unrelated)


def test_patching_the_llm_base_class_hooks_every_llm() -> None:
    scorer = CountingScorer()
    tlm_hooks.patch(LLM, scorer=scorer)

    class Anything(ScriptedLLM):
        pass

    assert metadata(Anything().complete("q")) is not None and metadata(ScriptedLLM().chat(list(QUESTION))) is not None
    assert scorer.calls == 2


def test_each_definition_is_wrapped_once_however_often_and_wherever_patched(llm: ScriptedLLM) -> None:
    originals = {
        (owner, name): vars(owner)[name]
        for owner in (CustomLLM, ScriptedLLM)
        for name in METHODS
        if name in vars(owner)
    }
    tlm_hooks.patch(llm, scorer=CountingScorer())
    tlm_hooks.patch(llm, scorer=CountingScorer())
    tlm_hooks.patch(ScriptedLLM, scorer=CountingScorer())
    tlm_hooks.patch(CustomLLM, scorer=CountingScorer())
    tlm_hooks.patch(LLM, scorer=CountingScorer())
    wrapped = patching.wrapped_methods()
    for (owner, name), original in originals.items():
        assert wrapped[(owner, name)] is original
        assert vars(owner)[name].__wrapped__ is original  # one layer of ours, not several


def test_super_calls_and_chat_via_complete_are_scored_once() -> None:
    scorer = CountingScorer()

    class Child(ScriptedLLM):
        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            return super().complete(prompt.upper(), formatted=formatted, **kwargs)

    tlm_hooks.patch(ScriptedLLM, scorer=scorer)
    child = Child()
    response = child.complete("q")
    assert child.calls[0][:2] == ("complete", "Q")  # the override ran, then the parent's method
    assert scorer.calls == 1 and metadata(response) is not None
    child.chat(list(QUESTION))  # CustomLLM.chat -> self.complete -> super().complete
    assert scorer.calls == 2


async def test_async_and_stream_forms_that_call_sync_ones_are_scored_once(llm: ScriptedLLM) -> None:
    scorer = CountingScorer()
    tlm_hooks.patch(llm, scorer=scorer)
    stream = await llm.astream_chat(list(QUESTION))  # CustomLLM: iterates self.stream_chat -> stream_complete
    chunks = [c async for c in stream]
    assert chunks[-1].message.content == "The answer is Paris."
    assert scorer.calls == 1


@pytest.mark.parametrize("method", ["stream_chat", "astream_complete"])
async def test_append_warning_arrives_as_one_more_chunk(llm: ScriptedLLM, method: str) -> None:
    policy = TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.AppendWarning(" [low {score:.1f}]")])
    tlm_hooks.patch(llm, scorer=CountingScorer(0.2), policy=policy)
    out, chunks = await call(llm, method)
    assert chunks[-1].delta == " [low 0.2]"
    text = chunks[-1].message.content if "chat" in method else chunks[-1].text
    assert text == "The answer is Paris. [low 0.2]"  # the cumulative text grows too
    assert out.tlm_metadata["fallbacks"] == ["append_warning"]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_replace_response_returns_the_same_type_with_new_text(llm: ScriptedLLM, is_async: bool) -> None:
    policy = TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.ReplaceResponse("Not sure.")])
    tlm_hooks.patch(llm, scorer=CountingScorer(0.1), policy=policy)
    response = await llm.achat(list(QUESTION)) if is_async else llm.chat(list(QUESTION))
    assert isinstance(response, ChatResponse)
    assert response.message.content == "Not sure."
    assert metadata(response) == {"trustworthiness_score": 0.1, "fallbacks": ["replace_response"]}


async def test_replacement_on_a_stream_is_kept_beside_it(llm: ScriptedLLM) -> None:
    policy = TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.ReplaceResponse("Not sure.")])
    tlm_hooks.patch(llm, scorer=CountingScorer(0.1), policy=policy)
    stream = llm.stream_complete("q")
    assert "".join(c.delta for c in stream) == "The answer is Paris."  # already sent: not un-sent
    assert stream.tlm_fallback_response.text == "Not sure."


@pytest.mark.parametrize("method", ["chat", "stream_chat", "acomplete"])
async def test_regenerate_asks_the_llm_again_and_keeps_the_better_answer(method: str) -> None:
    llm = ScriptedLLM().say("First guess.", "Second, better answer.")
    scorer = tlm_hooks.FunctionScorer(lambda r: 0.9 if "better" in r.response else 0.2)
    tlm_hooks.patch(
        llm, scorer=scorer, policy=TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.Regenerate(attempts=2)])
    )
    out, chunks = await call(llm, method)
    if "stream" in method:  # Regenerate runs once the stream has ended
        assert out.wait_fallbacks(30)
    assert len(llm.calls) == 2  # stopped once an answer reached the threshold
    assert llm.calls[1][0] == "complete"  # the repeat is never streamed
    replacement = out.tlm_fallback_response if "stream" in method else out
    text = replacement.message.content if "chat" in method else replacement.text
    assert text == "Second, better answer."
    assert metadata(replacement) == {"trustworthiness_score": 0.9, "fallbacks": ["regenerate"]}


def test_escalate_to_another_llm(llm: ScriptedLLM) -> None:
    strong = ScriptedLLM(default="Paris, for sure.")
    tlm_hooks.patch(strong, scorer=CountingScorer(0.9))  # its own hook does not score the escalated call again
    scorer = tlm_hooks.FunctionScorer(lambda r: 0.95 if "sure" in r.response else 0.1)
    tlm_hooks.patch(
        llm, scorer=scorer, policy=TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.Escalate(client=strong)])
    )
    response = llm.complete("q")
    assert response.text == "Paris, for sure." and metadata(response)["trustworthiness_score"] == 0.95
    assert [c[0] for c in strong.calls] == ["complete"]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_raise_fallback_raises_untrustworthy(llm: ScriptedLLM, is_async: bool) -> None:
    tlm_hooks.patch(
        llm, scorer=CountingScorer(0.1), policy=TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.Raise()])
    )
    with pytest.raises(UntrustworthyResponseError) as info:
        await llm.acomplete("q") if is_async else llm.complete("q")
    assert info.value.result.trustworthiness_score == 0.1


@pytest.mark.parametrize("method", ["chat", "acomplete", "stream_complete"])
async def test_the_llms_exception_passes_through_untouched(llm: ScriptedLLM, method: str) -> None:
    scorer = CountingScorer()
    tlm_hooks.patch(llm, scorer=scorer)
    error = ConnectionError("upstream down")
    llm.fail_with(error)
    with pytest.raises(ConnectionError) as info:
        await call(llm, method)
    assert info.value is error and scorer.calls == 0


async def test_scorer_failure_is_fail_open_unless_fail_closed(llm: ScriptedLLM) -> None:
    def broken(request: Any) -> float:
        raise RuntimeError("judge unreachable")

    tlm_hooks.patch(llm, scorer=broken)
    response = llm.chat(list(QUESTION))
    assert response.message.content == "The answer is Paris."
    assert metadata(response)["error"] == {"message": "judge unreachable", "type": "RuntimeError"}
    tlm_hooks.patch(llm, scorer=broken, policy=TrustPolicy(on_error="raise"))
    with pytest.raises(TrustScoringError):
        await llm.achat(list(QUESTION))


def test_arguments_are_never_mutated(llm: ScriptedLLM) -> None:
    tlm_hooks.patch(
        llm,
        scorer=CountingScorer(0.1),
        policy=TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.Regenerate(attempts=1, temperature=1.0)]),
    )
    messages = [ChatMessage(role="user", content="Hi")]
    kwargs: dict[str, Any] = {"top_k": 3, "extra": {"a": [1]}}
    snapshot = ([m.model_dump() for m in messages], repr(kwargs))
    llm.chat(messages, **kwargs)
    assert ([m.model_dump() for m in messages], repr(kwargs)) == snapshot
    assert llm.calls[0][2] == kwargs and llm.calls[1][2] == {**kwargs, "temperature": 1.0}


def test_early_close_scores_what_was_received(llm: ScriptedLLM) -> None:
    scorer = CountingScorer()
    tlm_hooks.patch(llm, scorer=scorer)
    stream = llm.stream_complete("q")
    next(stream)
    stream.close()
    assert scorer.requests[0].response == "The"
    assert stream.tlm_metadata["trustworthiness_score"] == 0.8
    assert stream.tlm_metadata["log"]["warnings"][0].startswith("partial: the stream was closed after 1 chunk")


def test_unpatch_restores_the_originals_exactly_and_is_idempotent(llm: ScriptedLLM) -> None:
    owners = (CustomLLM, ScriptedLLM, LLM)
    before = {(o, n): vars(o).get(n) for o in owners for n in (*METHODS, "__init_subclass__")}
    tlm_hooks.patch(llm, scorer=CountingScorer())
    tlm_hooks.patch(ScriptedLLM, scorer=CountingScorer())
    assert "__init_subclass__" in vars(ScriptedLLM)
    assert tlm_hooks.unpatch(ScriptedLLM) is True and tlm_hooks.unpatch(ScriptedLLM) is False
    assert "__init_subclass__" not in vars(ScriptedLLM)
    assert tlm_hooks.is_patched(llm)  # still patched on its own
    assert tlm_hooks.unpatch(llm) is True and tlm_hooks.unpatch(llm) is False
    assert {(o, n): vars(o).get(n) for o in owners for n in (*METHODS, "__init_subclass__")} == before
    assert patching.wrapped_methods() == {}
    assert "tlm_metadata" not in llm.complete("q").additional_kwargs


def test_unpatch_all_also_unhooks_llamaindex(llm: ScriptedLLM) -> None:
    tlm_hooks.patch(llm, scorer=CountingScorer())
    tlm_hooks.patch(LLM, scorer=CountingScorer())
    tlm_hooks.unpatch_all()
    assert not tlm_hooks.is_patched(llm) and not tlm_hooks.is_patched(LLM)
    assert patching.wrapped_methods() == {} and "__init_subclass__" not in vars(LLM)


def test_an_instance_of_a_patched_class_stays_hooked_after_its_own_unpatch(llm: ScriptedLLM) -> None:
    tlm_hooks.patch(ScriptedLLM, scorer=CountingScorer(0.3))
    tlm_hooks.patch(llm, scorer=CountingScorer(0.9))
    assert metadata(llm.complete("q")) == {"trustworthiness_score": 0.9}  # its own config wins
    tlm_hooks.unpatch(llm)
    assert metadata(llm.complete("q")) == {"trustworthiness_score": 0.3}


def test_route_is_refused_for_llms_that_do_not_send_openai_requests(llm: ScriptedLLM) -> None:
    with pytest.raises(PatchError, match="OpenAI-family LLM.*ScriptedLLM.*patch"):
        tlm_hooks.route(llm)
    assert not tlm_hooks.is_patched(llm)


def test_wrapped_async_methods_still_look_like_coroutine_functions(llm: ScriptedLLM) -> None:
    tlm_hooks.patch(llm, scorer=CountingScorer())
    assert inspect.iscoroutinefunction(llm.achat) and inspect.iscoroutinefunction(llm.astream_complete)
    assert not inspect.iscoroutinefunction(llm.chat)


def test_concurrent_async_calls_each_get_their_own_score() -> None:
    llm = ScriptedLLM().say("one", "two", "three")
    scorer = tlm_hooks.FunctionScorer(lambda r: {"one": 0.1, "two": 0.2, "three": 0.3}[r.response])
    tlm_hooks.patch(llm, scorer=scorer)

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(llm.acomplete("q") for _ in range(3))))

    for response in asyncio.run(main()):
        assert metadata(response)["trustworthiness_score"] == {"one": 0.1, "two": 0.2, "three": 0.3}[response.text]


async def test_closing_an_async_stream_early_scores_what_was_received(llm: ScriptedLLM) -> None:
    scorer = CountingScorer()
    tlm_hooks.patch(llm, scorer=scorer)
    stream = await llm.astream_complete("q")
    first = await stream.__anext__()
    await stream.aclose()
    assert first.delta == "The" and scorer.requests[0].response == "The"
    assert stream.tlm_metadata["trustworthiness_score"] == 0.8
    assert stream.tlm_metadata["log"]["warnings"][0].startswith("partial: the stream was closed after 1 chunk")


def test_the_package_imports_llamaindex_only_when_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tlm_hooks, tlm_hooks.integrations.llamaindex as li\n"
        "tlm_hooks.unpatch_all(); assert not tlm_hooks.is_patched(object())\n"
        "print('llama_index' in sys.modules)\n"
        "li.TrustEventHandler\n"
        "print('llama_index' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_objects_that_are_not_llms_are_still_refused_clearly() -> None:
    with pytest.raises(PatchError, match="LlamaIndex LLM"):
        tlm_hooks.patch(object())
