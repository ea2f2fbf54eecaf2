"""`score_dataset` on a real local Ray cluster: every row once, failures as rows, a killed actor."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

pytest.importorskip("ray.data", reason="needs the [ray] extra: pip install 'tlm-hooks[ray]'")

import pandas as pd  # noqa: E402
import ray  # noqa: E402
import ray_helpers  # noqa: E402
from ray_helpers import KillOnce, expected_score, rows, score  # noqa: E402

from tlm_hooks.datasets import MissingColumnsError  # noqa: E402
from tlm_hooks.datasets.errors import DatasetError  # noqa: E402
from tlm_hooks.datasets.ray import ScorerSpec, score_dataset  # noqa: E402

pytestmark = [pytest.mark.usefixtures("ray_cluster"), pytest.mark.timeout(900)]  # worker start-up is slow when busy


def _dataset(items: list[dict], blocks: int = 8) -> ray.data.Dataset:
    return ray.data.from_pandas(pd.DataFrame(items), override_num_blocks=blocks)


@pytest.fixture
def both_actors_started_first():
    """Ray Data starts a pool's actors asynchronously: with fast rows the first actor up can score
    every block before the second is ready (seen on a loaded CI machine). Make the run wait for
    the whole pool, so the split of work between actors is what the test checks."""
    context = ray.data.DataContext.get_current()
    before = context.wait_for_min_actors_s
    context.wait_for_min_actors_s = 300
    yield
    context.wait_for_min_actors_s = before


@pytest.mark.usefixtures("both_actors_started_first")
def test_thousands_of_rows_each_scored_once_by_the_actor_pool() -> None:
    items = rows(3000)
    items[10]["response"] = "answer FAIL"  # the scorer raises: a row with an error, not a failed job
    items[20]["response"] = ""  # malformed: a bad row
    items[30]["prompt"] = None
    out = score_dataset(_dataset(items), scorer=score, actors=2, max_concurrency=16).to_pandas()

    assert sorted(out["id"]) == list(range(3000))
    by_id = out.set_index("id")
    assert by_id.loc[10, "scoring_error"].startswith("scoring failed (RuntimeError): cannot score 'answer FAIL'")
    assert by_id.loc[20, "scoring_error"] == "bad row: 'response' is empty"
    assert by_id.loc[30, "scoring_error"] == "bad row: 'prompt' is missing (null)"
    assert by_id.loc[[10, 20, 30], "trustworthiness_score"].isna().all()
    good = by_id.drop(index=[10, 20, 30])
    assert good["scoring_error"].isna().all()
    assert all(good["trustworthiness_score"] == [expected_score(r) for r in good["response"]])
    pids = {int(e.split()[1]) for e in good["explanation"]}
    assert len(pids) == 2 and os.getpid() not in pids  # two actors did the work, not the driver


def test_messages_system_and_components_columns() -> None:
    items = [
        {
            "conv": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"reply {i}"}],
            "sys": "be brief",
        }
        for i in range(40)
    ]
    out = score_dataset(
        _dataset(items, blocks=2), scorer=score, messages_col="conv", system_col="sys", components=["length", "absent"]
    ).to_pandas()
    assert len(out) == 40 and out["scoring_error"].isna().all()
    assert sorted(out["trustworthiness_score"]) == sorted(expected_score(f"reply {i}") for i in range(40))
    assert sorted(out["component_length"]) == sorted(float(len(f"reply {i}")) for i in range(40))
    assert out["component_absent"].isna().all()  # asked for, never reported by this scorer


def test_a_killed_actor_is_restarted_and_no_row_is_lost_or_repeated(tmp_path: Path) -> None:
    marker = tmp_path / "killed.pid"
    n = 600
    scorer = KillOnce(kill_at="answer 300", marker=marker)
    out = score_dataset(_dataset(rows(n), blocks=12), scorer=scorer, actors=2, batch_size=25).to_pandas()

    killed = int(marker.read_text())  # the actor really died mid-run
    assert sorted(out["id"]) == list(range(n))  # every row exactly once
    assert out["scoring_error"].isna().all()
    by_id = out.set_index("id")
    assert by_id.loc[300, "trustworthiness_score"] == expected_score("answer 300")
    assert by_id.loc[300, "explanation"] != f"pid {killed}"  # rescored by the restarted actor


def test_the_engine_through_a_judge_on_loopback_http() -> None:
    from engine.judge_server import JudgeServer

    judge = JudgeServer(refuse_n=False, delay=0.01)
    try:
        spec = ScorerSpec("tlm", quality_preset="base", judge=judge.url, model="judge-model")
        out = score_dataset(
            _dataset(rows(6), blocks=2), scorer=spec, actors=1, components=["self_reflection"]
        ).to_pandas()
    finally:
        judge.close()
    assert out["scoring_error"].isna().all(), out["scoring_error"].tolist()
    assert out["trustworthiness_score"].between(0, 1).all()
    assert out["component_self_reflection"].notna().all()
    assert len(judge.asked) >= 6  # every row went to the judge


# -- bad input: refused when score_dataset is called, before anything is scored ---------------------


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request):  # noqa: ANN001, ANN204
        self.calls += 1
        return 0.5


def test_missing_column_is_named_with_the_columns_there() -> None:
    scorer = _Counting()
    with pytest.raises(MissingColumnsError) as caught:
        score_dataset(_dataset([{"question": "q", "answer": "a"}], 1), scorer=scorer)
    assert caught.value.available == ("question", "answer")
    assert "'question', 'answer'" in str(caught.value) and "prompt_col=" in str(caught.value)
    assert scorer.calls == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actors": 0}, "actors must be an integer >= 1, got 0"),
        ({"max_concurrency": -2}, "max_concurrency must be an integer >= 1"),
        ({"cpus_per_actor": 0}, "cpus_per_actor must be a number > 0"),
        ({"components": "self_reflection"}, "components must be a list of component names"),
        ({"scorer": ScorerSpec("tlm", judge="http://127.0.0.1:9/v1")}, "needs --model"),
        ({"scorer": "nonesuch"}, "unknown scorer 'nonesuch'"),
        ({"prompt_col": "q", "messages_col": "m"}, "not both"),
    ],
)
def test_bad_settings_are_refused_up_front(kwargs: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        score_dataset(_dataset(rows(3), 1), **{"scorer": score, **kwargs})


def test_a_scorer_that_cannot_reach_the_actors_says_what_to_pass_instead() -> None:
    lock = threading.Lock()

    def holds_a_lock(request):  # noqa: ANN001, ANN202
        with lock:
            return 0.5

    with pytest.raises(DatasetError, match=r"cannot be sent to Ray actors .*ScorerSpec.from_factory"):
        score_dataset(_dataset(rows(3), 1), scorer=holds_a_lock)


def test_not_a_dataset() -> None:
    with pytest.raises(DatasetError, match="needs a ray.data.Dataset, got DataFrame"):
        score_dataset(pd.DataFrame(rows(2)), scorer=score)


def test_a_factory_builds_the_scorer_in_each_actor_only() -> None:
    spec = ScorerSpec.from_factory(ray_helpers.make_scorer, max_concurrency=4)
    out = score_dataset(_dataset(rows(50), 2), scorer=spec, actors=2).to_pandas()
    assert ray_helpers.MADE == []  # never built on the driver
    assert sorted(out["id"]) == list(range(50)) and out["scoring_error"].isna().all()
