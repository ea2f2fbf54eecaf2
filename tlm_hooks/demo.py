"""`tlm-hooks demo`: the three workflows, offline, on the embedded local model.

1. score answers you already have (``score_completion``);
2. a patched client whose every completion carries a score (``patch``);
3. a client pointed at a TLM-compatible server, options in ``extra_body`` (``route``).

Scores come from the open engine (``medium``: token probability, self-reflection, consistency)
with the embedded model as judge, calibrated by the profile shipped for that judge
(``tlm_hooks/profiles/embedded-medium.json``, fitted on the 311 labelled answers of
``benchmarks/qa``); the threshold is the profile's choice for a precision target. The server is
started in-process on 127.0.0.1 and serves the embedded model.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from . import fallbacks
from .hooks.api import patch, route, unpatch
from .policy import TrustPolicy
from .progress import progress_enabled
from .workflows import score_completion

__all__ = ["main", "run", "QUESTIONS", "DemoQuestion", "PROFILE", "Tally"]

PROFILE = "embedded-medium.json"  # in tlm_hooks/profiles: the embedded judge, preset medium


@dataclass(frozen=True)
class DemoQuestion:
    """A question and the answers that count as right (whole words, case and accents folded)."""

    question: str
    accepted: tuple[str, ...]

    def is_right(self, answer: str) -> bool:
        """Whether ``answer`` gives one of the accepted answers."""
        from .scorers.signals.commitments import fold

        text = fold(answer)
        return any(re.search(rf"(?<![\w.]){re.escape(fold(a))}(?![\w]|\.\d)", text) for a in self.accepted)


QUESTIONS: tuple[DemoQuestion, ...] = (
    DemoQuestion("What is the capital of France?", ("Paris",)),
    DemoQuestion("How many legs does a spider have?", ("8", "eight")),
    DemoQuestion("What is 7 times 8?", ("56", "fifty-six", "fifty six")),
    DemoQuestion("Who wrote the novel Middlemarch?", ("George Eliot", "Mary Ann Evans")),
    DemoQuestion("What is the chemical symbol for tungsten?", ("W",)),
    DemoQuestion("What is the square root of 1764?", ("42", "forty-two", "forty two")),
    DemoQuestion("What is the capital of Japan?", ("Tokyo",)),
    DemoQuestion("How many days are in a week?", ("7", "seven")),
)
SYSTEM = "Answer in one short sentence."
SIGNAL_NAMES = {
    "token_probability": "token probability",
    "self_reflection": "self-reflection",
    "consistency": "consistency",
}


@dataclass
class Tally:
    """How the threshold sorted the answers of workflow 1: wrong ones caught, right ones kept."""

    wrong: int = 0
    caught: int = 0
    right: int = 0
    kept: int = 0

    def add(self, right: bool, trusted: bool) -> None:
        if right:
            self.right += 1
            self.kept += trusted
        else:
            self.wrong += 1
            self.caught += not trusted


class Progress:
    """One status line on stderr, rewritten in place on a terminal; silent with
    ``TLM_HOOKS_PROGRESS=0``."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.enabled = progress_enabled()

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


