"""`TLM(...)` takes the Cleanlab client's constructor arguments with their meaning, so code written
for ``cleanlab_tlm.TLM`` (shaped as in Cleanlab's docs) runs after changing the import only."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tlm_hooks import TLM, FunctionScorer, ScoreRequest, TrustResult
from tlm_hooks.backends.cleanlab import CleanlabTLM
from tlm_hooks.scorers import BaseScorer


class FakeService:
    """Cleanlab's two TLM endpoints on 127.0.0.1, answering as its REST document shows."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (path, authorization, body)
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                service.requests.append((self.path, self.headers.get("authorization", ""), body))
                reply: dict[str, Any] = {"confidence_score": 0.75, "log": {"explanation": "fine"}}
                if self.path.endswith("/prompt"):
                    reply["response"] = "January."
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeService]:
    fake = FakeService()
    monkeypatch.setenv("CLEANLAB_API_BASE_URL", fake.url)  # where Cleanlab's client is pointed, too
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_cleanlab_docs_code_runs_with_api_key_on_the_service(service: FakeService) -> None:
    # as in Cleanlab's quickstart, with only the import changed
    tlm = TLM(quality_preset="low", api_key="sk-docs", options={"log": ["explanation"]}, timeout=30, verbose=False)
    out = tlm.prompt("What is the first month of the year?")
    assert out["response"] == "January." and out["trustworthiness_score"] == 0.75
    scores = tlm.get_trustworthiness_score(["q1", "q2"], ["a1", "a2"])
    assert [s["trustworthiness_score"] for s in scores] == [0.75, 0.75]  # type: ignore[index]
    assert isinstance(tlm.scorer, CleanlabTLM)
    assert {auth for _, auth, _ in service.requests} == {"Bearer sk-docs"}  # the key is what authenticates
    body = service.requests[0][2]
    assert body["quality"] == "low" and body["options"]["max_timeout"] == 30  # as Cleanlab's client sends it


def test_api_key_with_another_scorer_is_refused() -> None:
    with pytest.raises(ValueError, match="api_key.*or scorer, not both"):
        TLM(api_key="sk", scorer=FunctionScorer(lambda r: 0.5))


class Slow(BaseScorer):
    async def ascore(self, request: ScoreRequest) -> TrustResult:
        await asyncio.sleep(5 if request.response == "slow" else 0)
        return TrustResult(trustworthiness_score=0.5)


def test_timeout_bounds_each_item_like_cleanlab() -> None:
    tlm = TLM(scorer=Slow(), timeout=0.2)
    with pytest.raises(TimeoutError, match=r"timeout=0\.2s"):
        tlm.get_trustworthiness_score("q", "slow")
    out = tlm.get_trustworthiness_score(["q", "q"], ["fast", "slow"])
    assert out[0] == {"trustworthiness_score": 0.5}  # type: ignore[index]
    assert out[1]["trustworthiness_score"] is None and "timeout=0.2s" in out[1]["error"]  # type: ignore[index]


def test_bad_constructor_arguments_are_refused_with_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="timeout must be a number of seconds above 0"):
        TLM(timeout=0)
    with pytest.raises(TypeError, match="verbose must be True, False or None"):
        TLM(verbose="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same switch"):
        TLM(verbose=True, show_progress=False)
