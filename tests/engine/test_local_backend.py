"""`LocalBackend` asks a model that decodes several choices at once for them in one call, and any
other model one call per answer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tlm_hooks.llm import LocalBackend
from tlm_hooks.llm.usage import metered

QUESTION = [{"role": "user", "content": "What is 2+2?"}]


class ChoicesModel:
    """Answers ``n`` numbered choices per call, up to ``max_choices``; records each call."""

    name = "choices-model"

    def __init__(self, max_choices: int | None) -> None:
        if max_choices is not None:
            self.max_choices = max_choices
        self.calls: list[dict[str, Any]] = []

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        self.calls.append(kwargs)
        n = kwargs.get("n", 1)
        if n > getattr(self, "max_choices", 1):
            raise ValueError(f"invalid n={n}")
        first = sum(c.get("n", 1) for c in self.calls[:-1])
        return {
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": f"answer {first + i}"},
                    "finish_reason": "stop",
                }
                for i in range(n)
            ],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2 * n, "total_tokens": 7 + 2 * n},
        }


async def test_n_answers_come_from_one_call_when_the_model_decodes_choices_together() -> None:
    model = ChoicesModel(max_choices=8)
    backend = LocalBackend(model)  # type: ignore[arg-type]
    with metered() as usage:
        generations = await backend.acomplete(QUESTION, n=4, temperature=0.7, seed=3)
    assert [g.text for g in generations] == [f"answer {i}" for i in range(4)]
    assert model.calls == [{"max_tokens": 256, "temperature": 0.7, "n": 4, "seed": 3}]
    assert usage.calls == 1 and backend.n_honoured is True


async def test_more_answers_than_one_call_takes_are_split_with_distinct_seeds() -> None:
    model = ChoicesModel(max_choices=3)
    generations = await LocalBackend(model).acomplete(QUESTION, n=7, seed=10)  # type: ignore[arg-type]
    assert [g.text for g in generations] == [f"answer {i}" for i in range(7)]
    assert [c.get("n", 1) for c in model.calls] == [3, 3, 1]
    assert [c["seed"] for c in model.calls] == [10, 11, 12]


@pytest.mark.parametrize("max_choices", [None, 1])
async def test_a_model_of_one_choice_is_asked_once_per_answer(max_choices: int | None) -> None:
    model = ChoicesModel(max_choices=max_choices)
    backend = LocalBackend(model)  # type: ignore[arg-type]
    generations = await backend.acomplete(QUESTION, n=3, seed=20)
    assert len(generations) == 3 and len({g.text for g in generations}) == 3
    assert all("n" not in c for c in model.calls)
    assert [c["seed"] for c in model.calls] == [20, 21, 22]
    assert backend.n_honoured is False


async def test_one_answer_is_one_plain_call() -> None:
    model = ChoicesModel(max_choices=8)
    generations = await LocalBackend(model).acomplete(QUESTION, logprobs=True, top_logprobs=3)  # type: ignore[arg-type]
    assert len(generations) == 1
    assert model.calls == [{"max_tokens": 256, "temperature": 0.0, "logprobs": True, "top_logprobs": 3}]
