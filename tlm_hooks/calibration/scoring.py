"""Score the labelled rows that have no scores yet, with a given scorer (components kept),
reusing and adding to a saved-scores file when one is given."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..datasets.columns import Columns, RowProblem
from ..progress import Progress, counting_rows
from ..scorers.base import Scorer
from ..types import ScoreRequest, TrustResult
from .errors import CalibrationError, name_rows
from .features import Features, read_features
from .saved_scores import SavedScores, request_key

__all__ = ["request_of", "ascore_rows", "score_missing", "Missing", "judge_name", "describe"]

BATCH = 16  # rows per batch between progress updates and saves


def request_of(row: Any, columns: Columns | None = None) -> ScoreRequest:
    """The request that scores ``row``: a :class:`ScoreRequest`, or a mapping read with the
    ``tlm-hooks score`` column rules (``prompt``/``response`` or ``messages``...)."""
    if isinstance(row, ScoreRequest):
        return row
    if not isinstance(row, Mapping):
        raise RowProblem(f"a {type(row).__name__} has no score and is no prompt/response row")
    chosen = (columns or Columns()).resolve(list(row), "the row")
    return chosen.request(row)


async def ascore_rows(
    requests: Sequence[ScoreRequest],
    names: Sequence[str],
    scorer: Scorer,
    *,
    progress: bool | Progress = False,
    already_done: int = 0,
    after_batch: Callable[[int, Sequence[TrustResult]], None] | None = None,
) -> list[TrustResult]:
    """Score ``requests`` in batches with ``scorer.ascore_batch``; a row that fails to score is
    an error naming it (a calibration must not silently lose rows). ``after_batch(start,
    results)`` is called as each batch finishes; ``already_done`` rows were done before (for the
    progress display)."""
    reporter = progress if isinstance(progress, Progress) else Progress("scoring", len(requests)) if progress else None
    results: list[TrustResult] = []
    if reporter is not None:
        reporter.start(already_done)
    try:
        with counting_rows(reporter) as counter:  # rows advance the display as they finish
            for start in range(0, len(requests), BATCH):
                batch = list(requests[start : start + BATCH])
                done = list(await scorer.ascore_batch(batch))
                results.extend(done)
                if after_batch is not None:
                    after_batch(start, done)
                counter.settle(len(batch), failed=sum(not r.ok for r in done))
    finally:
        if reporter is not None:
            reporter.finish()
    failed = [f"{names[i]} ({r.error})" for i, r in enumerate(results) if not r.ok]
    if failed:
        raise CalibrationError(f"{len(failed)} row(s) failed to score: {name_rows(failed)}")
    return results


@dataclass(frozen=True)
class Missing:
    """The scores of the rows that had none: ``features`` by row position, how many were
    ``scored`` now and ``reused`` from the saved-scores file, and ``about`` the scorer."""

    features: dict[int, Features]
    scored: int
    reused: int
    about: Mapping[str, Any]


async def score_missing(
    items: Sequence[Any],
    unscored: Sequence[int],
    where: Sequence[str],
    scorer: Scorer | None,
    *,
    columns: Columns | None = None,
    progress: bool | Progress = False,
    scores_path: str | os.PathLike[str] | None = None,
    resume: bool = True,
) -> Missing:
    """Score the rows at ``unscored`` positions. With ``scores_path``, rows saved there by an
    earlier run with the same scorer are reused and each newly scored row is appended."""
    if scorer is None and scores_path is None:
        raise _no_scores([where[i] for i in unscored], None)
    requests, problems = [], []
    for i in unscored:
        try:
            requests.append(request_of(items[i], columns))
        except (RowProblem, ValueError) as exc:
            problems.append(f"{where[i]} ({exc})")
    if problems:
        raise CalibrationError(f"{len(problems)} row(s) have no scores and cannot be scored: {name_rows(problems)}")
    about = describe(scorer) if scorer is not None else {}
    saved = SavedScores(scores_path) if scores_path is not None else None
    earlier = saved.open(about if scorer is not None else None, resume=resume) if saved is not None else {}
    try:
        if saved is not None and saved.about is not None:
            about = saved.about
        keys = [request_key(r) for r in requests] if saved is not None else []
        features: dict[int, Features] = {}
        todo: list[int] = []  # positions in ``unscored`` still to score
        for n, i in enumerate(unscored):
            row = earlier.get((where[i], keys[n])) if keys else None
            if row is not None:
                features[i] = read_features([row], [f"{where[i]} (saved in {scores_path})"])[0]
            else:
                todo.append(n)
        if todo and scorer is None:
            raise _no_scores([where[unscored[n]] for n in todo], scores_path)
        reused = len(unscored) - len(todo)

        def keep(start: int, results: Sequence[TrustResult]) -> None:
            assert saved is not None
            for n, result in zip(todo[start : start + len(results)], results, strict=True):
                if result.ok:
                    saved.add(where[unscored[n]], keys[n], result)
            saved.commit()

        if todo:
            assert scorer is not None
            try:
                results = await ascore_rows(
                    [requests[n] for n in todo], [where[unscored[n]] for n in todo], scorer, progress=progress,
                    already_done=reused, after_batch=keep if saved is not None else None,
                )  # fmt: skip
            except CalibrationError as exc:
                if saved is None:
                    raise
                raise CalibrationError(
                    f"{exc}. The other rows' scores are saved in {saved.path}: rerun to score only the rest"
                ) from None
            for n, result in zip(todo, results, strict=True):
                features[unscored[n]] = read_features([result], [where[unscored[n]]])[0]
    finally:
        if saved is not None:
            saved.close()
    return Missing(features, len(todo), reused, about)


def _no_scores(names: Sequence[str], scores_path: str | os.PathLike[str] | None) -> CalibrationError:
    saved = f" (nor saved in {os.fspath(scores_path)})" if scores_path is not None else ""
    return CalibrationError(
        f"{len(names)} row(s) have no scores{saved}: {name_rows(names)}. Give rows scored "
        "with options={'log': ['per_component_score']}, or pass scorer= to score them"
    )


def judge_name(scorer: Any) -> str | None:
    """The judge model a scorer uses, when it says (an explicit judge or ``options.model``)."""
    options = getattr(getattr(scorer, "tlm_options", None), "options", None) or {}
    if options.get("model"):
        return str(options["model"])
    judge = getattr(scorer, "judge", None)
    name = getattr(judge, "name", None)
    return str(name) if name else None


def describe(scorer: Any) -> dict[str, str | None]:
    """What a scorer says about itself for a profile's ``valid_for``."""
    from ..datasets.scorer_choice import describe_scorer

    options = getattr(scorer, "tlm_options", None)
    return {
        "judge": judge_name(scorer),
        "quality_preset": getattr(options, "quality_preset", None),
        "task": getattr(options, "task", None),
        "scorer": describe_scorer(scorer) if isinstance(scorer, Scorer) else None,
    }
