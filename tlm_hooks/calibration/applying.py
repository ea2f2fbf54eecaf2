"""Use a profile where scores are made: the calibrated score becomes ``trustworthiness_score``,
the raw one and any warning go in the result's ``calibration`` (``tlm_metadata["log"]``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..types import TrustResult
from .profile import Calibration

__all__ = ["ScoreCalibrator"]

logger = logging.getLogger("tlm_hooks")


class ScoreCalibrator:
    """Applies one profile to a scorer's results. A profile fitted for another judge, preset or
    task is still applied, with a warning logged once per difference and written into every
    result it touches."""

    def __init__(self, calibration: Calibration | str | os.PathLike[str] | Mapping[str, Any]) -> None:
        self.profile = Calibration.coerce(calibration)
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        v = self.profile.valid_for
        return f"ScoreCalibrator({self.profile.score_map.kind}, judge={v.judge!r}, quality_preset={v.quality_preset!r})"

    def __call__(
        self,
        result: TrustResult,
        *,
        judge: str | None = None,
        quality_preset: str | None = None,
        task: str | None = None,
    ) -> TrustResult:
        """``result`` with its score calibrated (a failed result is returned as it is)."""
        if not result.ok or result.trustworthiness_score is None:
            return result
        calibrated, notes = self.profile.apply_with_notes(result)
        warnings = list(notes)
        for difference in self.profile.mismatches(judge=judge, quality_preset=quality_preset, task=task):
            message = f"the calibration profile is used with {difference}: its scores may be off"
            warnings.append(message)
            if message not in self._warned:
                self._warned.add(message)
                logger.warning("tlm-hooks: %s", message)
        info: dict[str, Any] = {"raw_score": result.trustworthiness_score, "map": self.profile.score_map.kind}
        if warnings:
            info["warnings"] = warnings
        # the mismatch also goes to log.warnings, where every other "less than asked" is said
        return replace(
            result,
            trustworthiness_score=min(1.0, max(0.0, calibrated)),
            calibration=info,
            warnings=(*result.warnings, *warnings),
        )
