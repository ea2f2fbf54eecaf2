"""`tlm-hooks serve`: run the TLM-compatible server with uvicorn (graceful shutdown on SIGINT/SIGTERM)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "build_parser", "load_model"]

logger = logging.getLogger("tlm_hooks")


class _StopRequested(Exception):
    """SIGTERM, re-raised by uvicorn after its graceful shutdown."""


def _stop_requested(signum: int, frame: Any) -> None:
    raise _StopRequested


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def _alias(text: str) -> tuple[str, str]:
    name, sep, target = text.partition("=")
    if not sep or not name.strip() or not target.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=TARGET, got {text!r}")
    return name.strip(), target.strip()


def build_parser() -> argparse.ArgumentParser:
    """The ``serve`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="tlm-hooks serve",
        description="Serve a TLM-compatible backend: OpenAI/Azure chat completions with tlm_metadata, "
        "and TLM's REST API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accepted API key (repeatable); also env TLM_HOOKS_API_KEYS=k1,k2. Without any key, auth is off",
    )
    parser.add_argument(
        "--model",
        default="local",
        help="'local' (the embedded SmolLM2 model, default), a .gguf path, or the base URL "
        "of an OpenAI-compatible server (http(s)://host/v1)",
    )
    parser.add_argument(
        "--threads", type=_positive_int, default=None, help="CPU threads for a local/GGUF model (default: all cores)"
    )
    parser.add_argument(
        "--upstream-model", default=None, help="model name to send upstream (URL --model only; default: the client's)"
    )
    parser.add_argument(
        "--upstream-api-key",
        default=None,
        help="key for the upstream server (URL --model only); also env TLM_HOOKS_UPSTREAM_API_KEY",
    )
    parser.add_argument("--max-concurrency", type=_positive_int, default=4, help="requests worked on at once (4)")
    parser.add_argument("--max-queue", type=_count, default=32, help="requests waiting beyond those; more get 503 (32)")
    parser.add_argument("--timeout", type=_seconds, default=120.0, help="seconds per request, queue included (120)")
    parser.add_argument("--max-body-bytes", type=_positive_int, default=1_000_000, help="request body limit (1000000)")
    parser.add_argument(
        "--max-prompt-chars", type=_positive_int, default=100_000, help="limit on the prompt's characters (100000)"
    )
    parser.add_argument("--no-score", action="store_true", help="serve plain completions, without tlm_metadata")
    parser.add_argument(
        "--allow-model-provider",
        action="store_true",
        help="let requests name an endpoint in options.model_provider that generates and judges for them "
        "(off: the server calls only its own model)",
    )
    parser.add_argument(
        "--allow-model",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a litellm model (glob pattern, repeatable, e.g. 'openai/gpt-4o*') that requests may pick with "
        "options.model; it generates and judges with this server's provider keys",
    )
    parser.add_argument(
        "--model-alias",
        action="append",
        default=[],
        type=_alias,
        metavar="NAME=TARGET",
        help="answer options.model=NAME with TARGET (repeatable): this server's model, 'local', or a model "
        "an --allow-model pattern admits",
    )
    parser.add_argument(
        "--strict-models",
        action="store_true",
        help="refuse (400) an options.model this server does not serve, instead of answering it with "
        "the server's own model and saying so in the reply",
    )
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def api_keys(flags: Sequence[str], environ: Any = os.environ) -> list[str] | None:
    """Keys from ``--api-key`` and ``TLM_HOOKS_API_KEYS`` (``None``: auth off)."""
    keys = [k.strip() for k in flags if k.strip()]
    keys += [k.strip() for k in environ.get("TLM_HOOKS_API_KEYS", "").split(",") if k.strip()]
    return list(dict.fromkeys(keys)) or None


def load_model(
    spec: str, *, upstream_key: str | None, upstream_model: str | None, timeout: float, threads: int | None = None
) -> Any:
    """The generator model for ``--model``: ``local``, a GGUF path, or an OpenAI-compatible URL."""
    if spec.startswith(("http://", "https://")):
        from .upstream import UpstreamModel

        return UpstreamModel(spec, api_key=upstream_key, model=upstream_model, timeout=timeout)
    from ..local import LocalModel

    return LocalModel(None if spec == "local" else spec, n_threads=threads)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until interrupted; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    import uvicorn

    from ..errors import MissingDependencyError
    from ..llm.local import LocalBackend
    from .app import create_app
    from .limits import Limits
    from .scoring import DefaultScorers

    upstream_key = args.upstream_api_key or os.environ.get("TLM_HOOKS_UPSTREAM_API_KEY") or None
    keys = api_keys(args.api_key)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        model = load_model(
            args.model,
            upstream_key=upstream_key,
            upstream_model=args.upstream_model,
            timeout=args.timeout,
            threads=args.threads,
        )
    except (MissingDependencyError, FileNotFoundError, ValueError) as exc:
        print(f"tlm-hooks serve: cannot load --model {args.model!r}: {exc}", file=sys.stderr)
        return 2
    if args.allow_model and importlib.util.find_spec("litellm") is None:
        print("tlm-hooks serve: --allow-model needs litellm: pip install 'tlm-hooks[litellm]'", file=sys.stderr)
        return 2
    limits = Limits(
        max_body_bytes=args.max_body_bytes,
        max_prompt_chars=args.max_prompt_chars,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        timeout=args.timeout,
    )
    scorer = (
        None
        if args.no_score
        else DefaultScorers(judge=LocalBackend(model), allow_model_provider=args.allow_model_provider)
    )
    try:
        app = create_app(
            model,
            scorer=scorer,
            api_keys=keys,
            limits=limits,
            hidden=[upstream_key] if upstream_key else [],
            allowed_models=args.allow_model,
            allow_model_provider=args.allow_model_provider,
            model_aliases=dict(args.model_alias),
            strict_models=args.strict_models,
        )
    except ValueError as exc:
        print(f"tlm-hooks serve: {exc}", file=sys.stderr)
        close = getattr(model, "close", None)
        if close is not None:
            close()
        return 2
    if keys is None:
        logger.warning("tlm-hooks serve: no API key given (--api-key / TLM_HOOKS_API_KEYS): auth is OFF")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("tlm-hooks serve: listening on %s, reachable from other machines", args.host)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=max(1, int(min(args.timeout, 30))),
    )
    server = uvicorn.Server(config)
    print(
        f"tlm-hooks serve: model {getattr(model, 'name', args.model)!r} on http://{args.host}:{args.port} "
        f"(auth {'on' if keys else 'off'})",
        file=sys.stderr,
        flush=True,
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal: that is a clean exit
    signal.signal(signal.SIGTERM, _stop_requested)
    try:
        server.run()
    except (KeyboardInterrupt, _StopRequested):
        pass
    finally:
        close = getattr(model, "close", None)
        if close is not None:
            close()
    return 0
