"""Marshmallow schemas of the MCP API: server definitions in and out, logs, tools, configs."""

from __future__ import annotations

import ipaddress
import os
import shlex
from collections.abc import Mapping
from typing import Any, get_args

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    missing,
    validate,
    validates,
    validates_schema,
)

from hookspecs.process import ProcessStatus
from open1panel_ai.i18n import Message
from open1panel_ai.mcp import sandbox
from open1panel_ai.mcp.clients import CLIENTS
from open1panel_ai.schemas import JSONBoolean, Pattern, TranslatableSchema

STATES = get_args(ProcessStatus)
TRANSPORTS = ("streamable-http", "sse")
RESTART_POLICIES = ("on-failure", "never")
SESSION_MODES = ("shared", "per_client")
SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
SERVER_ID = r"^[0-9a-f]{12}$"
ENV_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"


class Command(fields.Field[list[str]]):
    """An argv list, kept exactly as given; a string is split the way a POSIX shell would
    (without running one)."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:
                raise ValidationError(Message("mcp.validation.cannot_split", reason=str(exc))) from None
        if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
            raise ValidationError(Message("mcp.validation.command_type"))
        if not value or not value[0].strip():
            raise ValidationError(Message("mcp.validation.command_empty"))
        if any("\x00" in part for part in value):
            raise ValidationError(Message("mcp.validation.nul"))
        return value

    def _serialize(self, value: list[str] | None, attr: str | None, obj: Any, **kwargs: Any) -> list[str] | None:
        return value


class PlainAddress(fields.String):
    """An IP address and nothing else, given back rebuilt from its parsed form.

    Python's ``ipaddress`` takes an IPv6 zone ID (``::1%<anything>``: spaces, ``;``, ``{``,
    newlines), which would reach the bridge and a proxy's config as it was written. A zone ID
    is refused, and the value kept is made again from the address's packed bytes, so no text
    of the input but the address itself survives."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise ValidationError(Message("mcp.validation.bind_host")) from None
        if getattr(address, "scope_id", None) is not None:
            raise ValidationError(Message("mcp.validation.bind_host_zone"))
        return str(ipaddress.ip_address(address.packed))


def plain_address(value: object, default: str = "127.0.0.1") -> str:
    """A stored address (one an earlier version may have kept with a zone ID) rebuilt from its
    packed form, without the zone; ``default`` when it is no address at all."""
    if not isinstance(value, str):
        return default
    try:
        return str(ipaddress.ip_address(ipaddress.ip_address(value).packed))
    except ValueError:
        return default


class MCPEnvEntrySchema(Schema):
    key = fields.String(required=True, validate=[Pattern(ENV_KEY), validate.Length(max=128)])
    value = fields.String(
        allow_none=True,
        validate=validate.Length(max=32768),
        metadata={
            "description": "Write-only when secret: answers carry null. Leave it out on an update "
            "to keep the stored value while the entry stays secret; an entry made "
            "non-secret needs its value again (else 400)."
        },
    )
    secret = JSONBoolean(load_default=False)

    @validates("value")
    def _no_nul(self, value: str | None, **kwargs: Any) -> None:
        if value is not None and "\x00" in value:
            raise ValidationError(Message("mcp.validation.nul"))


class MCPHeaderSchema(Schema):
    name = fields.String(required=True, validate=Pattern(HEADER_NAME))
    value = fields.String(
        allow_none=True,
        load_only=True,
        validate=validate.Length(max=8192),
        metadata={
            "description": "Write-only; leave it out on an update to keep it, "
            "unless the url now points to another origin "
            "(scheme, host, port): then it is needed again."
        },
    )

    @validates("value")
    def _one_line(self, value: str | None, **kwargs: Any) -> None:
        if value is not None and any(ch in value for ch in "\r\n\x00"):
            raise ValidationError(Message("mcp.validation.header_one_line"))


