"""Cost per hooked call of putting the trust result on the active span
(``tlm_hooks.integrations.otel.record_on_current_span``), against an empty function call
measured in the same interpreter:

- ``no tracer``: OpenTelemetry and MLflow not imported by the app (the common case; this
  interpreter cannot import ``opentelemetry`` at all);
- ``otel, no span``: ``opentelemetry.trace`` imported, no span active;
- ``otel, span``: an SDK span recording (attributes are set: the real work);
- ``mlflow, no span`` / ``mlflow, span``: ``mlflow`` imported, with and without an active
  ``mlflow.start_span`` (skipped when MLflow is not installed).

    python benchmarks/otel_overhead.py [--calls 200000]

Each case runs in its own interpreter so imports of one do not leak into another.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys

_COMMON = """
import timeit
from tlm_hooks.hooks.config import HookConfig
from tlm_hooks.integrations.otel import record_on_current_span
from tlm_hooks.scorers.function import FunctionScorer
from tlm_hooks.types import TrustResult
config = HookConfig("score", scorer=FunctionScorer(lambda r: 1.0))
result = TrustResult(0.8, explanation="fine", components={"self_reflection": 0.8})
def empty(result, config):
    return False
def ns(stmt, calls):
    return min(timeit.repeat(stmt, globals=globals(), number=calls, repeat=5)) / calls * 1e9
"""

_CASES = {
    "no tracer": "import sys; sys.modules['opentelemetry'] = None; sys.modules['opentelemetry.trace'] = None\n",
    "otel, no span": "import opentelemetry.trace\n",
    "otel, span": (
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.trace import use_span\n"
        "span = TracerProvider().get_tracer('bench').start_span('call')\n"
        "scope = use_span(span)\n"
        "scope.__enter__()\n"
    ),
    "mlflow, no span": "import mlflow\n",
    "mlflow, span": (
        "import mlflow, tempfile\n"
        "mlflow.set_tracking_uri('sqlite:///' + tempfile.mkdtemp() + '/bench.db')\n"
        "scope = mlflow.start_span('call')\n"
        "scope.__enter__()\n"
    ),
}


def run_case(prelude: str, calls: int) -> tuple[float, float]:
    """(empty call, record_on_current_span) in ns per call, in a fresh interpreter."""
    code = (
        prelude
        + _COMMON
        + f"print(ns('empty(result, config)', {calls}), ns('record_on_current_span(result, config)', {calls}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    empty, record = done.stdout.split()[-2:]
    return float(empty), float(record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    has_mlflow = importlib.util.find_spec("mlflow") is not None
    for label, prelude in _CASES.items():
        if label.startswith("mlflow") and not has_mlflow:
            continue
        calls = args.calls if label.endswith("no span") or label == "no tracer" else max(1000, args.calls // 20)
        empty, record = run_case(prelude, calls)
        print(
            f"{label:16s} empty call {empty:6.0f} ns   record_on_current_span {record:7.0f} ns   added {record - empty:+7.0f} ns"
        )


if __name__ == "__main__":
    main()
