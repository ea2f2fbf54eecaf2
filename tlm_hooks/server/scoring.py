"""Which scorer handles a request, and running it without ever failing the request.

A server is given a ``Scorer`` (used for every request) or a factory ``(TLMOptions) -> Scorer``
called per request, so presets and options from the request body are honoured.
``DefaultScorers`` scores with token logprobs (``LogprobScorer``) and, when the scoring
engine (``tlm_hooks.scorers.tlm.TLMScorer``) is installed, hands it the requests that ask for a
preset or options other than ``base``, or that carry no logprobs to score from.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import InvalidOptionError
from ..options import TLMOptions
from ..scorers.asked import ascore_as_asked
from ..scorers.base import Scorer
from ..scorers.logprob import LogprobScorer
from ..scorers.signals.forms import skipped_result
from ..types import ScoreRequest, TokenLogprob, TrustResult
from . import compat
from .errors import Secrets
from .metrics import record_score

__all__ = [
    "ScorerFactory",
    "ScorerSource",
    "DefaultScorers",
    "add_warnings",
    "pick_scorer",
    "run_scorer",
    "token_logprobs",
]

logger = logging.getLogger("tlm_hooks")

ScorerFactory = Callable[[TLMOptions], Scorer]
ScorerSource = Scorer | ScorerFactory


def _engine() -> Any:
    """``TLMScorer`` when the scoring engine is installed, else ``None``."""
    try:
        from ..scorers.tlm import TLMScorer  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return TLMScorer


class DefaultScorers:
    """The default factory: ``LogprobScorer`` for ``base`` (or no options); otherwise the TLM engine.

    The engine (``TLMScorer``, with ``judge`` as its model) also takes responses that carry no
    token logprobs. Without the engine installed, everything goes to ``LogprobScorer``. With a
    ``calibration`` profile every request goes to the engine, which calibrates its score (a
    ``LogprobScorer`` score is not what the profile was fitted on).
    """

    def __init__(
        self, judge: Any = None, *, allow_model_provider: bool = False, calibration: Any = None, cache: Any = True
    ) -> None:
        self.judge = judge
        self.allow_model_provider = allow_model_provider
        self.calibration = calibration
        self.cache = cache  # the engine's score cache: True (the process's), False, or a ScoreCache
        self.logprob = LogprobScorer()

    def with_judge(self, judge: Any) -> DefaultScorers:
        """The same factory judging with ``judge`` (the model chosen for one request)."""
        copy = DefaultScorers(
            judge, allow_model_provider=self.allow_model_provider, calibration=self.calibration, cache=self.cache
        )
        copy.logprob = self.logprob
        return copy

    def __call__(self, options: TLMOptions, *, has_logprobs: bool = True) -> Scorer:
        if "model_provider" in options.options and not self.allow_model_provider:
            # a request naming an endpoint would make this server call any URL a client picks
            raise InvalidOptionError(
                "options.model_provider", "***", "nothing on this server (start it with --allow-model-provider)"
            )
        engine = _engine()
        preset = options.quality_preset
        wants_engine = preset not in (None, "base") or (preset is None and bool(options.options))
        if engine is None or not (wants_engine or not has_logprobs or self.calibration is not None):
            return self.logprob
        return engine(  # type: ignore[no-any-return]
            quality_preset=preset or "medium",
            task=options.task or "default",
            options=dict(options.options),
            judge=self.judge,
            **({} if self.calibration is None else {"calibration": self.calibration}),
            **({} if self.cache is True else {"cache": self.cache}),  # True: the engine's own default
        )


def pick_scorer(source: ScorerSource | None, options: TLMOptions | None, has_logprobs: bool = True) -> Scorer | None:
    """The scorer for one request (``None``: this server does not score)."""
    if source is None or isinstance(source, Scorer):
        return source
    chosen = TLMOptions() if options is None else options
    if isinstance(source, DefaultScorers):
        return source(chosen, has_logprobs=has_logprobs)
    return source(chosen)


def token_logprobs(entries: Sequence[Mapping[str, Any]] | None) -> tuple[TokenLogprob, ...] | None:
    """OpenAI ``logprobs.content`` entries as ``TokenLogprob``s (``None`` when there are none).

    Raises ``ValueError`` naming the first entry that is not ``{"token", "logprob", "top_logprobs"?}``.
    """
    if not entries:
        return None
    if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
        raise ValueError(f"expected a list of logprob entries, got {type(entries).__name__}")
    out = []
    for i, entry in enumerate(entries):
        alts = entry.get("top_logprobs") if isinstance(entry, Mapping) else None
        if not isinstance(entry, Mapping) or not _is_logprob(entry.get("logprob")):
            raise ValueError(f"entry {i}: expected an object with a number 'logprob'")
        if alts is not None and (
            not isinstance(alts, Sequence)
            or isinstance(alts, (str, bytes))
            or not all(isinstance(alt, Mapping) and _is_logprob(alt.get("logprob")) for alt in alts)
        ):
            raise ValueError(f"entry {i}: 'top_logprobs' must be a list of objects with a number 'logprob'")
        out.append(
            TokenLogprob(
                str(entry.get("token", "")),
                float(entry["logprob"]),
                tuple((str(alt.get("token", "")), float(alt["logprob"])) for alt in alts or ()),
            )
        )
    return tuple(out)


def _is_logprob(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def add_warnings(metadata: dict[str, Any], warnings: Sequence[str]) -> dict[str, Any]:
    """``metadata`` with ``warnings`` appended to its ``log.warnings`` list (kept when already there)."""
    if warnings:
        log = dict(metadata.get("log") or {})
        log["warnings"] = [*(log.get("warnings") or ()), *warnings]
        metadata["log"] = log
    return metadata


async def run_scorer(
    source: ScorerSource | None, request: ScoreRequest, secrets: Secrets, warnings: Sequence[str] = ()
) -> dict[str, Any]:
    """Score ``request``; a failure becomes a ``tlm_metadata`` carrying the (scrubbed) error.
    ``warnings`` (what the server did differently from what was asked) go to ``log.warnings``."""
    skipped = skipped_result(request)  # options.score_tool_calls: false, whichever scorer is picked
    if skipped is not None:
        return add_warnings(skipped.to_dict(), warnings)
    try:
        scorer = pick_scorer(source, request.options, request.response_logprobs is not None)
        if scorer is None:
            raise RuntimeError("this server has no scorer configured")
        # the library's path: disable_trustworthiness, max_timeout, log usage/perplexity, the cache
        result = await ascore_as_asked(scorer, request)
        if result.error is not None:
            logger.warning("tlm-hooks server: scoring failed: %s: %s", result.error_type, secrets.scrub(result.error))
    except Exception as exc:
        message = secrets.scrub(str(exc) or type(exc).__name__)
        logger.warning("tlm-hooks server: scoring failed: %s: %s", type(exc).__name__, message)
        result = TrustResult(None, error=message, error_type=type(exc).__name__)
    record_score(result.trustworthiness_score, result.components, failed=result.error is not None)
    data = result.to_dict()
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        error["message"] = secrets.scrub(error["message"])
    return add_warnings(compat.finish(data, request), warnings)
