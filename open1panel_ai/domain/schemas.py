"""Marshmallow schemas of domain bindings: strict on the way in, secrets never on the way out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from open1panel_ai.domain import names
from open1panel_ai.domain.binding import AUTH_MODES, TARGET_KINDS, TLS_MODES
from open1panel_ai.domain.credentials import MAX_PASSWORD_BYTES, MIN_PASSWORD_LENGTH
from open1panel_ai.i18n import Message
from open1panel_ai.schemas import JSONBoolean, Pattern, TranslatableSchema

#: Ollama endpoint names and MCP server ids: looked up, never written into a config.
_TARGET_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$"
STATES = ("pending", "online", "error")
BINDING_ID = r"^[0-9a-f]{12}$"
#: How much of a refused value a field error repeats: enough to recognise it, never all of a
#: value that may be a megabyte long.
SHOWN_CHARACTERS = 40


class _Checked(fields.String):
    """A string passed through one of :mod:`names`' parsers; its refusal becomes a field error
    that quotes at most the start of the value."""

    parser = staticmethod(lambda value: value)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.parser(text)
        except names.InvalidValue as exc:
            said = exc.args[0]
            if isinstance(said, Message):  # the value, wherever it is quoted, by its start only
                said = Message(
                    said.key,
                    **{
                        name: value.replace(repr(text), _shown(text)) if type(value) is str else value
                        for name, value in said.params.items()
                    },
                )
            raise ValidationError(said) from None


def _shown(text: str) -> str:
    """``text`` as a field error quotes it: whole when short, else its start and its length."""
    if len(text) <= SHOWN_CHARACTERS:
        return repr(text)
    return f"{text[:SHOWN_CHARACTERS]!r}… ({len(text)} characters)"


class DomainName(_Checked):
    parser = staticmethod(names.domain_name)


class AddressOrNetwork(_Checked):
    parser = staticmethod(names.address_or_network)


class FilePath(_Checked):
    parser = staticmethod(names.file_path)


class Username(_Checked):
    parser = staticmethod(names.username)


class _TranslatedPattern(Pattern):
    """A pattern whose error is a Message, kept as one so the reader gets it in their language."""

    def _format_error(self, value: str | bytes) -> str:
        return self.error


def _no_control_characters(value: str) -> None:
    if not value.isprintable():
        raise ValidationError(Message("domain.field.password_control"))


def _fits_bcrypt(value: str) -> None:
    """bcrypt reads at most 72 bytes of a password and refuses a longer one: say so, rather
    than cut the password silently (every password sharing its first 72 bytes would pass)."""
    size = len(value.encode("utf-8"))
    if size > MAX_PASSWORD_BYTES:
        raise ValidationError(Message("domain.field.password_too_long", max=MAX_PASSWORD_BYTES, size=size))


class TargetSchema(Schema):
    kind = fields.String(
        required=True,
        validate=validate.OneOf(TARGET_KINDS),
        metadata={"description": "ollama: an Ollama endpoint; mcp: an MCP server."},
    )
    name = fields.String(
        required=True,
        validate=_TranslatedPattern(_TARGET_NAME, error=Message("domain.field.target_name")),
        metadata={"description": "The Ollama endpoint's name or the MCP server's id.", "example": "local"},
    )


class TLSSchema(Schema):
    mode = fields.String(
        load_default="none",
        validate=validate.OneOf(TLS_MODES),
        metadata={"description": "none; existing (certificate and key files); acme (Caddy obtains one)."},
    )
    certificate = FilePath(
        allow_none=True, load_default=None, metadata={"description": "PEM certificate chain, for existing."}
    )
    key = FilePath(allow_none=True, load_default=None, metadata={"description": "PEM key, for existing."})
    force_https = JSONBoolean(load_default=True, metadata={"description": "Redirect plain HTTP to HTTPS."})

    @validates_schema
    def _files_for_existing(
        self, data: Mapping[str, Any], partial: bool | Sequence[str] | Set[str] | None = None, **kwargs: Any
    ) -> None:
        if data.get("mode") == "existing" and not (data.get("certificate") and data.get("key")):
            raise ValidationError(Message("domain.field.certificate_and_key"), "certificate")


class AuthSchema(Schema):
    mode = fields.String(
        validate=validate.OneOf(AUTH_MODES),
        metadata={
            "description": "none, basic or bearer; bearer when left out for Ollama targets, none for MCP servers."
        },
    )
    username = Username(allow_none=True, load_default=None)
    password = fields.String(
        load_only=True,
        validate=[validate.Length(min=MIN_PASSWORD_LENGTH), _fits_bcrypt, _no_control_characters],
        metadata={
            "description": "Write-only; stored as a bcrypt hash. At least 12 characters "
            "and at most 72 bytes in UTF-8 (what bcrypt reads)."
        },
    )


class BindingInSchema(Schema):
    """A binding as a client writes it. On update, fields left out keep their values."""

    domains = fields.List(
        DomainName(metadata={"minLength": 1}),
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"description": "Domain names; Unicode names become IDNA.", "example": ["ollama.example.com"]},
    )
    target = fields.Nested(TargetSchema, required=True)
    tls = fields.Nested(TLSSchema, load_default=lambda: TLSSchema().load({}))
    allowlist = fields.List(
        AddressOrNetwork(),
        load_default=list,
        validate=validate.Length(max=200),
        metadata={"description": "Client addresses and CIDR networks; empty lets everyone in."},
    )
    auth = fields.Nested(AuthSchema, load_default=dict)

    @validates_schema
    def _distinct_domains(
        self, data: Mapping[str, Any], partial: bool | Sequence[str] | Set[str] | None = None, **kwargs: Any
    ) -> None:
        domains = data.get("domains") or []
        if len(set(domains)) != len(domains):
            raise ValidationError(Message("domain.field.domain_twice"), "domains")


class BindingChangeSchema(BindingInSchema):
    """A change to a binding: fields left out keep their values (``tls`` and ``auth`` are
    replaced as a whole when given, except that a basic-auth password may be left out)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(partial=("domains", "target", "tls", "allowlist", "auth"), **kwargs)


