"""The `Adapter` protocol: everything the hook needs to know about one SDK's calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from ..options import TLMOptions
from ..types import ScoreRequest, TrustResult

__all__ = ["Adapter", "ResultKind"]

ResultKind = Literal["completion", "stream", "async_stream", "raw", "other"]


class Adapter(Protocol):
    """Reads and writes one SDK's requests and responses. Stateless; one instance per SDK."""

    sdk: str

    def client_of(self, resource: Any) -> Any:
        """The client object a patched method's ``self`` belongs to."""

    def prepare_kwargs(
        self, kwargs: Mapping[str, Any], *, route_body: Mapping[str, Any] | None, add_logprobs: bool
    ) -> tuple[dict[str, Any], frozenset[str]]:
        """A new kwargs dict for the real call (caller's objects untouched), and the names added."""

    def without(self, kwargs: Mapping[str, Any], added: frozenset[str]) -> dict[str, Any]:
        """``kwargs`` minus the parameters the hook added."""

    def rejects(self, exc: BaseException, param: str) -> bool:
        """True when ``exc`` is the API refusing ``param`` (so the call can go again without it)."""

    def kind(self, result: Any) -> ResultKind: ...

    def score_request(
        self, kwargs: Mapping[str, Any], response: Any, options: TLMOptions | None, source_client: Any = None
    ) -> ScoreRequest: ...

    def text_of(self, response: Any) -> str: ...

    def with_text(self, response: Any, text: str) -> Any: ...

    def read_metadata(self, response: Any) -> Mapping[str, Any] | None: ...

    def attach(self, response: Any, result: TrustResult) -> Any:
        """Put ``result`` on ``response`` as ``tlm_metadata``; returns the response to hand back
        (the same object, or a carrier when the type can't hold attributes, e.g. ``str``)."""

    def accumulate(self, chunks: Sequence[Any]) -> Any:
        """A complete response built from a stream's chunks."""

    def text_chunk(self, template: Any, text: str) -> Any:
        """A new chunk (shaped like ``template``) that carries ``text`` as content."""

    def ends_answer(self, chunk: Any) -> bool:
        """True when ``chunk`` is the event that ends the answer (a stream of chat chunks has
        none; the Responses API's ``response.completed`` is one): the stream is scored then."""

    def closing_chunk(self, chunk: Any, response: Any, *, after_extra: bool) -> Any:
        """``chunk`` (the answer-ending event) as passed on once ``response`` is scored."""

    def single_call_kwargs(self, kwargs: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        """kwargs for a repeated, non-streamed, non-raw call with ``overrides`` applied."""

    def call_client(self, client: Any, kwargs: Mapping[str, Any]) -> Any:
        """Call the same method on another client of this SDK (may return an awaitable)."""

    def parse_raw(self, raw: Any) -> Any:
        """The parsed response of a raw-response object."""
