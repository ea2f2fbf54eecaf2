"""What a score's judge calls cost: prices the user gives, or litellm's price table when installed.

Prices are US dollars per million tokens, ``{"model": (input, output)}``. A model without a
known price gives a cost of ``None`` (unknown), never a guess.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from collections.abc import Mapping
from typing import Any

from ..llm.usage import Usage

__all__ = ["Prices", "check_prices", "usage_log"]

Prices = Mapping[str, tuple[float, float]]
_PER_MILLION = 1_000_000


def check_prices(prices: Any) -> dict[str, tuple[float, float]]:
    """``prices`` validated as ``{model name: (input USD per 1M tokens, output USD per 1M tokens)}``.

    Raises ``ValueError`` naming the first entry that is not that shape.
    """
    if prices is None:
        return {}
    shape = "{model name: (input, output)} in US dollars per million tokens"
    if not isinstance(prices, Mapping):
        raise ValueError(f"prices must be {shape}, got {type(prices).__name__}")
    out: dict[str, tuple[float, float]] = {}
    for model, pair in prices.items():
        if not isinstance(model, str) or not model:
            raise ValueError(f"prices: key {model!r} must be a non-empty model name; prices must be {shape}")
        ok = isinstance(pair, (tuple, list)) and len(pair) == 2
        if ok:
            ok = all(
                isinstance(p, (int, float)) and not isinstance(p, bool) and math.isfinite(p) and p >= 0 for p in pair
            )
        if not ok:
            raise ValueError(
                f"prices[{model!r}] must be (input, output): two numbers >= 0, US dollars per million tokens; "
                f"got {pair!r}"
            )
        out[model] = (float(pair[0]), float(pair[1]))
    return out


def usage_log(usage: Usage, prices: Prices) -> dict[str, Any]:
    """``log.usage``: judge calls, tokens, and ``cost_usd`` (``None`` when a judge's price is unknown)
    with ``priced_by`` saying where the prices came from."""
    cost: float | None = 0.0
    sources: set[str] = set()
    for model, (_, prompt, completion) in sorted(usage.by_model.items()):
        found = _price(model, prices)
        if found is None:
            cost = None
            break
        (per_in, per_out), source = found
        sources.add(source)
        cost = (cost or 0.0) + (prompt * per_in + completion * per_out) / _PER_MILLION
    if usage.calls and not usage.by_model:  # requests that did not say which model they went to
        cost = None
    return {
        "judge_calls": usage.calls,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "judge_models": sorted(usage.by_model),
        "cost_usd": None if cost is None else round(cost, 10),
        "priced_by": ",".join(sorted(sources)) or None,
    }


def _price(model: str, prices: Prices) -> tuple[tuple[float, float], str] | None:
    """The price of ``model`` (also tried without a ``provider/`` prefix), and its source."""
    names = [model, model.rsplit("/", 1)[-1]] if "/" in model else [model]
    for name in names:
        if name in prices:
            return prices[name], "prices"
    table = _litellm_table()
    for name in names:
        entry = table.get(name)
        if isinstance(entry, Mapping):
            per_in, per_out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
            if isinstance(per_in, (int, float)) and isinstance(per_out, (int, float)):
                return (per_in * _PER_MILLION, per_out * _PER_MILLION), "litellm"
    return None


@functools.lru_cache(maxsize=1)
def _litellm_table() -> Mapping[str, Any]:
    """litellm's bundled price table, or ``{}`` when litellm is not installed. Imported only here,
    and told to use its bundled copy: a price look-up never fetches the table from the network."""
    if importlib.util.find_spec("litellm") is None:
        return {}
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except Exception:  # a broken install is a missing price, not a failed score
        return {}
    table = getattr(litellm, "model_cost", None)
    return table if isinstance(table, Mapping) else {}
