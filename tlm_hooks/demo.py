"""`tlm-hooks demo`: the three workflows, offline, on the embedded local model.

1. score answers you already have (``score_completion``);
2. a patched client whose every completion carries a score (``patch``);
3. a client pointed at a TLM-compatible server, options in ``extra_body`` (``route``).

The server is started in-process on 127.0.0.1 and serves the embedded model.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from . import fallbacks
from .hooks.api import patch, route, unpatch
from .policy import TrustPolicy
from .scorers.logprob import LogprobScorer
from .workflows import score_completion

__all__ = ["main", "QUESTIONS"]

QUESTIONS: tuple[str, ...] = (
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What is 7 times 8?",
    "Who wrote the novel Middlemarch?",
    "What is the chemical symbol for tungsten?",
    "What is the square root of 1764?",
)
SYSTEM = "Answer in one short sentence."


class Progress:
    """One status line on stderr, rewritten in place on a terminal."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def show(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def print_table(title: str, rows: Sequence[tuple[str, str, str, str]], out: TextIO = sys.stdout) -> None:
    """Print rows of (question, answer, score, action) under ``title``."""
    headers = ("question", "answer", "score", "action")
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}", file=out)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), file=out)
    print(line, file=out)
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)), file=out)


def _score_text(metadata: dict[str, Any] | None) -> str:
    if not metadata:
        return "-"
    score = metadata.get("trustworthiness_score")
    return "error" if score is None else f"{score:.2f}"


def _action(metadata: dict[str, Any] | None, threshold: float) -> str:
    if not metadata or metadata.get("trustworthiness_score") is None:
        return "scoring failed (fail-open)"
    done = metadata.get("fallbacks") or []
    if done:
        return "low trust -> " + ", ".join(done)
    return "trusted" if metadata["trustworthiness_score"] >= threshold else "low trust"


def _ask_all(questions: Sequence[str], ask: Callable[[list[dict[str, str]]], tuple[str, dict[str, Any] | None]], threshold: float, progress: Progress, label: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for i, question in enumerate(questions, 1):
        progress.show(f"{label}: question {i}/{len(questions)}: {_clip(question, 50)}")
        answer, metadata = ask([{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}])
        rows.append((_clip(question, 42), _clip(answer, 60), _score_text(metadata), _action(metadata, threshold)))
    progress.done()
    return rows


def run(questions: Sequence[str] = QUESTIONS, *, threshold: float = 0.6, max_tokens: int = 48, out: TextIO = sys.stdout) -> dict[str, list[tuple[str, str, str, str]]]:
    """Run the three workflows; returns the printed tables' rows by workflow name."""
    import openai

    from .local import get_default_model
    from .server.app import create_app
    from .server.runner import ServerThread

    progress = Progress()
    progress.show("Loading the embedded model (SmolLM2-135M-Instruct, CPU)...")
    started = time.perf_counter()
    model = get_default_model()
    progress.done()
    print(f"Embedded model loaded in {time.perf_counter() - started:.1f} s; trust threshold {threshold}.", file=out)

    tables: dict[str, list[tuple[str, str, str, str]]] = {}
    with ServerThread(create_app(model, scorer=LogprobScorer())) as server:
        base = server.base_url

        # Workflow 1: an ordinary client; score the completions afterwards.
        plain: Any = openai.OpenAI(base_url=f"{base}/v1", api_key="local", max_retries=0)

        def ask_then_score(messages: list[dict[str, str]]) -> tuple[str, dict[str, Any] | None]:
            kwargs: dict[str, Any] = {"model": model.name, "messages": messages, "max_tokens": max_tokens, "logprobs": True}
            response = plain.chat.completions.create(**kwargs)
            return response.choices[0].message.content or "", score_completion(response, **kwargs)

        tables["score"] = _ask_all(questions, ask_then_score, threshold, progress, "Workflow 1")
        print_table("Workflow 1 - score answers you already have (tlm_hooks.score_completion)", tables["score"], out)

        # Workflow 2: patch the client once; every completion carries tlm_metadata.
        client: Any = openai.OpenAI(base_url=f"{base}/v1", api_key="local", max_retries=0)
        patch(client, policy=TrustPolicy(threshold=threshold, on_low_trust=[fallbacks.AppendWarning(" [low trust: {score:.2f}]")]))

        def asker(hooked: Any) -> Callable[[list[dict[str, str]]], tuple[str, dict[str, Any] | None]]:
            def ask(messages: list[dict[str, str]]) -> tuple[str, dict[str, Any] | None]:
                response = hooked.chat.completions.create(model=model.name, messages=messages, max_tokens=max_tokens)
                return response.choices[0].message.content or "", response.tlm_metadata

            return ask

        tables["patch"] = _ask_all(questions, asker(client), threshold, progress, "Workflow 2")
        print_table("Workflow 2 - patched client (tlm_hooks.patch + AppendWarning)", tables["patch"], out)
        unpatch(client)

        # Workflow 3: the client talks to the TLM-compatible server; options go in extra_body.
        routed: Any = openai.OpenAI(base_url=f"{base}/api", api_key="local", max_retries=0)
        route(
            routed,
            quality_preset="base",
            options={"log": ["explanation"]},
            policy=TrustPolicy(
                threshold=threshold,
                on_low_trust=[
                    fallbacks.Regenerate(attempts=2, temperature=0.8),
                    fallbacks.ReplaceResponse("I'm not sure about this one."),
                ],
            ),
        )

        tables["route"] = _ask_all(questions, asker(routed), threshold, progress, "Workflow 3")
        print_table("Workflow 3 - client pointed at the TLM server (tlm_hooks.route: Regenerate, then ReplaceResponse)", tables["route"], out)
        unpatch(routed)

    caught = sum(1 for rows in tables.values() for row in rows if row[3].startswith("low trust"))
    print(f"\n{caught} low-trust answers caught across the three workflows (threshold {threshold}).", file=out)
    return tables


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tlm-hooks demo", description="Run the three workflows on the embedded local model.")
    parser.add_argument("-t", "--threshold", type=float, default=0.6, help="trust threshold in [0, 1] (default 0.6)")
    parser.add_argument("-n", "--max-tokens", type=int, default=48, help="answer length limit (default 48)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.threshold <= 1.0:
        parser.error(f"--threshold must be between 0 and 1, got {args.threshold}")
    run(threshold=args.threshold, max_tokens=args.max_tokens)
    return 0
