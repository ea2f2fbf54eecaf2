"""Adapter for plain-string answers (functions decorated with `trust_scored` that return str)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..types import TrustResult

__all__ = ["TrustedText"]


class TrustedText(str):
    """A ``str`` that also carries ``tlm_metadata`` (a plain ``str`` cannot hold attributes)."""

    tlm_metadata: dict[str, Any]

    def __new__(cls, text: str, metadata: Mapping[str, Any] | None = None) -> TrustedText:
        obj = super().__new__(cls, text)
        obj.tlm_metadata = dict(metadata or {})
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (TrustedText, (str(self), self.tlm_metadata))


def attach_text(text: str, result: TrustResult) -> TrustedText:
    return TrustedText(str(text), result.to_dict())