class TargetOutSchema(Schema):
    kind = fields.String(required=True)
    name = fields.String(required=True)


class TLSOutSchema(Schema):
    mode = fields.String(required=True)
    certificate = fields.String(allow_none=True)
    key = fields.String(allow_none=True)
    force_https = fields.Boolean(required=True)


class AuthOutSchema(Schema):
    mode = fields.String(required=True)
    username = fields.String(allow_none=True)
    has_secret = fields.Boolean(
        required=True, metadata={"description": "Whether a password or token is set; the secret itself is never shown."}
    )


class BindingSchema(Schema):
    """A binding as the API shows it."""

    id = fields.String(required=True)
    domains = fields.List(fields.String(), required=True)
    target = fields.Nested(TargetOutSchema, required=True)
    tls = fields.Nested(TLSOutSchema, required=True)
    allowlist = fields.List(fields.String(), required=True)
    auth = fields.Nested(AuthOutSchema, required=True)
    state = fields.String(
        required=True,
        validate=validate.OneOf(STATES),
        metadata={"description": "online, or error with the proxy's text in error."},
    )
    error = fields.String(allow_none=True)
    error_i18n = fields.Nested(
        TranslatableSchema,
        allow_none=True,
        metadata={
            "description": "The key and values of an error the panel composed, for pages that show "
            "it in their own language; null for the proxy's own text."
        },
    )
    provider = fields.String(allow_none=True, metadata={"description": "nginx or caddy."})
    url = fields.String(required=True, metadata={"description": "The public URL to give clients."})
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class BindingWithTokenSchema(BindingSchema):
    """A binding just created or with a new token: the only time the token is shown."""

    token = fields.String(
        allow_none=True, metadata={"description": "The bearer token, shown once; rotate it to get a new one."}
    )


class PendingRemovalSchema(Schema):
    """A removed binding its proxy has still to take out: it was down at the removal."""

    id = fields.String(required=True, metadata={"description": "The removed binding's id."})
    domains = fields.List(fields.String(), required=True)
    note = fields.String(
        required=True, metadata={"description": "Why the proxy still has it, and when it is taken out."}
    )
    note_i18n = fields.Nested(
        TranslatableSchema,
        allow_none=True,
        metadata={"description": "The note's key and values, for pages that show it in their language."},
    )
    since = fields.String(required=True, metadata={"description": "When the binding was removed."})


class BindingListSchema(Schema):
    bindings = fields.List(fields.Nested(BindingSchema), required=True)
    removals = fields.List(
        fields.Nested(PendingRemovalSchema),
        required=True,
        metadata={"description": "Bindings removed while their proxy was down, which it has still to take out."},
    )


class PreviewSchema(Schema):
    provider = fields.String(required=True)
    config = fields.String(required=True, metadata={"description": "What will be written, with secrets masked."})
    url = fields.String(required=True)


class ProxySettingSchema(Schema):
    label = fields.String(required=True, metadata={"description": "What it is, in the reader's language."})
    value = fields.String(required=True, metadata={"description": "What the panel uses now."})
    setting = fields.String(required=True, metadata={"description": "The setting that changes it."})


class ProxyCandidateSchema(Schema):
    name = fields.String(required=True)
    usable = fields.Boolean(required=True)
    reason = fields.String(allow_none=True)
    fix = fields.String(allow_none=True)
    settings = fields.List(
        fields.Nested(ProxySettingSchema),
        required=True,
        metadata={"description": "What the panel reads and writes of this proxy, and the setting for each."},
    )


class ProxyWarningSchema(Schema):
    warning = fields.String(required=True, metadata={"description": "What is wrong, in the reader's language."})
    fix = fields.String(allow_none=True)


class ProxySchema(Schema):
    """The reverse proxy bindings are applied through, probed afresh."""

    setting = fields.String(required=True, metadata={"description": "OPEN1PANEL_AI_DOMAIN_PROVIDER."})
    provider = fields.String(allow_none=True, metadata={"description": "The proxy in use; null when none can be used."})
    usable = fields.Boolean(
        required=True,
        metadata={"description": "Whether bindings can be created and changed now; removals work either way."},
    )
    reason = fields.String(allow_none=True, metadata={"description": "Why not, in the reader's language."})
    fix = fields.String(allow_none=True)
    preview_provider = fields.String(
        allow_none=True, metadata={"description": "The proxy previews are written for; it need not be running."}
    )
    candidates = fields.List(
        fields.Nested(ProxyCandidateSchema),
        required=True,
        metadata={"description": "Each proxy tried, with why it cannot be used and what the panel checks of it."},
    )
    warnings = fields.List(
        fields.Nested(ProxyWarningSchema),
        required=True,
        metadata={
            "description": "How the proxy in use is set up unsafely, with what to do: Caddy's admin "
            "API (which holds the bindings' tokens) within reach of other local users."
        },
    )
