"""Cross-validation: the pipeline fitted on some rows and scored on the others, fold by fold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .features import Features
from .fitting import fit_pipeline

__all__ = ["Fold", "fold_count", "fit_folds", "out_of_fold"]

MAX_FOLDS = 5


@dataclass(frozen=True)
class Fold:
    """One split: ``train``/``test`` row indexes and the scores the pipeline fitted on ``train``
    gives to each (``train_scores`` in-sample, ``test_scores`` held out)."""

    repeat: int
    train: tuple[int, ...]
    test: tuple[int, ...]
    train_scores: tuple[float, ...]
    test_scores: tuple[float, ...]


def fold_count(labels: Sequence[float]) -> int:
    """Folds for these labels: 5, fewer when a class has fewer rows (at least 2)."""
    acceptable = sum(1 for y in labels if y >= 0.5)
    return max(2, min(MAX_FOLDS, acceptable, len(labels) - acceptable))


def fit_folds(
    rows: Sequence[Features], labels: Sequence[float], kind: str, task: str, *, repeats: int = 1, k: int | None = None
) -> list[Fold]:
    """Stratified ``k``-fold splits, ``repeats`` times with different shuffles (seeds 0, 1, ...)."""
    from sklearn.model_selection import StratifiedKFold

    k = k or fold_count(labels)
    strata = [int(y >= 0.5) for y in labels]
    out = []
    for repeat in range(repeats):
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=repeat)
        for train, test in splitter.split(strata, strata):
            pipeline = fit_pipeline([rows[i] for i in train], [labels[i] for i in train], kind, task)
            out.append(
                Fold(
                    repeat,
                    tuple(int(i) for i in train),
                    tuple(int(i) for i in test),
                    tuple(pipeline(rows[i]) for i in train),
                    tuple(pipeline(rows[i]) for i in test),
                )
            )
    return out


def out_of_fold(folds: Sequence[Fold], n: int, repeat: int = 0) -> list[float]:
    """Every row's held-out score from the folds of one repeat."""
    scores = [float("nan")] * n
    for fold in folds:
        if fold.repeat == repeat:
            for i, s in zip(fold.test, fold.test_scores, strict=True):
                scores[i] = s
    return scores
