"""Core data types: what is scored (`ScoreRequest`) and what scoring says (`TrustResult`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["TokenLogprob", "ScoreRequest", "TrustResult", "chat_function_tool", "content_text"]


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token and its natural-log probability (plus alternatives, if known)."""

    token: str
    logprob: float
    top_logprobs: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class ScoreRequest:
    """A prompt (or chat messages) and the response to score.

    Exactly one of ``messages`` or ``prompt`` describes the input. ``response_logprobs`` are the
    scored response's own token log-probabilities when the model returned them (else ``None``).
    ``tool_calls`` are the response's tool calls in the chat shape (``{"id", "type": "function",
    "function": {"name", "arguments": <JSON text>}}``) and ``tools`` the tool schemas offered.
    """

    response: str
    messages: tuple[Mapping[str, Any], ...] | None = None
    prompt: str | None = None
    tools: tuple[Mapping[str, Any], ...] | None = None
    model: str | None = None
    response_logprobs: tuple[TokenLogprob, ...] | None = None
    tool_calls: tuple[Mapping[str, Any], ...] | None = None
    context: str | None = None
    # the request's structured-output format, as OpenAI's ``response_format`` body param
    # (``{"type": "json_schema", "json_schema": {...}}`` or ``{"type": "json_object"}``)
    response_format: Mapping[str, Any] | None = None
    options: Any = None  # TLMOptions, when the caller configured any
    # the SDK client that produced the response (hooked calls only): a scorer with no judge
    # of its own may call it, unhooked, as the judge
    source_client: Any = field(default=None, compare=False, repr=False)
    # what the request could not show the scorer (e.g. earlier turns kept by the API): the
    # hook adds these to the result's ``log.warnings``
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.response, str):
            raise TypeError(f"ScoreRequest.response must be str, got {type(self.response).__name__}")
        if self.messages is None and self.prompt is None:
            raise ValueError("ScoreRequest needs `messages` or `prompt`")
        if self.messages is not None and not isinstance(self.messages, tuple):
            object.__setattr__(self, "messages", tuple(self.messages))
        if self.tools is not None and not isinstance(self.tools, tuple):
            object.__setattr__(self, "tools", tuple(self.tools))
        if self.response_logprobs is not None and not isinstance(self.response_logprobs, tuple):
            object.__setattr__(self, "response_logprobs", tuple(self.response_logprobs))

    def prompt_text(self) -> str:
        """The whole input as one string: ``prompt``, or the messages as ``role: content`` lines."""
        return "\n".join(self.prompt_lines())

    def prompt_lines(self) -> list[str]:
        """``[prompt]``, or one ``role: content`` line per message."""
        if self.prompt is not None:
            return [self.prompt]
        return [f"{m.get('role', 'user')}: {_message_text(m)}" for m in self.messages or ()]


def _message_text(message: Mapping[str, Any]) -> str:
    """A message's text, with the tool calls an assistant turn made written after it."""
    text = content_text(message.get("content"))
    calls = message.get("tool_calls")
    if not calls or not isinstance(calls, Sequence):
        return text
    named = []
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            named.append(f"{function.get('name')}({function.get('arguments') or ''})")
    return (text + " " if text else "") + "[tool calls: " + "; ".join(named) + "]" if named else text


def content_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or the text parts of a multi-part list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return str(content)


_content_text = content_text  # the older private name, still imported elsewhere

_FUNCTION_KEYS = ("name", "description", "parameters", "strict")


def chat_function_tool(tool: Any) -> dict[str, Any] | None:
    """A function tool in the chat shape ``{"type": "function", "function": {"name", "description",
    "parameters", "strict"}}`` (keys without a value left out), from the chat shape or the Responses
    API's flat one; ``None`` for anything else (built-in tools such as web search)."""
    if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
        return None
    function = tool.get("function")
    function = function if isinstance(function, Mapping) else tool
    if not isinstance(function.get("name"), str):
        return None
    return {"type": "function", "function": {k: function[k] for k in _FUNCTION_KEYS if function.get(k) is not None}}


