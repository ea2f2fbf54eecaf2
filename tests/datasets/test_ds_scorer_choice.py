"""Which scorer `tlm-hooks score` builds from its flags, and how a run's scorer is described."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from tlm_hooks.datasets import DatasetError
from tlm_hooks.datasets.scorer_choice import build_scorer, describe_scorer, judge_backend, load_scorer
from tlm_hooks.llm.limiter import AdaptiveLimiter
from tlm_hooks.llm.local import LocalBackend
from tlm_hooks.llm.openai_compat import OpenAICompatibleBackend
from tlm_hooks.scorers import BaseScorer, FunctionScorer, TLMScorer
from tlm_hooks.types import ScoreRequest, TrustResult


def test_default_is_the_engine_on_the_embedded_model_with_explanations() -> None:
    scorer = build_scorer("tlm")
    assert isinstance(scorer, TLMScorer) and isinstance(scorer.judge, LocalBackend)
    assert scorer.tlm_options.quality_preset == "medium" and scorer.tlm_options.wants_explanation
    assert describe_scorer(scorer) == describe_scorer(build_scorer("tlm"))  # stable across runs


def test_url_judge_is_an_openai_compatible_backend_with_an_adaptive_limit() -> None:
    judge = judge_backend("http://127.0.0.1:8000/v1", "my-model", api_key="k")
    assert isinstance(judge, OpenAICompatibleBackend) and judge.model == "my-model"
    assert isinstance(judge.limiter, AdaptiveLimiter)
    scorer = build_scorer("tlm", judge="http://127.0.0.1:8000/v1", model="my-model", quality_preset="low")
    assert "quality_preset=low" in describe_scorer(scorer) and "my-model" in describe_scorer(scorer)


def test_flags_that_do_not_fit_the_scorer_are_refused() -> None:
    with pytest.raises(DatasetError, match="--judge applies to --scorer tlm"):
        build_scorer("cleanlab", judge="local", api_key="k")
    with pytest.raises(DatasetError, match="--base-url applies to --scorer cleanlab"):
        build_scorer("tlm", base_url="http://x")
    with pytest.raises(DatasetError, match="cannot be used with --judge"):
        judge_backend("model.gguf", "other-name")


def test_cleanlab_scorer_gets_preset_model_and_key() -> None:
    scorer = build_scorer("cleanlab", quality_preset="low", model="gpt-4o-mini", api_key="secret-key")
    text = describe_scorer(scorer)
    assert "CleanlabTLM(" in text and "'low'" in text and "gpt-4o-mini" in text and "secret-key" not in text


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = "my_scorers_for_test"
    module = types.ModuleType(name)

    def by_length(request: ScoreRequest) -> float:
        return min(1.0, len(request.response) / 10)

    class Constant(BaseScorer):
        def score(self, request: ScoreRequest) -> TrustResult:
            return TrustResult(0.25)

    module.by_length = by_length  # type: ignore[attr-defined]
    module.Constant = Constant  # type: ignore[attr-defined]
    module.ready = Constant()  # type: ignore[attr-defined]
    module.nothing = 42  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)
    return name


def test_module_paths_load_functions_classes_and_instances(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _module(tmp_path, monkeypatch)
    function = load_scorer(f"{name}:by_length")
    assert (
        isinstance(function, FunctionScorer)
        and function.score(ScoreRequest("abcde", prompt="q")).trustworthiness_score == 0.5
    )
    assert load_scorer(f"{name}:Constant").score(ScoreRequest("x", prompt="q")).trustworthiness_score == 0.25
    assert describe_scorer(load_scorer(f"{name}:ready")).endswith("Constant")
    with pytest.raises(DatasetError, match="has no 'missing'"):
        load_scorer(f"{name}:missing")
    with pytest.raises(DatasetError, match="is a int: expected a Scorer or a function"):
        load_scorer(f"{name}:nothing")
    with pytest.raises(DatasetError, match="looks like module:function"):
        load_scorer(":x")


def _bare_score_profile(path: Path) -> Path:
    pytest.importorskip("sklearn", reason="fitting a profile needs the calibration extra")
    import random

    from tlm_hooks import calibrate

    rng = random.Random(3)
    scores = [rng.random() for _ in range(200)]
    labels = [rng.random() < s * s for s in scores]  # over-confident raw scores: the map moves them
    calibrate([{"trustworthiness_score": s} for s in scores], labels, quality_preset="base").save(path)
    return path


@pytest.mark.parametrize("cache_flags", [["--no-cache"], ["--cache", "shared.sqlite"]])
def test_both_engines_build_the_same_scorer_from_the_same_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_flags: list[str]
) -> None:
    from tlm_hooks.datasets.command import build_parser
    from tlm_hooks.datasets.ray import ScorerSpec  # Ray itself is not needed to build a spec's scorer
    from tlm_hooks.datasets.scorer_choice import scorer_flags
    from tlm_hooks.scorers.cache import SQLiteCache

    monkeypatch.chdir(tmp_path)
    profile = _bare_score_profile(tmp_path / "p.json")
    flags = "d.csv -p base -j http://127.0.0.1:9/v1 -m judge-m --max-concurrency 3 --calibration".split()
    args = build_parser().parse_args([*flags, str(profile), *cache_flags])
    local = build_scorer(**scorer_flags(args))
    spec = ScorerSpec(**scorer_flags(args)).portable()  # on the driver
    monkeypatch.chdir(tmp_path.parent)  # the actors' working folder is elsewhere: the spec carries what they need
    on_actor = spec.build()
    assert isinstance(local, TLMScorer) and isinstance(on_actor, TLMScorer)
    assert (
        describe_scorer(on_actor) == describe_scorer(local) and on_actor.max_concurrency == local.max_concurrency == 3
    )
    assert isinstance(spec.calibration, dict)  # the profile travels as data, not as a path
    raw = TrustResult(0.7)
    assert on_actor.calibrator(raw).trustworthiness_score == local.calibrator(raw).trustworthiness_score != 0.7
    if cache_flags == ["--no-cache"]:
        assert local.cache is None and on_actor.cache is None
    else:
        assert isinstance(on_actor.cache, SQLiteCache) and on_actor.cache.path == tmp_path / "shared.sqlite"
        assert isinstance(local.cache, SQLiteCache) and local.cache.path == Path("shared.sqlite")  # made in tmp_path


def test_a_bad_profile_is_refused_when_the_spec_is_made_portable(tmp_path: Path) -> None:
    from tlm_hooks.datasets.ray import ScorerSpec

    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a tlm-hooks calibration profile"):
        ScorerSpec("tlm", calibration=str(tmp_path / "bad.json")).portable()
