"""`Calibration`: a fitted, versioned calibration profile — apply it, pick thresholds, save/load JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .combination import Combination
from .errors import CalibrationError
from .features import Features, features_of
from .labels import Labels
from .maps import ScoreMap, map_from_dict
from .thresholds import METRICS, Threshold, estimate, rates_at, select_threshold, target_of

__all__ = ["Calibration", "Validity", "Evidence", "FORMAT", "VERSION", "raw_score"]

FORMAT = "tlm-hooks-calibration"
VERSION = 1
REPEATS = 4  # repeated k-fold for threshold intervals: 4 shuffles x (up to) 5 folds
_EVIDENCE_COLUMNS = ("label", "trustworthiness_score", "token_probability", "self_reflection", "consistency")


def raw_score(row: Features, task: str = "default") -> float:
    """A row's score before calibration: the scorer's own, else the engine's weighted mean of its signals."""
    if row.score is not None:
        return row.score
    from ..scorers.signals.weights import weights_for

    return Combination(dict(weights_for(task)), "engine", task).combine(row)[0]


@dataclass(frozen=True)
class Validity:
    """What a profile was fitted for: the judge model, preset, task and scorer that made the
    scores, and the tlm-hooks version. ``None`` = not known (not stated when fitting)."""

    judge: str | None = None
    quality_preset: str | None = None
    task: str | None = None
    scorer: str | None = None
    engine_version: str | None = None

    def mismatches(
        self, *, judge: str | None = None, quality_preset: str | None = None, task: str | None = None
    ) -> list[str]:
        """How a scorer with these settings differs from what the profile was fitted for (only
        settings known on both sides are compared)."""
        out = []
        for name, mine, theirs in (
            ("judge", self.judge, judge),
            ("quality_preset", self.quality_preset, quality_preset),
            ("task", self.task, task),
        ):
            if mine is not None and theirs is not None and mine != theirs:
                out.append(f"{name} {theirs!r} (the profile was fitted for {mine!r})")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"judge": self.judge, "quality_preset": self.quality_preset, "task": self.task,
                "scorer": self.scorer, "engine_version": self.engine_version}  # fmt: skip


