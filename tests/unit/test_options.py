"""TLMOptions validation, redaction of secrets, body form, and deep_merge."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlm_hooks.errors import InvalidOptionError
from tlm_hooks.options import (
    QUALITY_PRESETS,
    REASONING_EFFORTS,
    SIMILARITY_MEASURES,
    TASKS,
    TLMOptions,
    deep_merge,
)

SECRET = "sk-do-not-print-7c1e9"

# the presets and tasks Cleanlab documents
DOC_PRESETS = ("best", "high", "medium", "low", "base")
DOC_TASKS = ("default", "classification", "code_generation")


def test_documented_presets_and_tasks_are_the_accepted_ones() -> None:
    assert set(QUALITY_PRESETS) == set(DOC_PRESETS)
    assert set(TASKS) == set(DOC_TASKS)


@pytest.mark.parametrize("preset", DOC_PRESETS)
def test_every_preset_accepted(preset: str) -> None:
    opts = TLMOptions(quality_preset=preset)
    assert opts.quality_preset == preset
    assert opts.to_body() == {"quality_preset": preset}


@pytest.mark.parametrize("task", DOC_TASKS)
def test_every_task_accepted(task: str) -> None:
    assert TLMOptions(task=task).to_body() == {"task": task}


def test_no_arguments_gives_empty_body() -> None:
    assert TLMOptions().to_body() == {}
    assert TLMOptions(options=None).to_body() == {}


CRITERIA = [{"name": "concise", "criteria": "Is the answer short?"}]
VALID_OPTIONS: list[tuple[str, Any, Any]] = [
    # (key, given, stored)
    ("model", "gpt-4.1-mini", "gpt-4.1-mini"),
    ("model", "azure/gpt-4.1-mini", "azure/gpt-4.1-mini"),
    ("max_tokens", 1, 1),
    ("max_tokens", 65536, 65536),
    ("num_candidate_responses", 1, 1),
    ("num_candidate_responses", 20, 20),
    ("num_consistency_samples", 0, 0),
    ("num_consistency_samples", 20, 20),
    ("num_self_reflections", 0, 0),
    ("num_self_reflections", 10, 10),
    *[("similarity_measure", m, m) for m in SIMILARITY_MEASURES],
    *[("reasoning_effort", e, e) for e in REASONING_EFFORTS],
    ("log", [], []),
    ("log", ["explanation"], ["explanation"]),
    ("log", ["explanation", "per_component_score"], ["explanation", "per_component_score"]),
    ("log", ("explanation",), ["explanation"]),
    ("custom_eval_criteria", CRITERIA, CRITERIA),
    ("custom_eval_criteria", [], []),
    ("constrain_outputs", ["yes", "no"], ["yes", "no"]),
    ("model_provider", {"api_base": "https://x.example/v1"}, {"api_base": "https://x.example/v1"}),
    (
        "model_provider",
        {"api_base": "https://x", "api_key": "k", "api_version": "2024-06-01", "provider": "azure"},
        {"api_base": "https://x", "api_key": "k", "api_version": "2024-06-01", "provider": "azure"},
    ),
    ("model_provider", {"api-version": "2024-06-01"}, {"api_version": "2024-06-01"}),
]


@pytest.mark.parametrize(("key", "given", "stored"), VALID_OPTIONS, ids=lambda v: repr(v)[:30])
def test_every_valid_option_accepted(key: str, given: Any, stored: Any) -> None:
    opts = TLMOptions(options={key: given})
    assert opts.options == {key: stored}
    assert opts.to_body() == {"options": {key: stored}}


def test_all_options_together_and_body_shape() -> None:
    options = {key: given for key, given, _ in VALID_OPTIONS}  # last value of each key wins
    expected = {key: stored for key, _, stored in VALID_OPTIONS}
    opts = TLMOptions("low", "classification", options)
    assert opts.to_body() == {"quality_preset": "low", "task": "classification", "options": expected}


# (kwargs for TLMOptions, key named in the error, bad value, fragments of the allowed description)
INVALID: list[tuple[dict[str, Any], str, Any, list[str]]] = [
    ({"quality_preset": "ultra"}, "quality_preset", "ultra", [repr(p) for p in DOC_PRESETS]),
    ({"quality_preset": 3}, "quality_preset", 3, ["'best'", "'base'"]),
    ({"task": "summarize"}, "task", "summarize", [repr(t) for t in DOC_TASKS]),
    ({"options": {"num_self_reflections": 11}}, "options.num_self_reflections", 11, ["0 to 10"]),
    ({"options": {"num_self_reflections": -1}}, "options.num_self_reflections", -1, ["0 to 10"]),
    ({"options": {"num_self_reflections": True}}, "options.num_self_reflections", True, ["integer"]),
    ({"options": {"num_self_reflections": 2.0}}, "options.num_self_reflections", 2.0, ["integer"]),
    ({"options": {"num_self_reflections": "3"}}, "options.num_self_reflections", "3", ["integer"]),
    ({"options": {"max_tokens": 0}}, "options.max_tokens", 0, ["1 to 65536"]),
    ({"options": {"max_tokens": 65537}}, "options.max_tokens", 65537, ["1 to 65536"]),
    ({"options": {"num_candidate_responses": 21}}, "options.num_candidate_responses", 21, ["1 to 20"]),
    ({"options": {"num_consistency_samples": -1}}, "options.num_consistency_samples", -1, ["0 to 20"]),
    ({"options": {"model": ""}}, "options.model", "", ["model name"]),
    ({"options": {"model": "   "}}, "options.model", "   ", ["model name"]),
    ({"options": {"model": 4}}, "options.model", 4, ["model name"]),
    (
        {"options": {"similarity_measure": "cosine"}},
        "options.similarity_measure",
        "cosine",
        [repr(m) for m in SIMILARITY_MEASURES],
    ),
    ({"options": {"reasoning_effort": "max"}}, "options.reasoning_effort", "max", [repr(e) for e in REASONING_EFFORTS]),
    ({"options": {"log": "explanation"}}, "options.log", "explanation", ["list of strings", "'explanation'"]),
    ({"options": {"log": ["explain"]}}, "options.log[0]", "explain", ["'explanation'", "'per_component_score'"]),
    ({"options": {"log": ["explanation", 3]}}, "options.log[1]", 3, ["'explanation'"]),
    ({"options": {"constrain_outputs": []}}, "options.constrain_outputs", [], ["non-empty"]),
    ({"options": {"constrain_outputs": "yes"}}, "options.constrain_outputs", "yes", ["list of strings"]),
    ({"options": {"constrain_outputs": ["yes", 1]}}, "options.constrain_outputs[1]", 1, ["string"]),
    (
        {"options": {"custom_eval_criteria": {"name": "a", "criteria": "b"}}},
        "options.custom_eval_criteria",
        {"name": "a", "criteria": "b"},
        ['"name"', '"criteria"'],
    ),
    (
        {"options": {"custom_eval_criteria": [{"name": "a"}]}},
        "options.custom_eval_criteria[0]",
        {"name": "a"},
        ['"criteria"'],
    ),
    (
        {"options": {"custom_eval_criteria": [{"name": "", "criteria": "b"}]}},
        "options.custom_eval_criteria[0].name",
        "",
        ["non-empty string"],
    ),
    ({"options": {"model_provider": "azure"}}, "options.model_provider", "azure", ["'api_base'", "'provider'"]),
    ({"options": {"model_provider": {"api_base": 5}}}, "options.model_provider.api_base", 5, ["a string"]),
    ({"options": {"temperature": 0.2}}, "options.temperature", 0.2, ["'model'", "'log'", "'model_provider'"]),
    ({"options": [("log", [])]}, "options", [("log", [])], ["dict"]),
]


@pytest.mark.parametrize(("kwargs", "key", "value", "allowed"), INVALID, ids=lambda v: repr(v)[:40])
def test_invalid_option_names_key_value_and_allowed(kwargs: dict, key: str, value: Any, allowed: list[str]) -> None:
    with pytest.raises(InvalidOptionError) as info:
        TLMOptions(**kwargs)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.key == key
    message = str(err)
    assert key in message
    assert repr(value) in message
    for fragment in allowed:
        assert fragment in message


def test_misspelt_model_provider_key_named_with_allowed_keys() -> None:
    with pytest.raises(InvalidOptionError) as info:
        TLMOptions(options={"model_provider": {"api_kei": SECRET}})
    message = str(info.value)
    assert info.value.key == "options.model_provider.api_kei"
    assert "options.model_provider.api_kei" in message
    assert "'api_key'" in message and "'api_base'" in message


# --- the api key never shows --------------------------------------------------------------


def _error_text(fn) -> str:
    with pytest.raises(InvalidOptionError) as info:
        fn()
    return f"{info.value} {info.value!r} {info.value.value!r}"


@pytest.mark.parametrize(
    "make",
    [
        # api_key itself of the wrong type
        lambda: TLMOptions(options={"model_provider": {"api_key": [SECRET]}}),
        # another model_provider key wrong while api_key is set
        lambda: TLMOptions(options={"model_provider": {"api_key": SECRET, "provider": 5}}),
        # a misspelt api_key: the value is the secret
        lambda: TLMOptions(options={"model_provider": {"api_kei": SECRET}}),
        lambda: TLMOptions(options={"model_provider": {"api-key": SECRET}}),
        # model_provider given in the wrong shape
        lambda: TLMOptions(options={"model_provider": [{"api_key": SECRET}]}),
        # a misspelt model_provider holding the key
        lambda: TLMOptions(options={"modelprovider": {"api_key": SECRET}}),
        # options not a dict
        lambda: TLMOptions(options=[("model_provider", {"api_key": SECRET})]),
        # model_provider put at the top level of a body
        lambda: TLMOptions.coerce({"quality_preset": "low", "model_provider": {"api_key": SECRET}}),
    ],
)
def test_api_key_never_in_error_messages(make) -> None:
    assert SECRET not in _error_text(make)


def test_api_key_never_in_repr_or_str_but_sent_in_body() -> None:
    opts = TLMOptions(options={"model_provider": {"api_base": "https://llm.example", "api_key": SECRET}})
    for shown in (repr(opts), str(opts)):
        assert SECRET not in shown
        assert "https://llm.example" in shown
    assert opts.to_body()["options"]["model_provider"]["api_key"] == SECRET


def test_api_version_dash_spelling_normalised() -> None:
    given = {"model_provider": {"api-version": "2024-06-01", "api_base": "https://x"}}
    snapshot = copy.deepcopy(given)
    opts = TLMOptions(options=given)
    assert opts.options["model_provider"] == {"api_version": "2024-06-01", "api_base": "https://x"}
    assert "api-version" not in opts.to_body()["options"]["model_provider"]
    assert given == snapshot


# --- coerce ------------------------------------------------------------------------------------


def test_coerce_body_dict() -> None:
    body = {"quality_preset": "low", "task": "classification", "options": {"log": ["explanation"]}}
    opts = TLMOptions.coerce(body)
    assert opts == TLMOptions("low", "classification", {"log": ["explanation"]})
    assert opts.to_body() == body
    assert opts.wants_explanation


def test_coerce_passes_through_and_defaults() -> None:
    opts = TLMOptions("high")
    assert TLMOptions.coerce(opts) is opts
    assert TLMOptions.coerce(None) == TLMOptions()
    assert TLMOptions.coerce({}) == TLMOptions()
    assert TLMOptions.coerce({"options": None}) == TLMOptions()


def test_coerce_rejects_unknown_top_level_key() -> None:
    with pytest.raises(InvalidOptionError) as info:
        TLMOptions.coerce({"quality_preset": "low", "temperature": 0.3})
    assert info.value.key == "temperature"
    message = str(info.value)
    assert "temperature" in message and "0.3" in message
    assert "'quality_preset'" in message and "'options'" in message


@pytest.mark.parametrize("options", [[], 0, "", "log"])
def test_coerce_rejects_non_dict_options(options: Any) -> None:
    with pytest.raises(InvalidOptionError) as info:
        TLMOptions.coerce({"options": options})
    assert info.value.key == "options"


def test_coerce_rejects_non_mapping() -> None:
    with pytest.raises(InvalidOptionError) as info:
        TLMOptions.coerce("low")
    assert "'low'" in str(info.value)


def test_coerce_validates_values() -> None:
    with pytest.raises(InvalidOptionError) as info:
        TLMOptions.coerce({"options": {"log": ["explanation", "verbose"]}})
    assert info.value.key == "options.log[1]"


def test_wants_explanation() -> None:
    assert TLMOptions(options={"log": ["explanation"]}).wants_explanation
    assert not TLMOptions(options={"log": ["per_component_score"]}).wants_explanation
    assert not TLMOptions().wants_explanation


# --- no aliasing ------------------------------------------------------------------------------


def _user_options() -> dict[str, Any]:
    return {
        "log": ["explanation"],
        "custom_eval_criteria": [{"name": "n", "criteria": "c"}],
        "constrain_outputs": ["a", "b"],
        "model_provider": {"api_key": SECRET, "api-version": "v1"},
    }


def test_to_body_returns_a_copy() -> None:
    opts = TLMOptions("low", options=_user_options())
    before = opts.to_body()
    body = opts.to_body()
    body["quality_preset"] = "best"
    body["options"]["log"].append("per_component_score")
    body["options"]["custom_eval_criteria"][0]["name"] = "changed"
    body["options"]["model_provider"]["api_key"] = "other"
    body["options"]["new"] = 1
    assert opts.to_body() == before
    assert opts.options["log"] == ["explanation"]


def test_user_input_never_mutated_nor_aliased() -> None:
    given = _user_options()
    snapshot = copy.deepcopy(given)
    opts = TLMOptions("medium", options=given)
    opts.to_body()
    repr(opts)
    assert given == snapshot  # not mutated (api-version stays as the user wrote it)
    stored = copy.deepcopy(dict(opts.options))
    given["log"].append("per_component_score")
    given["custom_eval_criteria"][0]["criteria"] = "changed"
    given["constrain_outputs"].append("c")
    given["model_provider"]["api_base"] = "https://elsewhere"
    assert dict(opts.options) == stored  # later changes by the user don't leak in


def test_coerce_never_mutates_the_body() -> None:
    body = {"quality_preset": "low", "options": _user_options()}
    snapshot = copy.deepcopy(body)
    TLMOptions.coerce(body).to_body()
    assert body == snapshot


def test_options_are_frozen() -> None:
    opts = TLMOptions("low")
    with pytest.raises(AttributeError):
        opts.quality_preset = "best"  # type: ignore[misc]


# --- deep_merge -------------------------------------------------------------------------------


def test_deep_merge_override_wins_and_nests() -> None:
    base = {"quality_preset": "low", "options": {"log": ["explanation"], "model_provider": {"api_base": "a"}}}
    override = {"quality_preset": "high", "options": {"model_provider": {"api_key": "k"}, "max_tokens": 5}}
    merged = deep_merge(base, override)
    assert merged == {
        "quality_preset": "high",
        "options": {"log": ["explanation"], "model_provider": {"api_base": "a", "api_key": "k"}, "max_tokens": 5},
    }


def test_deep_merge_non_dict_replaces_dict_and_vice_versa() -> None:
    assert deep_merge({"a": {"x": 1}}, {"a": 2}) == {"a": 2}
    assert deep_merge({"a": 2}, {"a": {"x": 1}}) == {"a": {"x": 1}}
    assert deep_merge({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}  # lists are replaced, not concatenated


def test_deep_merge_leaves_inputs_untouched_and_unaliased() -> None:
    base = {"options": {"log": ["explanation"], "p": {"q": 1}}}
    override = {"options": {"p": {"r": [1]}}, "extra": {"s": 1}}
    snap_base, snap_override = copy.deepcopy(base), copy.deepcopy(override)
    merged = deep_merge(base, override)
    assert base == snap_base and override == snap_override
    merged["options"]["log"].append("x")
    merged["options"]["p"]["r"].append(2)
    merged["extra"]["s"] = 2
    assert base == snap_base and override == snap_override


_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3))
_keys = st.sampled_from(["a", "b", "c", "d", "log", "options"])
_nested = st.recursive(_leaf, lambda inner: st.dictionaries(_keys, inner, max_size=4), max_leaves=12)
_dicts = st.dictionaries(_keys, _nested, max_size=5)


def _leaves(d: dict, prefix: tuple = ()):
    """(path, value) for every non-dict value, plus (path, {}) for empty dicts."""
    for key, value in d.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _get(d: Any, path: tuple) -> Any:
    for key in path:
        d = d[key]
    return d


@settings(max_examples=200, deadline=None)
@given(_dicts, _dicts)
def test_deep_merge_properties(a: dict, b: dict) -> None:
    snap_a, snap_b = copy.deepcopy(a), copy.deepcopy(b)
    merged = deep_merge(a, b)
    assert a == snap_a and b == snap_b
    for path, value in _leaves(b):
        if value == {}:
            assert isinstance(_get(merged, path), dict)
        else:
            assert _get(merged, path) == value
    for key in a.keys() - b.keys():  # keys only in a survive unchanged
        assert merged[key] == a[key]
