"""The engine on the embedded model, built inside a Ray actor (the model is loaded there, not here)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray.data", reason="needs the [ray] extra: pip install 'tlm-hooks[ray]'")

import pandas as pd  # noqa: E402
import ray  # noqa: E402

from tlm_hooks.datasets.ray import ScorerSpec, score_dataset  # noqa: E402

pytestmark = [pytest.mark.embedded_model, pytest.mark.usefixtures("ray_cluster"), pytest.mark.timeout(900)]


def test_five_rows_scored_by_the_embedded_model_in_an_actor() -> None:
    pytest.importorskip("llama_cpp")
    items = [
        {"prompt": "What is 2 + 2?", "response": "4"},
        {"prompt": "What is 2 + 2?", "response": "The answer is 17."},
        {"prompt": "What is the capital of France?", "response": "Paris"},
        {"prompt": "What is the capital of France?", "response": "Berlin"},
        {"prompt": "Name a colour.", "response": "Blue"},
    ]
    ds = ray.data.from_pandas(pd.DataFrame(items))
    spec = ScorerSpec("tlm", quality_preset="base", threads=1)
    out = score_dataset(ds, scorer=spec, actors=1, components=["self_reflection"]).to_pandas()
    assert out["scoring_error"].isna().all(), out["scoring_error"].tolist()
    assert list(out["response"]) == [i["response"] for i in items]
    assert out["trustworthiness_score"].between(0, 1).all()
    assert out["explanation"].str.len().gt(0).all()
    assert out["component_self_reflection"].notna().all()
    assert out["trustworthiness_score"].nunique() > 1  # the judge's answers differ by row
