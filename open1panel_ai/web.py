"""The plugin's one Flask blueprint and the glue that keeps its views thin.

:func:`operation` wraps a view: it loads the query string and JSON body through marshmallow
schemas (field errors become a 400 envelope), dumps the result through the response schema, and
records all of it for the OpenAPI document. Error handlers turn every failure under
:data:`API_PREFIX` into the error envelope; nothing else of the host is touched.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import marshmallow
from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from open1panel_ai import errors, i18n
from open1panel_ai.i18n import Message

if TYPE_CHECKING:  # pragma: no cover - typing only
    from open1panel_ai.context import AIContext

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


def current_ai() -> AIContext:
    """The running :class:`~open1panel_ai.context.AIContext` of the current app."""
    ctx: AIContext | None = current_app.extensions.get(EXTENSION_KEY)
    if ctx is None:
        raise errors.UpstreamUnavailable(Message("error.module_not_started"), code="module_not_started")
    return ctx


def request_language() -> str:
    """The language of whoever sent the current request: the switch's ``?lang=``, its cookie,
    else the browser's ``Accept-Language`` (an API client that sends none reads English)."""
    return i18n.negotiate(
        request.cookies.get(i18n.LANGUAGE_COOKIE), request.headers.get("Accept-Language"), request.args.get("lang")
    )


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
) -> Callable[[Callable[..., Any]], Callable[..., ResponseReturnValue]]:
    """Declare an API view: its input and output schemas, its success status and the error
    statuses it can answer besides 400/401/500. The view receives ``body=`` and ``query=``
    when those schemas are given, and returns plain data (or a :class:`flask.Response`).
    ``path`` gives the pattern of each path argument that has one (an id's form).

    A view that reads its input itself (a body of several media types, say) describes it with
    ``raw_body`` (media type → schema) and ``raw_query``, and an answer that is not dumped
    through ``response`` (Prometheus text, say) with ``raw_response`` (media type → JSON
    Schema); those only go into the document."""

    def decorate(view: Callable[..., Any]) -> Callable[..., ResponseReturnValue]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> ResponseReturnValue:
            if query is not None:
                kwargs["query"] = load_input(query, request.args.to_dict(flat=True), "query")
            if body is not None:
                kwargs["body"] = load_input(body, json_body(), "body")
            result = view(**kwargs)
            if isinstance(result, Response):
                return result
            payload = response.dump(result) if response is not None else result
            return jsonify(payload), status

        # A function attribute, read by open1panel_ai.openapi.
        wrapper.__dict__["openapi"] = {
            "summary": summary,
            "tag": tag,
            "response": response,
            "status": status,
            "body": body,
            "query": query,
            "errors": errors_,
            "description": view.__doc__,
            "path": path or {},
            "raw_body": raw_body,
            "raw_query": raw_query,
            "raw_response": raw_response,
        }
        return wrapper

    return decorate


class DumpedOnce:
    """The JSON answer of a view, dumped through ``schema`` once per change of what it answers.

    Under load, dumping and encoding an answer is most of what its request costs, the same
    work for every client asking within the same second. So what the view's service hands out
    is compared with what was answered last: the very same object (the latest GPU sample, the
    last hour of history the service keeps for a while), or an equal one (the MCP servers,
    built afresh from the same rows and states), is answered with the JSON encoded then. What
    was answered must not change afterwards: the services make new objects for new data, and
    the view renders any Message before (the dump does not depend on the request). Only the
    last answer is kept.
    """

    def __init__(self, schema: marshmallow.Schema) -> None:
        self._schema = schema
        self._kept: tuple[object, bytes] | None = None

    def __call__(self, data: object) -> Response:
        kept = self._kept
        if kept is None or (kept[0] is not data and kept[0] != data):
            kept = self._kept = (data, jsonify(self._schema.dump(data)).get_data())
        return current_app.response_class(kept[1], mimetype="application/json")


def json_body() -> Any:
    """The request's JSON body; a 400 envelope when it is missing, not JSON, or not parseable
    (nested too deeply to parse included), and a 413 when it is over :data:`MAX_JSON_BODY`.
    The media type is checked before anything is read, so that a body of another type is
    refused for what it is, even when a guard has read it already."""
    if request.mimetype and not request.is_json:
        raise _not_json()
    data = _body_up_to(MAX_JSON_BODY)
    if not data:
        raise errors.BadRequest(Message("error.missing_body"), code="missing_body")
    if not request.is_json:
        raise _not_json()
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite as exc:
        raise errors.BadRequest(Message("error.not_finite", value=exc.text), code="invalid_json") from None
    except (ValueError, RecursionError):
        raise errors.BadRequest(Message("error.invalid_json"), code="invalid_json") from None


