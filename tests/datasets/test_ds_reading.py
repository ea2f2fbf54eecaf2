"""Reading CSV/JSONL rows (line numbers, malformed rows) and turning rows into score requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ds_helpers import write_csv, write_jsonl

from tlm_hooks.datasets import Columns, DatasetError, MissingColumnsError
from tlm_hooks.datasets.columns import RowProblem
from tlm_hooks.datasets.rows import RowReader, count_records, detect_format


def _read(path: Path, fmt: str) -> tuple[list[str], list]:
    with RowReader(path, fmt) as reader:  # type: ignore[arg-type]
        return reader.columns, list(reader)


def test_jsonl_records_carry_their_line_and_malformed_lines_are_kept(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [{"prompt": "a", "response": "b"}, "", "{not json", "[1, 2]", {"prompt": "c", "response": "d"}],
    )
    columns, records = _read(path, "jsonl")
    assert columns == ["prompt", "response"]
    assert [(r.line, r.problem is None) for r in records] == [(1, True), (3, False), (4, False), (5, True)]
    assert "invalid JSON" in records[1].problem and records[1].values is None
    assert records[2].problem == "expected a JSON object, got an array"
    assert records[3].values == {"prompt": "c", "response": "d"}
    assert count_records(path, "jsonl") == 4  # the blank line is no row


def test_csv_records_start_lines_count_embedded_newlines(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b'\xef\xbb\xbfprompt,response\n"two\nlines",x\nshort\n"p","r"\n\nbad\xff,y\n')
    columns, records = _read(path, "csv")
    assert columns == ["prompt", "response"]  # the byte-order mark is not part of the first name
    assert [r.line for r in records] == [2, 4, 5, 7]
    assert records[0].values == {"prompt": "two\nlines", "response": "x"}
    assert records[1].problem == "1 fields, but the header has 2"
    assert records[2].problem is None
    assert records[3].problem == "not valid utf-8 text" and records[3].cells is not None
    assert count_records(path, "csv") == 4


def test_empty_csv_and_unknown_suffix_are_refused(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DatasetError, match="is empty: a CSV file needs a header"):
        RowReader(tmp_path / "e.csv", "csv")
    with pytest.raises(DatasetError, match=r"'\.txt'.*allowed \.csv, \.jsonl"):
        detect_format(tmp_path / "d.txt")
    assert detect_format(tmp_path / "d.txt", "jsonl") == "jsonl"
    assert detect_format(tmp_path / "D.NDJSON") == "jsonl"


def test_missing_columns_error_lists_the_columns_the_file_has(tmp_path: Path) -> None:
    with pytest.raises(MissingColumnsError) as caught:
        Columns().resolve(["question", "human_response"], "qa.csv")
    message = str(caught.value)
    assert "'question', 'human_response'" in message and "--prompt-col" in message
    assert caught.value.available == ("question", "human_response")
    with pytest.raises(MissingColumnsError, match=r"no 'answer' column \(for the response\).*'question', 'human'"):
        Columns(prompt="question", response="answer").resolve(["question", "human"], "qa.csv")
    with pytest.raises(MissingColumnsError, match="no 'response' column"):
        Columns().resolve(["prompt", "answer"], "qa.csv")  # a prompt needs a response column


def test_default_columns_and_conflicting_choices() -> None:
    assert Columns().resolve(["prompt", "response"], "f") == Columns(prompt="prompt", response="response")
    assert Columns().resolve(["messages"], "f") == Columns(messages="messages")
    assert Columns().resolve(["messages", "response"], "f") == Columns(messages="messages", response="response")
    with pytest.raises(DatasetError, match="not both"):
        Columns(prompt="p", messages="m")
    with pytest.raises(DatasetError, match="must be a non-empty column name"):
        Columns(prompt="")


def test_prompt_row_with_system_and_context_columns() -> None:
    columns = Columns(prompt="q", response="a", system="sys", context="ctx")
    request = columns.request({"q": "Capital of France?", "a": "Paris", "sys": "Be brief.", "ctx": "France..."})
    assert request.messages == (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    )
    assert request.response == "Paris" and request.context == "France..."
    plain = columns.request({"q": "Capital?", "a": "Paris", "sys": "", "ctx": None})
    assert plain.prompt == "Capital?" and plain.messages is None and plain.context is None


def test_messages_as_json_text_or_list_and_the_fine_tuning_format() -> None:
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    as_text = Columns(messages="m", response="r").request({"m": json.dumps(chat), "r": "4"})
    as_list = Columns(messages="m", response="r").request({"m": chat, "r": "4"})
    assert as_text == as_list and as_text.messages == tuple(chat) and as_text.response == "4"
    tuned = Columns(messages="m").request({"m": [*chat, {"role": "assistant", "content": "4"}]})
    assert tuned.messages == tuple(chat) and tuned.response == "4"
    with_system = Columns(messages="m", system="s").request(
        {"m": [chat[1], {"role": "assistant", "content": "4"}], "s": "Hi"}
    )
    assert with_system.messages == ({"role": "system", "content": "Hi"}, chat[1])


@pytest.mark.parametrize(
    ("columns", "values", "reason"),
    [
        (Columns(prompt="p", response="r"), {"p": "q"}, "no 'r' value (the row has: 'p')"),
        (Columns(prompt="p", response="r"), {"p": "q", "r": None}, "'r' is missing (null)"),
        (Columns(prompt="p", response="r"), {"p": "q", "r": float("nan")}, "'r' is missing (null)"),
        (Columns(prompt="p", response="r"), {"p": "  ", "r": "a"}, "'p' is empty"),
        (Columns(prompt="p", response="r"), {"p": "q", "r": 42}, "'r' must be text, got int 42"),
        (Columns(messages="m", response="r"), {"m": "[{", "r": "a"}, "'m' is not valid JSON"),
        (Columns(messages="m", response="r"), {"m": {"role": "user"}, "r": "a"}, "'m' must be a non-empty list"),
        (
            Columns(messages="m", response="r"),
            {"m": [{"role": "bot", "content": "x"}], "r": "a"},
            "m[0].role must be one of",
        ),
        (Columns(messages="m"), {"m": [{"role": "user", "content": "x"}]}, "last message of 'm' is not an assistant"),
        (Columns(messages="m"), {"m": [{"role": "assistant", "content": "x"}]}, "holds only the assistant's answer"),
        (
            Columns(prompt="p", response="r", logprobs="lp"),
            {"p": "q", "r": "a", "lp": "oops"},
            "'lp' is not valid JSON",
        ),
    ],
)
def test_malformed_values_are_named(columns: Columns, values: dict, reason: str) -> None:
    with pytest.raises(RowProblem) as caught:
        columns.request(values)
    assert reason in str(caught.value)


def test_logprobs_column_reads_openai_entries() -> None:
    entries = [{"token": "Par", "logprob": -0.1, "top_logprobs": []}, {"token": "is", "logprob": -0.2}]
    columns = Columns(prompt="p", response="r", logprobs="lp")
    for value in (entries, {"content": entries}, json.dumps(entries)):
        request = columns.request({"p": "q", "r": "Paris", "lp": value})
        assert [(t.token, t.logprob) for t in request.response_logprobs or ()] == [("Par", -0.1), ("is", -0.2)]


def test_csv_messages_column_round_trip(tmp_path: Path) -> None:
    chat = [{"role": "user", "content": "Hi, there"}]
    path = write_csv(tmp_path / "c.csv", ["messages", "response"], [[json.dumps(chat), "Hello"]])
    columns, records = _read(path, "csv")
    request = Columns().resolve(columns, "c.csv").request(records[0].values)
    assert request.messages == tuple(chat) and request.response == "Hello"
