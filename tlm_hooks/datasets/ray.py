"""Score a Ray Data ``Dataset`` on a pool of actors, each with its own scorer and judge client.

    import ray
    from tlm_hooks.datasets.ray import ScorerSpec, score_dataset

    ds = ray.data.read_parquet("s3://bucket/traces/")
    scored = score_dataset(ds, scorer=ScorerSpec("tlm", judge="http://judge:8000/v1", model="m"),
                           actors=8, max_concurrency=16)
    scored.write_parquet("s3://bucket/scored/")

The columns follow the rules of ``tlm-hooks score`` (:class:`~tlm_hooks.datasets.Columns`). Each
actor builds its scorer once (from a :class:`ScorerSpec`, a factory, or a picklable scorer) and
scores each Ray batch with the scorer's batch API, ``max_concurrency`` rows at once. A row that
cannot be scored gets its reason in ``scoring_error``; the job itself does not fail. An actor
whose process dies is restarted by Ray and its batch is scored again, so every input row is in
the output exactly once.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import MissingDependencyError
from ..scorers.base import Scorer
from .columns import Columns
from .errors import DatasetError
from .files import warm_up
from .loop import Scored, score_windows
from .rows import Record
from .scorer_choice import DEFAULT_CONCURRENCY, _with_concurrency, as_scorer, build_scorer, read_profile
from .writer import BAD_ROW_PREFIX, ERROR_COLUMN, EXPLANATION_COLUMN, SCORE_COLUMN

__all__ = [
    "ScorerSpec",
    "score_dataset",
    "ScoreBatches",
    "COMPONENT_PREFIX",
    "RAY_HINT",
    "require_ray",
    "API_JUDGE_CPUS",
    "LOCAL_JUDGE_CPUS",
]

RAY_HINT = "pip install 'tlm-hooks[ray]'"
COMPONENT_PREFIX = "component_"  # a per-component score column is component_<name>
API_JUDGE_CPUS = 0.25  # an actor waiting on a remote judge mostly sleeps on the network
LOCAL_JUDGE_CPUS = 1.0  # an actor running the judge model in-process keeps a core busy
_HERE = "row"  # how a malformed row is named inside an actor (its position is the driver's to know)


def require_ray() -> Any:
    """The ``ray`` module, or :class:`MissingDependencyError` saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise MissingDependencyError(f"scoring on Ray needs ray[data]: {RAY_HINT} ({exc})") from exc
    return ray


@dataclass(frozen=True)
class ScorerSpec:
    """How each actor builds its scorer, the same choices as ``tlm-hooks score``'s flags:
    ``kind`` is ``tlm`` (the open engine; ``judge`` = ``local``, a ``.gguf`` file or an
    OpenAI-compatible URL with ``model``), ``logprob``, ``cleanlab`` or ``module:attribute``
    (imported on the worker; the driver's current directory is searched first when it exists
    there). ``factory`` instead: a picklable function with no arguments that returns a scorer
    (or a function of a ``ScoreRequest``); it runs once in each actor, never on the driver.
    ``max_concurrency`` is how many rows one actor scores at once.

    ``calibration`` (``tlm`` only): a profile from ``tlm-hooks calibrate``, its path or its dict;
    a path is read on the driver and sent to the actors as data, so the nodes need no copy.
    ``cache``: ``True`` (default) an in-memory score cache per actor, ``False`` none, a path an
    SQLite file the actors on one machine share (a path on each node where actors run).
    """

    kind: str = "tlm"
    quality_preset: str | None = None
    task: str | None = None
    judge: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    threads: int | None = None
    max_concurrency: int | None = None
    factory: Callable[[], Any] | None = None
    search_path: str | None = field(default_factory=os.getcwd)
    calibration: str | os.PathLike[str] | Mapping[str, Any] | None = field(default=None, hash=False, repr=False)
    cache: str | os.PathLike[str] | bool = True

    def __post_init__(self) -> None:
        if self.factory is not None and not callable(self.factory):
            raise DatasetError(f"ScorerSpec factory must be a function, got {type(self.factory).__name__}")
        if not isinstance(self.kind, str) or not self.kind:
            raise DatasetError(f"ScorerSpec kind must be tlm, logprob, cleanlab or module:name, got {self.kind!r}")

    @classmethod
    def from_factory(cls, factory: Callable[[], Any], *, max_concurrency: int | None = None) -> ScorerSpec:
        """A spec whose actors call ``factory()`` for their scorer."""
        return cls(factory=factory, max_concurrency=max_concurrency)

    def portable(self) -> ScorerSpec:
        """This spec as the actors get it: a calibration path read here into its dict (a bad
        profile fails now), a cache path made absolute (the actors' working folder differs)."""
        calibration, cache = self.calibration, self.cache
        if isinstance(calibration, (str, os.PathLike)):
            calibration = profile_data(calibration)
        if isinstance(cache, (str, os.PathLike)):
            cache = os.path.abspath(cache)
        if calibration is self.calibration and cache is self.cache:
            return self
        return replace(self, calibration=calibration, cache=cache)

    @property
    def judge_in_process(self) -> bool:
        """True when the judge model runs inside the actor (the embedded model or a .gguf file)."""
        return (
            self.factory is None
            and self.kind == "tlm"
            and self.model is None
            and not (self.judge or "local").startswith(("http://", "https://"))
        )

    def build(self) -> Scorer:
        """The scorer (called in each actor; on the driver only to check the settings)."""
        if self.factory is not None:
            made = as_scorer(self.factory())
            return made if self.max_concurrency is None else _limited(made, self.max_concurrency)
        if self.search_path and os.path.isdir(self.search_path) and self.search_path not in sys.path:
            sys.path.insert(0, self.search_path)  # a module:name scorer next to the driver's data
        return build_scorer(
            self.kind,
            quality_preset=self.quality_preset,
            task=self.task,
            judge=self.judge,
            model=self.model,
            api_key=self.api_key,
            base_url=self.base_url,
            threads=self.threads,
            max_concurrency=self.max_concurrency,
            calibration=self.calibration,
            cache=self.cache,
        )