class _NotFinite(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text[:40]


def _refuse_constant(text: str) -> float:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON, though Python reads them."""
    raise _NotFinite(text)


def _finite_float(text: str) -> float:
    """A JSON number; one too large for a float (``1e400``) would read as infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


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
    return errors.BadRequest(Message("error.unsupported_media_type"), code="unsupported_media_type")


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
    return errors.PayloadTooLarge(
        Message(f"error.payload_too_large.{kind.lower()}", mebibytes=f"{limit / 2**20:g}"),
        details={"limit_bytes": limit},
    )


def load_input(schema: marshmallow.Schema, data: Any, where: str) -> Any:
    """Load ``data`` (from the ``body`` or the ``query``) through ``schema``; field errors
    become a 400 envelope."""
    if where == "body" and not isinstance(data, dict):
        raise errors.BadRequest(Message("error.invalid_body"), code="invalid_body")
    try:
        return schema.load(data)
    except marshmallow.ValidationError as exc:
        fields = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise errors.BadRequest(
            Message(f"error.validation_error.{where}", fields=", ".join(_field_names(fields))),
            details={"fields": fields},
            code="validation_error",
        ) from None


def _field_names(fields: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted names of the fields that hold messages (``env.0.name``), for the sentence
    that names them; ``_schema`` (the body as a whole) is left out."""
    names = []
    for name, value in fields.items():
        if name == "_schema":
            continue
        path = f"{prefix}{name}"
        nested = isinstance(value, Mapping)
        names.extend(_field_names(value, path + ".") if nested else [path])
    return names


#: marshmallow's own messages (and those of its validators), as catalog keys: a key and the
#: pattern whose named groups fill it in.
_MARSHMALLOW_MESSAGES = [
    (re.compile(pattern), key)
    for pattern, key in [
        (r"Missing data for required field\.", "validation.required"),
        (r"Field may not be null\.", "validation.null"),
        (r"Unknown field\.", "validation.unknown"),
        (r"Not a valid (?P<type>[\w ]+)\.", "validation.type"),
        (r"Invalid input type\.", "validation.type_any"),
        (r"Shorter than minimum length (?P<min>\d+)\.", "validation.too_short"),
        (r"Longer than maximum length (?P<max>\d+)\.", "validation.too_long"),
        (r"Length must be between (?P<min>\d+) and (?P<max>\d+)\.", "validation.length_between"),
        (r"Length must be (?P<equal>\d+)\.", "validation.length_equal"),
        (
            r"Must be greater than or equal to (?P<min>[-\d.]+) and less than or equal to (?P<max>[-\d.]+)\.",
            "validation.range_between",
        ),
        (r"Must be greater than or equal to (?P<min>[-\d.]+)\.", "validation.at_least"),
        (r"Must be less than or equal to (?P<max>[-\d.]+)\.", "validation.at_most"),
        (r"Must be one of: (?P<choices>.*)\.", "validation.one_of"),
        (r"String does not match expected pattern\.", "validation.pattern"),
    ]
]


def _render_field_messages(value: Any, language: str) -> Any:
    """Validation messages in ``language``: Messages rendered, marshmallow's own translated."""
    if isinstance(value, Mapping):
        return {name: _render_field_messages(item, language) for name, item in value.items()}
    if isinstance(value, list):
        return [_render_field_messages(item, language) for item in value]
    if isinstance(value, Message):
        return value.render(language)
    if isinstance(value, str) and language != i18n.DEFAULT_LANGUAGE:
        for pattern, key in _MARSHMALLOW_MESSAGES:
            match = pattern.fullmatch(value)
            if match:
                kind = match.groupdict().get("type", "").lower().replace(" ", "_")
                if kind and i18n.has(f"{key}.{kind}"):
                    key = f"{key}.{kind}"
                return i18n.translate(key, language, **match.groupdict())
    return value


def in_language(value: Any, language: str) -> Any:
    """``value`` with every Message in it rendered in ``language``: for answers that hold
    reasons and errors the panel composed outside an error envelope."""
    if isinstance(value, dict):
        return {key: in_language(item, language) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [in_language(item, language) for item in value]
    return i18n.render(value, language)


def localized_envelope(exc: errors.ApiError, language: str) -> errors.ErrorEnvelope:
    """``exc``'s envelope with its message, the field messages of a validation error and any
    other Message in its details in ``language``."""
    details = dict(exc.details)
    if "fields" in details:
        details["fields"] = _render_field_messages(details["fields"], language)
    return errors.envelope(exc.code, str(i18n.render(exc.message, language)), in_language(details, language))


def _envelope_response(status: int, payload: Mapping[str, object]) -> Response:
    response = jsonify(payload)
    response.status_code = status
    return response


def _is_api_request() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


@blueprint.app_errorhandler(errors.ApiError)
def _api_error(exc: errors.ApiError) -> ResponseReturnValue:
    return _envelope_response(exc.status, localized_envelope(exc, request_language()))


@blueprint.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> ResponseReturnValue:
    if not _is_api_request():
        return exc
    code = (exc.name or "error").lower().replace(" ", "_")
    language = request_language()
    message = {
        404: Message("error.no_route"),
        405: Message("error.method_not_allowed", method=request.method),
    }.get(exc.code or 0, exc.description or exc.name)
    message = str(i18n.render(message, language))
    allowed = getattr(exc, "valid_methods", None)  # a MethodNotAllowed's
    details = {"allowed": sorted(allowed)} if allowed else {}
    response = _envelope_response(exc.code or 500, errors.envelope(code, message, details))
    if exc.code == 405 and details:
        response.headers["Allow"] = ", ".join(details["allowed"])
    return response


@blueprint.app_errorhandler(Exception)
def _unexpected_error(exc: Exception) -> ResponseReturnValue:
    if isinstance(exc, HTTPException):  # pragma: no cover - routed to _http_error
        return _http_error(exc)
    log.exception("unhandled error on %s %s", request.method, request.path)
    if not _is_api_request():
        return Response("Internal server error\n", status=500, mimetype="text/plain")
    return _envelope_response(
        500, errors.envelope("internal_error", i18n.translate("error.internal_error", request_language()))
    )
