"""``docs/api.md``: the HTTP API reference, rendered in Markdown from the OpenAPI document.

``python -m open1panel_ai.apidocs > docs/api.md`` writes it. A fixed head (authentication,
errors, tasks, Socket.IO events) comes first, then every operation grouped by feature, then
every schema with its fields. The document comes from an in-process standalone host with only
this plugin loaded, so the output depends on the code alone and is the same on every run.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from open1panel_ai import features
from open1panel_ai.openapi import build_spec
from open1panel_ai.realtime import CORE_TOPICS
from open1panel_ai.web import API_PREFIX, MAX_JSON_BODY

COMMAND = "python -m open1panel_ai.apidocs > docs/api.md"

#: Section titles of the operation tags, in the order the reference shows them.
TAG_TITLES = {
    "status": "Status and the API document",
    "tasks": "Background tasks",
    **{
        feature.api_tag: feature.api_title or feature.api_tag for feature in features.load().values() if feature.api_tag
    },
}
#: Statuses every operation can answer; the head says so once instead of every table.
EVERYWHERE = {"401", "500"}
#: Which guide explains each tag's feature in words.
TAG_GUIDES = {
    feature.api_tag: feature.guide for feature in features.load().values() if feature.api_tag and feature.guide
}


def topic_rows() -> str:
    """The rows of the Socket.IO events table: the core's topics, then each feature's, as
    they declare them (``Feature.topics``), one row per event."""
    topics = CORE_TOPICS + tuple(topic for feature in features.load().values() for topic in feature.topics)
    return "\n".join(
        f"| `{topic.shown}` | `{event.name}` | {event.payload} |" for topic in topics for event in topic.events
    )


TOPIC_ROWS = topic_rows()

HEAD = f"""\
# The HTTP API

<!-- Generated from the OpenAPI document by `{COMMAND}`. Edit the head in
open1panel_ai/apidocs.py and the routes' schemas and docstrings, not this file. -->

Everything lives under `{API_PREFIX}` and speaks JSON. The panel serves the same description
as an OpenAPI 3 document at `GET {API_PREFIX}/openapi.json`, built from the marshmallow schemas
that validate each request, so this page and the validation cannot disagree. The guides
explain each feature in words: [Ollama](ollama.md), [MCP](mcp.md), [GPU](gpu.md),
[domains](domains.md), [the standalone panel](standalone.md), [provider plugins](providers.md).

## Authentication

Every route except `GET /healthz` (outside `{API_PREFIX}`, and it reveals nothing secret)
needs one of:

- `Authorization: Bearer <token>` with the admin token (`OPEN1PANEL_AI_TOKEN`, or the token
  the standalone panel generated at first start and stored in `<data dir>/admin-token`);
- a browser session signed in on the login page. A browser request that changes something
  (any method but GET, HEAD and OPTIONS) must also send the session's CSRF token in the
  `X-CSRF-Token` header or the `csrf_token` form field, else it gets a 403.

```
curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8788{API_PREFIX}/status
```

Inside another panel (a host of the `hookspecs.panel` contract), that host's own login applies
instead; the routes are the same.

## Errors

Every error, including unknown routes (404), wrong methods (405) and unexpected failures (500),
has one shape:

```json
{{"error": {{"code": "validation_error", "message": "Some body fields are not valid.",
           "details": {{"fields": {{"name": ["Missing data for required field."]}}}}}}}}
```

