"""`TLMCalibrated`: Cleanlab's calibrated-TLM surface (``fit``, ``prompt``, ``get_trustworthiness_score``)
on our engine, with ``calibrated_score`` next to ``trustworthiness_score``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, overload

from ..scorers.base import Scorer
from ..tlm import TLM
from .errors import CalibrationError, NotCalibratedError
from .fit import calibrate
from .profile import Calibration

__all__ = ["TLMCalibrated"]

Item = dict[str, Any]
_COMPONENTS = "per_component_score"


class TLMCalibrated:
    """Like :class:`tlm_hooks.TLM`, plus ``fit(tlm_scores, ratings)``: each result also carries
    ``calibrated_score``, a score fitted to your ratings (numeric ratings are normalised min–max,
    as Cleanlab's class does; booleans work too).

    ``tlm_scores`` are the dicts ``TLM.get_trustworthiness_score`` returned (ours or Cleanlab's);
    when they hold ``log.per_component_score`` the signal weights are fitted as well, otherwise
    the trustworthiness score alone is calibrated. ``calibration`` uses a fitted profile (or
    its JSON path) instead of ``fit``. Results that failed keep ``calibrated_score = None``.
    """

    def __init__(
        self,
        quality_preset: str = "medium",
        task: str | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        scorer: Scorer | None = None,
        calibration: Calibration | str | os.PathLike[str] | None = None,
        max_concurrency: int = 8,
        show_progress: bool = False,
    ) -> None:
        self.options = dict(options or {})
        asked = self.options.get("log") or []
        # the engine's signal scores feed a profile with fitted weights: always ask for them,
        # and hand back only the log keys the caller asked for
        self._wanted_log = list(asked)
        engine_options = {**self.options, "log": sorted({*asked, _COMPONENTS})}
        self.tlm = TLM(quality_preset, task, engine_options, scorer=scorer, max_concurrency=max_concurrency,
                       show_progress=show_progress)  # fmt: skip
        self.calibration = Calibration.coerce(calibration) if calibration is not None else None

    def __repr__(self) -> str:
        fitted = "fitted" if self.calibration is not None else "not fitted"
        return f"TLMCalibrated({self.tlm!r}, {fitted})"

    def fit(self, tlm_scores: Sequence[Mapping[str, Any]], ratings: Sequence[Any]) -> None:
        """Fit the calibration to ``ratings`` of the responses behind ``tlm_scores`` (same order)."""
        scores = list(tlm_scores)
        values = list(ratings)
        if len(scores) != len(values):
            raise CalibrationError(f"{len(scores)} TLM scores but {len(values)} ratings: they must pair up")
        o = self.tlm.options
        self.calibration = calibrate(scores, values, quality_preset=o.quality_preset, task=o.task)

    @overload
    def prompt(self, prompt: str) -> Item: ...
    @overload
    def prompt(self, prompt: list[str]) -> list[Item]: ...
    def prompt(self, prompt: str | Sequence[str]) -> Item | list[Item]:
        """Answer ``prompt``(s); each result has ``calibrated_score`` too."""
        self._check_fitted("prompting")
        return self._with_calibrated(self.tlm.prompt(prompt))  # type: ignore[arg-type]

    @overload
    def get_trustworthiness_score(self, prompt: str, response: str) -> Item: ...
    @overload
    def get_trustworthiness_score(self, prompt: list[str], response: list[str]) -> list[Item]: ...
    def get_trustworthiness_score(
        self, prompt: str | Sequence[str], response: str | Sequence[str]
    ) -> Item | list[Item]:
        """Score given responses; each result has ``calibrated_score`` too."""
        self._check_fitted("scoring")
        return self._with_calibrated(self.tlm.get_trustworthiness_score(prompt, response))  # type: ignore[arg-type]

    async def prompt_async(self, prompt: str | Sequence[str]) -> Item | list[Item]:
        """Async form of :meth:`prompt`."""
        self._check_fitted("prompting")
        return self._with_calibrated(await self.tlm.prompt_async(prompt))

    async def get_trustworthiness_score_async(
        self, prompt: str | Sequence[str], response: str | Sequence[str]
    ) -> Item | list[Item]:
        """Async form of :meth:`get_trustworthiness_score`."""
        self._check_fitted("scoring")
        return self._with_calibrated(await self.tlm.get_trustworthiness_score_async(prompt, response))

    def _check_fitted(self, doing: str) -> None:
        if self.calibration is None:
            raise NotCalibratedError(
                f"TLMCalibrated has to be calibrated before {doing}: call .fit(tlm_scores, ratings) first "
                "(or pass calibration=profile)"
            )

    def _with_calibrated(self, out: Item | list[Item]) -> Item | list[Item]:
        if isinstance(out, list):
            return [self._one(item) for item in out]
        return self._one(out)

    def _one(self, item: Item) -> Item:
        assert self.calibration is not None
        calibrated = None if item.get("trustworthiness_score") is None else self.calibration.apply(item)
        shaped = dict(item)
        log = shaped.get("log")
        if isinstance(log, Mapping):
            kept = {k: v for k, v in log.items() if k in self._wanted_log}
            if kept or self._wanted_log:
                shaped["log"] = kept
            else:
                del shaped["log"]
        shaped["calibrated_score"] = calibrated
        return shaped
