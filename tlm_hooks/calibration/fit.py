"""`calibrate`: fit a calibration profile on labelled rows (scoring the ones that need it)."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..datasets.columns import Columns
from ..datasets.progress import Progress
from ..datasets.sync import run_to_end
from ..scorers.base import Scorer
from .errors import CalibrationError
from .features import Features, read_features
from .fitting import fit_pipeline, require_fitting
from .folds import fit_folds, fold_count, out_of_fold
from .labels import MIN_EXAMPLES, Labels, read_labels
from .maps import MAP_KINDS
from .metrics import auroc, brier, ece, log_loss
from .profile import Calibration, Evidence, Validity, raw_score
from .scoring import describe, score_missing

__all__ = ["calibrate", "acalibrate", "REPORTED_PRECISIONS"]

REPORTED_PRECISIONS = (0.8, 0.9, 0.95)  # thresholds stored in every profile


def calibrate(
    rows: Sequence[Any],
    labels: Sequence[Any],
    *,
    scorer: Scorer | None = None,
    judge: str | None = None,
    quality_preset: str | None = None,
    task: str | None = None,
    names: Sequence[str] | None = None,
    columns: Columns | None = None,
    min_examples: int = MIN_EXAMPLES,
    label_scale: tuple[float, float] | None = None,
    source: str | None = None,
    progress: bool | Progress = False,
    scores_path: str | os.PathLike[str] | None = None,
    resume: bool = True,
) -> Calibration:
    """Fit a :class:`Calibration` on ``rows`` and their ``labels`` (1/True = acceptable).

    ``rows`` are scored rows — ``TrustResult``\\ s, ``tlm_metadata`` or ``get_trustworthiness_score``
    dicts (signal scores from ``log.per_component_score``, so score with
    ``options={"log": ["per_component_score"]}``), flat dicts with ``token_probability`` /
    ``self_reflection`` / ``consistency`` / ``trustworthiness_score`` keys, or bare scores — or
    unscored rows (``ScoreRequest``\\ s, or prompt/response dicts read with the ``tlm-hooks score``
    column rules), which ``scorer`` scores first. ``labels``: booleans, 0–1 ratings or any numeric
    rating (see :func:`read_labels`).

    Fits non-negative signal weights, then a Platt or isotonic map, whichever has the lower
    cross-validated log-loss. ``judge``, ``quality_preset``, ``task`` record what the profile is
    valid for (taken from ``scorer`` when not given).

    ``scores_path``: a file (JSON lines) where each row ``scorer`` scores is saved as its batch
    finishes. Calling again after an interruption (Ctrl-C, a crash, a judge outage) reuses the
    saved rows and scores only the rest; so does a re-fit with other labels or options (no model
    call at all when every row is saved; then ``scorer`` may be left out). A row is reused when
    its name and request are unchanged; rows saved by another scorer are refused
    (:class:`~tlm_hooks.datasets.ResumeError`) unless ``resume=False``, which scores every row
    again and starts the file over.

    Works inside a running event loop; Ctrl-C stops the scoring. From async code use
    :func:`acalibrate`.
    """
    return run_to_end(
        lambda: acalibrate(
            rows,
            labels,
            scorer=scorer,
            judge=judge,
            quality_preset=quality_preset,
            task=task,
            names=names,
            columns=columns,
            min_examples=min_examples,
            label_scale=label_scale,
            source=source,
            progress=progress,
            scores_path=scores_path,
            resume=resume,
        )  # fmt: skip
    )


async def acalibrate(
    rows: Sequence[Any],
    labels: Sequence[Any],
    *,
    scorer: Scorer | None = None,
    judge: str | None = None,
    quality_preset: str | None = None,
    task: str | None = None,
    names: Sequence[str] | None = None,
    columns: Columns | None = None,
    min_examples: int = MIN_EXAMPLES,
    label_scale: tuple[float, float] | None = None,
    source: str | None = None,
    progress: bool | Progress = False,
    scores_path: str | os.PathLike[str] | None = None,
    resume: bool = True,
) -> Calibration:
    """Async form of :func:`calibrate`."""
    require_fitting()
    items = list(rows)
    where = list(names) if names is not None else [f"row {i}" for i in range(len(items))]
    if len(where) != len(items):
        raise CalibrationError(f"{len(names or ())} names for {len(items)} rows")
    if len(list(labels)) != len(items):
        raise CalibrationError(f"{len(items)} rows but {len(list(labels))} labels: give one label per row")
    checked = read_labels(labels, where, min_examples=min_examples, scale=label_scale)  # before any scoring
    features = read_features(items, where)
    unscored = [i for i, f in enumerate(features) if f.empty]
    about: Mapping[str, Any] = describe(scorer) if scorer is not None else {}
    scored = reused = 0
    if unscored:
        missing = await score_missing(items, unscored, where, scorer, columns=columns, progress=progress,
                                      scores_path=scores_path, resume=resume)  # fmt: skip
        features = [missing.features.get(i, f) for i, f in enumerate(features)]
        about, scored, reused = missing.about, missing.scored, missing.reused
    valid = Validity(
        judge=judge or about.get("judge"),
        quality_preset=quality_preset or about.get("quality_preset"),
        task=task or about.get("task"),
        scorer=about.get("scorer") if unscored else None,
        engine_version=_version(),
    )
    return fit_profile(features, checked, valid, task=valid.task or "default", source=source,
                       scored=scored, reused=reused)  # fmt: skip


def fit_profile(
    features: Sequence[Features],
    labels: Labels,
    valid: Validity,
    *,
    task: str = "default",
    source: str | None = None,
    scored: int = 0,
    reused: int = 0,
) -> Calibration:
    """Fit weights and map on scored rows, cross-validate, and build the profile (``scored``:
    rows scored by this run, ``reused``: rows whose scores an earlier run saved)."""
    y = labels.values
    k = fold_count(y)
    fold_sets = {kind: fit_folds(features, y, kind, task, k=k) for kind in MAP_KINDS}
    held_out = {kind: out_of_fold(folds, len(y)) for kind, folds in fold_sets.items()}
    losses = {kind: log_loss(scores, y) for kind, scores in held_out.items()}
    kind = min(MAP_KINDS, key=lambda name: (round(losses[name], 6), MAP_KINDS.index(name)))  # a tie: Platt
    pipeline = fit_pipeline(features, y, kind, task)
    before = [raw_score(row, pipeline.combination.task) for row in features]
    after = held_out[kind]
    data = {
        "n": len(y),
        "acceptable": round(sum(y), 4),
        "labels": labels.describe(),
        "fitted_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "source": source,
        "scored_here": scored,
        "scores_reused": reused,
    }
    cv = {
        "folds": k,
        "map_log_loss": {name: round(value, 4) for name, value in losses.items()},
        "chosen_map": kind,
        "before": _quality(before, y),
        "after": _quality(after, y),
        "note": "after = each row scored by the profile fitted on the other folds (weights and map)",
    }
    profile = Calibration(
        pipeline.combination, pipeline.score_map, valid, data, cv, (), Evidence(tuple(features), labels)
    )
    stored = []
    for precision in REPORTED_PRECISIONS:
        try:
            stored.append(profile.threshold_for(precision=precision))
        except CalibrationError:
            continue  # out of reach on these rows: the report says so
    profile.thresholds = tuple(stored)
    return profile


def _quality(scores: Sequence[float], labels: Sequence[float]) -> dict[str, float]:
    return {"auroc": round(auroc(scores, labels), 4), "ece": round(ece(scores, labels), 4),
            "brier": round(brier(scores, labels), 4), "log_loss": round(log_loss(scores, labels), 4)}  # fmt: skip


def _version() -> str:
    from .. import __version__

    return __version__