`code` is stable and meant for programs; `message` is a sentence for people; `details` holds
what applies (field errors, the upstream's own text, the fix).

| status | when |
|---|---|
| 400 | bad input; field errors in `details.fields` (a body must be a JSON object sent as `application/json`; unknown fields are refused) |
| 401 | no or wrong credentials |
| 403 | a browser request without its CSRF token |
| 404 | no such thing, or no such route |
| 405 | the route does not take that method (`details.allowed` lists those it takes) |
| 409 | conflicts with the current state (cancel a finished task, a name already taken, …) |
| 413 | a JSON or form body larger than {MAX_JSON_BODY / 2**20:g} MiB (`details.limit_bytes`); a GGUF upload has no such limit |
| 502 | the upstream (Ollama, an MCP server, the proxy) answered badly |
| 503 | the upstream cannot be reached, or no provider of the feature is usable (`code` `provider_unavailable`, with `details.fix`) |
| 507 | not enough disk |

Each operation below lists the statuses it can answer; 401 and 500 apply to all of them.

## Tasks

Long work (model pulls and GGUF imports) runs as a background task: the route answers 202
with the task, and the task's state is kept in the panel's database, so a restart loses
nothing; pulls and imports continue by themselves at the next start. (MCP starts and proxy
applies are quick and answer within their request; an MCP server's status then follows what
is measured.) A task is `{{id, kind, target, status, completed, total, percent,
bytes_per_second, eta_seconds, message, error, created_at, updated_at}}`; `status` is one of
`queued`, `running`, `succeeded`, `failed`, `cancelled`, `interrupted` (the panel stopped while
it ran), and `error` is `{{message, details}}` or null. Follow a task by polling
`GET /tasks/<id>` or over Socket.IO.

## Live events (Socket.IO)

Namespace `/ai` on the panel's own address, with the same authentication: the browser session,
or the token as `auth={{"token": "<token>"}}` (or the `Authorization` header) when connecting. A
connection without either is refused with `{{"code": "unauthorized"}}`.

A client emits `subscribe` with `{{"topic": T}}` and gets `{{"ok": true, "topic": T}}` back (an
unknown topic answers `{{"ok": false, "error": {{"code": "bad_topic", …}}}}`); `unsubscribe`
stops it. Events carry the same objects the HTTP API returns:

| topic | event | payload |
|---|---|---|
{TOPIC_ROWS}

```python
import socketio

sio = socketio.Client()
sio.on("task", lambda task: print(task["percent"]), namespace="/ai")
sio.connect("http://127.0.0.1:8788", namespaces=["/ai"], auth={{"token": TOKEN}})
sio.call("subscribe", {{"topic": "tasks"}}, namespace="/ai")
```
"""


def spec_of_this_plugin() -> dict[str, Any]:
    """The OpenAPI document of an in-process standalone host with no other plugin, in a
    throw-away data dir."""
    from open1panel_ai.config import Settings
    from open1panel_ai.standalone.host import create_host

    others = sorted({ep.name for ep in entry_points(group="open1panel.plugins")} - {"ai"})
    with tempfile.TemporaryDirectory() as data_dir:
        environ = {
            "OPEN1PANEL_AI_DATA_DIR": data_dir,
            "OPEN1PANEL_AI_DISABLED_PLUGINS": ",".join(others),
            **{f"OPEN1PANEL_AI_{kind}_PROVIDER": "none" for kind in ("OLLAMA", "MCP", "GPU", "DOMAIN")},
        }
        host = create_host(Settings.from_environ(environ))
        try:
            return build_spec(host.app)
        finally:
            host.shutdown()


def render(spec: Mapping[str, Any]) -> str:
    """The Markdown reference of an OpenAPI document."""
    schemas = spec.get("components", {}).get("schemas", {})
    by_tag: dict[str, list[tuple[str, str, dict]]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            by_tag.setdefault(operation["tags"][0], []).append((path, method, operation))
    tags = [t for t in TAG_TITLES if t in by_tag] + sorted(set(by_tag) - set(TAG_TITLES))
    out = [HEAD, "## Routes\n"]
    for tag in tags:
        links = ", ".join(f"[`{m.upper()} {p}`](#{anchor(f'{m.upper()} {p}')})" for p, m, _ in _in_order(by_tag[tag]))
        out.append(f"- **[{TAG_TITLES.get(tag, tag)}](#{anchor(TAG_TITLES.get(tag, tag))})**: {links}")
    out.append("")
    for tag in tags:
        out.append(f"## {TAG_TITLES.get(tag, tag)}\n")
        if tag in TAG_GUIDES:
            out.append(f"The guide: [{TAG_GUIDES[tag]}]({TAG_GUIDES[tag]}).\n")
        for path, method, operation in _in_order(by_tag[tag]):
            out.append(_operation(path, method, operation, schemas))
    out.append("## Schemas\n")
    out.append(
        "The objects the routes take and return. Fields marked *read-only* only appear "
        "in answers; *write-only* fields are accepted and never shown again.\n"
    )
    for name in sorted(schemas):
        out.append(f"### {name} object\n")
        out.append(_fields(schemas[name], schemas))
    return "\n".join(out).rstrip() + "\n"


_METHOD_ORDER = {"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}


def _in_order(operations: Iterable[tuple[str, str, dict]]) -> list[tuple[str, str, dict]]:
    return sorted(operations, key=lambda o: (o[0], _METHOD_ORDER.get(o[1], 9)))


def _operation(path: str, method: str, operation: Mapping[str, Any], schemas: Mapping[str, Any]) -> str:
    lines = [f"### `{method.upper()} {path}`\n", _text(operation["summary"]) + ".\n"]
    if operation.get("description"):
        lines.append(_text(operation["description"]) + "\n")
    parameters = operation.get("parameters", [])
    if parameters:
        lines.append("| parameter | in | type | required | notes |\n|---|---|---|---|---|")
        for parameter in parameters:
            schema = parameter.get("schema", {})
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {_type(schema)} | "
                f"{'yes' if parameter.get('required') else 'no'} | "
                f"{_notes(schema, parameter.get('description'))} |"
            )
        lines.append("")
    for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
        body = content.get("schema", {})
        lines.append(f"Request body, `{media_type}`: {_type(body)}\n")
        if _resolve(body, schemas).get("properties"):
            lines.append(_fields(body, schemas))
    lines.append("| status | answer |\n|---|---|")
    for status, response in sorted(operation["responses"].items()):
        if status in EVERYWHERE:
            continue
        if status.startswith("2"):
            answer = _answer(status, response.get("content", {}))
        else:
            answer = _text(response["description"])
        lines.append(f"| {status} | {answer} |")
    return "\n".join(lines) + "\n"


def _answer(status: str, content: Mapping[str, Any]) -> str:
    """A success answer in words: a JSON answer by its type, any other by its media type."""
    if not content:
        return "no body" if status == "204" else "not described"
    return "; ".join(
        _type(media["schema"]) if media_type == "application/json" else f"`{media_type}` ({_type(media['schema'])})"
        for media_type, media in content.items()
    )


def _fields(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> str:
    """A table of a schema's fields (a referenced schema's own), or one line for a non-object."""
    schema = _resolve(schema, schemas)
    properties = schema.get("properties")
    if not properties:
        return f"{_type(schema)}{': ' + _text(schema['description']) if schema.get('description') else ''}.\n"
    required = set(schema.get("required", []))
    lines = ["| field | type | required | notes |", "|---|---|---|---|"]
    for field, spec in properties.items():
        lines.append(
            f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} | "
            f"{_notes(spec, spec.get('description'))} |"
        )
    return "\n".join(lines) + "\n"


def _resolve(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema itself, or the component it refers to."""
    name = _ref_name(schema)
    return schemas.get(name, {}) if name is not None else schema


