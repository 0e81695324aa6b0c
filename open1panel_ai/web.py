"""The plugin's one Flask blueprint and the glue that keeps its views thin.

:func:`operation` wraps a view: it loads the query string and JSON body through marshmallow
schemas (field errors become a 400 envelope), dumps the result through the response schema, and
records all of it for the OpenAPI document. Error handlers turn every failure under
:data:`API_PREFIX` into the error envelope; nothing else of the host is touched.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import marshmallow
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from open1panel_ai import errors

log = logging.getLogger(__name__)

API_PREFIX = "/api/v2/ai"
EXTENSION_KEY = "open1panel_ai"
#: The largest JSON body a route reads: far above any real request, and small enough that a
#: flood of them cannot fill the memory. GGUF uploads are streamed and have no such limit.
MAX_JSON_BODY = 1024 * 1024

blueprint = Blueprint(
    "ai",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/ai/static",
)


def current_ai():
    """The running :class:`~open1panel_ai.context.AIContext` of the current app."""
    ctx = current_app.extensions.get(EXTENSION_KEY)
    if ctx is None:
        raise errors.UpstreamUnavailable(
            "The AI module did not start; see the host's log and its Plugins page.",
            code="module_not_started",
        )
    return ctx


def operation(
    *,
    summary: str,
    tag: str,
    response: marshmallow.Schema | None = None,
    status: int = 200,
    body: marshmallow.Schema | None = None,
    query: marshmallow.Schema | None = None,
    errors_: tuple[int, ...] = (),
    path: Mapping[str, str] | None = None,
    raw_body: Mapping[str, marshmallow.Schema | dict] | None = None,
    raw_query: marshmallow.Schema | None = None,
    raw_response: Mapping[str, dict] | None = None,
) -> Callable:
    """Declare an API view: its input and output schemas, its success status and the error
    statuses it can answer besides 400/401/500. The view receives ``body=`` and ``query=``
    when those schemas are given, and returns plain data (or a :class:`flask.Response`).
    ``path`` gives the pattern of each path argument that has one (an id's form).

    A view that reads its input itself (a body of several media types, say) describes it with
    ``raw_body`` (media type → schema) and ``raw_query``, and an answer that is not dumped
    through ``response`` (Prometheus text, say) with ``raw_response`` (media type → JSON
    Schema); those only go into the document."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(**kwargs: Any):
            if query is not None:
                kwargs["query"] = load_input(query, request.args.to_dict(flat=True), "query")
            if body is not None:
                kwargs["body"] = load_input(body, json_body(), "body")
            result = view(**kwargs)
            if isinstance(result, Response):
                return result
            payload = response.dump(result) if response is not None else result
            return jsonify(payload), status

        wrapper.openapi = {  # read by open1panel_ai.openapi
            "summary": summary, "tag": tag, "response": response, "status": status,
            "body": body, "query": query, "errors": errors_, "description": view.__doc__,
            "path": path or {}, "raw_body": raw_body, "raw_query": raw_query,
            "raw_response": raw_response,
        }
        return wrapper

    return decorate


def json_body() -> Any:
    """The request's JSON body; a 400 envelope when it is missing, not JSON, or not parseable
    (nested too deeply to parse included), and a 413 when it is over :data:`MAX_JSON_BODY`.
    The media type is checked before anything is read, so that a body of another type is
    refused for what it is, even when a guard has read it already."""
    if request.mimetype and not request.is_json:
        raise _not_json()
    data = _body_up_to(MAX_JSON_BODY)
    if not data:
        raise errors.BadRequest("The request needs a JSON body.", code="missing_body")
    if not request.is_json:
        raise _not_json()
    try:
        return current_app.json.loads(data)
    except (ValueError, RecursionError):
        raise errors.BadRequest("The body is not valid JSON.", code="invalid_json") from None


def read_form_body() -> None:
    """Read a form's body and keep it, so that ``request.form`` parses it and a relay can still
    send it on; a 413 envelope when it is over :data:`MAX_JSON_BODY`: told by Content-Length
    before anything is read, or, for a chunked body, as soon as the limit is passed. A form
    is a few fields, so the JSON body's limit is ample for it too."""
    if (request.content_length or 0) > MAX_JSON_BODY:
        raise _too_large(MAX_JSON_BODY, "form")
    # Werkzeug stops reading a chunked body quietly at this cap, so one byte past the limit
    # is allowed in: a body that fills it is over the limit, not cut short at it.
    request.max_content_length = MAX_JSON_BODY + 1
    if len(request.get_data()) > MAX_JSON_BODY:
        raise _too_large(MAX_JSON_BODY, "form")


def _not_json() -> errors.BadRequest:
    return errors.BadRequest("Send the body as JSON with Content-Type: application/json.",
                             code="unsupported_media_type")


def _body_up_to(limit: int) -> bytes:
    """The raw body, or a 413 when it is longer than ``limit`` bytes: told by Content-Length
    before anything is read, or, for a chunked body, as soon as ``limit`` bytes are passed."""
    if (request.content_length or 0) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    while chunk := request.stream.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
    return b"".join(chunks)


def _too_large(limit: int, kind: str = "JSON") -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(f"The {kind} body is larger than {limit / 2**20:g} MiB; send less.",
                                  details={"limit_bytes": limit})


def load_input(schema: marshmallow.Schema, data: Any, where: str) -> Any:
    """Load ``data`` (from the ``body`` or the ``query``) through ``schema``; field errors
    become a 400 envelope."""
    if where == "body" and not isinstance(data, dict):
        raise errors.BadRequest("The JSON body must be an object.", code="invalid_body")
    try:
        return schema.load(data)
    except marshmallow.ValidationError as exc:
        raise errors.BadRequest(
            f"Some {where} fields are not valid.", details={"fields": exc.messages},
            code="validation_error",
        ) from None


def _envelope_response(status: int, payload: dict) -> Response:
    response = jsonify(payload)
    response.status_code = status
    return response


def _is_api_request() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


@blueprint.app_errorhandler(errors.ApiError)
def _api_error(exc: errors.ApiError):
    return _envelope_response(exc.status, exc.envelope())


@blueprint.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    if not _is_api_request():
        return exc
    code = (exc.name or "error").lower().replace(" ", "_")
    message = {
        404: "No such API route. See /api/v2/ai/openapi.json for the routes.",
        405: f"This route does not accept {request.method}.",
    }.get(exc.code, exc.description or exc.name)
    details = {"allowed": sorted(exc.valid_methods)} if getattr(exc, "valid_methods", None) else {}
    response = _envelope_response(exc.code or 500, errors.envelope(code, message, details))
    if exc.code == 405 and details:
        response.headers["Allow"] = ", ".join(details["allowed"])
    return response


@blueprint.app_errorhandler(Exception)
def _unexpected_error(exc: Exception):
    if isinstance(exc, HTTPException):  # pragma: no cover - routed to _http_error
        return _http_error(exc)
    log.exception("unhandled error on %s %s", request.method, request.path)
    if not _is_api_request():
        return Response("Internal server error\n", status=500, mimetype="text/plain")
    return _envelope_response(500, errors.envelope(
        "internal_error", "The panel hit an unexpected error; it has been logged."))