Row = tuple[str, ...]
HEADERS = ("question", "answer", "right?", "score", "action", "lowest signal")


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def print_table(title: str, rows: Sequence[Row], out: TextIO = sys.stdout) -> None:
    """Print rows of (question, answer, right?, score, action, lowest signal) under ``title``."""
    widths = [max(len(HEADERS[i]), *(len(r[i]) for r in rows)) for i in range(len(HEADERS))]
    print(f"\n{title}", file=out)
    print("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out)


def _score_text(metadata: dict[str, Any] | None) -> str:
    if not metadata:
        return "-"
    score = metadata.get("trustworthiness_score")
    return "error" if score is None else f"{score:.2f}"


def _trusted(metadata: dict[str, Any] | None, threshold: float) -> bool:
    score = (metadata or {}).get("trustworthiness_score")
    return score is not None and score >= threshold


def _action(metadata: dict[str, Any] | None, threshold: float) -> str:
    if not metadata or metadata.get("trustworthiness_score") is None:
        return "scoring failed (fail-open)"
    done = metadata.get("fallbacks") or []
    if done:
        return "low trust -> " + ", ".join(done)
    return "trusted" if metadata["trustworthiness_score"] >= threshold else "low trust"


def lowest_signal(metadata: dict[str, Any] | None) -> str:
    """The signal with the lowest score (what pulled the score down), e.g. ``consistency 0.12``."""
    log = (metadata or {}).get("log") or {}
    components = {k: v for k, v in (log.get("per_component_score") or {}).items() if k in SIGNAL_NAMES}
    if not components:
        return "-"
    name = min(components, key=lambda k: float(components[k]))
    return f"{SIGNAL_NAMES[name]} {float(components[name]):.2f}"


Ask = Callable[[list[dict[str, str]]], tuple[str, dict[str, Any] | None]]


def _ask_all(
    questions: Sequence[DemoQuestion], ask: Ask, threshold: float, progress: Progress, label: str, tally: Tally | None
) -> list[Row]:
    rows: list[Row] = []
    for i, item in enumerate(questions, 1):
        progress.show(f"{label}: question {i}/{len(questions)}: {_clip(item.question, 50)}")
        answer, metadata = ask([{"role": "system", "content": SYSTEM}, {"role": "user", "content": item.question}])
        replaced = "replace_response" in ((metadata or {}).get("fallbacks") or [])
        right = item.is_right(answer)
        trusted = _trusted(metadata, threshold)
        if tally is not None and metadata and metadata.get("trustworthiness_score") is not None:
            tally.add(right, trusted)
        why = "" if trusted else lowest_signal(metadata)
        rows.append(
            (_clip(item.question, 42), _clip(answer, 56), "-" if replaced else "yes" if right else "no", _score_text(metadata),
             _action(metadata, threshold), why)
        )  # fmt: skip
    progress.done()
    return rows


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.0f} s"


def load_profile() -> Any:
    """The calibration profile shipped for the embedded judge at preset ``medium``."""
    from importlib.resources import as_file, files

    from .calibration import Calibration

    with as_file(files("tlm_hooks") / "profiles" / PROFILE) as path:
        return Calibration.load(path)


