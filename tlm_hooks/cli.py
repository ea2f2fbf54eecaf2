"""The `tlm-hooks` command."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .errors import MissingDependencyError

__all__ = ["main"]

USAGE = """usage: tlm-hooks [--version] COMMAND [options]

commands:
  demo     run the three workflows on the embedded local model (offline)
  serve    run a TLM-compatible HTTP server (see `tlm-hooks serve --help`)
  score    score a CSV/JSONL dataset into a new file (see `tlm-hooks score --help`)
  calibrate  fit a calibration profile on labelled rows (see `tlm-hooks calibrate --help`)
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from . import __version__

        print(f"tlm-hooks {__version__}")
        return 0
    command, rest = args[0], args[1:]
    try:
        return _run(command, rest)
    except MissingDependencyError as exc:  # an extra is not installed: say which, no traceback
        print(f"tlm-hooks {command}: {exc}", file=sys.stderr)
        return 2


def _run(command: str, rest: list[str]) -> int:
    if command == "demo":
        from .demo import main as demo_main

        return demo_main(rest)
    if command == "serve":
        from .server.serve import main as serve_main

        return serve_main(rest)
    if command == "score":
        from .datasets.command import main as score_main

        return score_main(rest)
    if command == "calibrate":
        from .calibration.command import main as calibrate_main

        return calibrate_main(rest)
    print(
        f"tlm-hooks: unknown command {command!r}; allowed: demo, serve, score, calibrate\n\n{USAGE}",
        end="",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