class GrantedPath(fields.String):
    """An absolute path a sandboxed server may read or write, stored in its normal form
    (``/srv/data``, never ``/srv/./data/``); ``..`` and NUL are refused. Whether it reaches the
    panel's own folders is checked by the service, which knows them."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text.startswith("/") or "\x00" in text or len(text) > 4096:
            raise ValidationError(Message("mcp.validation.absolute"))
        if ".." in text.split("/"):
            raise ValidationError(Message("mcp.validation.no_dot_dot"))
        return os.path.normpath(text)


class MCPProfileSchema(Schema):
    """What a sandboxed stdio server may touch, in ToolHive's shape (see docs/mcp.md). A
    profile given on an update is whole: fields left out take their defaults."""

    read = fields.List(
        GrantedPath(),
        load_default=list,
        validate=validate.Length(max=64),
        metadata={"description": "Absolute paths it may read (besides the system and its own program)."},
    )
    write = fields.List(
        GrantedPath(),
        load_default=list,
        validate=validate.Length(max=64),
        metadata={"description": "Absolute paths it may read and write."},
    )
    network = fields.String(
        load_default="all",
        validate=validate.OneOf(sandbox.NETWORK_MODES),
        metadata={"description": "all, or none: no network at all."},
    )
    memory_mb = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=16, max=1_048_576),
        metadata={"description": "Its data memory in MiB (RLIMIT_DATA); null: no limit."},
    )
    open_files = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=sandbox.DEFAULT_OPEN_FILES,
        validate=validate.Range(min=16, max=1_048_576),
    )
    processes = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=sandbox.DEFAULT_PROCESSES,
        validate=validate.Range(min=1, max=65_536),
        metadata={"description": "Processes and threads its user may have."},
    )
    isolation = fields.String(
        load_default="sandbox",
        validate=validate.OneOf(sandbox.ISOLATION_MODES),
        metadata={"description": "sandbox, or none: run it as the panel's user, shown as a warning."},
    )


def _default_profile() -> dict:
    return MCPProfileSchema().load({})


class MCPServerInSchema(Schema):
    """A server definition as sent on create (and, with every field optional, on update)."""

    name = fields.String(
        required=True, validate=Pattern(SLUG, error=Message("mcp.validation.slug")), metadata={"example": "time"}
    )
    command = Command(
        metadata={
            "description": "argv list, kept as given (answers carry the list), or one string split like a shell.",
            "example": ["uvx", "mcp-server-time"],
            "oneOf": [
                {"type": "string", "pattern": r"\S"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ],
        }
    )
    env = fields.List(fields.Nested(MCPEnvEntrySchema), load_default=list)
    cwd = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=4096),
        metadata={"pattern": "^/", "description": "An absolute path."},
    )
    url = fields.Url(
        allow_none=True,
        load_default=None,
        schemes={"http", "https"},
        require_tld=False,
        metadata={"description": "A remote Streamable HTTP server, instead of a command."},
    )
    headers = fields.List(fields.Nested(MCPHeaderSchema), load_default=list)
    transports = fields.List(
        fields.String(validate=validate.OneOf(TRANSPORTS)),
        load_default=lambda: list(TRANSPORTS),
        validate=validate.Length(min=1),
    )
    port = fields.Integer(strict=True, allow_none=True, load_default=None, validate=validate.Range(min=1024, max=65535))
    bind_host = PlainAddress(
        load_default="127.0.0.1",
        metadata={
            "description": "An IPv4 or IPv6 address alone (no zone ID, brackets or port); stored "
            "and answered in its compressed form, such as ::1."
        },
    )
    restart_policy = fields.String(load_default="on-failure", validate=validate.OneOf(RESTART_POLICIES))
    autostart = JSONBoolean(
        load_default=True,
        metadata={"description": "Start it whenever the panel starts, unless it was stopped by hand."},
    )
    profile = fields.Nested(
        MCPProfileSchema,
        load_default=_default_profile,
        metadata={"description": "The sandbox's permission profile of a stdio server."},
    )
    sessions = fields.String(
        load_default="shared",
        validate=validate.OneOf(SESSION_MODES),
        metadata={
            "description": "shared: one process of a stdio server for every client session; "
            "per_client: one process per client session (more memory, full fidelity "
            "for servers that keep state per client). See docs/mcp.md."
        },
    )

    @validates("cwd")
    def _absolute(self, value: str | None, **kwargs: Any) -> None:
        _check_absolute(value)

    @validates_schema
    def _command_or_url(self, data: Mapping[str, Any], partial: bool = False, **kwargs: Any) -> None:
        if partial:
            return
        if bool(data.get("command")) == bool(data.get("url")):
            raise ValidationError(Message("mcp.error.command_or_url"), "command")


def _check_absolute(value: str | None) -> None:
    if value is not None and (not value.startswith("/") or "\x00" in value):
        raise ValidationError(Message("mcp.validation.absolute"))


class MCPServerUpdateSchema(MCPServerInSchema):
    """A server update: every field optional; fields left out keep their value. Only the
    top-level fields are optional: an env entry or a header given is whole, as on create
    (``partial=True`` would reach into them and let ``{}`` through)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(partial=tuple(MCPServerInSchema._declared_fields), **kwargs)
        for field in self.fields.values():
            field.load_default = missing  # nothing is filled in on an update (nor documented so)


