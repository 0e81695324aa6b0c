"""API errors and their JSON envelope: ``{"error": {"code", "message", "details"}}``.

The error classes are the contract's (:mod:`hookspecs.errors`), so a provider plugin raises
the same classes the panel's services do; they carry no Flask types. The blueprint turns them,
and every other failure under the API prefix, into the envelope with a fitting status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hookspecs.errors import (
    ApiError,
    BadRequest,
    Conflict,
    ErrorEnvelope,
    Forbidden,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    ProviderUnavailable,
    Unauthorized,
    UpstreamError,
    UpstreamUnavailable,
)

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InsufficientStorage",
    "NotFound",
    "PayloadTooLarge",
    "ProviderUnavailable",
    "Unauthorized",
    "UpstreamError",
    "UpstreamUnavailable",
    "envelope",
]


def envelope(code: str, message: str, details: Mapping[str, Any] | None = None) -> ErrorEnvelope:
    """The error envelope for ``code`` and ``message``."""
    return {"error": {"code": code, "message": message, "details": dict(details or {})}}