def _ref_name(schema: Mapping[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _type(schema: Mapping[str, Any]) -> str:
    """A schema's type in words: ``string``, ``array of [Task](#task-object)``, ``… or null``."""
    name = _ref_name(schema)
    if name is not None:
        return f"[{name}](#{anchor(name + ' object')})"
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:  # a nested schema that may be null is [{nullable object}, {$ref}]
        kinds = []
        for alternative in alternatives:
            text = _type({**alternative, "nullable": False})
            if not _null_placeholder(alternative) and text not in kinds:
                kinds.append(text)
        nullable = schema.get("nullable") or any(s.get("nullable") for s in alternatives)
        return " or ".join(kinds) + (" or null" if nullable else "")
    kind = schema.get("type", "any")
    if kind == "array":
        text = f"array of {_type(schema.get('items', {}))}"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        text = f"object of {_type(schema['additionalProperties'])}"
    else:
        text = kind + (f" ({schema['format']})" if schema.get("format") else "")
    return text + (" or null" if schema.get("nullable") else "")


def _null_placeholder(schema: Mapping[str, Any]) -> bool:
    """Whether an alternative only says "or null" (``{"type": "object", "nullable": true}``)."""
    return schema.get("nullable") is True and schema.get("type") == "object" and len(schema) == 2


def _notes(schema: Mapping[str, Any], description: str | None) -> str:
    """Constraints, enums, defaults and the description of one field, in one cell."""
    notes = []
    if "enum" in schema:
        notes.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"] if value is not None))
    if "enum" in schema.get("items", {}):
        notes.append("each one of " + ", ".join(f"`{value}`" for value in schema["items"]["enum"]))
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is not None or high is not None:
        notes.append(_range(low, high, "characters"))
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        notes.append(_range(low, high, ""))
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low is not None or high is not None:
        notes.append(_range(low, high, "items"))
    if schema.get("pattern"):
        notes.append(f"matches `{schema['pattern']}`")
    if "default" in schema:
        notes.append(f"default `{_literal(schema['default'])}`")
    if schema.get("readOnly"):
        notes.append("*read-only*")
    if schema.get("writeOnly"):
        notes.append("*write-only*")
    text = "; ".join(notes).replace("|", "\\|")
    if description:
        text = f"{text}. {_text(description)}" if text else _text(description)
    return text


def _range(low: Any, high: Any, unit: str) -> str:
    unit = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f"{low}–{high}{unit}" if low != high else f"exactly {low}{unit}"
    return f"at least {low}{unit}" if low is not None else f"at most {high}{unit}"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value) if not isinstance(value, str) else value


def _text(text: str) -> str:
    """One line of Markdown: whitespace folded, table pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def main() -> int:
    sys.stdout.write(render(spec_of_this_plugin()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