class MCPEnvOutSchema(Schema):
    key = fields.String(required=True)
    value = fields.String(allow_none=True, metadata={"description": "null for a secret."})
    secret = fields.Boolean(required=True)


class MCPHeaderOutSchema(Schema):
    name = fields.String(required=True)


class MCPTransportURLsSchema(Schema):
    streamable_http = fields.String(allow_none=True)
    sse = fields.String(allow_none=True)


class MCPEndpointsSchema(MCPTransportURLsSchema):
    public = fields.List(
        fields.Nested(MCPTransportURLsSchema),
        metadata={
            "description": "The same at each domain bound to the server (https://<domain>/mcp …), the "
            "address client configs use by default first."
        },
    )


class MCPLayerSchema(Schema):
    name = fields.String(required=True, validate=validate.OneOf(sandbox.LAYERS))
    applied = fields.Boolean(required=True)
    reason = fields.String(allow_none=True, metadata={"description": "Why not, when not (English)."})
    reason_i18n = fields.Nested(TranslatableSchema, allow_none=True)
    fix = fields.String(allow_none=True, metadata={"description": "What would apply it (English)."})
    fix_i18n = fields.Nested(TranslatableSchema, allow_none=True)


class MCPIsolationSchema(Schema):
    """The isolation in effect for the running child: every layer, or which are not, and why."""

    mode = fields.String(required=True, validate=validate.OneOf(["sandbox", "partial", "none"]))
    uid = fields.Integer(allow_none=True, metadata={"description": "The uid and gid it runs as; null: the panel's."})
    home = fields.String(allow_none=True, metadata={"description": "Its private home (HOME)."})
    layers = fields.List(fields.Nested(MCPLayerSchema), required=True)


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
    stopped_by_hand = fields.Boolean(
        required=True,
        metadata={
            "description": "Stopped with the stop route: it stays stopped when the panel starts, "
            "until it is started again."
        },
    )
    extra_hosts = fields.List(
        fields.String(), required=True, metadata={"description": "Host names of domains bound to it."}
    )
    token_hint = fields.String(required=True, metadata={"description": "The token's last 4 characters."})
    endpoints = fields.Nested(MCPEndpointsSchema, required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATES))
    pid = fields.Integer(allow_none=True)
    since = fields.String(allow_none=True)
    restarts = fields.Integer(required=True)
    last_error = fields.String(
        allow_none=True,
        metadata={
            "description": "Why it last went down or cannot start, in a few readable lines (English); "
            "short whatever the server wrote (4 lines of 160 characters at most)."
        },
    )
    last_error_i18n = fields.Nested(
        TranslatableSchema,
        allow_none=True,
        metadata={"description": "The same as a catalog key and its values, for a page in another language."},
    )
    profile = fields.Nested(MCPProfileSchema, required=True)
    sessions = fields.String(required=True, validate=validate.OneOf(SESSION_MODES))
    isolation = fields.Nested(
        MCPIsolationSchema,
        allow_none=True,
        metadata={"description": "What isolation the child got at its last start; null before one."},
    )
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class MCPServerListSchema(Schema):
    servers = fields.List(fields.Nested(MCPServerSchema), required=True)


class MCPTokenSchema(Schema):
    token = fields.String(required=True, metadata={"description": "Shown once, on rotation."})


class MCPLogQuerySchema(Schema):
    tail = fields.Integer(
        load_default=200,
        validate=validate.Range(min=1, max=5000),
        metadata={"description": "At most this many lines, and at most 512 KiB of text: the newest."},
    )