def run(
    questions: Sequence[DemoQuestion] = QUESTIONS,
    *,
    threshold: float | None = None,
    precision: float = 0.7,
    max_tokens: int = 32,
    follow_up: int = 2,
    out: TextIO = sys.stdout,
) -> dict[str, Any]:
    """Run the three workflows; returns the printed tables' rows by workflow name and, under
    ``"tally"``, how workflow 1's answers were sorted. ``threshold`` (default: the shipped
    profile's threshold for ``precision``) applies to calibrated scores; workflows 2 and 3 ask
    the first ``follow_up`` questions."""
    import openai

    from .llm import LocalBackend
    from .local import get_default_model
    from .scorers.tlm import TLMScorer
    from .server.app import create_app
    from .server.runner import ServerThread

    progress = Progress()
    profile = load_profile()
    if threshold is None:
        chosen = profile.threshold_for(precision=precision)
        threshold = float(chosen)
        expected = chosen.expected.get("precision")
        origin = f"the profile's choice for precision {precision:g}" + (
            f" (expected {expected.mean:.2f} on held-out answers)" if expected is not None else ""
        )
    else:
        origin = "given"
    progress.show("Loading the embedded model (SmolLM2-135M-Instruct, CPU)...")
    started = time.perf_counter()
    model = get_default_model()
    progress.done()
    print(
        f"Embedded model loaded in {time.perf_counter() - started:.1f} s. Scores: the open engine (medium), "
        f"calibrated by {PROFILE} ({profile.data.get('n', '?')} labelled answers); threshold {threshold:.2f}, {origin}.",
        file=out,
    )
    options = {"log": ["per_component_score"]}
    # the judge is the embedded model itself, called in-process (what the profile was fitted for)
    scorer = TLMScorer(quality_preset="medium", options=options, judge=LocalBackend(model), calibration=profile)
    tables: dict[str, Any] = {}
    tally = Tally()
    run_started = time.perf_counter()
    with ServerThread(create_app(model, scorer=scorer)) as server:
        base = server.base_url

        # Workflow 1: an ordinary client; score the completions afterwards.
        plain: Any = openai.OpenAI(base_url=f"{base}/v1", api_key="local", max_retries=0)

        def ask_then_score(messages: list[dict[str, str]]) -> tuple[str, dict[str, Any] | None]:
            kwargs: dict[str, Any] = {
                "model": model.name,
                "messages": messages,
                "max_tokens": max_tokens,
                "logprobs": True,
            }
            response = plain.chat.completions.create(**kwargs)
            return response.choices[0].message.content or "", score_completion(response, scorer=scorer, **kwargs)

        tables["score"] = _ask_all(questions, ask_then_score, threshold, progress, "Workflow 1", tally)
        print_table(
            f"Workflow 1 - score answers you already have (tlm_hooks.score_completion), {_since(run_started)}",
            tables["score"],
            out,
        )
        print(
            f"Wrong answers caught: {tally.caught} of {tally.wrong}; right answers kept: {tally.kept} of {tally.right}.",
            file=out,
        )

        # Workflow 2: patch the client once; every completion carries tlm_metadata.
        client: Any = openai.OpenAI(base_url=f"{base}/v1", api_key="local", max_retries=0)
        policy = TrustPolicy(threshold=threshold, on_low_trust=[fallbacks.AppendWarning(" [low trust: {score:.2f}]")])
        patch(client, scorer=scorer, policy=policy)

        def asker(hooked: Any) -> Ask:
            def ask(messages: list[dict[str, str]]) -> tuple[str, dict[str, Any] | None]:
                response = hooked.chat.completions.create(model=model.name, messages=messages, max_tokens=max_tokens)
                return response.choices[0].message.content or "", response.tlm_metadata

            return ask

        few = questions[:follow_up]
        started = time.perf_counter()
        tables["patch"] = _ask_all(few, asker(client), threshold, progress, "Workflow 2", None)
        print_table(
            f"Workflow 2 - patched client (tlm_hooks.patch + AppendWarning), {_since(started)}", tables["patch"], out
        )
        unpatch(client)

        # Workflow 3: the client talks to the TLM-compatible server; options go in extra_body.
        routed: Any = openai.OpenAI(base_url=f"{base}/api", api_key="local", max_retries=0)
        route(
            routed,
            quality_preset="medium",
            options=options,
            policy=TrustPolicy(
                threshold=threshold,
                on_low_trust=[
                    fallbacks.Regenerate(attempts=1, temperature=0.8),
                    fallbacks.ReplaceResponse("I'm not sure about this one."),
                ],
            ),
        )
        started = time.perf_counter()
        tables["route"] = _ask_all(few, asker(routed), threshold, progress, "Workflow 3", None)
        print_table(
            "Workflow 3 - client pointed at the TLM server (tlm_hooks.route: Regenerate, then ReplaceResponse), "
            + _since(started),
            tables["route"],
            out,
        )
        unpatch(routed)

    flagged = sum(1 for name in ("score", "patch", "route") for row in tables[name] if row[4].startswith("low trust"))
    print(
        f"\n{flagged} low-trust answers caught across the three workflows (threshold {threshold:.2f}), "
        f"in {time.perf_counter() - run_started:.0f} s.",
        file=out,
    )
    print(
        f"Workflow 1: {tally.caught} of {tally.wrong} wrong answers caught, {tally.kept} of {tally.right} right "
        "answers kept. The judge is the same tiny model that answered; a capable judge does better.",
        file=out,
    )
    tables["tally"] = tally
    return tables


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tlm-hooks demo", description="Run the three workflows on the embedded local model."
    )
    parser.add_argument(
        "-t", "--threshold", type=float, default=None,
        help="trust threshold in [0, 1] on calibrated scores (default: the shipped profile's choice for --precision)",
    )  # fmt: skip
    parser.add_argument(
        "-p", "--precision", type=float, default=0.7,
        help="share of trusted answers that should be right; picks the threshold (default 0.7)",
    )  # fmt: skip
    parser.add_argument("-n", "--max-tokens", type=int, default=32, help="answer length limit (default 32)")
    args = parser.parse_args(argv)
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        parser.error(f"--threshold must be between 0 and 1, got {args.threshold}")
    if not 0.0 < args.precision < 1.0:
        parser.error(f"--precision must be between 0 and 1 (exclusive), got {args.precision}")
    run(threshold=args.threshold, precision=args.precision, max_tokens=args.max_tokens)
    return 0
