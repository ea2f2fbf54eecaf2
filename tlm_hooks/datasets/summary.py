"""What a scoring run found: rows per score band, failures, bad rows, the lowest-scoring rows.

`Tally` counts as rows stream past in constant memory (fixed bands and histogram bins, a bounded
heap of the lowest rows, the first few bad lines and error kinds); `Summary` is the result and
`format_summary` its text.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from pathlib import Path

from .writer import Outcome

__all__ = ["BANDS", "HISTOGRAM_BINS", "LowRow", "Summary", "Tally", "format_summary"]

# (upper bound, label): a score goes in the first band whose bound it is below
BANDS: tuple[tuple[float, str], ...] = (
    (0.3, "< 0.3"),
    (0.5, "0.3-0.5"),
    (0.7, "0.5-0.7"),
    (0.9, "0.7-0.9"),
    (float("inf"), ">= 0.9"),
)
HISTOGRAM_BINS = 20
_KEEP_BAD_LINES = 20
_KEEP_ERROR_KINDS = 20
_ERROR_KIND = re.compile(r"^scoring failed \(([^)]*)\)")


@dataclass(frozen=True)
class LowRow:
    """One of the lowest-scoring rows: where it is, its score, and its prompt and response."""

    line: int
    where: str
    score: float
    prompt: str
    response: str


@dataclass(frozen=True)
class Summary:
    """The outcome of scoring a dataset.

    ``rows`` = ``scored`` + ``failed`` (scoring failed; the error is in the row) + ``bad_rows``
    (malformed, not scored). ``bands``: scored rows per score band (labels of :data:`BANDS`).
    ``lowest``: the lowest-scoring rows, lowest first. ``resumed``: rows kept from an interrupted
    earlier run. ``histogram``: scored rows in :data:`HISTOGRAM_BINS` equal bins over [0, 1].
    ``errors``: failure kinds with a count and an example message.
    """

    input_path: Path | None
    output_path: Path | None
    rows: int
    scored: int
    failed: int
    bad_rows: int
    bands: dict[str, int]
    lowest: tuple[LowRow, ...]
    mean_score: float | None
    histogram: tuple[int, ...]
    bad_lines: tuple[int, ...]
    errors: dict[str, tuple[int, str]]
    resumed: int = 0
    seconds: float = 0.0
    histogram_path: Path | None = None


@dataclass
class Tally:
    """Counts rows as they are scored; ``summary()`` gives the :class:`Summary` so far."""

    keep_lowest: int = 5
    rows: int = 0
    scored: int = 0
    failed: int = 0
    bad_rows: int = 0
    resumed: int = 0
    score_sum: float = 0.0
    bands: dict[str, int] = field(default_factory=lambda: {label: 0 for _, label in BANDS})
    histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)
    bad_lines: list[int] = field(default_factory=list)
    errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    _lowest: list[tuple[float, int, LowRow]] = field(default_factory=list)  # max-heap on score via -score

    def add(self, line: int, where: str, outcome: Outcome, prompt: str = "", response: str = "") -> None:
        """Count one row."""
        self.rows += 1
        if outcome.score is not None:
            self._add_score(line, where, outcome.score, prompt, response)
        elif outcome.is_bad_row:
            self.bad_rows += 1
            if len(self.bad_lines) < _KEEP_BAD_LINES:
                self.bad_lines.append(line)
        else:
            self.failed += 1
            message = outcome.error or "no score and no error given"
            found = _ERROR_KIND.match(message)
            kind = found.group(1) if found else "error"
            count, example = self.errors.get(kind, (0, message))
            if kind in self.errors or len(self.errors) < _KEEP_ERROR_KINDS:
                self.errors[kind] = (count + 1, example)

    def would_keep(self, score: float) -> bool:
        """Whether a row with ``score`` would be among the lowest kept (only those need their text)."""
        return self.keep_lowest > 0 and (len(self._lowest) < self.keep_lowest or -score >= self._lowest[0][0])

    def _add_score(self, line: int, where: str, score: float, prompt: str, response: str) -> None:
        self.scored += 1
        self.score_sum += score
        for bound, label in BANDS:
            if score < bound:
                self.bands[label] += 1
                break
        self.histogram[min(HISTOGRAM_BINS - 1, max(0, int(score * HISTOGRAM_BINS)))] += 1
        if self.keep_lowest <= 0:
            return
        key = (-score, -line)  # among equal scores the earliest row stays
        if len(self._lowest) < self.keep_lowest:
            heapq.heappush(self._lowest, (*key, LowRow(line, where, score, _clip(prompt), _clip(response))))
        elif key > self._lowest[0][:2]:
            heapq.heapreplace(self._lowest, (*key, LowRow(line, where, score, _clip(prompt), _clip(response))))

    def summary(
        self,
        input_path: Path | None = None,
        output_path: Path | None = None,
        *,
        seconds: float = 0.0,
        histogram_path: Path | None = None,
    ) -> Summary:
        lowest = tuple(item[2] for item in sorted(self._lowest, key=lambda item: (-item[0], -item[1])))
        return Summary(
            input_path=input_path,
            output_path=output_path,
            rows=self.rows,
            scored=self.scored,
            failed=self.failed,
            bad_rows=self.bad_rows,
            bands=dict(self.bands),
            lowest=lowest,
            mean_score=self.score_sum / self.scored if self.scored else None,
            histogram=tuple(self.histogram),
            bad_lines=tuple(self.bad_lines),
            errors=dict(self.errors),
            resumed=self.resumed,
            seconds=seconds,
            histogram_path=histogram_path,
        )


def _clip(text: str, width: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def format_summary(summary: Summary, *, width: int = 48) -> str:
    """The summary as text: totals, a table of score bands, the lowest-scoring rows."""
    out: list[str] = []
    source = summary.input_path.name if summary.input_path else "the data"
    resumed = f" ({summary.resumed:,} kept from an earlier run)" if summary.resumed else ""
    out.append(f"Scored {summary.rows:,} rows of {source} in {_duration(summary.seconds)}{resumed}.")
    total = max(1, summary.rows)
    table: list[tuple[str, str, str, str]] = [
        (label, f"{count:,}", f"{100 * count / total:.1f}%", "") for label, count in summary.bands.items()
    ]
    errors = ", ".join(
        f"{kind} x{count}" for kind, (count, _) in sorted(summary.errors.items(), key=lambda e: -e[1][0])
    )
    table.append(("failed", f"{summary.failed:,}", f"{100 * summary.failed / total:.1f}%", errors))
    lines = ", ".join(map(str, summary.bad_lines)) + (" ..." if summary.bad_rows > len(summary.bad_lines) else "")
    table.append(
        (
            "bad rows",
            f"{summary.bad_rows:,}",
            f"{100 * summary.bad_rows / total:.1f}%",
            f"lines {lines}" if lines else "",
        )
    )
    out.append("")
    out.extend(_table(("score", "rows", "share", "notes"), table, right=frozenset({1, 2})))
    if summary.mean_score is not None:
        out.append(f"mean score {summary.mean_score:.3f} over {summary.scored:,} scored rows")
    if summary.errors:
        kind, (count, example) = max(summary.errors.items(), key=lambda e: e[1][0])
        out.append(f"most frequent failure ({count:,}x): {_clip(example, 160)}")
    if summary.lowest:
        out.append("")
        out.append(f"{len(summary.lowest)} lowest-scoring rows:")
        rows = [
            (row.where, f"{row.score:.3f}", _clip(row.prompt, width), _clip(row.response, width))
            for row in summary.lowest
        ]
        out.extend(_table(("row", "score", "prompt", "response"), rows, right=frozenset({1})))
    if summary.output_path is not None:
        out.append("")
        out.append(f"output: {summary.output_path}")
    if summary.histogram_path is not None:
        out.append(f"histogram: {summary.histogram_path}")
    return "\n".join(out)


def _table(
    headers: tuple[str, ...], rows: list[tuple[str, str, str, str]], right: frozenset[int] = frozenset()
) -> list[str]:
    widths = [
        max(len(headers[i]), *(len(r[i]) for r in rows)) if rows else len(headers[i]) for i in range(len(headers))
    ]

    def line(cells: tuple[str, ...]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=False))]
        return "  " + "  ".join(parts).rstrip()

    return [line(headers), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)]