class MCPLogsSchema(Schema):
    lines = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "Oldest first; a line longer than 8 KiB keeps its first 8 KiB and ends "
            "with ' …[line cut at 8 KiB]'."
        },
    )


class MCPToolSchema(Schema):
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    input_schema = fields.Dict(required=True)


class MCPToolListSchema(Schema):
    tools = fields.List(fields.Nested(MCPToolSchema), required=True)


class MCPClientQuerySchema(Schema):
    client = fields.String(load_default="generic", validate=validate.OneOf(list(CLIENTS)))
    transport = fields.String(load_default="streamable-http", validate=validate.OneOf(TRANSPORTS))
    address = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=2048),
        metadata={
            "description": "One of the answer's addresses (its url); by default the first: a bound "
            "domain when there is one, else this machine."
        },
    )


class MCPAddressSchema(Schema):
    url = fields.String(
        required=True, metadata={"description": "Base URL; the transport's path (/mcp or /sse) follows it."}
    )
    kind = fields.String(
        required=True,
        validate=validate.OneOf(["domain", "local", "interface"]),
        metadata={
            "description": "domain: a bound domain, through the reverse proxy; local: this machine; "
            "interface: an address of this machine's network interfaces."
        },
    )


class MCPClientConfigSchema(Schema):
    client = fields.String(required=True)
    transport = fields.String(required=True)
    url = fields.String(required=True)
    path = fields.String(allow_none=True, metadata={"description": "Where the client reads it."})
    format = fields.String(required=True, validate=validate.OneOf(["json", "shell"]))
    snippet = fields.String(
        required=True, metadata={"description": "Ready to paste; holds the token unless the client asks for it."}
    )
    prompt_value = fields.String(
        allow_none=True,
        metadata={"description": "What to type when the client asks (VS Code: the token); null if it does not ask."},
    )
    address = fields.String(required=True, metadata={"description": "The base URL the snippet uses."})
    addresses = fields.List(
        fields.Nested(MCPAddressSchema),
        required=True,
        metadata={"description": "Every address the server is reachable at, the default first."},
    )


class MCPImportSchema(Schema):
    mcpServers = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(allow_none=True),
        required=True,
        metadata={"description": "Entries by name; an entry that is not a valid server is reported on its own."},
    )
    autostart = JSONBoolean(
        load_default=True,
        metadata={"description": "Whether the servers created start with the panel (see a server's autostart)."},
    )


class MCPImportEntrySchema(Schema):
    name = fields.String(required=True)
    ok = fields.Boolean(required=True)
    server = fields.Nested(MCPServerSchema, allow_none=True)
    error = fields.Dict(allow_none=True)


class MCPImportResultSchema(Schema):
    results = fields.List(fields.Nested(MCPImportEntrySchema), required=True)


class MCPCommandCheckInSchema(Schema):
    """A command to look up as a server would run it, before it is saved."""

    command = Command(
        required=True,
        metadata={
            "description": "argv list, or one string split like a shell (the answer gives the list).",
            "example": ["uvx", "mcp-server-time"],
            "oneOf": [
                {"type": "string", "pattern": r"\S"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ],
        },
    )
    env = fields.List(
        fields.Nested(MCPEnvEntrySchema),
        load_default=list,
        metadata={"description": "The server's env; its PATH, if any, is where the program is looked up."},
    )
    cwd = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=4096),
        metadata={"pattern": "^/", "description": "An absolute path."},
    )

    @validates("cwd")
    def _absolute(self, value: str | None, **kwargs: Any) -> None:
        _check_absolute(value)


class MCPCommandCheckSchema(Schema):
    argv = fields.List(fields.String(), required=True, metadata={"description": "The command as a list."})
    program = fields.String(required=True)
    path = fields.String(required=True, metadata={"description": "The PATH the server's child gets."})
    found = fields.String(
        allow_none=True, metadata={"description": "The file the program resolves to; null when it cannot be run."}
    )
    warning = fields.String(
        allow_none=True,
        metadata={
            "description": "Why it cannot be run and how to fix it (in the reader's language); null when it can."
        },
    )
    warning_i18n = fields.Nested(TranslatableSchema, allow_none=True)
