"""A TLM-compatible HTTP server: chat completions with ``tlm_metadata`` and TLM's REST API (extra ``[server]``).

Usage::

    from tlm_hooks.local import get_default_model
    from tlm_hooks.scorers import LogprobScorer
    from tlm_hooks.server import ServerThread, create_app

    with ServerThread(create_app(get_default_model(), scorer=LogprobScorer())) as server:
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused")

From the shell: ``tlm-hooks serve`` (see ``tlm_hooks.server.serve``).
"""

from .app import CHAT_PATHS, create_app
from .chat import ChatModel
from .limits import Limits
from .runner import ServerThread
from .scoring import DefaultScorers
from .upstream import UpstreamModel

__all__ = ["CHAT_PATHS", "ChatModel", "DefaultScorers", "Limits", "ServerThread", "UpstreamModel", "create_app"]
