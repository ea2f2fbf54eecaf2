"""Scoring backends that are remote services: Cleanlab's TLM (hosted or VPC)."""

from ..errors import (
    CleanlabAPIError,
    CleanlabAuthError,
    CleanlabBadRequestError,
    CleanlabConnectionError,
    CleanlabRateLimitError,
    CleanlabServerError,
    CleanlabTimeoutError,
)
from .cleanlab import API_KEY_ENV, CleanlabTLM

__all__ = [
    "CleanlabTLM",
    "API_KEY_ENV",
    "CleanlabAPIError",
    "CleanlabAuthError",
    "CleanlabBadRequestError",
    "CleanlabConnectionError",
    "CleanlabRateLimitError",
    "CleanlabServerError",
    "CleanlabTimeoutError",
]
