"""The errors of the contract: what a provider raises, and what a client sees.

A provider signals a failure with one of these classes; the plugin turns each into an HTTP
status and the JSON error envelope (:class:`ErrorEnvelope`) without translating it again.

- :class:`ProviderUnavailable` is raised by ``probe()`` only: the provider cannot work here.
- :class:`ApiError` and its subclasses are raised by every other provider method: a status, a
  stable ``code``, a message for a person and ``details`` for a program.
- :class:`ProxyRejected` and :class:`ProxyUnreachable` are raised by a domain provider's
  ``apply`` and ``remove``: the proxy refused the configuration, or could not be reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypedDict


class ProviderUnavailable(Exception):
    """Raised by ``probe()`` when the provider cannot work on this machine.

    :param reason: what is missing, in a sentence a server admin understands.
    :param fix: what to do about it, or an empty string.
    """

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


class ErrorBody(TypedDict):
    """The ``error`` member of :class:`ErrorEnvelope`."""

    code: str
    message: str
    details: dict[str, Any]


class ErrorEnvelope(TypedDict):
    """How every API error reaches a client: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorBody


class ApiError(Exception):
    """An error a client should see, with an HTTP status and a stable ``code``.

    :param message: what went wrong, for a person (a translated message where there is one).
    :param details: facts for a program: field errors under ``"fields"``, the upstream's own
        text under its name (``"ollama"``), and the like.
    :param code: overrides the class's ``code`` with a more precise one.
    """

    status: ClassVar[int] = 500
    code: str = "internal_error"

    def __init__(self, message: str, details: Mapping[str, Any] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        if code is not None:
            self.code = code

    def envelope(self) -> ErrorEnvelope:
        """The error as a client receives it."""
        return {"error": {"code": self.code, "message": self.message, "details": dict(self.details)}}


class BadRequest(ApiError):
    """The input was refused (400); field errors go in ``details["fields"]``."""

    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    """No valid credentials (401)."""

    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    """Credentials that may not do this (403)."""

    status, code = 403, "forbidden"


class NotFound(ApiError):
    """The named thing (a model, a server, a binding) does not exist (404)."""

    status, code = 404, "not_found"


class Conflict(ApiError):
    """The request clashes with the current state: a name taken, a server not running (409)."""

    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    """The request body is larger than allowed (413)."""

    status, code = 413, "payload_too_large"


class UpstreamError(ApiError):
    """The upstream (Ollama, a proxy, an MCP server) answered, but badly (502)."""

    status, code = 502, "upstream_error"


class UpstreamUnavailable(ApiError):
    """The upstream, or the provider that reaches it, cannot be used right now (503)."""

    status, code = 503, "upstream_unavailable"


class InsufficientStorage(ApiError):
    """Not enough disk for the request (507)."""

    status, code = 507, "insufficient_storage"


class ProxyRejected(Exception):
    """A reverse proxy refused a configuration; the text is what the proxy said.

    Raised by a domain provider's ``apply``/``remove``. The previous configuration keeps
    serving; the binding is shown in ``error`` with this text.
    """


class ProxyUnreachable(ProxyRejected, ConnectionError):
    """The reverse proxy (or its admin API) could not be reached at all: nothing changed, and
    the change can be tried again once it is back."""


__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "ErrorBody",
    "ErrorEnvelope",
    "Forbidden",
    "InsufficientStorage",
    "NotFound",
    "PayloadTooLarge",
    "ProviderUnavailable",
    "ProxyRejected",
    "ProxyUnreachable",
    "Unauthorized",
    "UpstreamError",
    "UpstreamUnavailable",
]
