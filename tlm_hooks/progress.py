"""One progress display for every long job: a tqdm bar on a terminal, plain lines in a log.

``with progress(total, "scoring rows") as bar: ... bar.advance(1)`` is all a job needs. On a
terminal the bar is tqdm's; elsewhere (a log file, CI, a notebook's stderr) a plain line is
printed at the start, then at most every 10 s or each further 10 % of the total, and at the end.
``show=None`` shows the bar on a terminal only, ``show=True`` also writes the plain lines,
``show=False`` shows nothing. ``TLM_HOOKS_PROGRESS=0`` (or ``false``/``no``/``off``) in the
environment turns every display off, whatever the caller asked.

Scorers report each row as it finishes (:func:`row_reporter`, used by
``BaseScorer.ascore_batch``), so a display advances per row, not per batch.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

__all__ = [
    "Progress",
    "progress",
    "progress_enabled",
    "counting_rows",
    "row_reporter",
    "uncounted",
    "RowCounter",
    "ENV_VAR",
]

ENV_VAR = "TLM_HOOKS_PROGRESS"
_OFF = frozenset({"0", "false", "no", "off"})
_STEP = 0.10  # a plain line at least every 10 % of the total


def progress_enabled(show: bool | None = True) -> bool:
    """False when ``show`` is False or ``$TLM_HOOKS_PROGRESS`` turns progress off."""
    if show is False:
        return False
    return os.environ.get(ENV_VAR, "").strip().lower() not in _OFF


class Progress:
    """Report a job's progress on ``stream`` (stderr); ``total`` may be unknown (``None``).

    ``every`` is the most often a plain line is printed (default 10 s); on a terminal tqdm
    redraws at most every 0.2 s. ``start`` → ``advance``/``note`` … → ``finish``.
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        show: bool | None = True,
        unit: str = "rows",
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every if every is not None else 10.0
        self.clock = clock
        self.unit = unit
        self.shown = progress_enabled(show) and (self.tty or show is True)
        self.done = 0  # units finished, earlier runs included
        self.failed = 0
        self.bad = 0
        self._start_done = 0
        self._started = clock()
        self._shown_at = float("-inf")
        self._shown_done = -1
        self._bar: Any = None

    def start(self, already_done: int = 0) -> None:
        """Begin timing; ``already_done`` units came from an earlier run (not counted in the rate)."""
        self.done = self._start_done = already_done
        self._started = self.clock()
        if not self.shown:
            return
        if self.tty:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total, initial=already_done, desc=self.label, unit=self.unit.rstrip("s") or "it",
                file=self.stream, dynamic_ncols=True, mininterval=0.2, leave=True,
            )  # fmt: skip
        else:
            self._line(force=True)

    def advance(self, rows: int = 1, *, failed: int = 0, bad: int = 0) -> None:
        """``rows`` more units are done, ``failed`` of them failed, ``bad`` were malformed input."""
        self.done += rows
        self.failed += failed
        self.bad += bad
        if self._bar is not None:
            if failed or bad:
                self._bar.set_postfix_str(", ".join(self._problems()), refresh=False)
            self._bar.update(rows)
        elif self.shown:
            self._line()

    def note(self, text: str) -> None:
        """Print a message on its own line (a terminal bar is redrawn below it)."""
        if not self.shown:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def finish(self) -> None:
        """Show the final state and end the display."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.shown:
            self._line(force=True)

    def text(self) -> str:
        """The plain progress line: done of total, rate, time left, failures."""
        elapsed = max(1e-9, self.clock() - self._started)
        rate = (self.done - self._start_done) / elapsed
        head = f"{self.label}: {self.done:,}"
        if self.total:
            head += f"/{self.total:,} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            head += f" {self.unit}"
        parts = [head]
        if self.done > self._start_done and elapsed >= 1.0:  # a rate over less than a second is noise
            one = self.unit[:-1] if self.unit.endswith("s") else self.unit
            parts.append(f"{rate:.1f} {self.unit}/s" if rate >= 0.1 else f"{1 / rate:.0f} s/{one}")
            if self.total and rate > 0 and self.done < self.total:
                parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        return " | ".join(parts + self._problems())

    def _problems(self) -> list[str]:
        parts = []
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        if self.bad:
            parts.append(f"{self.bad:,} bad rows")
        return parts

    def _line(self, force: bool = False) -> None:
        if self.done == self._shown_done:
            return  # a log gets each state once
        now = self.clock()
        step = max(1, int(self.total * _STEP)) if self.total else None
        due = now - self._shown_at >= self.every or (step is not None and self.done - self._shown_done >= step)
        if not (force or due):
            return
        self._shown_at, self._shown_done = now, self.done
        self.stream.write(self.text() + "\n")
        self.stream.flush()


@contextmanager
def progress(
    total: int | None,
    desc: str,
    *,
    show: bool | None = None,
    stream: TextIO | None = None,
    initial: int = 0,
    unit: str = "rows",
) -> Iterator[Progress]:
    """A started :class:`Progress` for the ``with`` block, finished when it ends; rows that
    scorers finish inside the block (their ``ascore_batch``) advance it one by one."""
    bar = Progress(desc, total, stream=stream, show=show, unit=unit)
    bar.start(initial)
    try:
        with counting_rows(bar):
            yield bar
    finally:
        bar.finish()


class RowCounter:
    """Counts rows as scorers finish them and advances a :class:`Progress` for each."""

    def __init__(self, bar: Progress | None) -> None:
        self.bar = bar
        self.rows = 0
        self.failed = 0
        self._lock = threading.Lock()

    def finished(self, ok: bool = True) -> None:
        """One row is done (``ok=False``: it failed to score). Safe from several threads."""
        with self._lock:
            self.rows += 1
            self.failed += not ok
            if self.bar is not None:
                self.bar.advance(1, failed=0 if ok else 1)

    def settle(self, rows: int, *, failed: int = 0, bad: int = 0) -> None:
        """A batch of ``rows`` is done: advance by what was not reported row by row, then restart."""
        if self.bar is not None:
            self.bar.advance(max(0, rows - self.rows), failed=max(0, failed - self.failed), bad=bad)
        self.rows = self.failed = 0


_ROWS: ContextVar[RowCounter | None] = ContextVar("tlm_hooks_progress_rows", default=None)


@contextmanager
def counting_rows(bar: Progress | None) -> Iterator[RowCounter]:
    """Within the block, rows finished by ``ascore_batch`` advance ``bar`` one at a time."""
    counter = RowCounter(bar)
    token = _ROWS.set(counter)
    try:
        yield counter
    finally:
        _ROWS.reset(token)


def row_reporter(*, hide: bool = True) -> RowCounter | None:
    """For a scorer's batch: the counter its rows report to, or None. Called once per row inside
    that row's own task, it also hides the counter from batches nested in the row (they must not
    count their items as rows); ``hide=False`` only looks (then run each row in :func:`uncounted`)."""
    counter = _ROWS.get()
    if counter is not None and hide:
        _ROWS.set(None)
    return counter


@contextmanager
def uncounted() -> Iterator[None]:
    """Within the block, finished batch items are not counted as rows of a progress display."""
    token = _ROWS.set(None)
    try:
        yield
    finally:
        _ROWS.reset(token)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"
