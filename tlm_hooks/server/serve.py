"""`tlm-hooks serve`: run the TLM-compatible server with uvicorn (graceful shutdown on SIGINT/SIGTERM).

Auth is on unless ``--no-auth`` says otherwise: keys come from ``--api-key``, ``--api-key-file``
and ``TLM_HOOKS_API_KEYS``, and a source that yields no key (an unset shell variable, ``","``)
is a startup error, never a silent switch to no auth.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["main", "build_parser", "load_model", "api_keys", "KeyConfigError", "SHUTDOWN_SECONDS"]

logger = logging.getLogger("tlm_hooks")

KEYS_ENV = "TLM_HOOKS_API_KEYS"
SHUTDOWN_SECONDS = 30  # after SIGINT/SIGTERM the process is gone within this many seconds
_SHUTDOWN_MARGIN = 4  # of those: writing the 503s, closing connections and the model


class KeyConfigError(ValueError):
    """The API-key flags, file or environment do not give a usable choice; the message says why."""


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
        help=f"accepted API key (repeatable; visible in `ps`: prefer env {KEYS_ENV}=k1,k2 or --api-key-file)",
    )
    parser.add_argument(
        "--api-key-file",
        action="append",
        default=[],
        metavar="PATH",
        help="a file of accepted API keys, one per line ('#' comments and blank lines ignored; repeatable)",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without API keys: anyone who can reach the port can use the model",
    )
    parser.add_argument(
        "--model",
        default="local",
        help="'local' (the embedded SmolLM2 model, default), a .gguf path, or the base URL "
        "of an OpenAI-compatible server (http(s)://host/v1)",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="CPU threads for a local/GGUF model (default: half the cores, at most 4; 1 on a 2-core machine)",
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
        "--max-prompt-chars",
        type=_positive_int,
        default=100_000,
        help="limit on the prompt's characters: message contents, roles and names together (100000)",
    )
    parser.add_argument("--max-messages", type=_positive_int, default=1000, help="limit on messages per request (1000)")
    parser.add_argument(
        "--max-name-chars", type=_positive_int, default=64, help="limit on a message's role and name (64 characters)"
    )
    parser.add_argument(
        "--read-timeout",
        type=_seconds,
        default=30.0,
        help="seconds a client has to send its request headers, and again its body; slower ones are cut off (30)",
    )
    parser.add_argument("--no-score", action="store_true", help="serve plain completions, without tlm_metadata")
    parser.add_argument(
        "--calibration",
        metavar="PROFILE",
        help="a profile from `tlm-hooks calibrate`: every score is then the calibrated one (the raw one in log)",
    )
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
    parser.add_argument(
        "--metrics",
        choices=["off", "auth", "public"],
        default="auth",
        help="Prometheus metrics on GET /metrics: 'auth' (default) asks for an API key like the model "
        "endpoints (with --no-auth nothing is asked), 'public' asks for none (for a scraper inside the "
        "cluster; the metrics carry no prompt, key or model name), 'off' serves none",
    )
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def _keys_from_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyConfigError(f"--api-key-file {path!r} cannot be read: {exc}") from exc
    keys = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not keys:
        raise KeyConfigError(f"--api-key-file {path!r} holds no key (one key per line)")
    return keys


def api_keys(
    flags: Sequence[str],
    files: Sequence[str] = (),
    *,
    no_auth: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> list[str] | None:
    """Keys from ``--api-key``, ``--api-key-file`` and ``TLM_HOOKS_API_KEYS``; ``None`` only with ``no_auth``.

    Raises ``KeyConfigError`` when a source resolves to nothing (``--api-key ""``, a set but
    empty variable, an empty file), when there is no key without ``no_auth``, or both.
    """
    keys: list[str] = []
    for flag in flags:
        if not flag.strip():
            raise KeyConfigError(
                "--api-key was given an empty value (an unset shell variable?): give a key, or choose --no-auth"
            )
        keys.append(flag.strip())
    for path in files:
        keys += _keys_from_file(path)
    if KEYS_ENV in environ:
        from_env = [k.strip() for k in environ[KEYS_ENV].split(",") if k.strip()]
        if not from_env:
            raise KeyConfigError(f"{KEYS_ENV} is set but holds no key (expected k1,k2,...): set keys or unset it")
        keys += from_env
    if no_auth and keys:
        raise KeyConfigError("--no-auth was given together with API keys: choose one")
    if no_auth:
        return None
    if not keys:
        raise KeyConfigError(
            f"no API key: give keys with {KEYS_ENV}=k1,k2 or --api-key-file PATH (or --api-key KEY, visible in `ps`), "
            "or serve without auth with --no-auth"
        )
    return list(dict.fromkeys(keys))


def _calibration(path: str | None, no_score: bool) -> Any:
    """The profile of ``--calibration`` (``None`` without it); ``ValueError`` naming the file."""
    if path is None:
        return None
    if no_score:
        raise ValueError("--calibration calibrates scores; it cannot go with --no-score")
    try:
        from ..calibration.profile import Calibration
    except ImportError as exc:
        from ..errors import MissingDependencyError

        raise MissingDependencyError(
            f"--calibration needs the calibration extra: pip install 'tlm-hooks[calibration]' ({exc})"
        ) from None
    return Calibration.load(path)


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
    # Ctrl-C must work even when SIGINT was inherited as ignored (a background job, nohup)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..errors import MissingDependencyError
    from ..llm.local import LocalBackend
    from .app import create_app
    from .limits import Limits
    from .runner import server_config
    from .scoring import DefaultScorers

    upstream_key = args.upstream_api_key or os.environ.get("TLM_HOOKS_UPSTREAM_API_KEY") or None
    try:
        keys = api_keys(args.api_key, args.api_key_file, no_auth=args.no_auth)
    except KeyConfigError as exc:
        print(f"tlm-hooks serve: {exc}", file=sys.stderr)
        return 2
    try:
        profile = _calibration(args.calibration, args.no_score)
    except (ValueError, MissingDependencyError) as exc:  # before the model loads
        print(f"tlm-hooks serve: {exc}", file=sys.stderr)
        return 2
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
        max_messages=args.max_messages,
        max_name_chars=args.max_name_chars,
        read_timeout=args.read_timeout,
    )
    scorer = (
        None
        if args.no_score
        else DefaultScorers(
            judge=LocalBackend(model), allow_model_provider=args.allow_model_provider, calibration=profile
        )
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
            metrics=args.metrics,
        )
    except ValueError as exc:
        print(f"tlm-hooks serve: {exc}", file=sys.stderr)
        close = getattr(model, "close", None)
        if close is not None:
            close()
        return 2
    if keys is None:
        logger.warning("tlm-hooks serve: --no-auth: serving without API keys")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("tlm-hooks serve: listening on %s, reachable from other machines", args.host)
    # in-flight requests get `grace` seconds, then a 503 `shutting_down`; the rest of the bound
    # is for writing those replies and closing the model
    grace = min(args.timeout, SHUTDOWN_SECONDS - _SHUTDOWN_MARGIN)
    config = server_config(app, graceful_shutdown=grace + 2, host=args.host, port=args.port, log_level=args.log_level)
    server = _draining_server(config, app.state.draining, grace)
    print(
        f"tlm-hooks serve: model {getattr(model, 'name', args.model)!r} on http://{args.host}:{args.port} "
        f"(auth {'on' if keys else 'off'}; metrics on /metrics: {args.metrics})",
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


def _draining_server(config: Any, draining: Any, grace: float) -> Any:
    """A uvicorn ``Server`` that starts the app's draining (``grace`` seconds for requests in
    flight, then 503 ``shutting_down``) as soon as a stop signal arrives."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            draining.begin(grace)
            super().handle_exit(sig, frame)

    return DrainingServer(config)
