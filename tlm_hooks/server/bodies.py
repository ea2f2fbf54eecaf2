"""The bodies of TLM's REST API as Cleanlab's client sends them: the keys each endpoint takes,
the preset under ``quality`` (or ``quality_preset``), top-level ``constrain_outputs``, and the
``deberta_success`` field the replies carry."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from ..options import TLMOptions
from .chat import tlm_options
from .errors import bad_field

__all__ = ["CLIENT_KEYS", "DEBERTA", "REST_KEYS", "check_keys", "constrain", "labels_from", "rest_options"]

REST_KEYS = {"quality_preset": "quality", "task": "task", "options": "options"}
# sent by Cleanlab's client on every REST call: the caller's key twice (not used) and constrain_outputs
CLIENT_KEYS = ("user_id", "client_id", "constrain_outputs")
DEBERTA = {"deberta_success": True}  # TLM's REST replies carry it; clients read (and delete) it


def check_keys(body: Mapping[str, Any], allowed: Collection[str]) -> None:
    """400 naming the first top-level key the endpoint does not know (a misspelt preset, say)."""
    for key in body:
        if key not in allowed:
            raise bad_field(str(key), f"unknown key: this endpoint takes {', '.join(repr(k) for k in allowed)}")


def rest_options(body: Mapping[str, Any], labels: list[str] | None = None) -> TLMOptions | None:
    """The TLM options of a REST body: preset from ``quality`` (or ``quality_preset``, not both
    differently), ``task``, ``options``, and top-level ``constrain_outputs`` as that option."""
    keys = dict(REST_KEYS)
    if body.get("quality") is None and body.get("quality_preset") is not None:
        keys["quality_preset"] = "quality_preset"
    elif body.get("quality_preset") is not None and body.get("quality_preset") != body.get("quality"):
        raise bad_field("quality_preset", "give the preset once, as 'quality' (or 'quality_preset')")
    options = tlm_options(body, keys)
    labels = labels if labels is not None else labels_from(body.get("constrain_outputs"), "constrain_outputs")
    if labels is None:
        return options
    options = options or TLMOptions()
    if "constrain_outputs" in options.options and list(options.options["constrain_outputs"]) != labels:
        raise bad_field("constrain_outputs", "given twice with different labels (top level and options)")
    return replace(options, options={**options.options, "constrain_outputs": labels})


def labels_from(value: Any, param: str) -> list[str] | None:
    """``constrain_outputs`` labels (``None`` when absent); 400 naming ``param`` when malformed."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise bad_field(param, f"expected a non-empty list of label strings, got {value!r}")
    return list(value)


def constrain(text: str, labels: list[str]) -> str:
    """``text`` as one of ``labels``: the label it says (the first one it names), else the last
    label, which TLM treats as the fallback."""
    lowered = text.strip().lower()
    for label in labels:
        if lowered == label.lower():
            return label
    found = [(m.start(), label) for label in labels if (m := re.search(rf"\b{re.escape(label.lower())}\b", lowered))]
    return min(found)[1] if found else labels[-1]
