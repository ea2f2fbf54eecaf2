"""RAG evals: trustworthiness plus criteria such as groundedness for (query, context, response).

from tlm_hooks.rag import TrustworthyRAG
rag = TrustworthyRAG(quality_preset="low")
result = rag.score(query=..., context=..., response=...)
result["response_groundedness"]["score"], result["trustworthiness"]["score"]
"""

from .evals import DEFAULT_EVALS, Eval
from .inputs import build_prompt
from .result import RAGResult
from .trustworthy import TrustworthyRAG

__all__ = ["TrustworthyRAG", "Eval", "DEFAULT_EVALS", "RAGResult", "build_prompt"]
