"""One local Ray cluster (2 CPUs, no dashboard, no usage report) for every test here, shut down
at the end. The actors find this folder's helper module and the checkout through PYTHONPATH."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
try:
    import ray
    import ray.data
except ImportError:  # the [ray] extra is not installed: each test module skips, saying so
    ray = None


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A real local cluster; ``ray.shutdown()`` stops its processes when the session ends."""
    assert ray is not None
    if ray.is_initialized():  # an earlier test module left one; start clean with ours
        ray.shutdown()
    path = os.pathsep.join([str(HERE), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    for attempt in range(3):
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                logging_level="WARNING",
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0"}},
            )
            break
        except Exception as exc:
            # Ray gives its raylet a fixed 30 s to register; a machine under heavy load can miss that
            ray.shutdown()
            if "timed out during startup" not in str(exc) or attempt == 2:
                raise
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()
