"""A local OpenAI-compatible chat-completions server that attaches ``tlm_metadata`` (extra ``[server]``).

Usage::

    from tlm_hooks.local import get_default_model
    from tlm_hooks.scorers import LogprobScorer
    from tlm_hooks.server import ServerThread, create_app

    with ServerThread(create_app(get_default_model(), scorer=LogprobScorer())) as server:
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused")
"""

from .app import CHAT_PATHS, ChatModel, create_app
from .runner import ServerThread

__all__ = ["CHAT_PATHS", "ChatModel", "ServerThread", "create_app"]
