"""Marshmallow schemas of the Ollama API: what it takes and what it answers."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from open1panel_ai.i18n import Message
from open1panel_ai.schemas import JSONBoolean, Pattern, TaskSchema

_DURATION = re.compile(r"^-?(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
#: The name of an endpoint this panel manages.
ENDPOINT_NAME = r"^[a-z0-9][a-z0-9-]{0,31}$"
#: A model name, ``[host/][namespace/]model[:tag]``: the grammar of :mod:`.names` written as
#: a JSON Schema pattern (ECMA-262 has no ``(?P<group>…)``).
MODEL_NAME = (
    r"^(?:[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}/)??(?:[A-Za-z0-9_][A-Za-z0-9_-]{0,79}/)?"
    r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,79})?$"
)


class KeepAlive(fields.Field):
    """Seconds (a number), a Go duration (``"10m"``, ``"-1m"``), or ``"forever"``."""

    def _deserialize(
        self, value: object, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int | float | str:
        if value == "forever":
            return -1
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _DURATION.match(value.strip()):
            return value.strip()
        raise ValidationError(Message("ollama.validation.keep_alive"))


def _endpoint_name(text: str) -> None:
    if not re.fullmatch(ENDPOINT_NAME, text):
        raise ValidationError(Message("ollama.validation.endpoint_name"))


class EndpointQuerySchema(Schema):
    endpoint = fields.String(
        load_default="local",
        validate=validate.Length(min=1, max=32),
        metadata={"description": "Which Ollama server (default local)."},
    )


def _max_age() -> fields.Float:
    return fields.Float(
        validate=validate.Range(min=0, max=3600),
        metadata={
            "description": "The oldest state of the server's watcher, in seconds, that may answer "
            "(default OPEN1PANEL_AI_OLLAMA_MAX_AGE); 0 waits for a new poll, up to "
            "OPEN1PANEL_AI_OLLAMA_REQUEST_WAIT seconds."
        },
    )


class ModelsQuerySchema(EndpointQuerySchema):
    max_age = _max_age()


class RunningQuerySchema(Schema):
    endpoint = fields.String(
        validate=validate.Length(min=1, max=32),
        metadata={"description": "One server; every reachable one when left out."},
    )
    max_age = _max_age()


class EndpointBodySchema(Schema):
    name = fields.String(
        required=True, validate=_endpoint_name, metadata={"example": "gpu-box", "pattern": ENDPOINT_NAME}
    )
    url = fields.String(
        required=True,
        validate=validate.Length(min=1, max=300),
        metadata={
            "description": "http://HOST:PORT, or HOST[:PORT] as in OLLAMA_HOST.",
            "example": "http://192.168.1.20:11434",
        },
    )
    models_dir = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=4096),
        metadata={
            "description": "Its models folder (an absolute path), when this machine can see it.",
            "pattern": "^(?:/|$)",
        },
    )


class EndpointErrorSchema(Schema):
    code = fields.String()
    message = fields.String()
    details = fields.Dict()


class EndpointSchema(Schema):
    name = fields.String(required=True)
    url = fields.String(required=True)
    models_dir = fields.String(allow_none=True)
    builtin = fields.Boolean(metadata={"description": "local: from OLLAMA_HOST, cannot be removed."})
    reachable = fields.Boolean()
    version = fields.String(allow_none=True)
    error = fields.Nested(EndpointErrorSchema, allow_none=True)
    warnings = fields.List(fields.String())


class EndpointListSchema(Schema):
    endpoints = fields.List(fields.Nested(EndpointSchema), required=True)


class ModelSchema(Schema):
    name = fields.String(required=True)
    name_valid = fields.Boolean(
        metadata={
            "description": "Whether the name the server listed is a valid model name, exactly as "
            "listed. A server that is not Ollama may list any text (such as "
            "../../mcp/servers/ID); a model whose name is not valid is shown, and "
            "nothing should act on it."
        }
    )
    model = fields.String()
    endpoint = fields.String()
    size = fields.Integer(metadata={"description": "Bytes on disk."})
    digest = fields.String()
    modified_at = fields.String()
    details = fields.Dict()
    loaded = fields.Boolean()
    memory = fields.Integer(allow_none=True, metadata={"description": "Bytes of memory while loaded."})
    size_vram = fields.Integer(allow_none=True, metadata={"description": "Part of memory on the GPU."})
    expires_at = fields.String(allow_none=True)


#: Ollama's show answer, passed on as it came (Ollama adds fields from version to version).
MODEL_DETAILS = {
    "type": "object",
    "properties": {
        "modelfile": {"type": "string"},
        "parameters": {"type": "string"},
        "template": {"type": "string"},
        "system": {"type": "string"},
        "details": {"type": "object"},
        "model_info": {"type": "object"},
        "capabilities": {"type": "array", "items": {"type": "string"}},
        "modified_at": {"type": "string"},
    },
}


class FreshnessSchema(Schema):
    """How old the watcher's state an answer comes from is (see docs/ollama.md, live state)."""

    endpoint = fields.String(allow_none=True, metadata={"description": "The server asked; null for every one."})
    fetched_at = fields.String(
        allow_none=True,
        metadata={
            "description": "When the server gave this answer (ISO 8601, UTC); the oldest one's for every server."
        },
    )
    age = fields.Float(allow_none=True, metadata={"description": "Seconds since fetched_at."})
    stale = fields.Boolean(
        metadata={
            "description": "True when the server did not answer within the request wait and this is "
            "the last answer it gave; error says why."
        }
    )
    error = fields.Nested(EndpointErrorSchema, allow_none=True)


