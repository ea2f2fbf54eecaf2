"""Labels: what is accepted, how ratings are normalised, and errors that name the rows."""

from __future__ import annotations

import pytest

from tlm_hooks.calibration import LabelError, read_labels


def test_booleans_and_yes_no_text_are_binary() -> None:
    labels = read_labels([True, False, "yes", "No", "1", 0, "correct", "incorrect"] * 3, min_examples=8)
    assert labels.kind == "binary"
    assert labels.values[:8] == (1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0)


def test_numeric_ratings_are_normalised_min_max_like_cleanlab() -> None:
    ratings = [1, 2, 3, 4, 5] * 5
    labels = read_labels(ratings)
    assert labels.kind == "rating" and (labels.low, labels.high) == (1, 5)
    assert labels.values[:5] == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert labels.describe() == {"kind": "rating", "low": 1, "high": 5}


def test_a_stated_scale_is_used_instead_of_the_observed_range() -> None:
    labels = read_labels([2, 3, 4] * 10, scale=(1, 5))
    assert labels.values[:3] == (0.25, 0.5, 0.75)
    with pytest.raises(LabelError, match="outside the scale"):
        read_labels([2, 3, 9] * 10, scale=(1, 5))


def test_ratings_already_in_0_1_are_kept() -> None:
    labels = read_labels([0.2, 0.9, 0.6, 0.1] * 6)
    assert labels.kind == "rating" and labels.values[:4] == (0.2, 0.9, 0.6, 0.1)
    assert labels.binary[:4] == (0, 1, 1, 0)


def test_missing_labels_are_named() -> None:
    values: list[object] = [True, False] * 15
    values[3], values[17] = None, float("nan")
    with pytest.raises(LabelError) as caught:
        read_labels(values, [f"line {i + 2}" for i in range(len(values))])
    assert "2 label(s) are missing" in str(caught.value)
    assert caught.value.rows == ("line 5", "line 19")


def test_non_numeric_labels_are_named_with_their_value() -> None:
    values: list[object] = [1, 0] * 15
    values[4] = "maybe"
    with pytest.raises(LabelError) as caught:
        read_labels(values)
    assert "row 4 ('maybe')" in str(caught.value) and caught.value.rows == ("row 4",)
    assert "true/false" in str(caught.value)


def test_one_class_too_few_rows_and_too_few_of_a_class_are_refused() -> None:
    with pytest.raises(LabelError, match="both acceptable and unacceptable"):
        read_labels([True] * 30)
    with pytest.raises(LabelError, match="at least 20"):
        read_labels([True, False] * 5)
    with pytest.raises(LabelError, match="3 unacceptable"):
        read_labels([True] * 27 + [False] * 3)
