"""Which scorer scores a dataset: the open engine (default), token logprobs, Cleanlab, or your own.

The engine's judge is picked by :func:`tlm_hooks.llm.resolve.resolve_backend` (the same rules as
the hook's: an OpenAI-compatible ``api_base``, a litellm model, or the embedded model); a GGUF
file is loaded as a :class:`~tlm_hooks.local.LocalModel`.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..llm.base import ChatBackend
from ..options import TLMOptions
from ..scorers.base import BaseScorer, Scorer
from ..scorers.function import FunctionScorer
from .errors import DatasetError

__all__ = [
    "SCORER_NAMES",
    "build_scorer",
    "scorer_flags",
    "check_logprobs_flag",
    "read_profile",
    "load_scorer",
    "as_scorer",
    "describe_scorer",
    "default_scorer",
]

SCORER_NAMES: tuple[str, ...] = ("tlm", "logprob", "cleanlab")
DEFAULT_CONCURRENCY = 8
EXPLANATION = {"log": ["explanation"]}


def default_scorer() -> Scorer:
    """The engine at its default preset (``medium``) on the embedded local model, with explanations."""
    from ..llm.local import LocalBackend
    from ..scorers.tlm import TLMScorer

    return TLMScorer(options=EXPLANATION, judge=LocalBackend())  # an explicit judge: loaded before scoring


def as_scorer(scorer: Scorer | Callable[..., Any] | None) -> Scorer:
    """``scorer`` itself, a plain function wrapped in :class:`FunctionScorer`, or the default."""
    if scorer is None:
        return default_scorer()
    if isinstance(scorer, Scorer):
        return scorer
    if callable(scorer):
        return FunctionScorer(scorer)
    raise DatasetError(f"scorer must be a Scorer or a function of a ScoreRequest, got {type(scorer).__name__}")


def load_scorer(spec: str, *, max_concurrency: int | None = None) -> Scorer:
    """The scorer named by ``module:attribute``: a Scorer instance, a Scorer class (built with no
    arguments), or a function of a ``ScoreRequest`` (wrapped in :class:`FunctionScorer`). The
    current directory is searched first, like ``python -m``.

    ``max_concurrency`` (rows scored at once) is applied to a copy of the scorer, so the module's
    own object is left as it is; a scorer with its own batch methods cannot take it and is refused.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise DatasetError(f"a scorer import path looks like module:function, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DatasetError(f"cannot import {module_name!r} for --scorer {spec}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise DatasetError(f"{module_name!r} has no {attribute!r} (from --scorer {spec})") from None
    if isinstance(target, type):
        target = target()
    if isinstance(target, Scorer):
        return target if max_concurrency is None else _with_concurrency(target, max_concurrency, spec)
    if callable(target):
        return FunctionScorer(target, max_concurrency=max_concurrency or DEFAULT_CONCURRENCY)
    raise DatasetError(f"--scorer {spec} is a {type(target).__name__}: expected a Scorer or a function")


def _with_concurrency(scorer: Scorer, limit: int, spec: str) -> Scorer:
    """A shallow copy of ``scorer`` that scores at most ``limit`` rows at once."""
    derived = isinstance(scorer, BaseScorer) and all(
        getattr(type(scorer), name) is getattr(BaseScorer, name) for name in ("score_batch", "ascore_batch")
    )
    if not derived or not isinstance(scorer, BaseScorer):
        raise DatasetError(
            f"--max-concurrency cannot be applied to --scorer {spec}: it is not a BaseScorer with the derived "
            "batch methods (its own score_batch/ascore_batch decide how many rows run at once); leave out "
            "--max-concurrency, or set the limit inside the scorer"
        )
    limited = copy.copy(scorer)
    limited.max_concurrency = limit
    return limited


def scorer_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`build_scorer` arguments (``kind`` first) that parsed command-line flags ask for;
    the one reading of the flags for every engine of ``tlm-hooks score`` (and ``calibrate``, whose
    parser lacks ``--base-url``, ``--calibration`` and the cache flags: they are then not given)."""
    no_cache = getattr(args, "no_cache", False)
    return {
        "kind": args.scorer,
        "quality_preset": args.quality_preset,
        "task": args.task,
        "judge": args.judge,
        "model": args.model,
        "api_key": args.api_key,
        "base_url": getattr(args, "base_url", None),
        "threads": args.threads,
        "max_concurrency": args.max_concurrency,
        "calibration": getattr(args, "calibration", None),
        "cache": False if no_cache else (getattr(args, "cache", None) or True),
    }


def check_logprobs_flag(args: argparse.Namespace) -> None:
    """``--scorer logprob`` scores a column of logprobs: refuse it without ``--logprobs-col``."""
    if args.scorer == "logprob" and not args.logprobs_col:
        raise DatasetError(
            "--scorer logprob scores the rows' own token logprobs: name their column with --logprobs-col"
        )


def build_scorer(
    kind: str,
    *,
    quality_preset: str | None = None,
    task: str | None = None,
    judge: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    threads: int | None = None,
    max_concurrency: int | None = None,
    calibration: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    cache: str | os.PathLike[str] | bool = True,
) -> Scorer:
    """The scorer the command line asked for.

    ``kind``: ``tlm`` (the open engine), ``logprob`` (the rows' own token logprobs), ``cleanlab``
    (Cleanlab's TLM service) or ``module:attribute``. For ``tlm``, ``judge`` is where the judge
    model runs — ``local`` (the embedded model, default), a ``.gguf`` file, or the base URL of an
    OpenAI-compatible server (with ``model`` naming the model there); ``model`` alone names a
    litellm model. For ``cleanlab``, ``model`` is Cleanlab's base model and ``base_url`` a
    self-hosted service. ``max_concurrency`` (default 8) is how many rows are scored at once;
    for ``module:attribute`` it defaults to the scorer's own limit. ``calibration`` (``tlm`` only)
    is a profile from ``tlm-hooks calibrate`` (its path, read now, or its dict). ``cache`` is the engine's score
    cache: ``True`` in memory, ``False`` none, a path a file shared by runs (``tlm`` only).
    """
    limit = max_concurrency or DEFAULT_CONCURRENCY
    if cache is not True and kind != "tlm":
        raise DatasetError(f"--cache/--no-cache apply to --scorer tlm, not to --scorer {kind}")
    engine_flags = {"quality_preset": quality_preset, "task": task, "judge": judge, "model": model}
    if kind not in ("tlm", "cleanlab"):
        given = [f"--{k.replace('_', '-')}" for k, v in engine_flags.items() if v is not None]
        if given:
            raise DatasetError(f"{', '.join(given)} apply to --scorer tlm or cleanlab, not to --scorer {kind}")
    if calibration is not None and kind != "tlm":
        raise DatasetError(
            f"--calibration applies to --scorer tlm (a profile is fitted on the engine's scores), not to --scorer {kind}"
        )
    if kind == "logprob":
        from ..scorers.logprob import LogprobScorer

        scorer = LogprobScorer()
        scorer.max_concurrency = limit
        return scorer
    if kind == "cleanlab":
        from ..backends import CleanlabTLM

        if judge is not None:
            raise DatasetError("--judge applies to --scorer tlm; for Cleanlab use --model and --base-url")
        options = {**EXPLANATION, **({"model": model} if model else {})}
        from ..backends.cleanlab import DEFAULT_BASE_URL

        return CleanlabTLM(
            api_key,
            base_url=base_url or DEFAULT_BASE_URL,
            quality_preset=quality_preset or "medium",  # type: ignore[arg-type]
            task=task or "default",  # type: ignore[arg-type]
            options=options,
            max_concurrency=limit,
        )
    if kind == "tlm":
        from ..scorers.tlm import TLMScorer

        if base_url is not None:
            raise DatasetError("--base-url applies to --scorer cleanlab; for the engine give the URL as --judge")
        # a bad profile fails before the judge loads
        profile = read_profile(calibration) if calibration is not None else None
        backend = judge_backend(judge, model, api_key=api_key, threads=threads)
        return TLMScorer(
            quality_preset or "medium",
            task or "default",
            EXPLANATION,
            judge=backend,
            max_concurrency=limit,
            calibration=profile,
            cache=cache,
        )
    if ":" in kind:
        return load_scorer(kind, max_concurrency=max_concurrency)
    raise DatasetError(f"unknown scorer {kind!r}: allowed {', '.join(SCORER_NAMES)}, or module:function")


def read_profile(profile: str | os.PathLike[str] | Mapping[str, Any]) -> Any:
    """The :class:`~tlm_hooks.Calibration` for ``--calibration`` (a path or a profile's dict)."""
    try:
        from ..calibration.profile import Calibration
    except ImportError as exc:  # the calibration extra is missing
        raise DatasetError(
            f"--calibration needs the calibration extra: pip install 'tlm-hooks[calibration]' ({exc})"
        ) from None
    return Calibration.coerce(profile)


def judge_backend(
    judge: str | None, model: str | None, *, api_key: str | None = None, threads: int | None = None
) -> ChatBackend:
    """The engine's judge for ``--judge`` / ``--model`` (see :func:`build_scorer`)."""
    from ..llm.resolve import resolve_backend

    spec = judge or "local"
    if threads is not None and (model or spec.startswith(("http://", "https://"))):
        raise DatasetError("--threads applies to a local judge (--judge local or a .gguf file)")
    if spec.startswith(("http://", "https://")):
        if not model:
            raise DatasetError(f"--judge {spec} needs --model: the name of the model to ask at that server")
        provider = {"api_base": spec, **({"api_key": api_key} if api_key else {})}
        return resolve_backend(TLMOptions(options={"model": model, "model_provider": provider}), None)
    if spec == "local" and model:  # a litellm model name (or the embedded model's own name)
        key = {"model_provider": {"api_key": api_key}} if api_key else {}
        return resolve_backend(TLMOptions(options={"model": model, **key}), None)
    if model:
        raise DatasetError(f"--model {model!r} cannot be used with --judge {spec!r}: a local model has one name")
    if spec == "local" and threads is None:
        return resolve_backend(TLMOptions(), None)  # the embedded model, shared and loaded on first use
    if spec != "local" and not os.path.isfile(spec):
        raise DatasetError(f"--judge {spec!r} is no file; allowed: local, a .gguf file, or an http(s):// URL")
    from ..llm.local import LocalBackend
    from ..local import LocalModel

    return LocalBackend(LocalModel(None if spec == "local" else spec, n_threads=threads))


def describe_scorer(scorer: Scorer) -> str:
    """A stable description of ``scorer`` (no keys), to tell whether a run may be resumed with it."""
    from ..backends import CleanlabTLM
    from ..scorers.logprob import LogprobScorer
    from ..scorers.tlm import TLMScorer

    if isinstance(scorer, TLMScorer):
        o = scorer.tlm_options
        judge = getattr(scorer.judge, "name", None) or "default"
        model = o.options.get("model")
        return f"TLMScorer(quality_preset={o.quality_preset}, task={o.task}, judge={judge}, model={model})"
    if isinstance(scorer, CleanlabTLM):
        return repr(scorer)
    if isinstance(scorer, LogprobScorer):
        return f"LogprobScorer({scorer.aggregate})"
    if isinstance(scorer, FunctionScorer):
        fn = scorer.fn
        named = fn if hasattr(fn, "__qualname__") else type(fn)  # an instance's repr would hold its address
        return f"FunctionScorer({getattr(named, '__module__', '?')}.{getattr(named, '__qualname__', '?')})"
    kind = type(scorer)
    return f"{kind.__module__}.{kind.__qualname__}"
