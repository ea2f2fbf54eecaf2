"""`TLMCallback` on the real litellm proxy (`litellm --config ...`), driven by the `openai` client.

The proxy runs as its own process with a config whose model points at the loopback fake and whose
``litellm_settings.callbacks`` name a module (written to tmp) holding ``TLMCallback`` with a
FunctionScorer and, after it, a logger; both append what they see to a JSONL file this test reads.
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_openai import Reply

import tlm_hooks

STARTUP_TIMEOUT = 180.0  # the proxy imports for ~25 s on a busy 2-core machine
EVENT_TIMEOUT = 30.0
MASTER_KEY = "sk-tlm-proxy-test"


# The proxy's own dependencies, installed apart (``pip install --target``, see the Makefile) and put
# first on the proxy process's path only: litellm[proxy] needs semver>=3, and cleanlab-tlm, in the
# same venv, pins semver<3.
PROXY_DEPS = Path(
    os.environ.get("TLM_LITELLM_PROXY_DEPS") or Path(__file__).resolve().parents[2] / ".venv-litellm-proxy"
)
_NEEDED = (
    "litellm.proxy.proxy_server",
    "fastapi",
    "uvicorn",
    "yaml",
    "backoff",
    "apscheduler",
    "uvloop",
    "fastapi_sso",
)
_NEEDED += ("expression", "redis", "semver")


def _missing_proxy_deps() -> list[str]:
    """What ``litellm.proxy.proxy_server`` and its uvicorn loop need that the proxy process could
    not import (checked without importing the proxy, which takes many seconds)."""
    extra = [str(PROXY_DEPS)] if PROXY_DEPS.is_dir() else []
    missing = []
    for name in _NEEDED:
        if extra and importlib.machinery.PathFinder.find_spec(name.split(".")[0], extra) is not None:
            continue
        if importlib.util.find_spec(name) is None:
            missing.append(name)
    if "semver" not in missing:
        found = [d.version for d in importlib.metadata.distributions(name="semver", path=extra + sys.path)]
        if not found or int(found[0].split(".")[0]) < 3:  # the first one on the path is the one imported
            missing.append(f"semver>=3 (found {found[0] if found else '?'}, which cleanlab-tlm pins)")
    return missing


_MISSING = _missing_proxy_deps()
_LITELLM_CLI = Path(sys.executable).with_name("litellm")
pytestmark = [
    pytest.mark.skipif(bool(_MISSING), reason=f"litellm[proxy] is not usable here; missing: {', '.join(_MISSING)}"),
    pytest.mark.skipif(not _LITELLM_CLI.exists(), reason=f"no litellm CLI next to {sys.executable}"),
]

CALLBACKS_MODULE = '''
"""Callbacks for the proxy under test: TLMCallback, then a logger that records what reaches it."""
import json
import os
import threading

from litellm.integrations.custom_logger import CustomLogger

from tlm_hooks import FunctionScorer
from tlm_hooks.integrations.litellm import TLMCallback

LOG = os.environ["TLM_PROXY_TEST_LOG"]
_lock = threading.Lock()


def _write(event, **data):
    with _lock, open(LOG, "a", encoding="utf-8") as out:
        out.write(json.dumps({"event": event, **data}, default=str) + "\\n")


def _score(request):
    score = round(1 / (1 + len(request.response)), 6)  # differs per answer: ties a score to its call
    logprobs = [t.logprob for t in request.response_logprobs or ()]
    options = request.options.to_body() if request.options is not None else None
    _write("scored", messages=list(request.messages or ()), response=request.response, score=score, logprobs=logprobs,
           options=options)
    return score


tlm = TLMCallback(FunctionScorer(_score), wait=True)


class Recorder(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        payload = kwargs.get("standard_logging_object") or {}
        hidden = getattr(response_obj, "_hidden_params", None) or {}
        _write(
            "success",
            call_id=kwargs.get("litellm_call_id"),
            messages=kwargs.get("messages"),
            payload_metadata=(payload.get("metadata") or {}).get("tlm_metadata"),
            hidden=hidden.get("tlm_metadata"),
        )

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        _write("failure", messages=kwargs.get("messages"), error=str(kwargs.get("exception"))[:300])


recorder = Recorder()
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(upstream: str) -> str:
    return textwrap.dedent(
        f"""\
        model_list:
          - model_name: fake-gpt
            litellm_params:
              model: openai/m
              api_base: {upstream}
              api_key: upstream-key
        litellm_settings:
          callbacks: ["tlm_proxy_callbacks.tlm", "tlm_proxy_callbacks.recorder"]
          num_retries: 0
        router_settings:
          num_retries: 0
        general_settings:
          master_key: {MASTER_KEY}
        """
    )


class Proxy:
    def __init__(self, url: str, log: Path, process: subprocess.Popen[bytes], output: Path) -> None:
        self.url, self.log, self.process, self.output = url, log, process, output

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines() if line]

    def wait_for(self, what: str, found: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + EVENT_TIMEOUT
        while time.monotonic() < deadline:
            events = self.events()
            if found(events):
                time.sleep(0.5)  # a second scoring of the same call, if there were one, would show by now
                return self.events()
            assert self.process.poll() is None, f"the proxy exited:\n{self.tail()}"
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; events: {self.events()}\n{self.tail()}")

    def tail(self) -> str:
        return self.output.read_text(errors="replace")[-3000:] if self.output.exists() else "(no output)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.fixture(scope="module")
def proxy(fake_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    root = tmp_path_factory.mktemp("litellm-proxy")
    (root / "tlm_proxy_callbacks.py").write_text(CALLBACKS_MODULE, encoding="utf-8")
    (root / "config.yaml").write_text(_config(fake_server.url), encoding="utf-8")
    repo = Path(tlm_hooks.__file__).resolve().parents[1]
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(
            p for p in (str(root), str(PROXY_DEPS), str(repo), env.get("PYTHONPATH", "")) if p
        ),
        TLM_PROXY_TEST_LOG=str(root / "events.jsonl"),
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # its bundled cost map: no fetch at startup
        LITELLM_TELEMETRY="False",
        # anything the proxy tries to reach besides loopback fails at once instead of hanging
        HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )  # fmt: skip
    port = _free_port()
    output = root / "proxy.log"
    args = [str(_LITELLM_CLI), "--config", str(root / "config.yaml"), "--host", "127.0.0.1", "--port", str(port)]
    with output.open("wb") as out:
        process = subprocess.Popen(
            args, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    server = Proxy(url, root / "events.jsonl", process, output)
    try:
        started = time.monotonic()
        while True:
            if process.poll() is not None:
                pytest.fail(f"the litellm proxy exited during startup (code {process.returncode}):\n{server.tail()}")
            if time.monotonic() - started > STARTUP_TIMEOUT:
                pytest.fail(f"the litellm proxy was not ready in {STARTUP_TIMEOUT:g}s:\n{server.tail()}")
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield server
    finally:
        _stop(process)


@pytest.fixture
def client(proxy: Proxy) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=60.0)


def _of(prompt: str, event: str) -> Callable[[dict[str, Any]], bool]:
    def match(e: dict[str, Any]) -> bool:
        return e["event"] == event and any(m.get("content") == prompt for m in (e.get("messages") or []))

    return match


@pytest.mark.parametrize(
    "stream, usage", [(False, False), (True, False), (True, True)], ids=["plain", "stream", "stream-usage"]
)
def test_each_proxied_call_is_scored_once_and_its_client_and_the_loggers_after_it_get_the_score(
    proxy: Proxy, client: Any, fake: Any, stream: bool, usage: bool
) -> None:
    prompt = f"What is 2+2? ({uuid.uuid4().hex[:8]})"
    answer = "Four, streamed." if stream else "Four."
    fake.push(Reply(text=answer))
    messages = [{"role": "user", "content": prompt}]
    if stream:
        extra = {"stream_options": {"include_usage": True}} if usage else {}
        raw = client.chat.completions.with_raw_response.create(
            model="fake-gpt", messages=messages, stream=True, **extra
        )
        chunks = list(raw.parse())
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        carried = [i for i, chunk in enumerate(chunks) if (chunk.model_extra or {}).get("tlm_metadata")]
        assert carried == [len(chunks) - 1], [c.model_dump() for c in chunks]  # the last chunk, only
        if usage:  # the usage chunk stays last, and carries the score
            assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
        assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
        body_metadata = chunks[-1].model_extra["tlm_metadata"]
    else:
        raw = client.chat.completions.with_raw_response.create(model="fake-gpt", messages=messages, logprobs=True)
        completion = raw.parse()
        text = completion.choices[0].message.content
        assert fake.requests[0].body["logprobs"] is True  # the proxy passes the ask for logprobs on
        body_metadata = completion.tlm_metadata  # in the JSON body, as from tlm-hooks serve
    assert text == answer  # the answer passes through unchanged
    assert [s.body["messages"] for s in fake.requests] == [messages]  # and so does the prompt, upstream

    events = proxy.wait_for(f"the logger's event for {prompt!r}", lambda es: any(map(_of(prompt, "success"), es)))
    scored = [e for e in events if _of(prompt, "scored")(e)]
    assert len(scored) == 1, scored
    assert scored[0]["messages"] == messages
    assert scored[0]["response"] == answer
    if not stream:  # the scorer gets the answer's token logprobs (what LogprobScorer needs)
        assert scored[0]["logprobs"] == [Reply().logprob]
    # wait=True: the proxy's client gets the score in the body (a stream: on its last chunk)
    assert body_metadata["trustworthiness_score"] == pytest.approx(scored[0]["score"])
    logged = [e for e in events if _of(prompt, "success")(e)]
    assert len(logged) == 1, logged
    # the logger after TLMCallback sees this call's score in the payload and the hidden params
    assert logged[0]["call_id"] == raw.headers["x-litellm-call-id"]
    assert logged[0]["payload_metadata"]["trustworthiness_score"] == scored[0]["score"]
    assert logged[0]["hidden"]["trustworthiness_score"] == scored[0]["score"]
    # and a plain call's score is also a header (a stream's headers go out before its answer)
    header = raw.headers.get("x-tlm-trustworthiness-score")
    if stream:
        assert header is None
    else:
        assert header is not None and float(header) == pytest.approx(scored[0]["score"], rel=1e-5)


def test_a_failed_upstream_call_is_not_scored_and_the_client_gets_the_proxy_error(
    proxy: Proxy, client: Any, fake: Any
) -> None:
    from openai import InternalServerError

    prompt = f"Fail please ({uuid.uuid4().hex[:8]})"
    fake.push(Reply(status=500))
    with pytest.raises(InternalServerError) as raised:
        client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": prompt}])
    assert raised.value.status_code == 500
    assert "scripted failure" in str(raised.value)  # the upstream's error, relayed by the proxy

    events = proxy.wait_for(f"the failure event for {prompt!r}", lambda es: any(map(_of(prompt, "failure"), es)))
    assert not [e for e in events if _of(prompt, "scored")(e) or _of(prompt, "success")(e)]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_routed_openai_client_reads_the_proxys_score_as_from_a_tlm_backend(
    proxy: Proxy, fake: Any, stream: bool
) -> None:
    from openai import OpenAI

    routed = OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=60.0)
    tlm_hooks.route(routed)
    prompt = f"Name a prime ({uuid.uuid4().hex[:8]})"
    fake.push(Reply(text="Seven is prime."))
    messages = [{"role": "user", "content": prompt}]
    if stream:
        reply = routed.chat.completions.create(model="fake-gpt", messages=messages, stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in reply if chunk.choices)
    else:
        reply = routed.chat.completions.create(model="fake-gpt", messages=messages)
        text = reply.choices[0].message.content
    assert text == "Seven is prime."
    events = proxy.wait_for(f"the score of {prompt!r}", lambda es: any(map(_of(prompt, "scored"), es)))
    (scored,) = [e for e in events if _of(prompt, "scored")(e)]
    assert reply.tlm_metadata["trustworthiness_score"] == pytest.approx(scored["score"])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tlm_keys_a_client_sends_score_its_call_and_do_not_go_upstream(
    proxy: Proxy, client: Any, fake: Any, stream: bool
) -> None:
    prompt = f"Capital of Peru? ({uuid.uuid4().hex[:8]})"
    fake.push(Reply(text="Lima."))
    asked = {"quality_preset": "high", "task": "classification", "options": {"log": ["explanation"]}}
    messages = [{"role": "user", "content": prompt}]
    reply = client.chat.completions.create(model="fake-gpt", messages=messages, stream=stream, extra_body=asked)
    if stream:
        chunks = list(reply)
        metadata = chunks[-1].model_extra["tlm_metadata"]
    else:
        metadata = reply.tlm_metadata
    upstream = fake.requests[0].body
    assert upstream["messages"] == messages
    assert not set(asked) & set(upstream), upstream  # the TLM keys are the proxy's, not the model's
    events = proxy.wait_for(f"the score of {prompt!r}", lambda es: any(map(_of(prompt, "scored"), es)))
    (scored,) = [e for e in events if _of(prompt, "scored")(e)]
    assert scored["options"] == asked  # this call was scored with the keys its client sent
    assert metadata["trustworthiness_score"] == pytest.approx(scored["score"])


@pytest.mark.parametrize(
    "asked, named",
    [
        ({"quality_preset": "ultra"}, "quality_preset"),
        ({"options": {"log": ["explanations"]}}, "options.log"),
        ({"options": {"model_provider": {"api_base": "http://10.0.0.1/v1"}}}, "options.model_provider"),
    ],
    ids=["preset", "log", "model_provider"],
)
def test_bad_tlm_keys_are_refused_with_a_400_before_any_model_call(
    proxy: Proxy, client: Any, fake: Any, asked: dict[str, Any], named: str
) -> None:
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as raised:
        client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "Hello?"}], extra_body=asked
        )
    assert raised.value.status_code == 400
    assert named in str(raised.value)
    assert fake.requests == []  # refused before the upstream model was called
