"""`TLMCallback`: a litellm callback (``CustomLogger``) that scores every successful chat call.

For apps and the litellm proxy that configure callbacks rather than patch. It scores in
litellm's logging hooks, which litellm runs off the call path (its logging thread for sync
calls, a background task for async ones), and records the score where litellm users look:
``response.tlm_metadata``, ``response._hidden_params["tlm_metadata"]``, and the standard
logging payload's ``metadata["tlm_metadata"]``, which every logger after it in
``litellm.callbacks`` receives. ``wait=True`` scores async calls (``acompletion``, the
proxy) before litellm returns them instead.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from litellm.types.utils import ModelResponse

from ...adapters.litellm import SYNC
from ...hooks.api import _options, _scorer_for
from ...hooks.deadline import ascore_within, score_within
from ...hooks.guard import is_unhooked, unhooked
from ...options import QualityPreset, Task, TLMOptions
from ...policy import check_score_timeout
from ...scorers.base import Scorer
from ...types import TrustResult

__all__ = ["TLMCallback", "PAYLOAD_KEY", "SCORE_HEADER"]

logger = logging.getLogger("tlm_hooks")

PAYLOAD_KEY = "tlm_metadata"
"""The key of the score in the standard logging payload's ``metadata`` (and in ``_hidden_params``)."""
SCORE_HEADER = "x-tlm-trustworthiness-score"
"""With ``wait=True``: the score in ``_hidden_params["additional_headers"]``, which the litellm
proxy sends to its clients as an HTTP header."""
_CALL_TYPES = frozenset({"completion", "acompletion"})
_REMEMBERED = 4096  # call ids kept (judge calls to skip, calls already scored)


