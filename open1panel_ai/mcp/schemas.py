"""Marshmallow schemas of the MCP API: server definitions in and out, logs, tools, configs."""

from __future__ import annotations

import ipaddress
import shlex

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from open1panel_ai.mcp.clients import CLIENTS
from open1panel_ai.schemas import JSONBoolean, Pattern

STATES = ("starting", "running", "unhealthy", "restarting", "stopping", "stopped", "error")
TRANSPORTS = ("streamable-http", "sse")
RESTART_POLICIES = ("on-failure", "never")
SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
SERVER_ID = r"^[0-9a-f]{12}$"
ENV_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"


class Command(fields.Field):
    """An argv list; a string is split the way a POSIX shell would (without running one)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:
                raise ValidationError(f"Cannot split the command: {exc}.") from None
        if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
            raise ValidationError("Give the command as a list of strings or one string.")
        if not value or not value[0].strip():
            raise ValidationError("The command is empty.")
        if any("\x00" in part for part in value):
            raise ValidationError("The command contains a NUL character.")
        return value

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class MCPEnvEntrySchema(Schema):
    key = fields.String(required=True, validate=[Pattern(ENV_KEY), validate.Length(max=128)])
    value = fields.String(allow_none=True, validate=validate.Length(max=32768), metadata={
        "description": "Write-only when secret: answers carry null. Leave it out on an update "
                       "to keep the stored secret."})
    secret = JSONBoolean(load_default=False)

    @validates("value")
    def _no_nul(self, value, **kwargs):
        if value is not None and "\x00" in value:
            raise ValidationError("The value contains a NUL character.")


class MCPHeaderSchema(Schema):
    name = fields.String(required=True, validate=Pattern(HEADER_NAME))
    value = fields.String(allow_none=True, load_only=True, validate=validate.Length(max=8192),
                          metadata={"description": "Write-only; leave it out on an update to keep it."})

    @validates("value")
    def _one_line(self, value, **kwargs):
        if value is not None and any(ch in value for ch in "\r\n\x00"):
            raise ValidationError("A header value must be one line.")


class MCPServerInSchema(Schema):
    """A server definition as sent on create (and, with every field optional, on update)."""

    name = fields.String(required=True, validate=Pattern(
        SLUG, error="Use lower-case letters, digits and dashes (a slug), at most 63 characters."),
        metadata={"example": "time"})
    command = Command(metadata={
        "description": "argv list, or one string split like a shell.",
        "example": ["uvx", "mcp-server-time"],
        "oneOf": [{"type": "string", "pattern": r"\S"},
                  {"type": "array", "items": {"type": "string"}, "minItems": 1}]})
    env = fields.List(fields.Nested(MCPEnvEntrySchema), load_default=list)
    cwd = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=4096),
                        metadata={"pattern": "^/", "description": "An absolute path."})
    url = fields.Url(allow_none=True, load_default=None, schemes={"http", "https"}, require_tld=False,
                     metadata={"description": "A remote Streamable HTTP server, instead of a command."})
    headers = fields.List(fields.Nested(MCPHeaderSchema), load_default=list)
    transports = fields.List(fields.String(validate=validate.OneOf(TRANSPORTS)),
                             load_default=lambda: list(TRANSPORTS), validate=validate.Length(min=1))
    port = fields.Integer(strict=True, allow_none=True, load_default=None,
                          validate=validate.Range(min=1024, max=65535))
    bind_host = fields.String(load_default="127.0.0.1")
    restart_policy = fields.String(load_default="on-failure", validate=validate.OneOf(RESTART_POLICIES))
    autostart = JSONBoolean(load_default=False)

    @validates("bind_host")
    def _an_address(self, value, **kwargs):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValidationError("Give an IP address, such as 127.0.0.1 (or 0.0.0.0 to open it).") from None

    @validates("cwd")
    def _absolute(self, value, **kwargs):
        if value is not None and (not value.startswith("/") or "\x00" in value):
            raise ValidationError("Give an absolute path.")

    @validates_schema
    def _command_or_url(self, data, partial=False, **kwargs):
        if partial:
            return
        if bool(data.get("command")) == bool(data.get("url")):
            raise ValidationError("Give either a command or a url.", "command")


class MCPServerUpdateSchema(MCPServerInSchema):
    """A server update: every field optional; fields left out keep their value. Only the
    top-level fields are optional: an env entry or a header given is whole, as on create
    (``partial=True`` would reach into them and let ``{}`` through)."""

    def __init__(self, **kwargs):
        super().__init__(partial=tuple(MCPServerInSchema._declared_fields), **kwargs)


class MCPEnvOutSchema(Schema):
    key = fields.String(required=True)
    value = fields.String(allow_none=True, metadata={"description": "null for a secret."})
    secret = fields.Boolean(required=True)


class MCPHeaderOutSchema(Schema):
    name = fields.String(required=True)


class MCPEndpointsSchema(Schema):
    streamable_http = fields.String(allow_none=True)
    sse = fields.String(allow_none=True)


class MCPServerSchema(Schema):
    """A server definition and its measured state. Secrets never appear here."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["stdio", "remote"]))
    command = fields.List(fields.String(), allow_none=True)
    env = fields.List(fields.Nested(MCPEnvOutSchema), required=True)
    cwd = fields.String(allow_none=True)
    url = fields.String(allow_none=True)
    headers = fields.List(fields.Nested(MCPHeaderOutSchema), required=True)
    transports = fields.List(fields.String(), required=True)
    port = fields.Integer(required=True)
    bind_host = fields.String(required=True)
    restart_policy = fields.String(required=True)
    autostart = fields.Boolean(required=True)
    extra_hosts = fields.List(fields.String(), required=True,
                              metadata={"description": "Host names of domains bound to it."})
    token_hint = fields.String(required=True, metadata={"description": "The token's last 4 characters."})
    endpoints = fields.Nested(MCPEndpointsSchema, required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATES))
    pid = fields.Integer(allow_none=True)
    since = fields.String(allow_none=True)
    restarts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class MCPServerListSchema(Schema):
    servers = fields.List(fields.Nested(MCPServerSchema), required=True)


