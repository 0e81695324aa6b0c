"""Marshmallow schemas of the shared API objects: errors, tasks and the status report."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from open1panel_ai.tasks import STATUSES


#: A task id (a UUID's 32 hex digits), as the document states it for path arguments.
TASK_ID = r"^[0-9a-f]{32}$"


class Pattern(validate.Regexp):
    """A ``^…$`` pattern the whole value must match, as the OpenAPI document's ``pattern``
    means it. ``re.match`` would also let ``$`` match before a final line break, so a name
    such as ``"time\\n"`` would pass."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class JSONBoolean(fields.Boolean):
    """A boolean in a JSON body: ``true`` or ``false`` only. Marshmallow's own Boolean also
    takes 1, "yes" or "on", which the OpenAPI document (``type: boolean``) forbids."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "Stable machine-readable code."})
    message = fields.String(required=True, metadata={"description": "What went wrong, for a person."})
    details = fields.Dict(required=True, metadata={"description": "Context, such as field errors."})


class ErrorSchema(Schema):
    """Every API error has this shape."""

    error = fields.Nested(ErrorBodySchema, required=True)


class TaskErrorSchema(Schema):
    message = fields.String(required=True)
    details = fields.Dict(required=True)


class TaskSchema(Schema):
    """A background task and its progress."""

    id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "What the task does, e.g. ollama.pull."})
    target = fields.String(required=True, metadata={"description": "What it works on."})
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    completed = fields.Integer(allow_none=True)
    total = fields.Integer(allow_none=True)
    percent = fields.Float(allow_none=True, metadata={"description": "0–100, never decreasing while it runs."})
    bytes_per_second = fields.Float(allow_none=True)
    eta_seconds = fields.Float(allow_none=True)
    message = fields.String(allow_none=True)
    error = fields.Nested(TaskErrorSchema, allow_none=True)
    created_at = fields.String(required=True, metadata={"description": "RFC 3339, UTC."})
    updated_at = fields.String(required=True, metadata={"description": "RFC 3339, UTC."})


class TaskListSchema(Schema):
    tasks = fields.List(fields.Nested(TaskSchema), required=True)


class TaskQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    kind = fields.String(validate=validate.Length(min=1, max=100))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class CandidateSchema(Schema):
    name = fields.String(required=True)
    plugin = fields.String(required=True)
    usable = fields.Boolean(allow_none=True, metadata={"description": "null when not tried."})
    reason = fields.String(allow_none=True)
    fix = fields.String(allow_none=True)


class HookErrorSchema(Schema):
    plugin = fields.String(required=True)
    error = fields.String(required=True)


class ProviderStatusSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["ollama", "mcp", "gpu", "domain"]))
    setting = fields.String(required=True, metadata={"description": "A provider name, auto or none."})
    provider = fields.String(allow_none=True, metadata={"description": "The chosen provider."})
    usable = fields.Boolean(required=True)
    reason = fields.String(allow_none=True, metadata={"description": "Why it is not usable."})
    fix = fields.String(allow_none=True)
    candidates = fields.List(fields.Nested(CandidateSchema), required=True)
    errors = fields.List(fields.Nested(HookErrorSchema), required=True)


class StatusSchema(Schema):
    version = fields.String(required=True)
    providers = fields.List(fields.Nested(ProviderStatusSchema), required=True)
    plugin_errors = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                                metadata={"description": "Plugins the host could not load, with why."})