class TLMCallback(CustomLogger):  # type: ignore[misc]
    """Score each successful ``completion``/``acompletion`` (module functions, Routers, proxy).

    ``scorer``, ``quality_preset``, ``task`` and ``options`` are those of
    :func:`tlm_hooks.patch` (validated now). The default :class:`LogprobScorer` needs the
    app to ask for ``logprobs=True`` (a callback cannot add it); otherwise each score says
    the logprobs were missing, or pass ``TLMScorer(...)``. ``wait=False`` (default) never
    delays a call; ``wait=True`` scores async non-streamed calls before they return (litellm
    has no such hook for sync calls or streams: those are scored in the background), and puts
    the score in the response's ``_hidden_params["additional_headers"]`` as
    ``x-tlm-trustworthiness-score``, which the litellm proxy sends to its clients.
    ``score_timeout`` bounds one score (seconds, ``None``: no limit).
    Calls litellm makes while tlm-hooks scores (a judge through litellm) are not scored.
    """

    def __init__(
        self,
        scorer: Scorer | Callable[..., Any] | None = None,
        *,
        quality_preset: QualityPreset | None = None,
        task: Task | None = None,
        options: TLMOptions | Mapping[str, Any] | None = None,
        wait: bool = False,
        score_timeout: float | None = 120.0,
    ) -> None:
        super().__init__()
        if not isinstance(wait, bool):
            raise TypeError(f"wait must be True or False, got {wait!r}")
        self.options = _options(options, quality_preset, task)
        self.scorer = _scorer_for(scorer, self.options)
        self.score_timeout = check_score_timeout(score_timeout)
        self.wait = wait
        self._lock = threading.Lock()
        self._judge_calls: OrderedDict[str, None] = OrderedDict()
        self._scored: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # -- which calls ------------------------------------------------------------------------

    @staticmethod
    def _remember(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
        memory[key] = value
        while len(memory) > _REMEMBERED:
            memory.popitem(last=False)

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        """Runs in the caller's context: a call made while tlm-hooks scores is a judge's, skipped."""
        call_id = kwargs.get("litellm_call_id") if isinstance(kwargs, Mapping) else None
        if call_id and is_unhooked():
            with self._lock:
                self._remember(self._judge_calls, call_id, None)

    def _should_score(self, kwargs: Mapping[str, Any], result: Any, call_type: Any) -> bool:
        if str(call_type) not in _CALL_TYPES and getattr(call_type, "value", None) not in _CALL_TYPES:
            return False
        if type(result) is not ModelResponse or not result.choices or is_unhooked():
            return False
        call_id = kwargs.get("litellm_call_id")
        with self._lock:
            return call_id not in self._judge_calls

    # -- scoring and recording --------------------------------------------------------------

    def _done(self, kwargs: Mapping[str, Any], result: Any) -> dict[str, Any] | None:
        """The score this call already has (from ``wait=True``, or a second logging hook)."""
        call_id = kwargs.get("litellm_call_id")
        if isinstance(call_id, str):
            with self._lock:
                if call_id in self._scored:
                    return self._scored[call_id]
        hidden = getattr(result, "_hidden_params", None) or {}
        data = hidden.get(PAYLOAD_KEY)
        return data if isinstance(data, dict) else None

    def _record(self, kwargs: dict[str, Any], result: Any, data: dict[str, Any] | TrustResult) -> dict[str, Any]:
        trust = data if isinstance(data, TrustResult) else TrustResult.from_dict(data)
        try:
            SYNC.attach(result, trust)
            metadata = result.tlm_metadata
        except Exception as exc:  # a response litellm redacted or froze: the payload still gets it
            logger.debug("tlm-hooks: could not attach the score to the litellm response: %s", exc)
            metadata = trust.to_dict()
        payload = kwargs.get("standard_logging_object")
        if isinstance(payload, dict):
            if not isinstance(payload.get("metadata"), dict):
                payload["metadata"] = {}
            payload["metadata"][PAYLOAD_KEY] = metadata
        call_id = kwargs.get("litellm_call_id")
        if call_id:
            with self._lock:
                self._remember(self._scored, call_id, metadata)
        return metadata  # type: ignore[no-any-return]

    def _request(self, kwargs: Mapping[str, Any], result: Any) -> Any:
        return SYNC.score_request(kwargs, result, self.options)

    def _score(self, kwargs: Mapping[str, Any], result: Any) -> TrustResult:
        try:
            request = self._request(kwargs, result)
            with unhooked():
                return score_within(self.scorer, request, self.score_timeout)
        except Exception as exc:  # never break litellm's logging
            return TrustResult.failed(exc)

    async def _ascore(self, kwargs: Mapping[str, Any], result: Any) -> TrustResult:
        try:
            request = self._request(kwargs, result)
            with unhooked():
                return await ascore_within(self.scorer, request, self.score_timeout)
        except Exception as exc:
            return TrustResult.failed(exc)

    # -- litellm's hooks --------------------------------------------------------------------

    def logging_hook(self, kwargs: dict[str, Any], result: Any, call_type: str) -> tuple[dict[str, Any], Any]:
        """Sync calls: score in litellm's logging thread, before the loggers after this one run."""
        if self._should_score(kwargs, result, call_type):
            done = self._done(kwargs, result)
            self._record(kwargs, result, done if done is not None else self._score(kwargs, result))
        return kwargs, result

    async def async_logging_hook(
        self, kwargs: dict[str, Any], result: Any, call_type: str
    ) -> tuple[dict[str, Any], Any]:
        """Async calls (and the proxy): score in litellm's background logging task."""
        if self._should_score(kwargs, result, call_type):
            done = self._done(kwargs, result)
            self._record(kwargs, result, done if done is not None else await self._ascore(kwargs, result))
        return kwargs, result

    async def async_post_call_success_deployment_hook(
        self, request_data: dict[str, Any], response: Any, call_type: Any
    ) -> Any:
        """``wait=True``: score an async call's answer before litellm returns it."""
        if self.wait and self._should_score(request_data, response, call_type):
            result = await self._ascore(request_data, response)
            self._record(request_data, response, result)
            _add_score_header(response, result.trustworthiness_score)
        return None  # the response itself is returned, with its score attached

    async def async_post_call_success_hook(self, data: dict[str, Any], user_api_key_dict: Any, response: Any) -> Any:
        """The litellm proxy, ``wait=True``: put the call's score in the headers the proxy sends.
        The header set by the deployment hook does not reach the proxy's reply (tested), so it is
        set again here, on the response the proxy builds its headers from."""
        if self.wait:
            done = self._done(data, response)
            if done is not None:
                _add_score_header(response, done.get("trustworthiness_score"))
        return None


def _add_score_header(response: Any, score: float | None) -> None:
    """The score as a header the litellm proxy forwards (nothing for a failed score: its reason
    is in ``tlm_metadata``)."""
    hidden = getattr(response, "_hidden_params", None)
    if score is None or not isinstance(hidden, dict):
        return
    headers = hidden.get("additional_headers")
    if not isinstance(headers, dict):
        headers = hidden["additional_headers"] = {}
    headers[SCORE_HEADER] = f"{score:.6g}"
