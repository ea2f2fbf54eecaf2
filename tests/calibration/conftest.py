"""Calibration tests: synthetic labelled rows whose true relation to the label is known."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

pytest.importorskip("sklearn", reason="the calibration extra (scikit-learn) is not installed")
