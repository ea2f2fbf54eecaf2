"""A LlamaIndex RAG app, fully offline, with trust scores: the LLM's answers are scored (and
acted on) by tlm_hooks.patch, query answers get RAG evals from TrustEventHandler."""

from llama_index.core import Document, VectorStoreIndex

import tlm_hooks
from tlm_hooks.integrations.llamaindex import HashingEmbedding, LocalLLM, TrustEventHandler
from tlm_hooks.rag import DEFAULT_EVALS

DOCUMENTS = [
    "Paris is the capital of France. The Eiffel Tower stands in Paris.",
    "Berlin is the capital of Germany. The Brandenburg Gate stands in Berlin.",
    "Bananas are a yellow fruit rich in potassium.",
]

# 1. The app as it is: an index over local documents, the embedded model as its LLM.
index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS], embed_model=HashingEmbedding())
llm = LocalLLM(max_tokens=32)
engine = index.as_query_engine(llm=llm, similarity_top_k=1)

# 2. Score every answer of this LLM from its own token probabilities; flag low-trust ones.
tlm_hooks.patch(
    llm,
    scorer=tlm_hooks.LogprobScorer(),
    policy=tlm_hooks.TrustPolicy(
        threshold=0.6, on_low_trust=[tlm_hooks.fallbacks.AppendWarning(" [low trust: {score:.2f}]")]
    ),
)

# 3. Judge each query answer against the passages it was built from (scored in the background).
groundedness = [e for e in DEFAULT_EVALS if e.name == "response_groundedness"]
handler = TrustEventHandler(quality_preset="base", options={"max_tokens": 16}, evals=groundedness).register()

for question in ("What is the capital of France?", "Which fruit is yellow?"):
    response = engine.query(question)
    print("Q:", question)
    print("  answer:     ", response.response.strip())
    # the patched LLM's score of this answer is on the Response as soon as query() returns
    print("  LLM's token-probability score:", round(response.tlm_metadata["trustworthiness_score"], 3))
    handler.wait(600)  # a script waits for the background scores; an app reads them later
    scored = handler.result_for(response)
    print("  context:    ", scored.context)
    # the handler's RAG score replaces it on the Response once ready
    trust = response.metadata["tlm_metadata"]["trustworthiness_score"]
    print("  trust score (RAG):", round(trust, 3) if trust is not None else scored.result.error)
    print("  groundedness score:", round(scored.result.evals["response_groundedness"]["score"], 3))

handler.close()
tlm_hooks.unpatch(llm)
