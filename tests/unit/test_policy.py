"""TrustPolicy validation, the fallback chain (sync and async) and the error policy."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from typing import Any

import pytest

from tlm_hooks.errors import InvalidOptionError, TrustScoringError, UntrustworthyResponseError
from tlm_hooks.fallbacks import Raise
from tlm_hooks.policy import LowTrustEvent, TrustPolicy, arun_policy, run_policy
from tlm_hooks.types import TrustResult

from ._fakes import FakeOps, make_event, resp


async def _run(policy: TrustPolicy, event: LowTrustEvent, mode: str):
    if mode == "sync":
        return run_policy(policy, event)
    return await arun_policy(policy, event)


MODES = ["sync", "async"]


class Recorder:
    """A fallback that appends its name to the text (score unchanged) and logs the call."""

    def __init__(self, name: str, log: list[str], *, new_score: float | None = None, fail: bool = False) -> None:
        self.name = name
        self.log = log
        self.new_score = new_score
        self.fail = fail

    def handle(self, event: LowTrustEvent) -> Any:
        self.log.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} broke")
        out = event.with_text(f"{event.text}+{self.name}")
        if self.new_score is not None:
            out = {**out, "score": self.new_score}
            event.result = TrustResult(self.new_score)
        return out

    async def ahandle(self, event: LowTrustEvent) -> Any:
        await asyncio.sleep(0)
        return self.handle(event)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [-0.1, 1.01, math.nan, True, "0.5", None])
def test_bad_threshold_named(threshold) -> None:
    with pytest.raises(InvalidOptionError) as info:
        TrustPolicy(threshold=threshold)
    assert info.value.key == "threshold"
    assert repr(threshold) in str(info.value)
    assert "0 to 1" in str(info.value)


@pytest.mark.parametrize("threshold", [0, 0.0, 0.5, 1, 1.0])
def test_threshold_bounds_accepted(threshold) -> None:
    assert TrustPolicy(threshold=threshold).threshold == threshold


@pytest.mark.parametrize("on_error", ["fail", "", None, "RAISE"])
def test_bad_on_error_named(on_error) -> None:
    with pytest.raises(InvalidOptionError) as info:
        TrustPolicy(on_error=on_error)  # type: ignore[arg-type]
    message = str(info.value)
    assert info.value.key == "on_error"
    assert repr(on_error) in message
    assert "'warn'" in message and "'ignore'" in message and "'raise'" in message


def test_bad_handler_named_with_index() -> None:
    with pytest.raises(InvalidOptionError) as info:
        TrustPolicy(on_low_trust=[Raise(), 42])
    assert info.value.key == "on_low_trust[1]"
    assert "42" in str(info.value)


def test_single_handler_wrapped() -> None:
    handler = Raise()
    policy = TrustPolicy(on_low_trust=handler)
    assert policy.on_low_trust == (handler,) and policy.handlers == (handler,)


def test_is_low() -> None:
    policy = TrustPolicy(threshold=0.5)
    assert policy.is_low(TrustResult(0.49))
    assert not policy.is_low(TrustResult(0.5))
    assert not policy.is_low(TrustResult(0.9))
    assert not policy.is_low(TrustResult.failed(RuntimeError("x")))


# --- the chain --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_handlers_run_in_order_and_are_recorded(mode: str) -> None:
    log: list[str] = []
    policy = TrustPolicy(0.5, [Recorder("a", log), Recorder("b", log), Recorder("c", log)])
    event = make_event(0.2, text="x")
    response, result = await _run(policy, event, mode)
    assert log == ["a", "b", "c"]
    assert response["text"] == "x+a+b+c"
    assert result.fallbacks == ("a", "b", "c")
    assert result.trustworthiness_score == 0.2


@pytest.mark.parametrize("mode", MODES)
async def test_chain_stops_once_threshold_reached(mode: str) -> None:
    log: list[str] = []
    policy = TrustPolicy(
        0.5, [Recorder("low", log, new_score=0.3), Recorder("fix", log, new_score=0.5), Recorder("never", log)]
    )
    response, result = await _run(policy, make_event(0.2, text="x"), mode)
    assert log == ["low", "fix"]
    assert response == resp("x+low+fix", 0.5)
    assert result.trustworthiness_score == 0.5
    assert result.fallbacks == ("low", "fix")


@pytest.mark.parametrize("mode", MODES)
async def test_nothing_runs_when_not_low(mode: str) -> None:
    log: list[str] = []
    event = make_event(0.7)
    original = event.result
    response, result = await _run(TrustPolicy(0.5, [Recorder("a", log)]), event, mode)
    assert log == [] and result is original and response is event.response


@pytest.mark.parametrize("mode", MODES)
async def test_failing_handler_logged_and_skipped(mode: str, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="tlm_hooks")
    log: list[str] = []
    policy = TrustPolicy(0.5, [Recorder("broken", log, fail=True), Recorder("next", log)])
    response, result = await _run(policy, make_event(0.2, text="x"), mode)
    assert log == ["broken", "next"]
    assert response["text"] == "x+next"
    assert result.fallbacks == ("next",)
    records = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("broken" in r.getMessage() and "RuntimeError" in r.getMessage() for r in records)


@pytest.mark.parametrize("mode", MODES)
async def test_raise_propagates_with_result_and_threshold(mode: str) -> None:
    log: list[str] = []
    policy = TrustPolicy(0.6, [Recorder("first", log), Raise(), Recorder("after", log)])
    event = make_event(0.25, threshold=0.6)
    with pytest.raises(UntrustworthyResponseError) as info:
        await _run(policy, event, mode)
    err = info.value
    assert log == ["first"]
    assert err.result is event.result
    assert err.result.trustworthiness_score == 0.25
    assert err.threshold == 0.6
    assert err.response["text"] == "original answer+first"
    assert "0.250" in str(err) and "0.6" in str(err)


@pytest.mark.parametrize("mode", MODES)
async def test_trust_scoring_error_from_handler_propagates(mode: str) -> None:
    def strict(event):
        raise TrustScoringError("no")

    with pytest.raises(TrustScoringError):
        await _run(TrustPolicy(0.5, [strict]), make_event(0.1), mode)


@pytest.mark.parametrize("mode", MODES)
async def test_plain_functions_as_handlers(mode: str) -> None:
    calls: list[str] = []

    def shout(event):
        calls.append("shout")
        return event.with_text(event.text.upper())

    async def exclaim(event):
        await asyncio.sleep(0)
        calls.append("exclaim")
        return event.with_text(event.text + "!")

    def keep(event):
        calls.append("keep")
        return None

    response, result = await _run(TrustPolicy(0.5, [shout, exclaim, keep]), make_event(0.2, text="hi"), mode)
    assert calls == ["shout", "exclaim", "keep"]
    assert response["text"] == "HI!"  # None keeps the current response
    assert result.fallbacks[:2] == ("shout", "exclaim")


def test_async_function_handler_on_sync_path_outside_loop() -> None:
    async def exclaim(event):
        return event.with_text(event.text + "!")

    response, _ = run_policy(TrustPolicy(0.5, [exclaim]), make_event(0.2, text="hi"))
    assert response["text"] == "hi!"


async def test_sync_function_handler_runs_off_the_loop_on_async_path() -> None:
    threads = []

    def handler(event):
        threads.append(threading.get_ident())

    await arun_policy(TrustPolicy(0.5, [handler]), make_event(0.2))
    assert threads and threads[0] != threading.get_ident()


def test_fallback_class_instead_of_instance_is_rejected() -> None:
    with pytest.raises(InvalidOptionError) as info:
        TrustPolicy(0.5, [Raise])
    assert info.value.key == "on_low_trust[0]" and "Raise()" in str(info.value)


# --- error policy -------------------------------------------------------------------------------


FAILED = TrustResult.failed(ConnectionError("judge unreachable"))


def test_check_error_ok_result_is_silent(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="tlm_hooks")
    for on_error in ("warn", "ignore", "raise"):
        TrustPolicy(on_error=on_error).check_error(TrustResult(0.1))  # type: ignore[arg-type]
    assert caplog.records == []


def test_check_error_warn(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="tlm_hooks")
    TrustPolicy().check_error(FAILED)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "judge unreachable" in record.getMessage() and "ConnectionError" in record.getMessage()


def test_check_error_ignore_logs_at_debug_only(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="tlm_hooks")
    TrustPolicy(on_error="ignore").check_error(FAILED)
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert "judge unreachable" in caplog.records[0].getMessage()


def test_check_error_raise() -> None:
    with pytest.raises(TrustScoringError) as info:
        TrustPolicy(on_error="raise").check_error(FAILED)
    assert info.value.result is FAILED
    assert "judge unreachable" in str(info.value)


def test_event_helpers_go_through_ops() -> None:
    ops = FakeOps([resp("again", 0.8)])
    event = make_event(0.2, text="first", ops=ops)
    assert event.text == "first" and event.score == 0.2
    assert event.with_text("new") == resp("new", 0.2)
    again = event.call_model(temperature=1.0)
    assert event.score_response(again).trustworthiness_score == 0.8
    assert ops.calls == [("call_model", {"temperature": 1.0}), ("score", "again")]


def test_score_timeout_default_and_validation() -> None:
    assert TrustPolicy().score_timeout == 120.0
    assert TrustPolicy(score_timeout=None).score_timeout is None
    assert TrustPolicy(score_timeout=2).score_timeout == 2
    for bad in (0, -1.0, float("nan"), float("inf"), True, "30"):
        with pytest.raises(InvalidOptionError, match="score_timeout"):
            TrustPolicy(score_timeout=bad)  # type: ignore[arg-type]
