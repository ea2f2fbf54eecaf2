"""How the embedded model draws a token for choices decoded side by side (`_draw`): temperature,
top-p and their order, on made-up logits (no model needed)."""

from __future__ import annotations

from collections import Counter

import pytest

np = pytest.importorskip("numpy")

from tlm_hooks.local.model import _draw  # noqa: E402


def _shares(logits: list[float], temperature: float, top_p: float, draws: int = 20_000) -> list[float]:
    rng = np.random.default_rng(0)
    row = np.asarray(logits, dtype=np.float64)
    counts = Counter(_draw(row, temperature, top_p, rng) for _ in range(draws))
    return [counts[i] / draws for i in range(len(logits))]


def test_temperature_zero_is_the_most_likely_token() -> None:
    row = np.log(np.asarray([0.2, 0.5, 0.3]))
    assert {_draw(row, 0.0, 1.0, np.random.default_rng(i)) for i in range(20)} == {1}


@pytest.mark.parametrize(
    ("temperature", "expected"), [(1.0, [0.6, 0.3, 0.1]), (0.5, [0.36 / 0.46, 0.09 / 0.46, 0.01 / 0.46])]
)
def test_draws_follow_the_tempered_distribution(temperature: float, expected: list[float]) -> None:
    shares = _shares(list(np.log([0.6, 0.3, 0.1])), temperature, 1.0)
    assert shares == pytest.approx(expected, abs=0.015)


def test_top_p_keeps_the_smallest_set_reaching_its_mass() -> None:
    logits = list(np.log([0.6, 0.3, 0.1]))
    assert _shares(logits, 1.0, 0.5) == [1.0, 0.0, 0.0]
    only_two = _shares(logits, 1.0, 0.8)
    assert only_two[2] == 0.0 and only_two[0] == pytest.approx(2 / 3, abs=0.015)


def test_top_p_counts_the_whole_untempered_distribution_before_tempering() -> None:
    # Two close leaders hold 4% of the mass; 49,152 far tokens hold the rest. top_p=0.5 (on the
    # untempered odds, as llama.cpp's sampler does) keeps both leaders; tempering at 0.2 then
    # makes the far tokens negligible, so both leaders are drawn.
    logits = [0.0, -0.1, *([-7.0] * 49_152)]
    shares = _shares(logits, 0.2, 0.5, draws=1500)
    assert shares[0] + shares[1] > 0.999
    assert shares[1] == pytest.approx(1 / (1 + np.exp(0.5)), abs=0.04)