@dataclass(frozen=True)
class TrustResult:
    """What a scorer says about one response.

    ``trustworthiness_score`` is in [0, 1], or ``None`` when scoring failed (``error`` says why).
    ``components`` holds per-signal scores (e.g. ``token_probability``). ``warnings`` says
    what the score was made without (judge calls that failed, a prompt that was cut) and
    ``signals`` how much of each signal was asked and how much ran
    (``{"consistency": {"asked": 4, "ran": 3}, ...}``). ``details`` are further ``log`` entries
    (``per_field_score``, ``tool_calls``...); ``skipped`` says why a response was deliberately not
    scored (its score is then ``None`` without an error). ``to_dict()`` gives the
    ``tlm_metadata`` shape: ``{"trustworthiness_score": ..., "log": {"explanation": ...,
    "warnings": [...], "signals": {...}}}`` (each key only when it has something to say).
    """

    trustworthiness_score: float | None
    explanation: str | None = None
    components: Mapping[str, float] = field(default_factory=dict)
    evals: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None
    fallbacks: tuple[str, ...] = ()
    # set when a calibration profile made the score: {"raw_score", "map", "warnings"?}
    calibration: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    signals: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # more ``log`` entries: asked for with options.log or set by the scoring path (``usage``,
    # ``cached``, ``perplexity``: see tlm_hooks.scorers.asked), or by the engine (``per_field_score``,
    # ``tool_calls``, ``scored_parts``)
    log: Mapping[str, Any] = field(default_factory=dict)
    # why this response was deliberately not scored (e.g. ``options.score_tool_calls`` is off)
    skipped: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.warnings, tuple):
            object.__setattr__(self, "warnings", tuple(self.warnings))
        score = self.trustworthiness_score
        if score is not None:
            if isinstance(score, bool) or not isinstance(score, (int, float)) or math.isnan(score):
                raise ValueError(f"trustworthiness_score must be a number in [0, 1] or None, got {score!r}")
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"trustworthiness_score must be in [0, 1], got {score!r}")
            object.__setattr__(self, "trustworthiness_score", float(score))

    @property
    def ok(self) -> bool:
        """True when a score was produced."""
        return self.trustworthiness_score is not None and self.error is None

    @classmethod
    def failed(cls, error: BaseException | str) -> TrustResult:
        """A result that records a scoring failure."""
        if isinstance(error, BaseException):
            return cls(None, error=str(error) or type(error).__name__, error_type=type(error).__name__)
        return cls(None, error=error)

    def with_fallback(self, name: str) -> TrustResult:
        """A copy that also records that fallback ``name`` acted on the response."""
        return replace(self, fallbacks=(*self.fallbacks, name))

    def to_dict(self) -> dict[str, Any]:
        """The ``tlm_metadata`` dict (the shape Cleanlab's TLM returns, plus our extra keys)."""
        out: dict[str, Any] = {"trustworthiness_score": self.trustworthiness_score}
        log: dict[str, Any] = {}
        if self.explanation is not None:
            log["explanation"] = self.explanation
        if self.components:
            log["per_component_score"] = dict(self.components)
        if self.warnings:
            log["warnings"] = list(self.warnings)
        if self.signals:
            log["signals"] = {name: dict(counts) for name, counts in self.signals.items()}
        log.update(self.log)
        if self.skipped is not None:
            log["skipped"] = self.skipped
        if log:
            out["log"] = log
        if self.evals:
            out.update({name: dict(value) for name, value in self.evals.items()})
        if self.error is not None:
            out["error"] = {"message": self.error, "type": self.error_type or "ScoringError"}
        if self.fallbacks:
            out["fallbacks"] = list(self.fallbacks)
        if self.calibration:
            log = out.setdefault("log", {})
            log["raw_trustworthiness_score"] = self.calibration.get("raw_score")
            log["calibration"] = {k: v for k, v in self.calibration.items() if k != "raw_score"}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrustResult:
        """Read a ``tlm_metadata`` dict (ours, or a TLM backend's; ``confidence_score`` accepted)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"tlm_metadata must be a mapping, got {type(data).__name__}")
        score = data.get("trustworthiness_score", data.get("confidence_score"))
        if score is None and isinstance(data.get("trustworthiness"), Mapping):
            score = data["trustworthiness"].get("score")
        raw_log = data.get("log")
        log: Mapping[str, Any] = raw_log if isinstance(raw_log, Mapping) else {}
        error = data.get("error")
        error_message = error.get("message") if isinstance(error, Mapping) else error
        error_type = error.get("type") if isinstance(error, Mapping) else None
        warnings, signals = log.get("warnings"), log.get("signals")
        extra_log = {k: v for k, v in log.items() if k not in _KNOWN_LOG_KEYS}
        known = {"trustworthiness_score", "confidence_score", "trustworthiness", "log", "error", "fallbacks"}
        evals = {k: v for k, v in data.items() if k not in known and isinstance(v, Mapping) and "score" in v}
        if score is not None and not isinstance(score, bool):  # a bool is no score: __post_init__ rejects it
            score = float(score)
        calibration = dict(log["calibration"]) if isinstance(log.get("calibration"), Mapping) else {}
        if log.get("raw_trustworthiness_score") is not None:
            calibration["raw_score"] = float(log["raw_trustworthiness_score"])
        return cls(
            trustworthiness_score=score,
            explanation=log.get("explanation"),
            components=dict(log.get("per_component_score") or {}),
            evals=evals,
            error=None if error_message is None else str(error_message),
            error_type=error_type,
            fallbacks=tuple(data.get("fallbacks") or ()),
            calibration=calibration,
            warnings=tuple(str(w) for w in warnings) if isinstance(warnings, (list, tuple)) else (),
            signals={str(k): dict(v) for k, v in signals.items() if isinstance(v, Mapping)}
            if isinstance(signals, Mapping)
            else {},
            log=extra_log,
            skipped=str(log["skipped"]) if log.get("skipped") is not None else None,
        )


# the ``log`` keys with a field of their own in TrustResult; the others go to ``TrustResult.log``
_KNOWN_LOG_KEYS = frozenset(
    {"explanation", "per_component_score", "warnings", "signals", "raw_trustworthiness_score", "calibration", "skipped"}
)
