"""The output file: every input column plus the result columns, one record per input record.

While a run is going, records are appended to ``OUT.partial`` in input order and flushed after
every window (so a killed process loses at most the window being scored); ``OUT.partial.json``
records the run's settings. The finished file is renamed to ``OUT``. To resume, the partial file
is read back record by record next to the input: records that are complete and match their input
row are kept, and the file is cut at the first that is not (a torn last line from a kill, or a row
that changed in the input) — scoring continues from there.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .errors import DatasetError, ResumeError
from .rows import SUFFIXES, Format, Record, raise_csv_field_limit

__all__ = [
    "SCORE_COLUMN",
    "EXPLANATION_COLUMN",
    "ERROR_COLUMN",
    "RESULT_COLUMNS",
    "Outcome",
    "Codec",
    "PartialOutput",
    "default_output_path",
]

SCORE_COLUMN = "trustworthiness_score"
EXPLANATION_COLUMN = "explanation"
ERROR_COLUMN = "scoring_error"
RESULT_COLUMNS: tuple[str, ...] = (SCORE_COLUMN, EXPLANATION_COLUMN, ERROR_COLUMN)
BAD_ROW_PREFIX = "bad row"
STATE_VERSION = 1
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"  # bytes that were not valid text in the input go back out unchanged


@dataclass(frozen=True)
class Outcome:
    """What the result columns say about one row: a score (with its explanation), or an error."""

    score: float | None
    explanation: str | None = None
    error: str | None = None

    @property
    def is_bad_row(self) -> bool:
        """True when the row was malformed (skipped, not scored)."""
        return self.error is not None and self.error.startswith(BAD_ROW_PREFIX)

    @staticmethod
    def bad_row(record: Record, problem: str) -> Outcome:
        return Outcome(None, None, f"{BAD_ROW_PREFIX} ({record.where}): {problem}")


def default_output_path(path: str | os.PathLike[str]) -> Path:
    """``data.jsonl`` → ``data.scored.jsonl``, next to the input."""
    source = Path(path)
    return source.with_name(f"{source.stem}.scored{source.suffix}")


class Codec:
    """How records of one format are written, read back and matched against their input row."""

    def __init__(self, fmt: Format, columns: Sequence[str]) -> None:
        self.format = fmt
        self.columns = list(columns)  # the input's columns (CSV header; JSONL: informative only)
        self.header = self.columns + [c for c in RESULT_COLUMNS if c not in self.columns]
        self._result_at = {name: self.header.index(name) for name in RESULT_COLUMNS}
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer)

    # -- writing ---------------------------------------------------------------------------------

    def header_text(self) -> str:
        """What starts the file (the CSV header line; nothing for JSONL)."""
        return self._csv_line(self.header) if self.format == "csv" else ""

    def encode(self, record: Record, outcome: Outcome) -> str:
        """One output record, newline included."""
        results = {SCORE_COLUMN: outcome.score, EXPLANATION_COLUMN: outcome.explanation, ERROR_COLUMN: outcome.error}
        if self.format == "jsonl":
            data = dict(record.values) if record.values is not None and record.cells is None else {}
            data.update(results)
            return json.dumps(data, ensure_ascii=False) + "\n"
        cells = list(record.cells or ())[: len(self.columns)]
        cells += [""] * (len(self.header) - len(cells))
        for name, value in results.items():
            cells[self._result_at[name]] = "" if value is None else (repr(value) if isinstance(value, float) else value)
        return self._csv_line(cells)

    def _csv_line(self, cells: Sequence[str]) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._csv.writerow(cells)
        return self._buffer.getvalue()

    # -- reading back ------------------------------------------------------------------------------

    def read_back(self, file: BinaryIO) -> Iterator[tuple[int, Any, Outcome]]:
        """``(end offset, record data, outcome)`` for each complete record of a partial output, in
        order; stops at the first torn or unreadable one. For CSV, yields nothing unless the file
        starts with the expected header."""
        if self.format == "jsonl":
            yield from self._read_back_jsonl(file)
        else:
            yield from self._read_back_csv(file)

    def _read_back_jsonl(self, file: BinaryIO) -> Iterator[tuple[int, Any, Outcome]]:
        offset = 0
        for raw in file:
            if not raw.endswith(b"\n"):
                return  # torn: the process died while writing this line
            try:
                data = json.loads(raw.decode(_ENCODING, _ERRORS))
                outcome = _outcome(data.get(SCORE_COLUMN), data.get(EXPLANATION_COLUMN), data.get(ERROR_COLUMN))
            except (ValueError, AttributeError, TypeError):
                return
            offset += len(raw)
            yield offset, data, outcome

    def _read_back_csv(self, file: BinaryIO) -> Iterator[tuple[int, Any, Outcome]]:
        raise_csv_field_limit()
        consumed = [0]
        last_line_complete = [True]

        def lines() -> Iterator[str]:
            for raw in file:
                consumed[0] += len(raw)
                last_line_complete[0] = raw.endswith(b"\n")
                yield raw.decode(_ENCODING, _ERRORS)

        reader = csv.reader(lines(), strict=True)
        try:
            if next(reader, None) != self.header or not last_line_complete[0]:
                return
            while True:
                cells = next(reader, None)
                if cells is None or not last_line_complete[0] or len(cells) != len(self.header):
                    return
                at = self._result_at
                outcome = _outcome(cells[at[SCORE_COLUMN]], cells[at[EXPLANATION_COLUMN]], cells[at[ERROR_COLUMN]])
                yield consumed[0], cells, outcome
        except (csv.Error, ValueError):
            return  # torn inside a quoted field, or a damaged score

    def matches(self, record: Record, data: Any, outcome: Outcome) -> bool:
        """Whether output ``data`` was written for input ``record`` (as it is now)."""
        if record.values is None or (record.problem is not None and record.cells is not None):
            # written as a bad row: still one, at the same line?
            return outcome.is_bad_row and (outcome.error or "").startswith(f"{BAD_ROW_PREFIX} ({record.where})")
        if self.format == "jsonl":
            if not isinstance(data, Mapping):
                return False
            own = {k: v for k, v in data.items() if k not in RESULT_COLUMNS}
            theirs = {k: v for k, v in record.values.items() if k not in RESULT_COLUMNS}
            return own.keys() == theirs.keys() and all(_same(own[k], theirs[k]) for k in own)
        kept = [i for i in range(len(self.columns)) if self.header[i] not in RESULT_COLUMNS]
        cells = list(record.cells or ())
        return all(i < len(cells) and data[i] == cells[i] for i in kept)


def _outcome(score: Any, explanation: Any, error: Any) -> Outcome:
    if isinstance(score, str):
        score = float(score) if score else None
    elif score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise ValueError(f"not a score: {score!r}")
    return Outcome(
        None if score is None else float(score),
        explanation if isinstance(explanation, str) and explanation else None,
        error if isinstance(error, str) and error else None,
    )


def _same(a: Any, b: Any) -> bool:
    return bool(a == b) or json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN != NaN


class PartialOutput:
    """``OUT.partial`` (append-only records) and ``OUT.partial.json`` (the run's settings).

    ``open(resume)`` prepares the partial file: a fresh one (with the CSV header), or the earlier
    run's, whose settings must equal ``settings``. ``append`` writes records; ``commit`` flushes
    them (and fsyncs at most every ``fsync_every`` seconds); ``finish`` renames the partial file
    to ``OUT``.
    """

    def __init__(self, out: Path, codec: Codec, settings: Mapping[str, Any], *, fsync_every: float = 2.0) -> None:
        self.out = out
        self.partial = out.with_name(out.name + ".partial")
        self.state = out.with_name(out.name + ".partial.json")
        self.codec = codec
        self.settings = dict(settings)
        self.fsync_every = fsync_every
        self._file: BinaryIO | None = None
        self._last_sync = 0.0

    def has_earlier_run(self) -> bool:
        """True when an unfinished run's partial output is there to resume."""
        return self.partial.exists()

    def check_earlier_run(self) -> None:
        """Raise :class:`ResumeError` unless the unfinished run used these same settings."""
        try:
            saved = json.loads(self.state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ResumeError(
                f"{self.partial} is there but its settings file {self.state.name} is missing or damaged, "
                "so it cannot be resumed safely: pass --restart (resume=False) to score from the start"
            ) from None
        theirs = saved.get("settings") if isinstance(saved, dict) else None
        if theirs != self.settings:
            changed = sorted(
                k for k in set(self.settings) | set(theirs or {}) if (theirs or {}).get(k) != self.settings.get(k)
            )
            detail = "; ".join(f"{k}: was {(theirs or {}).get(k)!r}, now {self.settings.get(k)!r}" for k in changed)
            raise ResumeError(
                f"{self.partial} comes from a run with other settings ({detail}): rerun with the same "
                "settings to continue it, or pass --restart (resume=False) to score from the start"
            )

    def start_fresh(self) -> None:
        """Discard any earlier partial output and start an empty one."""
        self.state.write_text(json.dumps({"version": STATE_VERSION, "settings": self.settings}, indent=1), "utf-8")
        self._file = open(self.partial, "wb")  # noqa: SIM115 - closed by close()/finish()
        self._file.write(self.codec.header_text().encode(_ENCODING, _ERRORS))
        self.commit(force_sync=True)

    def read_back(self) -> Generator[tuple[int, Any, Outcome], None, None]:
        """The earlier run's complete records (see :meth:`Codec.read_back`)."""
        with open(self.partial, "rb") as file:
            yield from self.codec.read_back(file)

    def continue_at(self, offset: int) -> None:
        """Keep the first ``offset`` bytes of the partial output (cutting a torn tail) and append
        after them. ``offset`` 0 starts over (a CSV header is written again)."""
        self._file = open(self.partial, "r+b")  # noqa: SIM115
        self._file.truncate(offset)
        self._file.seek(offset)
        if offset == 0:
            self._file.write(self.codec.header_text().encode(_ENCODING, _ERRORS))
        self.commit(force_sync=True)

    def append(self, record: Record, outcome: Outcome) -> None:
        assert self._file is not None, "open the output first"
        self._file.write(self.codec.encode(record, outcome).encode(_ENCODING, _ERRORS))

    def commit(self, *, force_sync: bool = False) -> None:
        """Flush what was appended (it survives the process being killed); fsync now and then
        (it survives the machine going down)."""
        assert self._file is not None
        self._file.flush()
        now = time.monotonic()
        if force_sync or now - self._last_sync >= self.fsync_every:
            os.fsync(self._file.fileno())
            self._last_sync = now

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.flush()
            self._file.close()

    def finish(self) -> None:
        """Make the partial output the output file."""
        self.commit(force_sync=True)
        self.close()
        os.replace(self.partial, self.out)
        try:
            self.state.unlink()
        except FileNotFoundError:
            pass


def check_output_path(source: Path, out: Path, fmt: Format) -> None:
    """Refuse an output path that would overwrite the input, or whose suffix says another format."""
    named = SUFFIXES.get(out.suffix.lower())
    if named is not None and named != fmt:
        raise DatasetError(
            f"the output is written as {fmt}, like the input: give --out a name that says so, not {out.name!r}"
        )
    if out.resolve() == source.resolve() or (out.exists() and os.path.samefile(source, out)):
        raise DatasetError(f"the output {out} is the input file: choose another --out")
    if out.is_dir():
        raise DatasetError(f"the output {out} is a directory: give a file name with --out")
    if not out.parent.is_dir():
        raise DatasetError(f"cannot write {out}: the directory {out.parent} does not exist")
