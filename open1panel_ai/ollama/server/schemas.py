"""Marshmallow schemas of the local Ollama server's API: what it takes and what it answers."""

from __future__ import annotations

from typing import get_args

from marshmallow import Schema, fields, validate

from hookspecs.process import ProcessStatus
from open1panel_ai.ollama.server.settings import SETTINGS
from open1panel_ai.schemas import JSONBoolean, TaskSchema

KINDS = ("address", "path", "origins", "duration", "integer", "boolean", "choice", "gpus")
STATUSES = get_args(ProcessStatus)


class ServerSettingsBodySchema(Schema):
    settings = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(allow_none=True),
        required=True,
        metadata={
            "description": "The whole new set, setting name → value; a setting left out, "
            "null or empty goes back to its default. Only the settings "
            "GET /ollama/server lists are taken.",
            "example": {"OLLAMA_NUM_PARALLEL": "2", "OLLAMA_FLASH_ATTENTION": "1"},
            "propertyNames": {"enum": [setting.name for setting in SETTINGS]},
        },
    )
    unload = JSONBoolean(load_default=False, metadata={"description": "Unload every model first."})
    move_models = JSONBoolean(
        load_default=False,
        metadata={
            "description": "When OLLAMA_MODELS changes, move the models into the new folder while the "
            "server is stopped (the new folder must hold no models)."
        },
    )


class ServerRestartQuerySchema(Schema):
    unload = fields.Boolean(load_default=False, metadata={"description": "Unload every model first."})


class ServerLogsQuerySchema(Schema):
    tail = fields.Integer(
        load_default=200,
        validate=validate.Range(min=1, max=2000),
        metadata={"description": "How many of the last lines."},
    )


class ServerStateSchema(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    pid = fields.Integer(allow_none=True)
    since = fields.String(allow_none=True)
    restarts = fields.Integer()
    last_error = fields.String(allow_none=True)


class ServerSettingSchema(Schema):
    name = fields.String(required=True)
    kind = fields.String(validate=validate.OneOf(KINDS))
    meaning = fields.String()
    default = fields.String(metadata={"description": "Ollama's own default."})
    inherited = fields.String(
        allow_none=True,
        metadata={
            "description": "What the server uses when the panel gives no value, where that is not "
            "Ollama's default (the service's models folder, the panel's environment)."
        },
    )
    value = fields.String(allow_none=True, metadata={"description": "The value the panel gave; null: none."})
    choices = fields.List(fields.String())
    minimum = fields.Integer(allow_none=True)
    maximum = fields.Integer(allow_none=True)


class ServerCandidateSchema(Schema):
    name = fields.String()
    usable = fields.Boolean(allow_none=True)
    reason = fields.String(allow_none=True)


class ServerGPUSchema(Schema):
    uuid = fields.String()
    index = fields.Integer(allow_none=True)
    name = fields.String()


class ServerSchema(Schema):
    mode = fields.String(metadata={"description": "systemd, supervised, a plugin's provider, or unmanaged."})
    managed = fields.Boolean()
    reason = fields.String(allow_none=True, metadata={"description": "Why the server is not managed here."})
    fix = fields.String(allow_none=True)
    candidates = fields.List(fields.Nested(ServerCandidateSchema))
    url = fields.String(metadata={"description": "Where the panel reaches the server."})
    state = fields.Nested(ServerStateSchema, allow_none=True)
    version = fields.String(allow_none=True)
    warnings = fields.List(
        fields.String(), metadata={"description": "Features of the panel this version is too old for."}
    )
    apply_task = fields.Nested(TaskSchema, allow_none=True)
    settings = fields.List(fields.Nested(ServerSettingSchema))
    gpus = fields.List(fields.Nested(ServerGPUSchema))


class ServerLogsSchema(Schema):
    lines = fields.List(fields.String(), required=True)
