"""Score a backlog of recorded calls in batches, writing each batch back before the next.

Records come from a lazy iterator (one page of a tracing server at a time), so memory stays
constant in the number of records: at most one page plus one batch is held. The summary keeps
counts, a bounded list of failures and the few lowest scores, never every result.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ..errors import InvalidOptionError
from ..progress import Progress, counting_rows
from ..progress import progress as display
from ..scorers.base import Scorer
from ..scorers.function import FunctionScorer
from ..scorers.logprob import LogprobScorer
from ..types import ScoreRequest, TrustResult

__all__ = [
    "ScoringSummary",
    "Record",
    "Failure",
    "default_scorer",
    "as_scorer",
    "score_backlog",
    "check_count",
    "annotator_kind",
]

logger = logging.getLogger("tlm_hooks")

KEEP_FAILURES = 50
KEEP_LOWEST = 5


@dataclass(frozen=True)
class Record:
    """One recorded call to score: ``key`` identifies it where results are written back
    (a trace id, a span id); ``span_id`` is the span the request was rebuilt from; ``previous``
    is what the integration needs to replace an earlier score (e.g. an assessment id)."""

    key: str
    request: ScoreRequest
    span_id: str | None = None
    previous: Any = None


@dataclass(frozen=True)
class Failure:
    """A record that could not be scored or written back, and why."""

    key: str
    error: str


@dataclass
class ScoringSummary:
    """What one backlog run did.

    ``seen`` records were fetched; of those ``scored`` got a score written back,
    ``already_scored`` were skipped (scored before; pass ``overwrite=True`` to redo them),
    ``unreadable`` held no prompt/response to score, and ``failed`` could not be scored or
    written (the first few are in ``failures``; they are retried on the next run). ``lowest``
    holds the few lowest ``(key, score)`` pairs, lowest first.
    """

    seen: int = 0
    scored: int = 0
    already_scored: int = 0
    unreadable: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    unreadable_keys: list[str] = field(default_factory=list)
    seconds: float = 0.0
    _score_sum: float = field(default=0.0, repr=False)
    _lowest: list[tuple[float, str]] = field(default_factory=list, repr=False)  # max-heap by -score

    @property
    def mean_score(self) -> float | None:
        """Mean of the scores written in this run (``None`` when none was)."""
        return self._score_sum / self.scored if self.scored else None

    @property
    def lowest(self) -> list[tuple[str, float]]:
        """Up to five ``(key, score)`` pairs with the lowest scores of this run, lowest first."""
        return sorted(((key, -neg) for neg, key in self._lowest), key=lambda pair: pair[1])

    def add_score(self, key: str, score: float) -> None:
        self.scored += 1
        self._score_sum += score
        item = (-score, key)
        if len(self._lowest) < KEEP_LOWEST:
            heapq.heappush(self._lowest, item)
        elif item > self._lowest[0]:
            heapq.heapreplace(self._lowest, item)

    def add_failure(self, key: str, error: str) -> None:
        self.failed += 1
        if len(self.failures) < KEEP_FAILURES:
            self.failures.append(Failure(key, error))

    def add_unreadable(self, key: str) -> None:
        self.unreadable += 1
        if len(self.unreadable_keys) < KEEP_FAILURES:
            self.unreadable_keys.append(key)

    def __str__(self) -> str:
        mean = "n/a" if self.mean_score is None else f"{self.mean_score:.3f}"
        lines = [
            f"{self.seen} seen, {self.scored} scored (mean {mean}), {self.already_scored} already scored, "
            f"{self.unreadable} unreadable, {self.failed} failed in {self.seconds:.1f}s"
        ]
        lines += [f"  low: {key} {score:.3f}" for key, score in self.lowest]
        lines += [f"  failed: {f.key}: {f.error}" for f in self.failures[:5]]
        return "\n".join(lines)


def default_scorer() -> Scorer:
    """The engine on its default judge (the embedded local model unless configured), with explanations."""
    from ..scorers.tlm import TLMScorer

    return TLMScorer(options={"log": ["explanation"]})


def as_scorer(scorer: Scorer | Callable[[ScoreRequest], Any] | None) -> Scorer:
    """``scorer`` as a :class:`Scorer`: ``None`` gives :func:`default_scorer`, a plain function
    ``fn(request) -> float | TrustResult | dict`` is wrapped in a :class:`FunctionScorer`."""
    if scorer is None:
        return default_scorer()
    if isinstance(scorer, Scorer):
        return scorer
    if callable(scorer):
        return FunctionScorer(scorer)
    raise TypeError(f"scorer must be a Scorer or a function(request) -> score, got {type(scorer).__name__}")


def check_count(name: str, value: Any, *, allow_none: bool = False) -> None:
    """Raise :class:`InvalidOptionError` unless ``value`` is a positive int (or ``None`` if allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidOptionError(name, value, "a positive integer" + (" or None" if allow_none else ""))


def annotator_kind(scorer: Scorer) -> str:
    """``LLM`` when the scorer judges with a model (the engine, Cleanlab), else ``CODE``."""
    return "CODE" if isinstance(scorer, (FunctionScorer, LogprobScorer)) else "LLM"


WriteBack = Callable[[list[tuple[Record, TrustResult]]], Iterable[tuple[Record, BaseException]]]


def score_backlog(
    records: Iterator[Record],
    scorer: Scorer,
    *,
    batch_size: int,
    write: WriteBack,
    summary: ScoringSummary,
    progress: Callable[[ScoringSummary], Any] | None = None,
    show_progress: bool | None = None,
    label: str = "scoring traces",
) -> ScoringSummary:
    """Score ``records`` ``batch_size`` at a time and hand each scored batch to ``write``.

    ``write`` returns the records it could not write (with the error); those count as failed.
    Failed scores are not written, so the next run tries them again. ``show_progress`` is the
    progress display's switch (:func:`tlm_hooks.progress.progress`); ``progress`` is called with
    the summary after each batch.
    """
    with display(None, label, show=show_progress, unit="traces") as bar:
        return _score_backlog(records, scorer, batch_size, write, summary, progress, bar)


def _score_backlog(
    records: Iterator[Record],
    scorer: Scorer,
    batch_size: int,
    write: WriteBack,
    summary: ScoringSummary,
    progress: Callable[[ScoringSummary], Any] | None,
    bar: Progress,
) -> ScoringSummary:
    started = time.perf_counter()
    while True:
        batch = list(islice(records, batch_size))
        if not batch:
            break
        with counting_rows(bar) as counter:  # traces advance the display as they finish
            results = scorer.score_batch([record.request for record in batch])
        counter.settle(len(batch), failed=sum(not r.ok for r in results))
        if len(results) != len(batch):
            raise RuntimeError(
                f"{type(scorer).__name__}.score_batch returned {len(results)} results for {len(batch)} requests"
            )
        good: list[tuple[Record, TrustResult]] = []
        for record, result in zip(batch, results, strict=True):
            if result.ok and result.trustworthiness_score is not None:
                good.append((record, result))
            else:
                summary.add_failure(record.key, result.error or "the scorer returned no score")
        failed_writes = {id(record): exc for record, exc in write(good)} if good else {}
        for record, result in good:
            exc = failed_writes.get(id(record))
            if exc is None:
                assert result.trustworthiness_score is not None
                summary.add_score(record.key, result.trustworthiness_score)
            else:
                summary.add_failure(record.key, f"writing the score failed: {type(exc).__name__}: {exc}")
        summary.seconds = time.perf_counter() - started
        if progress is not None:
            progress(summary)
    summary.seconds = time.perf_counter() - started
    return summary
