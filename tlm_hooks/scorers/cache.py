"""Stored scores: the same request scored the same way returns its stored result without judge calls.

A key is the SHA-256 of the canonical JSON of what decides a score (the request, the options
that change it, the judge, the engine version): no prompt or response text is stored in clear in
a key. A value is the result's ``tlm_metadata`` (score, explanation, per-component scores,
warnings), so a cache holds scores and explanations, and an explanation can quote the response:
keep a persistent cache where the scored data may be kept.

:class:`MemoryCache` is a bounded LRU for one process (the default). :class:`SQLiteCache` is a file
that several processes can share (``tlm-hooks score`` re-runs, server replicas on one host): SQLite's
own locking makes concurrent readers and writers safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["ScoreCache", "MemoryCache", "SQLiteCache", "cache_key", "score_key", "open_cache", "default_cache"]

_FORMAT = 1  # bumped when what a key covers or a value holds changes
# options that do not change the engine's result: they act around it (tlm_hooks.scorers.asked)
_NOT_IN_KEY = ("max_timeout", "cache", "disable_persistence", "disable_trustworthiness")
_LOG_NOT_IN_KEY = ("usage", "perplexity")


@runtime_checkable
class ScoreCache(Protocol):
    """Where scores are kept: ``get`` a stored ``tlm_metadata`` dict by key, ``put`` one."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: Mapping[str, Any]) -> None: ...


def cache_key(parts: Mapping[str, Any]) -> str:
    """The hex SHA-256 of ``parts`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def score_key(request: Any, options: Any, *, judge: Mapping[str, Any]) -> str:
    """The cache key of scoring ``request`` (a ScoreRequest) with ``options`` (TLMOptions) on ``judge``
    (what names the judge: model, endpoint), for this engine version."""
    from .. import __version__

    settings = {k: v for k, v in options.options.items() if k not in _NOT_IN_KEY}
    log = sorted(k for k in settings.pop("log", ()) if k not in _LOG_NOT_IN_KEY)
    if log:
        settings["log"] = log
    if "model_provider" in settings:  # which key a request used does not change its score
        settings["model_provider"] = {k: v for k, v in settings["model_provider"].items() if k != "api_key"}
    logprobs = request.response_logprobs
    parts = {
        "format": _FORMAT,
        "engine": __version__,
        "judge": dict(judge),
        "quality_preset": options.quality_preset,
        "task": options.task,
        "options": settings,
        "messages": [dict(m) for m in request.messages] if request.messages is not None else None,
        "prompt": request.prompt,
        "response": request.response,
        "tools": [dict(t) for t in request.tools] if request.tools is not None else None,
        "tool_calls": [dict(c) for c in request.tool_calls] if request.tool_calls is not None else None,
        "context": request.context,
        "logprobs": [[t.token, t.logprob, [list(a) for a in t.top_logprobs]] for t in logprobs]
        if logprobs is not None
        else None,
    }
    return cache_key(parts)


class MemoryCache:
    """The ``max_entries`` most recently used scores of this process (thread-safe)."""

    def __init__(self, max_entries: int = 4096) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an integer >= 1, got {max_entries!r}")
        self.max_entries = max_entries
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryCache(max_entries={self.max_entries})"

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:  # an empty cache is still a cache (``cache or default`` must keep it)
        return True

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            raw = self._items.get(key)
            if raw is None:
                return None
            self._items.move_to_end(key)
        return json.loads(raw)  # type: ignore[no-any-return]

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        raw = json.dumps(value)  # stored as text: no caller can change a stored result afterwards
        with self._lock:
            self._items[key] = raw
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class SQLiteCache:
    """Scores in an SQLite file shared by processes; the ``max_entries`` most recently stored are kept."""

    blocking = True  # file I/O: async callers run it in a worker thread

    def __init__(self, path: str | os.PathLike[str], *, max_entries: int = 1_000_000) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an integer >= 1, got {max_entries!r}")
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"cache path {str(self.path)!r} is a directory; give a file path (e.g. scores.sqlite)")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._puts = 0
        self._connect()  # a path that cannot be opened fails here, not at the first score

    def __repr__(self) -> str:
        return f"SQLiteCache({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        # a connection is never shared with a forked child: each process opens its own
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL, stored REAL)")
            conn.execute("CREATE INDEX IF NOT EXISTS scores_stored ON scores (stored)")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._connect().execute("SELECT value FROM scores WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        raw = json.dumps(value)
        with self._lock:
            conn = self._connect()
            conn.execute("INSERT OR REPLACE INTO scores (key, value, stored) VALUES (?, ?, ?)", (key, raw, time.time()))
            self._puts += 1
            if self._puts % 1000 == 0:  # bound the file now and then, not on every write
                conn.execute(
                    "DELETE FROM scores WHERE key IN (SELECT key FROM scores ORDER BY stored DESC LIMIT -1 OFFSET ?)",
                    (self.max_entries,),
                )

    def __bool__(self) -> bool:  # an empty cache is still a cache
        return True

    def __len__(self) -> int:
        with self._lock:
            return int(self._connect().execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_DEFAULT: MemoryCache | None = None
_DEFAULT_LOCK = threading.Lock()


def default_cache() -> MemoryCache:
    """The process's shared in-memory cache (4,096 scores)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = MemoryCache()
        return _DEFAULT


def open_cache(spec: Any) -> ScoreCache | None:
    """A cache from ``TLMScorer(cache=...)``: ``True``/``None`` the process's in-memory cache,
    ``False`` none, a path an :class:`SQLiteCache` file, or any :class:`ScoreCache`."""
    if spec is None or spec is True:
        return default_cache()
    if spec is False:
        return None
    if isinstance(spec, (str, os.PathLike)):
        return SQLiteCache(spec)
    if isinstance(spec, ScoreCache):
        return spec
    raise ValueError(
        f"cache must be True, False, a file path or an object with get/put (a ScoreCache), got {type(spec).__name__}"
    )
