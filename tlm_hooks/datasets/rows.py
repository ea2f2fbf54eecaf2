"""Read a CSV or JSON Lines file one record at a time, with the line each record starts on.

Nothing is held beyond the current record. A record that cannot be read (bad JSON, a JSON value
that is not an object, a CSV row with the wrong number of fields, bytes that are not valid text)
comes out as a `Record` with ``problem`` set, never skipped.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from .errors import DatasetError

__all__ = ["Format", "FORMATS", "Record", "RowReader", "detect_format", "count_records", "raise_csv_field_limit"]

Format = Literal["csv", "jsonl"]
FORMATS: tuple[str, ...] = ("csv", "jsonl")
SUFFIXES: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonlines": "jsonl"}
_BOM = b"\xef\xbb\xbf"
_PEEK_LINES = 1000  # how far a JSONL file is searched for its first object (to learn its columns)


@dataclass(frozen=True)
class Record:
    """One row. ``line``: where it starts in the file (1-based; for a DataFrame, its position).
    ``values``: column → value (``None`` when the row could not be read at all). ``cells``: a CSV
    row's fields as read, written back unchanged. ``problem``: why the row is malformed."""

    line: int
    values: dict[str, Any] | None
    cells: tuple[str, ...] | None = None
    problem: str | None = None
    label: str | None = None  # how to name the row in messages; default "line N"

    @property
    def where(self) -> str:
        """``line N`` (or the label given, e.g. ``row 3``)."""
        return self.label or f"line {self.line}"


def detect_format(path: str | os.PathLike[str], explicit: str | None = None) -> Format:
    """``csv`` or ``jsonl``: ``explicit`` if given, else from the file name's suffix."""
    if explicit is not None:
        if explicit not in FORMATS:
            raise DatasetError(f"unknown format {explicit!r}: allowed {', '.join(FORMATS)}")
        return explicit  # type: ignore[return-value]
    suffix = Path(path).suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    raise DatasetError(
        f"cannot tell the format of {os.fspath(path)!r} from its suffix {suffix or '(none)'!r}: "
        f"allowed {', '.join(SUFFIXES)}, or say it with --format csv|jsonl (format= in Python)"
    )


def raise_csv_field_limit(limit: int = 1 << 28) -> None:
    """Let CSV fields be up to ``limit`` characters (the csv module's default, 128 KiB, is too
    small for long prompts); never lowers a limit already set higher."""
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


class RowReader:
    """Iterate the records of ``path`` (a context manager; ``columns`` is known on opening).

    ``columns``: the CSV header, or the keys of the first JSON object of a JSONL file.
    ``position`` / ``size``: bytes read so far / in the file. Text is decoded with ``encoding``;
    a leading UTF-8 byte-order mark is dropped.
    """

    def __init__(self, path: str | os.PathLike[str], fmt: Format, *, encoding: str = "utf-8") -> None:
        self.path = Path(path)
        self.format = fmt
        self.encoding = encoding
        try:
            self._file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()/__exit__
        except OSError as exc:
            raise DatasetError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from None
        self.size = os.fstat(self._file.fileno()).st_size
        self.position = 0
        self._line = 0
        self._bad_text_line: int | None = None
        if fmt == "csv":
            raise_csv_field_limit()
            self._csv = csv.reader(self._text_lines())
            self.columns = self._csv_header()
        else:
            self.columns = _first_object_keys(self.path, encoding)
        self._started = False

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[Record]:
        if self._started:
            raise RuntimeError("a RowReader can be iterated once")
        self._started = True
        return self._csv_records() if self.format == "csv" else self._jsonl_records()

    # -- JSON Lines ----------------------------------------------------------------------------

    def _jsonl_records(self) -> Iterator[Record]:
        for raw in self._file:
            self.position += len(raw)
            self._line += 1
            if self._line == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            if not raw.strip():
                continue  # a blank line is no row
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                yield Record(self._line, None, problem=f"not valid {self.encoding} text ({exc.reason})")
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Record(self._line, None, problem=f"invalid JSON: {exc.msg} (column {exc.colno})")
                continue
            if not isinstance(value, dict):
                yield Record(self._line, None, problem=f"expected a JSON object, got {_json_type(value)}")
                continue
            yield Record(self._line, value)

    # -- CSV ------------------------------------------------------------------------------------

    def _text_lines(self) -> Iterator[str]:
        for raw in self._file:
            self.position += len(raw)
            self._line += 1
            if self._line == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            try:
                yield raw.decode(self.encoding)
            except UnicodeDecodeError:
                # keep the bytes (they are written back as they were) and flag the row
                self._bad_text_line = self._line
                yield raw.decode(self.encoding, "surrogateescape")

    def _csv_header(self) -> list[str]:
        try:
            for row in self._csv:
                if row:
                    return row
        except csv.Error as exc:
            raise DatasetError(f"{self.path}: cannot read the CSV header: {exc}") from None
        raise DatasetError(f"{self.path} is empty: a CSV file needs a header line naming its columns")

    def _csv_records(self) -> Iterator[Record]:
        width = len(self.columns)
        while True:
            start = self._line + 1
            self._bad_text_line = None
            try:
                cells = next(self._csv)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Record(start, None, problem=f"unreadable CSV: {exc}")
                continue
            if not cells:
                continue  # a blank line is no row
            row = tuple(cells)
            values: dict[str, Any] = {}
            for name, cell in zip(self.columns, row, strict=False):
                values.setdefault(name, cell)
            if self._bad_text_line is not None:
                yield Record(start, values, row, problem=f"not valid {self.encoding} text")
            elif len(row) != width:
                yield Record(start, values, row, problem=f"{len(row)} fields, but the header has {width}")
            else:
                yield Record(start, values, row)


def _first_object_keys(path: Path, encoding: str) -> list[str]:
    """The keys of the first JSON object in the first lines of a JSONL file ([] if none)."""
    with open(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            if number > _PEEK_LINES:
                break
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            try:
                value = json.loads(raw.decode(encoding)) if raw.strip() else None
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(value, dict):
                return list(value)
    return []


def count_records(path: str | os.PathLike[str], fmt: Format, *, encoding: str = "utf-8") -> int:
    """How many records ``path`` holds (a quick pass: non-blank lines, or CSV rows after the header)."""
    if fmt == "jsonl":
        with open(path, "rb") as file:
            return sum(1 for raw in file if raw.strip())
    raise_csv_field_limit()
    with open(path, encoding=encoding, errors="surrogateescape", newline="") as text:
        count = -1  # the header
        reader = csv.reader(text)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return max(0, count)
            except csv.Error:
                row = ["?"]
            if row:
                count += 1


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
