"""Error classes per status, bounded retries, Retry-After, and no API key in any message."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from cleanlab_fakes import API_KEY, SCORE_REPLY, Service, ok, status

from tlm_hooks import TLMHooksError
from tlm_hooks.backends._http import RetryPolicy, parse_retry_after
from tlm_hooks.errors import (
    CleanlabAPIError,
    CleanlabAuthError,
    CleanlabBadRequestError,
    CleanlabConnectionError,
    CleanlabRateLimitError,
    CleanlabServerError,
    CleanlabTimeoutError,
)


@pytest.mark.parametrize(
    ("code", "cls", "requests"),
    [
        (400, CleanlabBadRequestError, 1),
        (422, CleanlabBadRequestError, 1),
        (401, CleanlabAuthError, 1),
        (403, CleanlabAuthError, 1),
        (404, CleanlabAPIError, 1),
        (408, CleanlabTimeoutError, 3),
        (429, CleanlabRateLimitError, 3),
        (500, CleanlabServerError, 3),
        (502, CleanlabServerError, 3),
        (503, CleanlabServerError, 3),
    ],
)
def test_status_maps_to_error_class(make_tlm, service: Service, code: int, cls: type, requests: int) -> None:
    service.default = status(code)
    with pytest.raises(cls) as info:
        make_tlm(max_retries=2).get_trustworthiness_score("p", "r")
    err = info.value
    assert type(err) is cls and isinstance(err, TLMHooksError) and isinstance(err, CleanlabAPIError)
    assert err.status == code
    assert err.attempts == requests == len(service.requests)
    assert err.endpoint == "https://api.cleanlab.ai/api/v0/trustworthy_llm/get_confidence_score"
    assert API_KEY not in str(err) and API_KEY not in repr(err)


async def test_async_status_maps_to_error_class(make_tlm, service: Service) -> None:
    service.default = status(401)
    with pytest.raises(CleanlabAuthError):
        await make_tlm().get_trustworthiness_score_async("p", "r")
    service.default = status(503)
    with pytest.raises(CleanlabServerError):
        await make_tlm(max_retries=1).prompt_async("p")


def test_auth_error_says_to_check_the_key_and_hides_it(make_tlm, service: Service) -> None:
    service.push(status(401, {"detail": f"invalid API key {API_KEY}"}))
    with pytest.raises(CleanlabAuthError) as info:
        make_tlm().prompt("q")
    message = str(info.value)
    assert "api_key=" in message and "CLEANLAB_TLM_API_KEY" in message
    assert API_KEY not in message and API_KEY not in (info.value.server_message or "")
    assert "invalid API key ***" in message


@pytest.mark.parametrize(
    ("body", "quoted"),
    [
        ({"detail": "quality must be one of best, high"}, "quality must be one of best, high"),
        ({"error": {"message": "prompt too long"}}, "prompt too long"),
        ({"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}, "body.prompt: field required"),
    ],
)
def test_bad_request_quotes_the_server(make_tlm, service: Service, body: dict, quoted: str) -> None:
    service.push(status(422, body))
    with pytest.raises(CleanlabBadRequestError) as info:
        make_tlm().prompt("q")
    assert quoted in str(info.value) and info.value.server_message == quoted
    assert isinstance(info.value, ValueError)


def test_plain_text_error_body_is_quoted(make_tlm, service: Service) -> None:
    service.push(httpx.Response(400, text="bad things happened"))
    with pytest.raises(CleanlabBadRequestError, match="bad things happened"):
        make_tlm().prompt("q")


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ReadTimeout("timed out"), CleanlabTimeoutError),
        (httpx.ConnectTimeout("timed out"), CleanlabTimeoutError),
        (httpx.ConnectError("connection refused"), CleanlabConnectionError),
        (httpx.RemoteProtocolError("peer closed"), CleanlabConnectionError),
    ],
)
async def test_transport_failures_are_retried_then_raised(make_tlm, service: Service, sleeps, exc, cls) -> None:
    service.default = exc
    with pytest.raises(cls) as info:
        make_tlm(max_retries=2, timeout=5).prompt("q")
    assert len(service.requests) == 3 and info.value.status is None and len(sleeps) == 2
    assert info.value.waited == pytest.approx(sum(sleeps))
    if cls is CleanlabTimeoutError:
        assert "timeout=5 s" in str(info.value) and isinstance(info.value, TimeoutError)
    service.requests.clear()
    with pytest.raises(cls):
        await make_tlm(max_retries=1).prompt_async("q")
    assert len(service.requests) == 2


@pytest.mark.parametrize("max_retries", [0, 1, 4])
def test_retries_are_bounded(make_tlm, service: Service, sleeps, max_retries: int) -> None:
    service.default = status(429)
    with pytest.raises(CleanlabRateLimitError):
        make_tlm(max_retries=max_retries).prompt("q")
    assert len(service.requests) == max_retries + 1
    assert len(sleeps) == max_retries


def test_recovers_after_transient_failures(make_tlm, service: Service, sleeps) -> None:
    service.push(status(503), httpx.ReadTimeout("slow"), status(429), ok(SCORE_REPLY))
    out = make_tlm(max_retries=3).get_trustworthiness_score("p", "r")
    assert out["trustworthiness_score"] == SCORE_REPLY["confidence_score"]
    assert len(service.requests) == 4 and len(sleeps) == 3


def test_retry_after_seconds_is_honoured(make_tlm, service: Service, sleeps) -> None:
    service.push(status(429, retry_after="7"), status(503, retry_after="2.5"), ok(SCORE_REPLY))
    make_tlm().get_trustworthiness_score("p", "r")
    assert sleeps == [7.0, 2.5]


async def test_retry_after_is_honoured_async(make_tlm, service: Service, sleeps) -> None:
    service.push(status(429, retry_after="4"), ok(SCORE_REPLY))
    await make_tlm().get_trustworthiness_score_async("p", "r")
    assert sleeps == [4.0]


def test_retry_after_http_date_is_honoured(make_tlm, service: Service, sleeps) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    service.push(status(429, retry_after=format_datetime(when, usegmt=True)), ok(SCORE_REPLY))
    make_tlm().get_trustworthiness_score("p", "r")
    assert len(sleeps) == 1 and 28.0 <= sleeps[0] <= 30.0


def test_each_wait_is_capped(make_tlm, service: Service, sleeps) -> None:
    service.default = status(429, retry_after="3600")
    with pytest.raises(CleanlabRateLimitError) as info:
        make_tlm(max_retries=3, max_retry_wait=5).prompt("q")
    assert sleeps == [5.0, 5.0, 5.0]
    message = str(info.value)
    assert "4 attempts" in message and "15.0 s of waiting" in message
    assert info.value.waited == 15.0 and info.value.attempts == 4


def test_backoff_grows_with_jitter_and_stays_capped(make_tlm, service: Service, sleeps) -> None:
    service.default = status(500)
    with pytest.raises(CleanlabServerError):
        make_tlm(max_retries=6, max_retry_wait=4).prompt("q")
    ceilings = [min(4.0, 0.5 * 2**i) for i in range(6)]
    assert len(sleeps) == 6
    for wait, ceiling in zip(sleeps, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling


def test_zero_max_retry_wait_retries_without_waiting(make_tlm, service: Service, sleeps) -> None:
    service.default = status(503, retry_after="10")
    with pytest.raises(CleanlabServerError):
        make_tlm(max_retries=2, max_retry_wait=0).prompt("q")
    assert sleeps == [0.0, 0.0] and len(service.requests) == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("-4", 0.0),
        ("soon", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
    ],
)
def test_parse_retry_after(value, expected) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc).timestamp()
    if value == "Wed, 21 Oct 2015 07:28:00 GMT":
        now += 60
    assert parse_retry_after(value, now) == expected


def test_retry_policy_backoff_bounds() -> None:
    low, high = RetryPolicy(jitter=lambda: 0.0), RetryPolicy(jitter=lambda: 0.999999)
    assert low.backoff(0) == 0.25 and high.backoff(0) == pytest.approx(0.5)
    assert RetryPolicy(max_wait=3, jitter=lambda: 0.999999).backoff(20) == pytest.approx(3.0)
    assert RetryPolicy(max_wait=3).wait_for(0, 99.0) == 3.0


def test_key_never_in_errors_logs_or_repr(make_tlm, service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tlm = make_tlm(max_retries=2, options={"model_provider": {"api_key": "provider-secret-1"}})
    service.push(status(500, {"detail": f"upstream said {API_KEY}"}), httpx.ConnectError(f"x {API_KEY}"))
    service.default = status(403, {"detail": f"key {API_KEY} revoked"})
    errors = []
    for call in (lambda: tlm.prompt("q"), lambda: tlm.score_rag("q", "c", "r")):
        with pytest.raises(CleanlabAPIError) as info:
            call()
        errors.append(info.value)
    listed = tlm.prompt(["a", "b"])
    shown = " ".join(
        [repr(tlm), str(tlm), caplog.text, str(listed)] + [f"{e!s} {e!r} {e.server_message}" for e in errors]
    )
    assert API_KEY not in shown and "provider-secret-1" not in shown
    assert "***" in repr(tlm)
