"""`TLMScorer`: the open trust engine (token probability + self-reflection + observed consistency)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import JudgeError, TrustScoringError
from ..llm.base import ChatBackend, Generation
from ..llm.failures import is_context_overflow, short_reason
from ..llm.resolve import resolve_backend
from ..llm.usage import Usage, metered
from ..options import TLMOptions, as_tlm_options, deep_merge
from ..types import ScoreRequest, TrustResult, content_text
from .asked import disabled, score_as_asked
from .base import BaseScorer
from .cache import open_cache, score_key
from .cost import check_prices
from .signals.consistency import SAMPLE_TEMPERATURE, Comparison, compare, judge_agreement, method_for
from .signals.coverage import Coverage, failure_kind
from .signals.explanation import explain
from .signals.fields import (
    MAX_REFLECTED_FIELDS,
    NO_FORMAT,
    NOT_AN_OBJECT,
    field_agreements,
    field_scores,
    is_structured,
    reflect_field,
)
from .signals.fit import ANSWER_CHARS, QUESTION_CHARS, SAMPLE_PROMPT_CHARS, cut, fit_messages, fit_question
from .signals.forms import AnswerForm, structured_form, text_part, tool_call_form
from .signals.presets import Plan, plan_for
from .signals.reflection import REFLECTION_PROMPTS, Check, ReflectionPrompt, reflect
from .signals.similarity import normalize
from .signals.token_probability import token_probability
from .signals.tool_calls import (
    NOT_SCORED,
    SAMPLED_NATIVELY,
    SAMPLED_WITH,
    function_tools,
    native_sample_messages,
    native_tools,
    refused_tools,
    remember_tools_refused,
    sample_text,
    score_tool_calls_enabled,
)
from .signals.weights import combine

__all__ = ["TLMScorer"]

logger = logging.getLogger("tlm_hooks")

NOTE_NO_LOGPROBS = "The response carried no token logprobs, so one self-reflection was used instead."
_REPEAT_TEMPERATURE = 0.7  # reflections beyond the distinct prompts are re-asked with some randomness
_JUDGE_CACHE = 16
_SHORT_CHARS = 1500  # question and answer of a reflection re-asked after a context overflow


class TLMScorer(BaseScorer):
    """Score responses with the three TLM signals on a judge model.

    ``quality_preset`` (default ``medium``) sets how much work a score does (see
    ``signals.presets.PRESET_PLANS``), ``task`` (default ``default``) picks the signal weights,
    ``options`` are TLM options (``log``, ``num_self_reflections``, ``similarity_measure``,
    ``model``, ...) as a dict or a :class:`TLMOptions` (see :func:`tlm_hooks.options.as_tlm_options`). The judge is, in order:
    ``options.model``/``model_provider``, ``judge``, the hooked client that produced the response,
    the embedded local model. Up to ``max_concurrency`` judge calls of one score (and items of
    one batch) run at once. Failures come back as failed results, never as exceptions.
    ``calibration`` (a :class:`tlm_hooks.Calibration` or its JSON path) makes the score calibrated:
    see :meth:`_calibrated`. ``cache``: ``True`` (default) keeps scores in the process's in-memory
    cache, a file path in a persistent :class:`~tlm_hooks.scorers.cache.SQLiteCache`, ``False``
    none (see :mod:`tlm_hooks.scorers.cache`). ``prices`` (``{"model": (input, output)}``, US
    dollars per million tokens) price the judge's calls in ``log.usage``, before litellm's table.
    """

    takes_asked_path = True  # ascore applies the options of tlm_hooks.scorers.asked itself

    def __init__(
        self,
        quality_preset: str | None = None,
        task: str | None = None,
        options: TLMOptions | Mapping[str, Any] | None = None,
        *,
        judge: ChatBackend | None = None,
        max_concurrency: int = 8,
        calibration: Any = None,
        cache: Any = True,
        prices: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.cache = open_cache(cache)
        self.prices = check_prices(prices)
        self.tlm_options = as_tlm_options(quality_preset, task, options, default_preset="medium", default_task="default")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency!r}")
        self.judge = judge
        self.max_concurrency = max_concurrency
        self._judges: OrderedDict[tuple[Any, ...], tuple[Any, ChatBackend]] = OrderedDict()
        self.calibrator = _calibrator(calibration)

    def __repr__(self) -> str:
        o = self.tlm_options
        return f"TLMScorer(quality_preset={o.quality_preset!r}, task={o.task!r}, judge={self.judge!r})"

    @property
    def wants_logprobs(self) -> bool:
        """Token probability is free when the scored call returns logprobs: ask for them."""
        return True

    # -- scoring ------------------------------------------------------------------------------

    async def ascore(self, request: ScoreRequest) -> TrustResult:
        """Score one response (a failed result, not an exception, when scoring fails)."""
        try:
            options = self.effective_options(request.options)
            plan = plan_for(options.quality_preset, options.options)
        except Exception as exc:
            logger.warning("tlm-hooks: TLMScorer failed: %s", exc)
            return TrustResult.failed(exc)
        result = await score_as_asked(
            lambda: self._score_parts(request, options, plan),
            options,
            logprobs=lambda: request.response_logprobs,
            cache=self.cache,
            key=lambda: score_key(request, options, judge=self._judge_identity(options, request)),
            prices=self.prices,
            count_calls=True,
        )
        judged_by = request.model if request.source_client is not None else None  # the judge, when no other
        return self._calibrated(result, options, judged_by)

    async def agenerate(
        self, messages_or_prompt: str | Sequence[Mapping[str, Any]], *, options: Any = None
    ) -> tuple[str, TrustResult]:
        """Answer with the judge model and score the answer; with ``num_candidate_responses > 1``
        (``high``/``best``) several candidates are scored and the most trustworthy is returned.
        Raises :class:`~tlm_hooks.errors.TrustScoringError` when no answer was generated."""
        opts = self.effective_options(options)
        plan = plan_for(opts.quality_preset, opts.options)
        messages = _as_messages(messages_or_prompt)
        judge = self._judge_for(opts, None, None)
        call = self._caller(judge, asyncio.Semaphore(self.max_concurrency))
        max_tokens = opts.options.get("max_tokens", 256)
        answer: list[Generation] = []

        async def run() -> TrustResult:
            greedy_call = call(messages, temperature=0.0, max_tokens=max_tokens, logprobs=True)
            if plan.candidates <= 1:
                answer.append((await greedy_call)[0])
                return await self._score(_request(messages, answer[0], opts), opts, plan, judge)
            # the candidates' pool is sampled alongside the greedy answer, not after it
            sample_call = call(
                messages, n=max(plan.samples, plan.candidates - 1), temperature=SAMPLE_TEMPERATURE,
                max_tokens=max_tokens, logprobs=True,
            )  # fmt: skip
            greedy_list, sampled = await asyncio.gather(greedy_call, sample_call)
            pool = [greedy_list[0], *sampled]
            picks = _distinct(pool, plan.candidates)
            scored = await asyncio.gather(
                *(
                    self._score(
                        _request(messages, pool[i], opts),
                        opts,
                        plan,
                        judge,
                        alternatives=[g.text for j, g in enumerate(pool) if j != i],
                    )  # fmt: skip
                    for i in picks
                )
            )
            best = max(range(len(picks)), key=lambda i: scored[i].trustworthiness_score or -1.0)
            answer.append(pool[picks[best]])
            return scored[best]

        if disabled(opts):  # answer only: no score, so no judge call beyond the answer itself
            answer.append((await call(messages, temperature=0.0, max_tokens=max_tokens, logprobs=True))[0])
        result = await score_as_asked(
            run, opts, logprobs=lambda: answer[0].logprobs if answer else None, prices=self.prices, count_calls=True
        )
        if not answer:
            raise TrustScoringError(f"generating the answer failed: {result.error}", result)
        return answer[0].text, self._calibrated(result, opts)

    # -- calibration (tlm_hooks.calibration) ---------------------------------------------------

    def _calibrated(self, result: TrustResult, options: TLMOptions, model: str | None = None) -> TrustResult:
        """With a calibration profile: the calibrated score as ``trustworthiness_score``, the raw
        one in ``log.raw_trustworthiness_score``, and a warning in ``log.calibration`` when the
        profile was fitted for another judge, preset or task."""
        if self.calibrator is None:
            return result
        judge = options.options.get("model") or getattr(self.judge, "name", None) or model
        return self.calibrator(result, judge=judge, quality_preset=options.quality_preset, task=options.task)

    def effective_options(self, override: Any = None) -> TLMOptions:
        """This scorer's options with a request's options (preset, task, option keys) on top."""
        if override is None:
            return self.tlm_options
        extra = TLMOptions.coerce(override)
        base = self.tlm_options
        return TLMOptions(
            extra.quality_preset or base.quality_preset,
            extra.task or base.task,
            deep_merge(base.options, extra.options),
        )

    async def _score(
        self,
        request: ScoreRequest,
        options: TLMOptions,
        plan: Plan,
        judge: ChatBackend | None = None,
        *,
        alternatives: Sequence[str] | None = None,
        form: AnswerForm | None = None,
    ) -> TrustResult:
        response = _response_text(request)
        base_messages = _sample_messages(request)
        form = form or structured_form(request, base_messages, response) or AnswerForm("text", response)
        fitted, question_chars = fit_question(request)
        question = form.question(fitted)
        answer = cut(form.answer, ANSWER_CHARS)
        coverage = Coverage()
        scores: dict[str, float] = {}
        notes: list[str] = []
        tp = token_probability(request.response_logprobs)
        coverage.ask("token_probability", 1)
        if tp is not None:
            scores["token_probability"] = tp
            coverage.ran("token_probability", 1)
        reflections = plan.reflections
        samples = 0 if alternatives is not None else plan.samples
        if tp is None and reflections == 0 and samples == 0 and alternatives is None:
            reflections = 1
            notes.append(NOTE_NO_LOGPROBS)
        coverage.ask("self_reflection", reflections)
        coverage.ask("consistency", samples if alternatives is None else len(alternatives))
        method, method_note = method_for(
            options.options.get("similarity_measure"), options.task, options.options.get("constrain_outputs")
        )
        if reflections or (method == "llm" and (samples or alternatives)):
            if question_chars > QUESTION_CHARS:
                coverage.warn(
                    f"prompt cut to {QUESTION_CHARS:,} of {question_chars:,} characters for the judge "
                    "(start and end kept, the last user turn whole where it fits)"
                )
            if len(response) > ANSWER_CHARS:
                coverage.warn(f"response cut to {ANSWER_CHARS:,} of {len(response):,} characters for the judge")
        if reflections or samples:
            judge = judge or self._judge_for(options, request.source_client, request.model)
        call = self._caller(judge, asyncio.Semaphore(self.max_concurrency)) if judge is not None else None

        prompts = form.prompts
        jobs: list[Any] = [
            _reflect(_repeat(call, i, len(prompts)), prompts[i % len(prompts)], request, form, answer, coverage)
            for i in range(reflections)
        ]
        per_field = options.options.get("log") and "per_field_score" in options.options["log"]
        field_jobs = _field_jobs(call, form, question, answer, coverage) if per_field and reflections else {}
        sampled_with: str | None = None  # tool calls: how the judge's decisions were sampled
        if samples:
            max_tokens = options.options.get("max_tokens") or form.sample_tokens or _sample_tokens(request)
            messages = form.messages if form.messages is not None else base_messages
            tools = function_tools(request.tools) if form.kind == "tool_calls" and native_tools(judge) else []
            if tools:  # the judge is offered the tools and decides with real calls
                jobs.append(_sample_calls(call, judge, request, messages, tools, samples, max_tokens, coverage))
            else:
                sampled_with = SAMPLED_WITH
                jobs.append(_sample_as_text(call, messages, samples, max_tokens, coverage))
        everything = await asyncio.gather(*jobs, *field_jobs.values(), return_exceptions=True)
        outcomes, field_outcomes = everything[: len(jobs)], everything[len(jobs) :]
        for outcome in [*outcomes, *field_outcomes]:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like
        checks = [o for o in outcomes[:reflections] if isinstance(o, Check)]
        errors: list[BaseException] = [o for o in outcomes[:reflections] if isinstance(o, BaseException)]
        coverage.ran("self_reflection", len(checks))
        coverage.failed("self_reflection", "judge calls", errors, reflections)
        if checks:
            scores["self_reflection"] = sum(c.score for c in checks) / len(checks)
        if samples:
            sampled = outcomes[-1]
            if isinstance(sampled, BaseException):
                errors.append(sampled)
                coverage.failed("consistency", "sampling requests", [sampled], 1)
            else:
                sampled_generations, sampled_with = sampled
                alternatives = [sample_text(g.text, g.tool_calls) for g in sampled_generations]
                if len(alternatives) < samples:
                    coverage.warn(f"consistency: {len(alternatives)} of {samples} samples (the other requests failed)")
        if (reflections or samples) and len(errors) == reflections + (1 if samples else 0):
            raise _all_failed(judge, errors)
        comparison = None
        if alternatives and form.compare is not None:
            comparison = Comparison(form.method or form.kind, tuple(form.compare(alternatives)), tuple(alternatives))
        elif alternatives:
            comparison = await self._compare(
                call, method, method_note, options, question, response, alternatives, coverage
            )
        if alternatives and comparison is not None:
            scores["consistency"] = comparison.score or 0.0
            coverage.ran("consistency", len(alternatives))
            if comparison.note:
                notes.append(f"Consistency: {comparison.note}.")
        if errors:
            notes.append(f"{len(errors)} judge call(s) failed and were left out ({type(errors[0]).__name__}).")
        field_checks = _field_checks(field_jobs, field_outcomes, coverage)
        if field_checks and "self_reflection" in scores:  # the fields' reflections count as much as the whole's
            mean_fields = sum(c.score for c in field_checks.values()) / len(field_checks)
            scores["self_reflection"] = (scores["self_reflection"] + mean_fields) / 2
        score = combine(scores, options.task)
        explanation = explain(scores, options.task, checks, comparison, notes) if options.wants_explanation else None
        details: dict[str, Any] = {}
        if per_field:
            details["per_field_score"] = _per_field(
                form, alternatives, field_checks, options.task, score, is_structured(request.response_format)
            )
        if form.kind == "tool_calls":
            details["tool_calls"] = {
                "scored": True,
                "calls": [c.describe() for c in form.calls],
                "sampled_with": sampled_with,
                "tools_given": len(request.tools or ()),
            }
        return TrustResult(
            score,
            explanation=explanation,
            components=dict(scores),
            warnings=tuple(coverage.warnings),
            signals=coverage.signals(),
            log=details,
        )

    async def _score_parts(
        self, request: ScoreRequest, options: TLMOptions, plan: Plan, judge: ChatBackend | None = None
    ) -> TrustResult:
        """Score a response by its parts: text, tool calls (a decision), or both (each scored;
        the lower score is the response's, and ``log.scored_parts`` gives both)."""
        if not request.tool_calls:
            return await self._score(request, options, plan, judge)
        text = text_part(request)
        text_request = replace(request, response=text, tool_calls=None)
        if not score_tool_calls_enabled(options):
            if not text.strip():
                return TrustResult(None, skipped=NOT_SCORED)
            result = await self._score(text_request, options, plan, judge)
            return replace(result, log={**result.log, "tool_calls": {"scored": False, "reason": NOT_SCORED}})
        form = tool_call_form(request, [])
        if form is None:  # no call with a function name: scored as the text it is
            return await self._score(request, options, plan, judge)
        if not text.strip():
            return await self._score(request, options, plan, judge, form=form)
        call_request = replace(request, response_logprobs=None)  # the logprobs belong to the text
        text_result, call_result = await asyncio.gather(
            self._score(text_request, options, plan, judge), self._score(call_request, options, plan, judge, form=form)
        )
        return _both_parts(text_result, call_result)

    async def _compare(
        self,
        call: Any,
        method: str,
        note: str | None,
        options: TLMOptions,
        question: str,
        response: str,
        alternatives: Sequence[str],
        coverage: Coverage,
    ) -> Comparison:
        labels = options.options.get("constrain_outputs")
        if method == "llm" and call is not None:
            found = await asyncio.gather(
                *(judge_agreement(call, question, response, alt) for alt in alternatives), return_exceptions=True
            )
            failed = [s for s in found if isinstance(s, BaseException)]
            for error in failed:
                if not isinstance(error, Exception):
                    raise error
            if failed:
                kinds = "; ".join(sorted({failure_kind(e) for e in failed}))
                coverage.warn(
                    f"consistency: {len(failed)} of {len(found)} agreement checks failed and count as uncertain "
                    f"(0.5) ({kinds})"
                )
            scores = [0.5 if isinstance(s, BaseException) else s for s in found]
        else:
            scores = compare(response, alternatives, "lexical" if method == "llm" else method, labels, question)
        return Comparison(method, tuple(scores), tuple(alternatives), note)

    # -- judge access ---------------------------------------------------------------------------

    def _judge_identity(self, options: TLMOptions, request: ScoreRequest) -> dict[str, Any]:
        """What names the judge of ``request`` in its cache key (no key, no client object)."""
        settings = options.options
        if settings.get("model"):
            provider = {k: v for k, v in (settings.get("model_provider") or {}).items() if k != "api_key"}
            return {"model": settings["model"], "provider": provider}
        if self.judge is not None:
            identity: dict[str, Any] = {"judge": getattr(self.judge, "name", type(self.judge).__name__),
                                        "endpoint": str(getattr(self.judge, "endpoint", "") or "")}  # fmt: skip
            if not type(self.judge).__module__.startswith("tlm_hooks.llm."):
                # a judge of your own: two objects with one name may judge differently, so each
                # object has its own entries (ours are told apart by model and endpoint)
                identity["object"] = id(self.judge)
            return identity
        if request.source_client is not None:
            client = request.source_client
            return {"client": type(client).__name__, "base_url": str(getattr(client, "base_url", "")),
                    "model": request.model}  # fmt: skip
        return {"judge": "embedded"}

    def _judge_for(self, options: TLMOptions, source_client: Any, model: str | None) -> ChatBackend:
        provider = options.options.get("model_provider") or {}
        key = (id(source_client), model, options.options.get("model"), tuple(sorted(provider.items())))
        hit = self._judges.get(key)
        if hit is not None and hit[0] is source_client:
            self._judges.move_to_end(key)
            return hit[1]
        backend = resolve_backend(options, self.judge, source_client, model)
        self._judges[key] = (source_client, backend)
        while len(self._judges) > _JUDGE_CACHE:
            self._judges.popitem(last=False)
        return backend

    @staticmethod
    def _caller(judge: ChatBackend, limit: asyncio.Semaphore) -> Any:
        named = getattr(judge, "model", None)  # a model name, or (LocalBackend) a method
        model = named if isinstance(named, str) and named else str(getattr(judge, "name", type(judge).__name__))

        async def call(messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[Generation]:
            async with limit:
                with metered() as own:
                    generations = await judge.acomplete(messages, **kwargs)
            outer = _outer_usage()
            if outer is not None:
                if own.calls:  # the backend counted its requests
                    outer.add(own.prompt_tokens, own.completion_tokens, calls=own.calls, model=model)
                else:  # a backend that doesn't: one request per acomplete
                    prompt, completion = (sum(g.prompt_tokens for g in generations),
                                          sum(g.completion_tokens for g in generations))  # fmt: skip
                    outer.add(prompt, completion, model=model)
                for _ in range(own.retries):
                    outer.add_retry()
            return generations

        return call


def _calibrator(calibration: Any) -> Any:
    if calibration is None:
        return None
    from ..calibration.applying import ScoreCalibrator

    return ScoreCalibrator(calibration)


def _outer_usage() -> Usage | None:
    from ..llm.usage import current_usage

    return current_usage()


def _repeat(call: Any, index: int, distinct: int = len(REFLECTION_PROMPTS)) -> Any:
    """``call``, re-asking with some randomness once every distinct prompt has been used."""
    if index < distinct:
        return call

    async def again(messages: Any, **kwargs: Any) -> list[Generation]:
        return await call(messages, **{**kwargs, "temperature": _REPEAT_TEMPERATURE, "seed": index})

    return again


async def _reflect(
    call: Any, prompt: ReflectionPrompt, request: ScoreRequest, form: AnswerForm, answer: str, coverage: Coverage
) -> Check:
    """One reflection; when the prompt overflows the judge's context, asked again shorter."""
    question = form.question(fit_question(request)[0])
    try:
        return await reflect(call, prompt, question, answer)
    except Exception as exc:
        if not is_context_overflow(exc) or (len(question) <= _SHORT_CHARS and len(answer) <= _SHORT_CHARS):
            raise
    coverage.warn(
        f"self_reflection: the prompt exceeds the judge's context window; asked again with prompt and "
        f"response cut to {_SHORT_CHARS:,} characters each"
    )
    return await reflect(call, prompt, form.question(fit_question(request, _SHORT_CHARS)[0]), cut(answer, _SHORT_CHARS))


async def _sample(
    call: Any,
    messages: list[dict[str, Any]],
    n: int,
    max_tokens: int,
    coverage: Coverage,
    tools: Sequence[Mapping[str, Any]] = (),
) -> list[Generation]:
    """``n`` alternative answers (``tools``: offered to a judge with native tools); when the
    conversation overflows the judge's context, it is asked again cut to `SAMPLE_PROMPT_CHARS`."""
    offered = {"tools": list(tools)} if tools else {}
    try:
        return await call(messages, n=n, temperature=SAMPLE_TEMPERATURE, max_tokens=max_tokens, **offered)  # type: ignore[no-any-return]
    except Exception as exc:
        size = sum(len(content_text(m.get("content"))) for m in messages)
        if not is_context_overflow(exc) or size <= SAMPLE_PROMPT_CHARS:
            raise
    coverage.warn(
        f"consistency: the prompt ({size:,} characters) exceeds the judge's context window; the samples "
        f"answered it cut to {SAMPLE_PROMPT_CHARS:,} (start and end kept, the last user turn whole where it fits)"
    )
    fitted = fit_messages(messages, SAMPLE_PROMPT_CHARS)
    return await call(fitted, n=n, temperature=SAMPLE_TEMPERATURE, max_tokens=max_tokens, **offered)  # type: ignore[no-any-return]


async def _sample_as_text(
    call: Any, messages: list[dict[str, Any]], n: int, max_tokens: int, coverage: Coverage
) -> tuple[list[Generation], str]:
    """`_sample` with the way it sampled: as text (tool calls written as JSON)."""
    return await _sample(call, messages, n, max_tokens, coverage), SAMPLED_WITH


async def _sample_calls(
    call: Any,
    judge: Any,
    request: ScoreRequest,
    text_messages: list[dict[str, Any]],
    tools: Sequence[Mapping[str, Any]],
    n: int,
    max_tokens: int,
    coverage: Coverage,
) -> tuple[list[Generation], str]:
    """The judge's own tool-call decisions and the way they were sampled: the conversation as
    sent with ``tools`` offered natively; when its server refuses ``tools`` (remembered for this
    judge), asked again with ``text_messages`` for calls written as JSON."""
    try:
        generations = await _sample(call, native_sample_messages(request), n, max_tokens, coverage, tools)
    except Exception as exc:
        if not refused_tools(exc):
            raise
        if remember_tools_refused(judge):
            logger.warning("tlm-hooks: the judge %s refused the tools parameter (%s); tool calls are sampled as "
                           "JSON text from now on", getattr(judge, "name", judge), short_reason(exc))  # fmt: skip
        coverage.warn(f"consistency: the judge refused the tools parameter ({short_reason(exc)}); "
                      "it was asked for its tool calls as JSON text")  # fmt: skip
        return await _sample_as_text(call, text_messages, n, max_tokens, coverage)
    return generations, SAMPLED_NATIVELY


def _all_failed(judge: ChatBackend | None, errors: Sequence[BaseException]) -> Exception:
    """The error of a score whose every judge call failed: it names the judge's model and URL."""
    first = errors[0]
    count = f"{len(errors)} of {len(errors)}"
    if isinstance(first, JudgeError):  # its message already names the judge
        return type(first)(f"every judge call failed ({count}): {first}")
    where = getattr(judge, "endpoint", None)
    label = getattr(judge, "name", type(judge).__name__) + (f" at {where}" if where else "")
    return JudgeError(f"every judge call to {label} failed ({count}): {short_reason(first)}")


def _field_jobs(call: Any, form: AnswerForm, question: str, answer: str, coverage: Coverage) -> dict[str, Any]:
    """One reflection per field of a structured answer (up to `MAX_REFLECTED_FIELDS`)."""
    if form.fields is None or call is None:
        return {}
    names = list(form.fields)
    if len(names) > MAX_REFLECTED_FIELDS:
        coverage.warn(
            f"per_field_score: {len(names)} fields; the first {MAX_REFLECTED_FIELDS} were reflected on, "
            "the others are scored by consistency only"
        )
    return {name: reflect_field(call, question, answer, name, form.fields[name]) for name in names[:MAX_REFLECTED_FIELDS]}


def _field_checks(jobs: Mapping[str, Any], outcomes: Sequence[Any], coverage: Coverage) -> dict[str, Check]:
    checks = {name: o for name, o in zip(jobs, outcomes, strict=True) if isinstance(o, Check)}
    failed = [o for o in outcomes if isinstance(o, Exception)]
    coverage.failed("per_field_score", "field reflections", failed, len(outcomes))
    return checks


def _per_field(
    form: AnswerForm,
    alternatives: Sequence[str] | None,
    checks: Mapping[str, Check],
    task: str | None,
    score: float,
    request_format: bool,
) -> dict[str, Any]:
    """``log.per_field_score``: ``{field: {"score", "explanation"}}``, or Cleanlab's
    ``{"error": ...}`` shape when the answer has no fields."""
    if form.fields is None:
        return {"error": NOT_AN_OBJECT if form.kind == "text" and request_format else NO_FORMAT}
    agreements = field_agreements(form.fields, alternatives or ())
    return {name: f.to_dict() for name, f in field_scores(form.fields, agreements, checks, task, score).items()}


def _both_parts(text: TrustResult, calls: TrustResult) -> TrustResult:
    """One result for a response with text and tool calls: the lower score, both in ``log.scored_parts``."""
    parts = {"text": text.trustworthiness_score, "tool_calls": calls.trustworthiness_score}
    lower = calls if (calls.trustworthiness_score or 0.0) <= (text.trustworthiness_score or 0.0) else text
    explanation = None
    if text.explanation is not None or calls.explanation is not None:
        explanation = f"Text: {text.explanation or 'n/a'} Tool calls: {calls.explanation or 'n/a'}"
    signals = {f"{part}.{name}": counts for part, r in (("text", text), ("tool_calls", calls)) for name, counts in r.signals.items()}
    return replace(
        lower,
        explanation=explanation,
        warnings=tuple(dict.fromkeys([*text.warnings, *calls.warnings])),
        signals=signals,
        log={**text.log, **calls.log, "scored_parts": parts},
    )


def _response_text(request: ScoreRequest) -> str:
    if request.response or not request.tool_calls:
        return request.response
    return json.dumps([dict(call) for call in request.tool_calls], default=str)


def _question(request: ScoreRequest) -> str:
    text = request.prompt_text()
    return f"Context:\n{request.context}\n\n{text}" if request.context else text


def _sample_messages(request: ScoreRequest) -> list[dict[str, Any]]:
    if request.messages is None:
        return [{"role": "user", "content": _question(request)}]
    out = []
    for message in request.messages:
        role = message.get("role", "user")
        if role in ("system", "user", "assistant", "developer") and message.get("content") is not None:
            out.append({"role": "system" if role == "developer" else role, "content": message.get("content")})
    return out or [{"role": "user", "content": _question(request)}]


def _sample_tokens(request: ScoreRequest) -> int:
    """Room for an alternative answer: a bit more than the scored one, within [24, 512]."""
    size = len(request.response_logprobs) if request.response_logprobs else len(request.response) // 3
    return max(24, min(512, int(size * 1.5) + 16))


def _as_messages(value: str | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [dict(m) for m in value]


def _request(messages: list[dict[str, Any]], generation: Generation, options: TLMOptions) -> ScoreRequest:
    return ScoreRequest(
        response=generation.text, messages=tuple(messages), response_logprobs=generation.logprobs, options=options
    )


def _distinct(pool: Sequence[Generation], count: int) -> list[int]:
    """Indexes of up to ``count`` answers with different normalised text, the first one first."""
    seen: set[str] = set()
    picks = []
    for i, generation in enumerate(pool):
        key = normalize(generation.text)
        if key in seen:
            continue
        seen.add(key)
        picks.append(i)
        if len(picks) == count:
            break
    return picks
