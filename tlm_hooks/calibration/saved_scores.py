"""The scores a calibration run made, kept in a file so an interrupted run resumes and a re-fit
needs no model call.

The file (``PROFILE.scores.jsonl`` by default) is JSON lines: a header naming the scorer, then one
line per scored row, appended and flushed after every batch::

    {"tlm_hooks": "calibration scores", "version": 1, "scorer": {"scorer": "TLMScorer(...)", ...}}
    {"row": "line 2", "request": "<sha256>", "trustworthiness_score": 0.81, "per_component_score": {...}}

A row's score is reused when its name and the hash of its request (prompt, response, messages...;
not its label) are both found, so rows added to or changed in the labelled file are scored again
and relabelling costs nothing. Reading stops at the first line that is not complete JSON (the last
line of a killed run): the file is cut there and that row is scored again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from ..datasets.errors import ResumeError
from ..scorers.cache import cache_key
from ..types import ScoreRequest, TrustResult

__all__ = ["SavedScores", "request_key", "SCORES_SUFFIX"]

SCORES_SUFFIX = ".scores.jsonl"  # PROFILE.json -> PROFILE.json.scores.jsonl
KIND = "calibration scores"
VERSION = 1


def request_key(request: ScoreRequest) -> str:
    """The hex SHA-256 of what a row asks the scorer (its text, tools, context, logprobs)."""
    logprobs = request.response_logprobs
    return cache_key(
        {
            "prompt": request.prompt,
            "messages": [dict(m) for m in request.messages] if request.messages is not None else None,
            "response": request.response,
            "tools": [dict(t) for t in request.tools] if request.tools is not None else None,
            "tool_calls": [dict(c) for c in request.tool_calls] if request.tool_calls is not None else None,
            "context": request.context,
            "response_format": dict(request.response_format) if request.response_format is not None else None,
            "logprobs": [[t.token, t.logprob, [list(a) for a in t.top_logprobs]] for t in logprobs]
            if logprobs is not None
            else None,
        }
    )


class SavedScores:
    """One scores file. :meth:`open` reads the earlier rows (checking they come from the same
    scorer) or starts the file afresh; :meth:`add` + :meth:`commit` append rows; :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.about: dict[str, Any] | None = None  # the scorer the file's rows come from
        self._file: BinaryIO | None = None

    def open(self, about: Mapping[str, Any] | None, *, resume: bool = True) -> dict[tuple[str, str], dict[str, Any]]:
        """Prepare the file for appending; returns the earlier rows by ``(row name, request key)``.

        ``about`` describes the scorer of this run (:func:`~tlm_hooks.calibration.scoring.describe`);
        earlier rows made by another scorer raise :class:`ResumeError` naming both. ``about=None``
        (no scorer: only re-fitting) takes the file's scorer. ``resume=False`` starts the file over.
        """
        if self.path.is_dir():
            raise ResumeError(f"the scores file {self.path} is a directory: give a file name")
        if not self.path.parent.is_dir():
            raise ResumeError(
                f"cannot write the scores file {self.path}: the directory {self.path.parent} does not exist"
            )
        if not resume or not self.path.exists() or self.path.stat().st_size == 0:
            if about is None:
                return {}  # nothing saved and nothing to save with
            return self._start(about)
        with open(self.path, "rb") as file:
            header, rows, end = self._read(file)
        theirs: dict[str, Any] = header["scorer"]  # a dict: checked by _read
        if about is not None and about.get("scorer") != theirs.get("scorer"):
            raise ResumeError(
                f"{self.path} holds scores made by {theirs.get('scorer')}, but this run scores with "
                f"{about.get('scorer')}: rerun with the same scorer to reuse them, pass --restart "
                "(resume=False) to score every row again, or choose another --scores file (scores_path=)"
            )
        self.about = dict(theirs) if about is None else dict(about)
        self._file = open(self.path, "r+b")  # noqa: SIM115 - closed by close()
        self._file.truncate(end)  # a torn last line goes; its row is scored again
        self._file.seek(end)
        return rows

    def _start(self, about: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        self.about = dict(about)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        header = {"tlm_hooks": KIND, "version": VERSION, "scorer": self.about}
        self._file.write((json.dumps(header, ensure_ascii=False) + "\n").encode("utf-8"))
        self.commit()
        return {}

    def _read(self, file: BinaryIO) -> tuple[dict[str, Any], dict[tuple[str, str], dict[str, Any]], int]:
        first = file.readline()
        try:
            header = json.loads(first) if first.endswith(b"\n") else None
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("tlm_hooks") != KIND:
            raise ResumeError(
                f"{self.path} is not a tlm-hooks calibration scores file: choose another --scores file "
                "(scores_path=), or pass --restart (resume=False) to replace it"
            )
        if header.get("version") != VERSION or not isinstance(header.get("scorer"), dict):
            raise ResumeError(
                f"{self.path} is a scores file of version {header.get('version')!r}; this tlm-hooks reads "
                f"version {VERSION}: pass --restart (resume=False) to score again"
            )
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        end = len(first)
        for raw in file:
            row = _row(raw)
            if row is None:
                break  # torn or damaged: cut here
            rows[(row["row"], row["request"])] = row
            end += len(raw)
        return header, rows, end

    def add(self, name: str, key: str, result: TrustResult) -> None:
        """Append a scored row (call :meth:`commit` to make it last)."""
        assert self._file is not None, "open the scores file first"
        components = {
            k: float(v) for k, v in result.components.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        line = {"row": name, "request": key, "trustworthiness_score": result.trustworthiness_score,
                "per_component_score": components}  # fmt: skip
        self._file.write((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))

    def commit(self) -> None:
        """Flush and fsync what was appended, so it survives the process or the machine stopping."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self.commit()
            self._file.close()


def _row(raw: bytes) -> dict[str, Any] | None:
    if not raw.endswith(b"\n"):
        return None
    try:
        row = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(row, dict) or not isinstance(row.get("row"), str) or not isinstance(row.get("request"), str):
        return None
    return row
