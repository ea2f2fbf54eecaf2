"""Putting a trust result on the objects LlamaIndex users read: a query engine's ``Response``
(``Response``, ``StreamingResponse``, ``AsyncStreamingResponse``, ``PydanticResponse``).

The result goes in two places: ``response.metadata["tlm_metadata"]`` (the dict LlamaIndex
already hands back with every answer; created when it is ``None``) and the attribute
``response.tlm_metadata``. Both hold the same ``tlm_metadata`` dict as a hooked LLM call's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ...types import TrustResult

__all__ = ["METADATA_KEY", "put_on_response", "metadata_of_response"]

logger = logging.getLogger("tlm_hooks")

METADATA_KEY = "tlm_metadata"


def put_on_response(response: Any, result: TrustResult | Mapping[str, Any], **extra: Any) -> bool:
    """Write ``result`` (plus ``extra`` keys) onto a LlamaIndex query response; returns whether it
    could. Never raises: a response type that cannot hold it is left as it is."""
    metadata = dict(result.to_dict() if isinstance(result, TrustResult) else result)
    metadata.update(extra)
    try:
        holder = getattr(response, "metadata", None)
        if holder is None:
            holder = {}
            response.metadata = holder
        if isinstance(holder, dict):
            holder[METADATA_KEY] = metadata
        response.tlm_metadata = metadata
    except Exception as exc:  # a frozen or slotted response type: nothing to write on
        logger.debug("tlm-hooks: cannot put tlm_metadata on a %s: %s", type(response).__name__, exc)
        return False
    return True


def metadata_of_response(response: Any) -> dict[str, Any] | None:
    """The ``tlm_metadata`` put on ``response``, or ``None``."""
    found = getattr(response, METADATA_KEY, None)
    if isinstance(found, dict):
        return found
    holder = getattr(response, "metadata", None)
    if isinstance(holder, Mapping) and isinstance(holder.get(METADATA_KEY), dict):
        return dict(holder[METADATA_KEY])
    return None
