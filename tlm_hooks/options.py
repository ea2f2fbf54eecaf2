"""TLM options (`quality_preset`, `task`, `options`), validated once at construction.

The names and meanings follow Cleanlab's TLM, so configuration written for it carries over.
Every check raises :class:`~tlm_hooks.errors.InvalidOptionError` naming the key, the value
and what is allowed, before anything touches the network.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InvalidOptionError

__all__ = [
    "QUALITY_PRESETS",
    "TASKS",
    "SIMILARITY_MEASURES",
    "REASONING_EFFORTS",
    "LOG_KEYS",
    "OPTION_KEYS",
    "MODEL_PROVIDER_KEYS",
    "QualityPreset",
    "Task",
    "TLMOptions",
    "deep_merge",
    "as_tlm_options",
]

QualityPreset = Literal["best", "high", "medium", "low", "base"]
Task = Literal["default", "classification", "code_generation"]

QUALITY_PRESETS: tuple[str, ...] = ("best", "high", "medium", "low", "base")
TASKS: tuple[str, ...] = ("default", "classification", "code_generation")
SIMILARITY_MEASURES: tuple[str, ...] = ("semantic", "string", "embedding", "embedding_large", "code", "discrepancy")
REASONING_EFFORTS: tuple[str, ...] = ("none", "low", "medium", "high")
LOG_KEYS: tuple[str, ...] = ("explanation", "per_component_score", "perplexity", "per_field_score", "usage")
# "api-version" is the spelling Cleanlab's documents show; "api_version" is accepted as well.
MODEL_PROVIDER_KEYS: tuple[str, ...] = ("api_base", "api_key", "api_version", "api-version", "provider")

# key -> (python type(s), inclusive lower bound, inclusive upper bound) for integer options
_INT_RANGES: dict[str, tuple[int, int]] = {
    "max_tokens": (1, 65536),
    "num_candidate_responses": (1, 20),
    "num_consistency_samples": (0, 20),
    "num_self_reflections": (0, 10),
}
_MAX_TIMEOUT = 86400.0  # seconds; Cleanlab's client sends its timeout as options.max_timeout
_OPTION_KEYS: tuple[str, ...] = (
    "model",
    "max_tokens",
    "num_candidate_responses",
    "num_consistency_samples",
    "num_self_reflections",
    "similarity_measure",
    "reasoning_effort",
    "log",
    "custom_eval_criteria",
    "model_provider",
    "constrain_outputs",
    "use_self_reflection",
    "disable_trustworthiness",
    "disable_persistence",
    "max_timeout",
    "score_tool_calls",
    "cache",
)
OPTION_KEYS = _OPTION_KEYS  # every key ``options`` accepts
# score_tool_calls (ours, default true): false lets tool-call turns pass unscored, saying so;
# cache (ours, default true): false bypasses the score cache
_BOOL_KEYS: tuple[str, ...] = (
    "use_self_reflection", "disable_trustworthiness", "disable_persistence", "score_tool_calls", "cache",
)  # fmt: skip


def _one_of(values: tuple[str, ...]) -> str:
    return "one of " + ", ".join(repr(v) for v in values)


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InvalidOptionError(key, value, _one_of(choices))
    return value


def _check_str_list(key: str, value: Any, choices: tuple[str, ...] | None = None) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        allowed = "a list of strings" if choices is None else f"a list of strings, each {_one_of(choices)}"
        raise InvalidOptionError(key, value, allowed)
    for i, item in enumerate(value):
        if not isinstance(item, str) or (choices is not None and item not in choices):
            allowed = "a string" if choices is None else _one_of(choices)
            raise InvalidOptionError(f"{key}[{i}]", item, allowed)
    return list(value)


def _check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(options, Mapping):
        raise InvalidOptionError("options", _redact(options), "a dict of TLM options")
    out: dict[str, Any] = {}
    for key, value in options.items():
        dotted = f"options.{key}"
        if key not in _OPTION_KEYS:
            raise InvalidOptionError(dotted, _redact(value), f"keys {_one_of(_OPTION_KEYS)}")
        if key in _INT_RANGES:
            low, high = _INT_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidOptionError(dotted, value, f"an integer from {low} to {high}")
            out[key] = value
        elif key in _BOOL_KEYS:
            if not isinstance(value, bool):
                raise InvalidOptionError(dotted, value, "true or false")
            out[key] = value
        elif key == "max_timeout":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= _MAX_TIMEOUT:
                raise InvalidOptionError(dotted, value, f"a number of seconds above 0, at most {_MAX_TIMEOUT:g}")
            out[key] = value
        elif key == "model":
            if not isinstance(value, str) or not value.strip():
                raise InvalidOptionError(dotted, value, "a non-empty model name string")
            out[key] = value
        elif key == "similarity_measure":
            out[key] = _check_choice(dotted, value, SIMILARITY_MEASURES)
        elif key == "reasoning_effort":
            out[key] = _check_choice(dotted, value, REASONING_EFFORTS)
        elif key == "log":
            out[key] = _check_str_list(dotted, value, LOG_KEYS)
        elif key == "constrain_outputs":
            labels = _check_str_list(dotted, value)
            if not labels:
                raise InvalidOptionError(dotted, value, "a non-empty list of label strings")
            out[key] = labels
        elif key == "custom_eval_criteria":
            out[key] = _check_criteria(dotted, value)
        elif key == "model_provider":
            out[key] = _check_model_provider(dotted, value)
    if "use_self_reflection" in out and "num_self_reflections" in out:
        raise InvalidOptionError(
            "options.use_self_reflection",
            out["use_self_reflection"],
            "only without options.num_self_reflections (give one of them; use_self_reflection=false means 0)",
        )
    return out


def _check_criteria(key: str, value: Any) -> list[dict[str, str]]:
    allowed = 'a list of {"name": str, "criteria": str} dicts'
    if not isinstance(value, (list, tuple)):
        raise InvalidOptionError(key, value, allowed)
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) != {"name", "criteria"}:
            raise InvalidOptionError(f"{key}[{i}]", item, allowed)
        for part in ("name", "criteria"):
            if not isinstance(item[part], str) or not item[part].strip():
                raise InvalidOptionError(f"{key}[{i}].{part}", item[part], "a non-empty string")
        out.append({"name": item["name"], "criteria": item["criteria"]})
    return out


def _check_model_provider(key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidOptionError(key, _redact(value), f"a dict with keys {_one_of(MODEL_PROVIDER_KEYS)}")
    out = {}
    for part, item in value.items():
        # an unknown key here is often a misspelt api_key ("api-key", "apikey"): never echo its value
        shown = "***" if part == "api_key" or part not in MODEL_PROVIDER_KEYS else item
        if part not in MODEL_PROVIDER_KEYS:
            raise InvalidOptionError(f"{key}.{part}", shown, f"keys {_one_of(MODEL_PROVIDER_KEYS)}")
        if not isinstance(item, str):
            raise InvalidOptionError(f"{key}.{part}", shown, "a string")
        out["api_version" if part == "api-version" else part] = item
    return out


def _redact(value: Any) -> Any:
    """``value`` with every ``api_key`` (at any depth) shown as ``***``: for messages and repr."""
    if isinstance(value, Mapping):
        return {k: "***" if k == "api_key" else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_redact(v) for v in value)
    return value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``base`` with ``override`` merged in recursively (``override`` wins).

    Neither argument is modified; nested dicts are copied.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class TLMOptions:
    """Validated TLM configuration.

    ``quality_preset`` is one of ``best``, ``high``, ``medium``, ``low``, ``base`` (``None``
    leaves the backend's default); ``task`` one of ``default``, ``classification``,
    ``code_generation``; ``options`` a dict of the documented option keys. Invalid input raises
    :class:`InvalidOptionError` here, at construction.
    """

    quality_preset: QualityPreset | None = None
    task: Task | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.quality_preset is not None:
            _check_choice("quality_preset", self.quality_preset, QUALITY_PRESETS)
        if self.task is not None:
            _check_choice("task", self.task, TASKS)
        object.__setattr__(self, "options", _check_options(self.options if self.options is not None else {}))

    @classmethod
    def coerce(cls, value: TLMOptions | Mapping[str, Any] | None) -> TLMOptions:
        """Accept a ``TLMOptions`` or a body-style dict (``{"quality_preset":…, "options":…}``)."""
        if value is None:
            return cls()
        if isinstance(value, TLMOptions):
            return value
        if not isinstance(value, Mapping):
            raise InvalidOptionError(
                "tlm_options", _redact(value), "a TLMOptions or a dict with quality_preset/task/options"
            )
        extra = set(value) - {"quality_preset", "task", "options"}
        if extra:
            key = sorted(extra, key=repr)[0]
            raise InvalidOptionError(key, _redact(value[key]), "top-level keys 'quality_preset', 'task', 'options'")
        return cls(value.get("quality_preset"), value.get("task"), value.get("options", {}))

    @property
    def wants_explanation(self) -> bool:
        """True when ``options.log`` asks for an explanation."""
        return "explanation" in self.options.get("log", ())

    def to_body(self) -> dict[str, Any]:
        """The request-body form sent to a TLM backend (``extra_body`` / ``model_extras``)."""
        body: dict[str, Any] = {}
        if self.quality_preset is not None:
            body["quality_preset"] = self.quality_preset
        if self.task is not None:
            body["task"] = self.task
        if self.options:
            body["options"] = copy.deepcopy(dict(self.options))
        return body

    def __repr__(self) -> str:
        shown = dict(self.options)
        if "model_provider" in shown:
            shown["model_provider"] = _redact(shown["model_provider"])
        return f"TLMOptions(quality_preset={self.quality_preset!r}, task={self.task!r}, options={shown!r})"


_BODY_KEYS = ("quality_preset", "task", "options")


def as_tlm_options(
    quality_preset: QualityPreset | str | None = None,
    task: Task | str | None = None,
    options: TLMOptions | Mapping[str, Any] | None = None,
    *,
    default_preset: QualityPreset | None = None,
    default_task: Task | None = None,
) -> TLMOptions:
    """The one way ``patch``, ``route``, ``TLM``, ``TLMScorer`` and ``score_completion`` read
    their TLM settings: ``quality_preset`` and ``task`` as arguments (as in Cleanlab's
    ``TLM(quality_preset, task=..., options=...)``) and ``options`` as

    - a dict of option keys (``{"model": ..., "log": [...]}``, Cleanlab's ``TLMOptions`` dict), or
    - a :class:`TLMOptions`, or a body-style dict (``{"quality_preset":…, "task":…, "options":…}``).

    A preset or task given both ways must agree (else :class:`InvalidOptionError` says which
    to drop); a dict mixing body keys with option keys is refused. What is still unset takes
    ``default_preset`` / ``default_task``. Nothing given is modified.
    """
    if options is None:
        inner = TLMOptions()
    elif isinstance(options, TLMOptions):
        inner = options
    elif isinstance(options, Mapping):
        body = [key for key in options if key in _BODY_KEYS]
        if body and len(body) != len(options):
            other = next(key for key in options if key not in _BODY_KEYS)
            raise InvalidOptionError(
                f"options.{other}",
                _redact(options[other]),
                f"option keys only, or a body-style dict with only {_one_of(_BODY_KEYS)}; "
                f"this dict mixes both (put the option keys under 'options', or pass {body[0]}= "
                "as its own argument)",
            )
        if body:
            inner = TLMOptions(options.get("quality_preset"), options.get("task"), options.get("options") or {})
        else:
            inner = TLMOptions(None, None, options)
    else:
        raise InvalidOptionError("options", _redact(options), "a dict of option keys, a TLMOptions, or None")
    for name, given, inside in (("quality_preset", quality_preset, inner.quality_preset), ("task", task, inner.task)):
        if given is not None and inside is not None and given != inside:
            raise InvalidOptionError(
                name,
                given,
                f"one {name}: options= already sets {name}={inside!r}; give it in one place only",
            )
    return TLMOptions(
        _first(quality_preset, inner.quality_preset, default_preset),  # type: ignore[arg-type]
        _first(task, inner.task, default_task),  # type: ignore[arg-type]
        inner.options,
    )


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)
