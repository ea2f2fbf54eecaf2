"""Calibration: make the trust score a probability that the answer is acceptable, and choose
thresholds from targets, fitted on your own labelled examples.

    from tlm_hooks import calibrate, Calibration, TrustPolicy
    profile = calibrate(scored_rows, labels)          # rows scored with log per_component_score
    profile.save("profile.json")
    policy = TrustPolicy(threshold=profile.threshold_for(precision=0.9))

From the shell: ``tlm-hooks calibrate labelled.csv -o profile.json``. Fitting needs the
``calibration`` extra (scikit-learn); applying a saved profile needs nothing beyond tlm-hooks.
"""

from .errors import CalibrationError, LabelError, NotCalibratedError
from .features import Features
from .fit import acalibrate, calibrate
from .labels import Labels, read_labels
from .profile import Calibration, Validity
from .thresholds import Estimate, Threshold
from .tlm_calibrated import TLMCalibrated

__all__ = [
    "calibrate",
    "acalibrate",
    "Calibration",
    "TLMCalibrated",
    "Validity",
    "Threshold",
    "Estimate",
    "Features",
    "Labels",
    "read_labels",
    "CalibrationError",
    "LabelError",
    "NotCalibratedError",
]
