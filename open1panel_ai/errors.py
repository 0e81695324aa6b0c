"""API errors and their JSON envelope: ``{"error": {"code", "message", "details"}}``.

Services raise :class:`ApiError` subclasses (they carry no Flask types); the blueprint turns
them, and every other failure under the API prefix, into the envelope with a fitting status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """An error a client should see, with an HTTP status and a stable ``code``."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: Mapping[str, Any] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})
        if code is not None:
            self.code = code

    def envelope(self) -> dict[str, Any]:
        return envelope(self.code, self.message, self.details)


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UpstreamError(ApiError):
    """The upstream (Ollama, a proxy, an MCP server) answered, but badly."""

    status, code = 502, "upstream_error"


class UpstreamUnavailable(ApiError):
    """The upstream, or the provider that reaches it, cannot be used right now."""

    status, code = 503, "upstream_unavailable"


class InsufficientStorage(ApiError):
    status, code = 507, "insufficient_storage"


def envelope(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": dict(details or {})}}
