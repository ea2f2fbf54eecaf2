"""What `import tlm_hooks` costs, and what the hook itself costs per call, in measures that load
on a shared machine disturbs little.

    python benchmarks/import_cost.py [--runs 7]

Prints the median cumulative import time of `tlm_hooks` (`python -X importtime`, fresh interpreters)
and whether the hook machinery (asyncio, wrapt, ...) was loaded by it; then the best-of-7 time per
call of a `@trust_scored` function (instant scorer, `score_timeout=None`) against the same function
undecorated, in this process.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path


def _tree_env() -> tuple[dict[str, str], str]:
    """Environment and working directory that make a fresh interpreter import the `tlm_hooks` this
    one would (a `-c` script puts its working directory first on the path)."""
    spec = importlib.util.find_spec("tlm_hooks")
    if spec is None or spec.origin is None:
        raise SystemExit("tlm_hooks is not importable (set PYTHONPATH to the checkout)")
    tree = str(Path(spec.origin).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (tree, os.environ.get("PYTHONPATH")) if p))
    return env, tempfile.gettempdir()


MACHINERY = ("asyncio", "wrapt", "concurrent.futures", "sqlite3", "ssl")


def import_time_us() -> int:
    """Cumulative µs of `tlm_hooks` in one fresh interpreter's -X importtime report."""
    env, cwd = _tree_env()
    command = [sys.executable, "-X", "importtime", "-c", "import tlm_hooks"]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=cwd, env=env)
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == "tlm_hooks":
            return int(parts[1])
    raise RuntimeError("tlm_hooks not in the -X importtime report")


def loaded_by_import() -> list[str]:
    code = f"import sys, tlm_hooks; print(' '.join(m for m in {MACHINERY!r} if m in sys.modules))"
    env, cwd = _tree_env()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd, env=env
    ).stdout
    return out.split()


def hook_cost_us(calls: int = 3000) -> tuple[float, float]:
    """Best-of-7 µs per call: the decorated function, the plain one."""
    import tlm_hooks

    def answer(prompt: str) -> str:
        return "four"

    decorated = tlm_hooks.trust_scored(scorer=lambda _r: 1.0, policy=tlm_hooks.TrustPolicy(score_timeout=None))(answer)

    def best(fn: object) -> float:
        return min(timeit.repeat(fn, number=calls, repeat=7)) / calls * 1e6  # type: ignore[arg-type]

    return best(lambda: decorated("2+2?")), best(lambda: answer("2+2?"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    times = [import_time_us() for _ in range(args.runs)]
    print(
        f"import tlm_hooks     median {statistics.median(times) / 1000:7.1f} ms  (runs: {' '.join(str(t // 1000) for t in times)} ms)"
    )
    print(f"  hook machinery loaded by the import: {', '.join(loaded_by_import()) or 'none'}")
    hooked, plain = hook_cost_us()
    print(f"  (tlm_hooks from {_tree_env()[0]['PYTHONPATH'].split(os.pathsep)[0]})")
    print(f"@trust_scored call   best {hooked:7.1f} us   plain {plain:5.2f} us   added {hooked - plain:+7.1f} us")


if __name__ == "__main__":
    main()
