"""A progress line on stderr: rows done of the total, rate, time left, failures so far.

On a terminal the line (with a bar) is rewritten in place, at most every 0.2 s; otherwise (a log
file, CI) a line is printed at most every 10 s, so logs stay short (``every`` overrides both).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]

_BAR = 24  # characters of the bar


class Progress:
    """Report a run's progress to ``stream``; ``total`` may be unknown (``None``)."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every if every is not None else (0.2 if self.tty else 10.0)
        self.clock = clock
        self.done = 0  # rows written, earlier runs included
        self.failed = 0
        self.bad = 0
        self._start_done = 0
        self._started = clock()
        self._shown = float("-inf")
        self._live = False
        self._last = ""

    def start(self, already_done: int = 0) -> None:
        """Begin timing; ``already_done`` rows came from an earlier run (not counted in the rate)."""
        self.done = self._start_done = already_done
        self._started = self.clock()
        self._show(force=True)

    def advance(self, rows: int, *, failed: int = 0, bad: int = 0) -> None:
        """``rows`` more rows are written, ``failed`` of them failed to score, ``bad`` were malformed."""
        self.done += rows
        self.failed += failed
        self.bad += bad
        self._show()

    def note(self, text: str) -> None:
        """Print a message on its own line (the progress line is redrawn after it)."""
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()
        if self.tty:  # redraw the line the message pushed up
            self._shown = float("-inf")
            self._show()

    def finish(self) -> None:
        """Print the final state and end the line."""
        self._show(force=True)
        if self.tty and self._live:
            self.stream.write("\n")
            self.stream.flush()
        self._live = False

    def text(self) -> str:
        """The progress line's text."""
        elapsed = max(1e-9, self.clock() - self._started)
        rate = (self.done - self._start_done) / elapsed
        bar = ""
        if self.tty and self.total:  # a bar on a terminal; logs get the numbers only
            filled = min(_BAR, int(_BAR * self.done / self.total))
            bar = " [" + "#" * filled + "-" * (_BAR - filled) + "]"
        parts = [f"{self.label}{bar}: {self.done:,}"]
        if self.total:
            parts[0] += f"/{self.total:,} rows ({100 * self.done / self.total:.0f}%)"
        else:
            parts[0] += " rows"
        if self.done > self._start_done and elapsed >= 1.0:  # a rate over less than a second is noise
            parts.append(f"{rate:.1f} rows/s")
            if self.total and rate > 0 and self.done < self.total:
                parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        if self.bad:
            parts.append(f"{self.bad:,} bad rows")
        return " | ".join(parts)

    def _show(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._shown < self.every:
            return
        self._shown = now
        text = self.text()
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self._live = True
        elif text != self._last:  # a log gets each state once
            self.stream.write(text + "\n")
        self._last = text
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and self._live:
            self.stream.write("\r\033[K")
            self._live = False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"
