"""RAG evals: trustworthiness plus groundedness, helpfulness, ... of an answer over retrieved context.

Runs offline on the embedded SmolLM2-135M model as the judge. A model that small judges these
criteria barely better than chance (see benchmarks/README.md, "RAG evals"); pass
``options={"model": "gpt-4.1-mini"}`` (litellm) or ``judge=...`` for a capable judge.
"""

from tlm_hooks.rag import DEFAULT_EVALS, Eval, TrustworthyRAG

context = [  # retrieved passages, joined in order
    "The Carrow Museum is open Tuesday to Sunday from 10 am to 5 pm.",
    "Entry is free, but the special exhibitions cost 8 euros.",
]
query = "Is the Carrow Museum open on Mondays?"

# a criterion of your own, next to the four defaults; it sees only the response
brief = Eval("brief", "The Answer is at most two sentences long.", response_identifier="Answer")
rag = TrustworthyRAG("low", options={"max_tokens": 32}, evals=[*DEFAULT_EVALS, brief])

for response in ("No, it is open Tuesday to Sunday.", "Yes, it is open every day including Mondays."):
    result = rag.score(query=query, context=context, response=response)
    print(f"response: {response}")
    for name, part in result.items():
        print(f"  {name:22} score {part['score']:.3f}")

# generate an answer with the judge model, then score it (only groundedness this time)
generated = TrustworthyRAG("low", options={"max_tokens": 32}, evals=["response_groundedness"]).generate(
    query=query, context=context
)
print(f"generated: {generated['response']!r}")
print(f"  trustworthiness score {generated.trustworthiness_score:.3f}")
print(f"  groundedness score    {generated['response_groundedness']['score']:.3f}")
