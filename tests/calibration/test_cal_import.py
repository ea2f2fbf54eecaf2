"""`import tlm_hooks` stays light: calibration and its fitting libraries load on first use."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_fitting_library_and_names_load_on_first_use() -> None:
    code = (
        "import sys, tlm_hooks\n"
        "heavy = {'sklearn', 'scipy', 'numpy', 'tlm_hooks.calibration'}\n"
        "print(sorted(heavy & {m if m.startswith('tlm_hooks') else m.split('.')[0] for m in sys.modules}))\n"
        "tlm_hooks.calibrate, tlm_hooks.Calibration, tlm_hooks.TLMCalibrated\n"
        "print(sorted(heavy & {m if m.startswith('tlm_hooks') else m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]", "['tlm_hooks.calibration']"]