@dataclass(frozen=True)
class Evidence:
    """The labelled rows a profile was fitted on (kept so thresholds can be cross-validated)."""

    rows: tuple[Features, ...]
    labels: Labels

    def to_dict(self) -> dict[str, Any]:
        table = []
        for row, y in zip(self.rows, self.labels.values, strict=True):
            cells = [row.score, *(row.components.get(name) for name in _EVIDENCE_COLUMNS[2:])]
            table.append([round(y, 4), *(None if c is None else round(c, 4) for c in cells)])
        return {"columns": list(_EVIDENCE_COLUMNS), "rows": table, "labels": self.labels.describe()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        columns = list(data.get("columns", []))
        if columns != list(_EVIDENCE_COLUMNS):
            raise CalibrationError(f"the profile's evidence columns are {columns}, expected {list(_EVIDENCE_COLUMNS)}")
        rows, values = [], []
        for cells in data["rows"]:
            values.append(float(cells[0]))
            components = {n: float(c) for n, c in zip(_EVIDENCE_COLUMNS[2:], cells[2:], strict=True) if c is not None}
            rows.append(Features(None if cells[1] is None else float(cells[1]), components))
        described = data.get("labels", {})
        labels = Labels(tuple(values), str(described.get("kind", "binary")), float(described.get("low", 0.0)),
                        float(described.get("high", 1.0)))  # fmt: skip
        return cls(tuple(rows), labels)


@dataclass
class Calibration:
    """A calibration profile: signal weights (``combination``), a monotone ``score_map`` from the
    combined score to P(acceptable), what it is valid for (``valid_for``), facts about the
    labelled data (``data``: n, acceptable, labels, date, source) and cross-validated quality
    (``cv``: folds, log-loss of each map kind, AUROC/ECE/Brier before and after).

    Make one with :func:`tlm_hooks.calibrate`; ``apply`` turns a score (or a result with signal
    scores) into a calibrated one; ``threshold_for`` picks a threshold from a target.
    """

    combination: Combination
    score_map: ScoreMap
    valid_for: Validity = field(default_factory=Validity)
    data: Mapping[str, Any] = field(default_factory=dict)
    cv: Mapping[str, Any] = field(default_factory=dict)
    thresholds: tuple[Threshold, ...] = ()
    evidence: Evidence | None = field(default=None, repr=False)
    _folds: list[Any] | None = field(default=None, init=False, repr=False, compare=False)

    # -- using it -------------------------------------------------------------------------------

    def apply(self, value: Any) -> float:
        """The calibrated score (P(acceptable)) of ``value``: a raw score, a ``TrustResult``, a
        ``tlm_metadata`` dict, or a mapping of signal scores."""
        return self.apply_with_notes(value)[0]

    def apply_with_notes(self, value: Any) -> tuple[float, list[str]]:
        """:meth:`apply`, plus notes on what was filled in (a signal the profile has no weight for...)."""
        row = value if isinstance(value, Features) else features_of(value)
        if row.empty:
            raise CalibrationError(f"nothing to calibrate in {type(value).__name__}: expected a score or signal scores")
        combined, notes = self.combination.combine(row)
        return self.score_map(combined), notes

    def threshold_for(self, *, precision: float | None = None, recall: float | None = None,
                      flag_rate: float | None = None) -> Threshold:  # fmt: skip
        """The threshold on calibrated scores that meets one target: ``precision`` (share of
        trusted answers that are acceptable, the loosest such threshold), ``recall`` (share of
        acceptable answers trusted) or ``flag_rate`` (share flagged, at most). Chosen on all
        labelled rows; ``expected`` rates come from choosing the same way on each training split
        of repeated k-fold cross-validation and measuring on the held-out rows."""
        metric, goal = target_of(precision, recall, flag_rate)
        if self.evidence is None:
            for saved in self.thresholds:
                if saved.target == {metric: goal}:
                    return saved
            kept = ", ".join(f"{m}={v:g}" for t in self.thresholds for m, v in t.target.items()) or "none"
            raise CalibrationError(
                f"this profile was saved without its labelled rows, so only its stored thresholds can be used "
                f"({kept}); refit it, or save it with evidence=True"
            )
        return self._threshold(metric, goal)

    def _threshold(self, metric: str, goal: float) -> Threshold:
        assert self.evidence is not None
        labels = self.evidence.labels.values
        scores = [self.apply(row) for row in self.evidence.rows]
        value = select_threshold(scores, labels, metric, goal)
        if value is None:
            best = max(rates_at(scores, labels, t)["precision"] for t in set(scores))
            raise CalibrationError(
                f"precision {goal:g} is out of reach: the highest precision of any threshold on the "
                f"labelled rows is {best:.3f}"
            )
        per_fold: dict[str, list[float]] = {m: [] for m in METRICS}
        for fold in self._fold_fits():
            y_train = [labels[i] for i in fold.train]
            chosen = select_threshold(fold.train_scores, y_train, metric, goal)
            if chosen is None:
                continue  # out of reach on this split: no held-out rates
            held = rates_at(fold.test_scores, [labels[i] for i in fold.test], chosen)
            for m in METRICS:
                per_fold[m].append(held[m])
        expected = {m: estimate(v) for m, v in per_fold.items()}
        return Threshold(value, {metric: goal}, expected, rates_at(scores, labels, value))

    def cross_validated_scores(self) -> list[float]:
        """Each labelled row's calibrated score from weights and map fitted on the other folds
        (what ``cv["after"]`` is measured on)."""
        if self.evidence is None:
            raise CalibrationError("this profile was saved without its labelled rows: nothing to cross-validate")
        from .folds import out_of_fold

        return out_of_fold(self._fold_fits(), len(self.evidence.rows))

    def raw_scores(self) -> list[float]:
        """Each labelled row's score before calibration (the scorer's own score, else the
        engine's weighted mean of its signals)."""
        if self.evidence is None:
            raise CalibrationError("this profile was saved without its labelled rows")
        return [raw_score(row, self.combination.task) for row in self.evidence.rows]

    def _fold_fits(self) -> list[Any]:
        if self._folds is None:
            from .fitting import require_fitting
            from .folds import fit_folds

            require_fitting()
            assert self.evidence is not None
            kind = self.score_map.kind
            task = self.combination.task
            self._folds = fit_folds(self.evidence.rows, self.evidence.labels.values, kind, task, repeats=REPEATS)
        return self._folds

    def mismatches(
        self, *, judge: str | None = None, quality_preset: str | None = None, task: str | None = None
    ) -> list[str]:
        """How a scorer with these settings differs from what the profile was fitted for."""
        return self.valid_for.mismatches(judge=judge, quality_preset=quality_preset, task=task)

    # -- the JSON profile -------------------------------------------------------------------------

    def to_dict(self, *, evidence: bool = True) -> dict[str, Any]:
        """The profile as JSON-ready data (``evidence=False`` leaves out the labelled rows)."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "valid_for": self.valid_for.to_dict(),
            "data": dict(self.data),
            "combination": self.combination.to_dict(),
            "map": self.score_map.to_dict(),
            "cv": dict(self.cv),
            "thresholds": [t.to_dict() for t in self.thresholds],
        }
        if evidence and self.evidence is not None:
            out["evidence"] = self.evidence.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Read a profile; :class:`CalibrationError` says what is wrong with a bad one."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise CalibrationError(f"not a tlm-hooks calibration profile (its 'format' must be {FORMAT!r})")
        version = data.get("version")
        if not isinstance(version, int) or version > VERSION or version < 1:
            raise CalibrationError(
                f"calibration profile version {version!r} is not supported by this tlm-hooks (reads 1 to {VERSION}); "
                "upgrade tlm-hooks or refit the profile"
            )
        try:
            valid = data.get("valid_for") or {}
            evidence = data.get("evidence")
            return cls(
                Combination.from_dict(data["combination"]),
                map_from_dict(data["map"]),
                Validity(**{k: valid.get(k) for k in ("judge", "quality_preset", "task", "scorer", "engine_version")}),
                dict(data.get("data") or {}),
                dict(data.get("cv") or {}),
                tuple(Threshold.from_dict(t) for t in data.get("thresholds") or ()),
                Evidence.from_dict(evidence) if evidence else None,
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"malformed calibration profile: {type(exc).__name__}: {exc}") from None

    def save(self, path: str | os.PathLike[str], *, evidence: bool = True) -> Path:
        """Write the profile as indented JSON to ``path``; returns the path."""
        target = Path(path)
        target.write_text(json.dumps(self.to_dict(evidence=evidence), indent=1) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        """Read a profile written by :meth:`save`."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CalibrationError(
                f"cannot read calibration profile {os.fspath(path)!r}: {exc.strerror or exc}"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"{os.fspath(path)!r} is not JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_dict(data)

    @classmethod
    def coerce(cls, value: Calibration | str | os.PathLike[str] | Mapping[str, Any]) -> Calibration:
        """A profile from itself, a path to its JSON file, or its dict."""
        if isinstance(value, Calibration):
            return value
        if isinstance(value, (str, os.PathLike)):
            return cls.load(value)
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise CalibrationError(f"calibration must be a Calibration, a profile path or dict, got {type(value).__name__}")
