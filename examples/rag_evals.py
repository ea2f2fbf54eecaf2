"""RAG evals: trustworthiness plus groundedness, helpfulness, ... of an answer over retrieved context.

Runs offline on the embedded SmolLM2-135M model as the judge. A model that small judges these
criteria barely better than chance (see benchmarks/README.md, "RAG evals"), so the table below says
where a number goes the wrong way because of it; pass ``options={"model": "gpt-4.1-mini"}``
(litellm) or ``judge=...`` for a capable judge.
"""

from tlm_hooks.progress import progress
from tlm_hooks.rag import DEFAULT_EVALS, Eval, TrustworthyRAG

context = [  # retrieved passages, joined in order
    "The Carrow Museum is open Tuesday to Sunday from 10 am to 5 pm.",
    "Entry is free, but the special exhibitions cost 8 euros.",
]
query = "Is the Carrow Museum open on Mondays?"
correct, wrong = "No, it is open Tuesday to Sunday.", "Yes, it is open every day including Mondays."

# a criterion of your own, next to the four defaults; it sees only the response
brief = Eval("brief", "The Answer is at most two sentences long.", response_identifier="Answer")
rag = TrustworthyRAG("low", options={"max_tokens": 32}, evals=[*DEFAULT_EVALS, brief])

# what a good judge would say, per eval: the correct answer scores higher, or the eval does not
# depend on the answer (it judges the query and context), or both answers should pass
SHOULD = {
    "trustworthiness": "correct > wrong",
    "response_groundedness": "correct > wrong",
    "context_sufficiency": "same for both (no answer seen)",
    "query_ease": "same for both (no answer seen)",
    "response_helpfulness": "both high (both attempt it)",
    "brief": "both high (both are short)",
}

print(f"query: {query}\ncorrect answer: {correct}\nwrong answer:   {wrong}")
print("scoring both answers with the embedded 135M judge (about a minute per answer on 2 cores)...", flush=True)
with progress(2, "scoring answers", show=True, unit="answers"):
    good, bad = rag.score_batch([{"query": query, "context": context, "response": r} for r in (correct, wrong)])

backwards = 0
print(f"\n{'eval':22} {'correct':>8} {'wrong':>8}  a good judge: ")
for name in good:
    a, b = good[name]["score"], bad[name]["score"]
    should = SHOULD.get(name, "")
    flag = ""
    if should.startswith("correct >") and a is not None and b is not None and a <= b:
        backwards += 1
        flag = "  <- backwards: the tiny judge, not the answer"
    elif should.startswith("both high") and min((s for s in (a, b) if s is not None), default=1.0) < 0.5:
        backwards += 1
        flag = "  <- low for a good answer: the tiny judge"
    shown = [f"{s:8.3f}" if s is not None else "  failed" for s in (a, b)]
    print(f"{name:22} {shown[0]} {shown[1]}  {should}{flag}")
if backwards:
    print(
        f"\n{backwards} score(s) above go the wrong way (the wrong answer ranked at or above the correct one, "
        "or a good answer scored low). That is the embedded "
        "SmolLM2-135M judge: it separates grounded from made-up answers at about chance "
        "(benchmarks/README.md, 'RAG evals'). With a capable judge these go the right way."
    )
else:
    print("\nevery score goes the way a good judge's would.")

# generate an answer with the judge model, then score it (only groundedness this time)
print("\ngenerating an answer with the judge model, then scoring it...", flush=True)
generated = TrustworthyRAG("low", options={"max_tokens": 32}, evals=["response_groundedness"]).generate(
    query=query, context=context
)
print(f"generated: {generated['response']!r}")
print(f"  trustworthiness score {generated.trustworthiness_score:.3f}")
print(f"  groundedness score    {generated['response_groundedness']['score']:.3f}")