class ModelListSchema(FreshnessSchema):
    models = fields.List(fields.Nested(ModelSchema), required=True)


class RunningModelSchema(Schema):
    name = fields.String(required=True)
    name_valid = fields.Boolean(
        metadata={
            "description": "Whether the name the server listed is a valid model name, exactly as "
            "listed. A server that is not Ollama may list any text (such as "
            "../../mcp/servers/ID); a model whose name is not valid is shown, and "
            "nothing should act on it."
        }
    )
    model = fields.String()
    endpoint = fields.String()
    size = fields.Integer(metadata={"description": "Bytes of memory in use."})
    size_vram = fields.Integer()
    digest = fields.String()
    details = fields.Dict()
    expires_at = fields.String()
    expires_in = fields.Float(
        allow_none=True, metadata={"description": "Seconds from fetched_at until Ollama unloads it (very large: kept)."}
    )
    vram_share = fields.Float(allow_none=True, metadata={"description": "Part of its memory on the GPU, 0 to 1."})
    context_length = fields.Integer()


class RunningListSchema(FreshnessSchema):
    models = fields.List(fields.Nested(RunningModelSchema), required=True)


class CopyBodySchema(Schema):
    destination = fields.String(
        required=True, validate=validate.Length(min=1, max=500), metadata={"example": "llama3.2:backup"}
    )
    overwrite = JSONBoolean(
        load_default=False,
        metadata={
            "description": "Replace a model that already has the destination name. Without it such "
            "a copy is refused with 409 model_exists."
        },
    )


class LoadBodySchema(Schema):
    keep_alive = KeepAlive(
        load_default="5m",
        metadata={
            "description": "How long to keep it; forever or a negative duration keeps it.",
            "oneOf": [
                {"type": "number"},
                {"type": "string", "enum": ["forever"]},
                {"type": "string", "pattern": r"^\s*" + _DURATION.pattern[1:-1] + r"\s*$"},
            ],
        },
    )
    cpu_only = JSONBoolean(load_default=False, metadata={"description": "Load it into system memory only (num_gpu 0)."})
    evict = JSONBoolean(
        load_default=False,
        metadata={
            "description": "When the load would go past the server's memory budget, unload the least "
            "recently used models first (else 409 budget_exceeded names them)."
        },
    )


class PullBodySchema(Schema):
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=600),
        metadata={"description": "A model name; a pasted 'ollama run NAME' works too.", "example": "llama3.2"},
    )
    endpoint = fields.String(load_default="local", validate=validate.Length(min=1, max=32))


class PullStartedSchema(TaskSchema):
    warnings = fields.List(fields.String(), metadata={"description": "E.g. little disk space left after it."})


def _no_triple_quotes(text: str) -> None:
    """Template and system text go between triple quotes in a modelfile, so three quotes in
    it (or a quote at its end) would end the text early and start directives of its own."""
    if '"""' in text or text.endswith('"'):
        raise ValidationError(Message("ollama.validation.triple_quotes"))


#: One value of a model parameter (a list holds several, such as ``stop`` sequences).
ParameterScalar = bool | int | float | str


