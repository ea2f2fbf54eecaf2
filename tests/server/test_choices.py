"""``n>1`` on the server: answered when the model decodes several choices per request (it says
how many as ``max_choices``), refused with a 400 naming ``n`` otherwise, and never with a stream.
The real ``openai`` client against the server over HTTP, on scripted models."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from server_fakes import FakeModel, RecordingScorer

from tlm_hooks.server import ServerThread, create_app

openai = pytest.importorskip("openai")

KEY = "sk-choices-test-key"
QUESTION = [{"role": "user", "content": "What is 2+2?"}]


class ChoicesModel(FakeModel):
    """Answers ``n`` choices per request, up to ``max_choices``: choice i is the words plus " (i)"."""

    max_choices = 3

    def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        reply = super().chat(messages, **kwargs)
        first = reply["choices"][0]
        reply["choices"] = [
            {**first, "index": i, "message": {"role": "assistant", "content": f"{''.join(self.words)} ({i})"}}
            for i in range(kwargs.get("n", 1))
        ]
        return reply


def _serve(model: FakeModel) -> tuple[ServerThread, RecordingScorer]:
    scorer = RecordingScorer()
    return ServerThread(create_app(model, scorer=scorer, api_keys=[KEY])), scorer


@pytest.fixture(scope="module")
def choices() -> Iterator[tuple[Any, ChoicesModel, RecordingScorer]]:
    model = ChoicesModel()
    server, scorer = _serve(model)
    with server as running:
        yield openai.OpenAI(base_url=f"{running.base_url}/v1", api_key=KEY, max_retries=0), model, scorer


def test_n_choices_come_back_and_the_first_is_scored(choices: tuple[Any, ChoicesModel, RecordingScorer]) -> None:
    client, model, scorer = choices
    scorer.requests.clear()
    reply = client.chat.completions.create(
        model="m", messages=QUESTION, n=3, temperature=1.0, extra_body={"quality_preset": "base"}
    )
    assert [c.message.content for c in reply.choices] == [f"The answer is 4. ({i})" for i in range(3)]
    assert model.calls[-1]["n"] == 3
    assert [r.response for r in scorer.requests] == ["The answer is 4. (0)"]
    assert "n=3: tlm_metadata scores the first choice" in reply.tlm_metadata["log"]["warnings"]
    assert reply.tlm_metadata["trustworthiness_score"] is not None


def test_one_choice_has_no_note(choices: tuple[Any, ChoicesModel, RecordingScorer]) -> None:
    client, model, _ = choices
    reply = client.chat.completions.create(model="m", messages=QUESTION, n=1)
    assert len(reply.choices) == 1 and "n" not in model.calls[-1]
    assert not any("choice" in w for w in (reply.tlm_metadata.get("log") or {}).get("warnings", []))


def test_more_choices_than_the_model_decodes_are_refused(choices: tuple[Any, ChoicesModel, RecordingScorer]) -> None:
    client, model, _ = choices
    calls = len(model.calls)
    with pytest.raises(openai.BadRequestError, match=r"at most 3 choices per request, got n=4") as caught:
        client.chat.completions.create(model="m", messages=QUESTION, n=4)
    assert caught.value.body["param"] == "n" and len(model.calls) == calls  # the model was never asked


def test_a_stream_with_n_above_1_is_refused(choices: tuple[Any, ChoicesModel, RecordingScorer]) -> None:
    client, model, _ = choices
    calls = len(model.calls)
    with pytest.raises(openai.BadRequestError, match=r"carries one choice, so n must be 1 with stream"):
        client.chat.completions.create(model="m", messages=QUESTION, n=2, stream=True)
    assert len(model.calls) == calls


def test_a_model_of_one_choice_refuses_n_above_1() -> None:
    model = FakeModel()
    server, _ = _serve(model)
    with server as running:
        client = openai.OpenAI(base_url=f"{running.base_url}/v1", api_key=KEY, max_retries=0)
        with pytest.raises(openai.BadRequestError, match=r"one choice per request, so n must be 1, got 2"):
            client.chat.completions.create(model="m", messages=QUESTION, n=2)
    assert model.calls == []
