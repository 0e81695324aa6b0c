"""The OpenAPI document, generated from the routes declared with :func:`web.operation`."""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from open1panel_ai import __version__
from open1panel_ai.schemas import ErrorSchema
from open1panel_ai.web import API_PREFIX, MAX_JSON_BODY

_RULE_ARGUMENT = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?([A-Za-z_][A-Za-z0-9_]*)>")
_ERROR_TEXT = {
    400: "Bad input; field errors are in details.fields.",
    401: "Missing or wrong credentials.",
    404: "Not found.",
    409: "Conflicts with the current state.",
    413: f"The JSON body is larger than {MAX_JSON_BODY / 2**20:g} MiB.",
    500: "Unexpected error.",
    502: "The upstream answered badly.",
    503: "The upstream or its provider cannot be reached.",
    507: "Not enough disk space.",
}


def build_spec(app: Flask) -> dict:
    spec = APISpec(
        title="open1panel-ai",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "AI management for a server panel. Every route needs "
            "`Authorization: Bearer <token>` or a signed-in browser session."
        },
        servers=[{"url": API_PREFIX}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorSchema)
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        meta = getattr(app.view_functions.get(rule.endpoint), "openapi", None)
        if meta is None or not rule.rule.startswith(API_PREFIX):
            continue
        path = _RULE_ARGUMENT.sub(r"{\1}", rule.rule[len(API_PREFIX) :])
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(meta, rule.arguments)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _path_schema(meta: dict, name: str) -> dict:
    if name in meta["path"]:
        return {"type": "string", "pattern": meta["path"][name]}
    return {"type": "string"}


def _operation(meta: dict, arguments: set[str]) -> dict:
    operation: dict = {
        "summary": meta["summary"],
        "tags": [meta["tag"]],
        "security": [{"bearer": []}],
        "parameters": [
            {"in": "path", "name": name, "required": True, "schema": _path_schema(meta, name)}
            for name in sorted(arguments)
        ],
        "responses": {},
    }
    if meta["description"]:
        operation["description"] = " ".join(meta["description"].split())
    query = meta["query"] or meta["raw_query"]
    if query is not None:
        operation["parameters"].append({"in": "query", "schema": query})
    body = {"application/json": meta["body"]} if meta["body"] is not None else meta["raw_body"]
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {media_type: {"schema": schema} for media_type, schema in body.items()},
        }
    success: dict = {"description": "Success."}
    if meta["response"] is not None:
        success["content"] = {"application/json": {"schema": meta["response"]}}
    elif meta["raw_response"]:
        success["content"] = {media_type: {"schema": schema} for media_type, schema in meta["raw_response"].items()}
    operation["responses"][str(meta["status"])] = success
    codes = {401, 500, *meta["errors"]}
    if body or query is not None:
        codes.add(400)
    if body and "application/json" in body:
        codes.add(413)
    for code in sorted(codes):
        operation["responses"][str(code)] = {
            "description": _ERROR_TEXT.get(code, "Error."),
            "content": {"application/json": {"schema": "Error"}},
        }
    return operation
