"""`tlm-hooks score --calibration` and `tlm-hooks serve --calibration`: the profile is read up
front (a bad one stops the command before any judge call) and every score is the calibrated one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest
from cal_rows import uniform_rows
from fake_openai import FakeOpenAI, Reply

from tlm_hooks import Calibration, ScoreRequest, TLMScorer, calibrate
from tlm_hooks.cli import main as cli_main
from tlm_hooks.llm.openai_compat import OpenAICompatibleBackend

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
from serve_process import ServeProcess  # noqa: E402


@pytest.fixture(scope="module")
def reflection_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile for the base preset without token logprobs (self-reflection only)."""
    scores, labels = uniform_rows(300, seed=5)
    rows = [{"log": {"per_component_score": {"self_reflection": s * s}}} for s in scores]
    path = tmp_path_factory.mktemp("profile") / "profile.json"
    calibrate(rows, labels, quality_preset="base", task="default").save(path)
    return path


def _rows(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as file:
        for i in range(n):
            file.write(json.dumps({"id": i, "prompt": f"question {i}?", "response": f"answer {i}"}) + "\n")
    return path


def _score(*argv: str) -> int:
    return cli_main(["score", *argv])


def _scores(path: Path) -> list[float]:
    return [json.loads(line)["trustworthiness_score"] for line in path.read_text().splitlines()]


def test_score_command_writes_calibrated_scores(
    tmp_path: Path, fake: FakeOpenAI, reflection_profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.default = Reply(text="Yes.")
    judge = ["--judge", fake.url, "--model", "judge-1", "--quality-preset", "base", "--quiet"]
    raw_out, cal_out = tmp_path / "raw.jsonl", tmp_path / "cal.jsonl"
    assert _score(str(_rows(tmp_path / "d.jsonl", 3)), *judge, "-o", str(raw_out)) == 0, capsys.readouterr().err
    assert _score(str(tmp_path / "d.jsonl"), *judge, "--calibration", str(reflection_profile), "-o", str(cal_out)) == 0

    library = TLMScorer(
        "base", judge=OpenAICompatibleBackend(model="judge-1", base_url=fake.url), calibration=reflection_profile
    )
    expected = library.score(ScoreRequest(response="answer 0", prompt="question 0?")).trustworthiness_score
    assert _scores(cal_out) == pytest.approx([expected] * 3)
    assert _scores(cal_out) != pytest.approx(_scores(raw_out), abs=1e-3)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--calibration", "missing.json"], "cannot read calibration profile"),
        (
            ["--calibration", "PROFILE", "--scorer", "logprob", "--logprobs-col", "lp"],
            "--calibration applies to --scorer tlm",
        ),
    ],
)
def test_score_command_refuses_a_bad_calibration_before_any_judge_call(
    tmp_path: Path,
    fake: FakeOpenAI,
    reflection_profile: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    source = _rows(tmp_path / "d.jsonl", 2)
    extra = [
        str(reflection_profile) if e == "PROFILE" else str(tmp_path / e) if e.endswith(".json") else e for e in extra
    ]
    judge = [] if "--scorer" in extra else ["--judge", fake.url, "--model", "judge-1"]
    assert _score(str(source), *judge, "--quiet", *extra) == 2
    assert message in capsys.readouterr().err
    assert fake.requests == []


def test_serve_answers_with_calibrated_scores(fake: FakeOpenAI, reflection_profile: Path) -> None:
    fake.default = Reply(text="Yes.")
    profile = Calibration.load(reflection_profile)
    args = ["--model", fake.url, "--upstream-model", "up-1", "--no-auth", "--calibration", str(reflection_profile)]
    with ServeProcess(args) as server:
        body = {
            "model": "up-1",
            "messages": [{"role": "user", "content": "question 0?"}],
            "options": {"log": ["per_component_score"]},
            "quality_preset": "base",
        }
        reply = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    meta = reply.json()["tlm_metadata"]
    signals = meta["log"]["per_component_score"]
    assert meta["trustworthiness_score"] == pytest.approx(profile.apply(signals), abs=1e-6)
    assert meta["trustworthiness_score"] != pytest.approx(meta["log"]["raw_trustworthiness_score"], abs=1e-3)
    assert meta["log"]["calibration"]["map"] == profile.score_map.kind


def test_serve_refuses_a_bad_profile_before_loading_a_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(AssertionError, match="is not JSON"):
        ServeProcess(["--model", "local", "--no-auth", "--calibration", str(bad)], startup_timeout=60)
