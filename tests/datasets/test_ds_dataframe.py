"""`score_dataframe`: a new frame with the result columns; the caller's frame is left as it was."""

from __future__ import annotations

import asyncio

import pytest
from ds_helpers import Recorder, expected_score, score

from tlm_hooks.datasets import BadRowError, MissingColumnsError, ascore_dataframe, score_dataframe

pd = pytest.importorskip("pandas")


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "question": ["2+2?", "Capital of France?", "Largest planet?", "Empty?"],
            "answer": ["4", "Paris", "Jvpit3r", None],
        },
        index=["a", "b", "c", "d"],
    )


def test_returns_a_scored_copy_and_leaves_the_input_untouched() -> None:
    df = _frame()
    before = df.copy(deep=True)
    scored = score_dataframe(df, prompt_col="question", response_col="answer", scorer=score, batch_size=2)
    pd.testing.assert_frame_equal(df, before)  # no new columns, no changed values
    assert scored is not df and list(scored.index) == ["a", "b", "c", "d"]
    assert list(scored.columns) == ["question", "answer", "trustworthiness_score", "explanation", "scoring_error"]
    assert scored["trustworthiness_score"].iloc[:3].tolist() == [expected_score(a) for a in ("4", "Paris", "Jvpit3r")]
    assert pd.isna(scored["trustworthiness_score"].iloc[3])
    assert scored["scoring_error"].iloc[3] == "bad row (row 3 (index 'd')): 'answer' is missing (null)"
    assert scored["explanation"].iloc[1] == "explained Paris"


def test_stop_mode_raises_at_the_bad_row_and_missing_columns_are_listed() -> None:
    recorder = Recorder()
    with pytest.raises(BadRowError) as caught:
        score_dataframe(_frame(), prompt_col="question", response_col="answer", scorer=recorder, on_bad_row="stop")
    assert caught.value.line == 3 and "row 3" in str(caught.value)
    with pytest.raises(MissingColumnsError, match="'question', 'answer'"):
        score_dataframe(_frame(), scorer=recorder)
    assert recorder.calls == ["4", "Paris", "Jvpit3r"]


def test_messages_column_holding_lists() -> None:
    df = pd.DataFrame({"messages": [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]]})
    scored = score_dataframe(df, scorer=score)
    assert scored["trustworthiness_score"].tolist() == [expected_score("Hello")]


def test_sync_form_inside_a_running_loop_and_the_async_form() -> None:
    async def both() -> tuple[list[float], list[float]]:
        inside = score_dataframe(_frame().iloc[:3], prompt_col="question", response_col="answer", scorer=score)
        awaited = await ascore_dataframe(_frame().iloc[:3], prompt_col="question", response_col="answer", scorer=score)
        return inside["trustworthiness_score"].tolist(), awaited["trustworthiness_score"].tolist()

    inside, awaited = asyncio.run(both())
    assert inside == awaited and len(inside) == 3