class ParameterValue(fields.Field):
    """One model parameter: a number, a boolean, a line of text, or a list of those (several
    ``stop`` sequences). Text may not hold a line break or a double quote: in a modelfile
    each parameter is one line, and a quote would end the quoted value."""

    def _deserialize(
        self, value: object, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> ParameterScalar | list[ParameterScalar]:
        if isinstance(value, list) and value:
            return [self._scalar(item) for item in value]
        return self._scalar(value)

    @staticmethod
    def _scalar(value: object) -> ParameterScalar:
        if isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str) and 0 < len(value) <= 1000:
            if any(ch in value for ch in '"\r\n\x00'):
                raise ValidationError(Message("ollama.validation.parameter_text"))
            return value
        raise ValidationError(Message("ollama.validation.parameter_value"))


class JsonParameters(fields.Dict):
    """Model parameters as one JSON object, for the query string of an upload."""

    def _deserialize(
        self, value: object, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> dict[str, Any]:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                raise ValidationError(Message("ollama.validation.parameters_json")) from None
        return super()._deserialize(value, attr, data, **kwargs)


def _parameter_name() -> fields.String:
    return fields.String(validate=Pattern(r"^[a-z_]{1,40}$"))


class ImportBodySchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    endpoint = fields.String(load_default="local", validate=validate.Length(min=1, max=32))
    path = fields.String(
        required=True,
        validate=validate.Length(min=1, max=4096),
        metadata={"description": "A GGUF file, relative to the import folder."},
    )
    template = fields.String(validate=[validate.Length(max=100_000), _no_triple_quotes])
    system = fields.String(validate=[validate.Length(max=100_000), _no_triple_quotes])
    parameters = fields.Dict(
        keys=_parameter_name(),
        values=ParameterValue(),
        metadata={"description": 'Model parameters, e.g. {"temperature": 0.7, "stop": ["<|end|>"]}.'},
    )
    quantize = fields.String(validate=Pattern(r"^[A-Za-z0-9_]{1,16}$"))
    # Typed as any Boolean: ImportUploadQuerySchema reads it from the query string as text.
    overwrite: fields.Boolean = JSONBoolean(
        load_default=False,
        metadata={
            "description": "Replace a model that already has this name. Without it such an import "
            "is refused with 409 model_exists before anything is read."
        },
    )


class ImportUploadQuerySchema(ImportBodySchema):
    """For an upload the file is the raw body and the rest goes in the query string."""

    class Meta:
        exclude = ("path",)  # the file is the body

    filename = fields.String(load_default="model.gguf", validate=Pattern(r"^[\w.\- ]{1,200}$"))
    overwrite = fields.Boolean(
        load_default=False,
        truthy={"true"},
        falsy={"false"},
        metadata={
            "description": "true: replace a model that already has this name (else 409 model_exists, "
            "before the body is read)."
        },
    )
    parameters = JsonParameters(
        keys=_parameter_name(),
        values=ParameterValue(),
        metadata={"description": 'Model parameters as JSON, e.g. {"temperature": 0.7}.'},
    )


class StorageSchema(Schema):
    endpoint = fields.String()
    models_dir = fields.String(allow_none=True)
    visible = fields.Boolean(metadata={"description": "Whether this machine can read the models folder."})
    free = fields.Integer(allow_none=True)
    total = fields.Integer(allow_none=True)
    used_by_models = fields.Integer()
    partial_bytes = fields.Integer(
        metadata={"description": "Bytes partial downloads hold on disk, those being written included."}
    )
    partial_active = fields.Integer(metadata={"description": "How many partial downloads are being written now."})
    partial_downloads = fields.List(
        fields.Dict(),
        metadata={
            "description": "Each with digest, size, bytes (on disk), recorded (in Ollama's part files), "
            "active and modified_at."
        },
    )
    unused_days = fields.Integer()
    models = fields.List(
        fields.Dict(),
        metadata={
            "description": "Each with frees (the bytes deleting it frees: blobs no other model uses), "
            "shared_bytes and shared_with (the models it shares blobs with)."
        },
    )
    suggestions = fields.List(
        fields.Dict(),
        metadata={
            "description": "Each with reason (large: frees at least 3 times the median of the server's "
            "models; unused; copy: another name for the same model), name, size and frees."
        },
    )


class PartialsDeletedSchema(Schema):
    endpoint = fields.String()
    freed = fields.Integer(metadata={"description": "Bytes the deleted files took on disk."})
    deleted = fields.List(fields.String(), metadata={"description": "Digests whose partial download was deleted."})
    skipped = fields.List(
        fields.Dict(),
        metadata={
            "description": "Partial downloads kept, each with digest and reason: pulling (a pull of the "
            "panel downloads it) or active (written within the last minute by another pull)."
        },
    )