class MCPTokenSchema(Schema):
    token = fields.String(required=True, metadata={"description": "Shown once, on rotation."})


class MCPLogQuerySchema(Schema):
    tail = fields.Integer(load_default=200, validate=validate.Range(min=1, max=5000))


class MCPLogsSchema(Schema):
    lines = fields.List(fields.String(), required=True)


class MCPToolSchema(Schema):
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    input_schema = fields.Dict(required=True)


class MCPToolListSchema(Schema):
    tools = fields.List(fields.Nested(MCPToolSchema), required=True)


class MCPClientQuerySchema(Schema):
    client = fields.String(load_default="generic", validate=validate.OneOf(list(CLIENTS)))
    transport = fields.String(load_default="streamable-http", validate=validate.OneOf(TRANSPORTS))


class MCPClientConfigSchema(Schema):
    client = fields.String(required=True)
    transport = fields.String(required=True)
    url = fields.String(required=True)
    path = fields.String(allow_none=True, metadata={"description": "Where the client reads it."})
    format = fields.String(required=True, validate=validate.OneOf(["json", "shell"]))
    snippet = fields.String(required=True, metadata={
        "description": "Ready to paste; holds the token unless the client asks for it."})
    prompt_value = fields.String(allow_none=True, metadata={
        "description": "What to type when the client asks (VS Code: the token); null if it does not ask."})


class MCPImportSchema(Schema):
    mcpServers = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), required=True,
                             metadata={"description": "Entries by name; an entry that is not a "
                                                      "valid server is reported on its own."})
    autostart = JSONBoolean(load_default=False)


class MCPImportEntrySchema(Schema):
    name = fields.String(required=True)
    ok = fields.Boolean(required=True)
    server = fields.Nested(MCPServerSchema, allow_none=True)
    error = fields.Dict(allow_none=True)


class MCPImportResultSchema(Schema):
    results = fields.List(fields.Nested(MCPImportEntrySchema), required=True)