def profile_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The profile at ``path`` as the dict the actors get (without its labelled rows, which
    scoring does not use)."""
    return dict(read_profile(path).to_dict(evidence=False))


class ScoreBatches:
    """The Ray Data callable class: builds the scorer once per actor, then scores Arrow batches.

    ``scorer``: a :class:`ScorerSpec`, or a picklable scorer / function of a ``ScoreRequest``.
    The actor keeps one event loop, so the judge's HTTP client and its connection pool live as
    long as the actor.
    """

    def __init__(
        self,
        scorer: ScorerSpec | Scorer | Callable[..., Any],
        columns: Columns,
        components: tuple[str, ...] = (),
        max_concurrency: int | None = None,
    ) -> None:
        self.pid = os.getpid()
        self.columns = columns
        self.components = components
        if isinstance(scorer, ScorerSpec):
            self.scorer = scorer.build()
        else:
            made = as_scorer(scorer)
            self.scorer = made if max_concurrency is None else _limited(made, max_concurrency)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(warm_up(self.scorer))  # a missing model fails here, not per row

    def __call__(self, table: Any) -> Any:
        import pyarrow as pa

        rows = table.to_pylist()
        records = [Record(i + 1, row, label=_HERE) for i, row in enumerate(rows)]
        scored = self.loop.run_until_complete(self._score(records))
        scores = [item.outcome.score for item in scored]
        explanations = [item.outcome.explanation for item in scored]
        errors = [_without_position(item.outcome.error) for item in scored]
        out = _put(table, SCORE_COLUMN, pa.array(scores, pa.float64()))
        out = _put(out, EXPLANATION_COLUMN, pa.array(explanations, pa.string()))
        out = _put(out, ERROR_COLUMN, pa.array(errors, pa.string()))
        for name in self.components:
            values = [_component(item, name) for item in scored]
            out = _put(out, COMPONENT_PREFIX + name, pa.array(values, pa.float64()))
        return out

    async def _score(self, records: list[Record]) -> list[Scored]:
        out: list[Scored] = []
        if records:
            async for window in score_windows(
                records, self.columns, self.scorer, batch_size=len(records), on_bad_row="skip"
            ):
                out.extend(window)
        return out


def score_dataset(
    ds: Any,
    *,
    scorer: ScorerSpec | Scorer | Callable[..., Any] | str | None = None,
    prompt_col: str | None = None,
    response_col: str | None = None,
    messages_col: str | None = None,
    system_col: str | None = None,
    context_col: str | None = None,
    logprobs_col: str | None = None,
    actors: int = 2,
    max_concurrency: int | None = None,
    cpus_per_actor: float | None = None,
    batch_size: int | None = None,
    components: Sequence[str] = (),
    max_restarts: int = -1,
) -> Any:
    """A lazy ``ray.data.Dataset``: ``ds`` with ``trustworthiness_score``, ``explanation`` and
    ``scoring_error`` columns (and ``component_<name>`` for each name in ``components``).

    Columns: see :class:`~tlm_hooks.datasets.Columns`. ``scorer``: a :class:`ScorerSpec` (or its
    ``kind`` as a string), a picklable scorer or function of a ``ScoreRequest`` (sent to each
    actor), or ``None`` for the engine on the embedded model. ``actors`` actors score at once,
    each ``max_concurrency`` rows at a time (default: the scorer's own limit, 8 for the built-in
    scorers) and each reserving ``cpus_per_actor`` CPUs (default 1 when the judge model runs in
    the actor, else 0.25). Rows reach an actor ``batch_size`` at a time (default: the larger of
    32 and ``max_concurrency``). A dead actor is restarted up to ``max_restarts`` times (-1:
    always) and its unfinished batch is scored again. Settings and columns are checked here,
    before anything is scored; nothing runs until the result is consumed.
    """
    ray = require_ray()
    if not isinstance(ds, ray.data.Dataset):
        raise DatasetError(f"score_dataset needs a ray.data.Dataset, got {type(ds).__name__}")
    _check_count("actors", actors)
    if max_concurrency is not None:
        _check_count("max_concurrency", max_concurrency)
    if batch_size is not None:
        _check_count("batch_size", batch_size)
    if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < -1:
        raise DatasetError(f"max_restarts must be an integer >= -1 (-1: no limit), got {max_restarts!r}")
    if cpus_per_actor is not None and (
        isinstance(cpus_per_actor, bool) or not isinstance(cpus_per_actor, (int, float)) or not cpus_per_actor > 0
    ):
        raise DatasetError(f"cpus_per_actor must be a number > 0, got {cpus_per_actor!r}")
    wanted = _component_names(components)
    columns = Columns(prompt_col, response_col, messages_col, system_col, context_col, logprobs_col)
    available = [str(c) for c in (ds.columns() or [])]
    columns = columns.resolve(available, "the Dataset")
    payload, in_process, limit = _payload(scorer, max_concurrency)
    cpus = cpus_per_actor if cpus_per_actor is not None else (LOCAL_JUDGE_CPUS if in_process else API_JUDGE_CPUS)
    return ds.map_batches(
        ScoreBatches,
        fn_constructor_args=(payload, columns, wanted, max_concurrency),
        batch_format="pyarrow",
        batch_size=batch_size or max(32, limit),
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus,
        # Ray Data's own default for actor pools is what we want: restart a dead actor without limit
        # and send its unfinished batch again (that batch's output was never kept). Only a limit is passed.
        **({} if max_restarts == -1 else {"max_restarts": max_restarts}),
    )


def _payload(scorer: Any, max_concurrency: int | None) -> tuple[Any, bool, int]:
    """What is sent to the actors, whether the judge runs in them, and the rows one actor scores at once.
    A spec is built here once so wrong settings fail now; a factory is only called in the actors."""
    if scorer is None or isinstance(scorer, str):
        scorer = ScorerSpec(scorer or "tlm")
    if isinstance(scorer, ScorerSpec):
        if max_concurrency is not None:
            scorer = replace(scorer, max_concurrency=max_concurrency)
        scorer = scorer.portable()
        if scorer.factory is None:
            checked = scorer.build()
            return scorer, scorer.judge_in_process, _concurrency_of(checked)
        return scorer, False, scorer.max_concurrency or DEFAULT_CONCURRENCY
    try:
        made = as_scorer(scorer)
    except DatasetError:
        raise DatasetError(
            f"scorer must be a ScorerSpec, a scorer name, a Scorer or a function of a ScoreRequest; "
            f"got {type(scorer).__name__}"
        ) from None
    if max_concurrency is not None:
        made = _limited(made, max_concurrency)
    _check_picklable(scorer)
    judge = getattr(made, "judge", None)
    in_process = type(judge).__name__ == "LocalBackend"
    return scorer, in_process, _concurrency_of(made)


def _check_picklable(scorer: Any) -> None:
    from ray import cloudpickle

    try:
        cloudpickle.dumps(scorer)
    except Exception as exc:
        raise DatasetError(
            f"the scorer {type(scorer).__name__} cannot be sent to Ray actors ({type(exc).__name__}: {exc}); "
            "pass ScorerSpec(...) or ScorerSpec.from_factory(make_scorer) so each actor builds its own"
        ) from None


def _limited(scorer: Scorer, limit: int) -> Scorer:
    try:
        return _with_concurrency(scorer, limit, type(scorer).__name__)
    except DatasetError as exc:
        raise DatasetError(str(exc).replace("--max-concurrency", "max_concurrency")) from None


def _concurrency_of(scorer: Any) -> int:
    value = getattr(scorer, "max_concurrency", None)
    return value if isinstance(value, int) and value > 0 else DEFAULT_CONCURRENCY


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DatasetError(f"{name} must be an integer >= 1, got {value!r}")


def _component_names(components: Sequence[str]) -> tuple[str, ...]:
    if isinstance(components, str) or not all(isinstance(c, str) and c for c in components):
        raise DatasetError(
            f"components must be a list of component names (e.g. ['self_reflection']), got {components!r}"
        )
    return tuple(components)


def _component(item: Scored, name: str) -> float | None:
    if item.result is None:
        return None
    value = item.result.components.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _without_position(error: str | None) -> str | None:
    """``bad row (row): why`` → ``bad row: why`` (an actor does not know where its batch starts)."""
    marker = f"{BAD_ROW_PREFIX} ({_HERE}): "
    if error is not None and error.startswith(marker):
        return f"{BAD_ROW_PREFIX}: {error[len(marker) :]}"
    return error


def _put(table: Any, name: str, values: Any) -> Any:
    """``table`` with column ``name`` set to ``values`` (replacing a column of that name)."""
    at = table.schema.get_field_index(name)
    if at >= 0:
        return table.set_column(at, name, values)
    return table.append_column(name, values)
