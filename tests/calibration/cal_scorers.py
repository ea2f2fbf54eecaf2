"""A scorer for CLI tests (``--scorer cal_scorers:stored_consistency``): reads the answer's
stored consistency from the prompt, so no model is needed."""

from __future__ import annotations

from tlm_hooks import ScoreRequest, TrustResult


def stored_consistency(request: ScoreRequest) -> TrustResult:
    value = float((request.prompt or "").rsplit("c=", 1)[1])
    return TrustResult(value, components={"consistency": value, "self_reflection": 0.5})
