"""Marshmallow schemas of the model page's API: chat, embed, builds, budgets, benchmarks."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from open1panel_ai.ollama.measure import MAX_RUNS
from open1panel_ai.ollama.schemas import KeepAlive
from open1panel_ai.schemas import JSONBoolean, TaskSchema

#: Keyword arguments shared by several fields.
_ENDPOINT: dict[str, Any] = {"load_default": "local", "validate": validate.Length(min=1, max=32)}
_MODEL: dict[str, Any] = {"required": True, "validate": validate.Length(min=1, max=500)}
_EVICT: dict[str, Any] = {
    "load_default": False,
    "metadata": {
        "description": "When loading the model would go past the server's memory budget, unload the "
        "least recently used models first. Without it such a request is refused with "
        "409 budget_exceeded, naming them in details.unload."
    },
}
_OPTIONS_DESCRIPTION = (
    "Ollama's parameters, checked against its documented names and types: "
    "temperature, top_p, top_k, min_p, seed, num_ctx, num_predict, stop, "
    "repeat_penalty, ... (an unknown name or a wrong type is a 400)."
)


class ChatMessageSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(("system", "user", "assistant", "tool")))
    content = fields.String(required=True, validate=validate.Length(max=200_000))


class ChatBodySchema(Schema):
    endpoint = fields.String(**_ENDPOINT)
    model = fields.String(**_MODEL, metadata={"example": "llama3.2"})
    messages = fields.List(
        fields.Nested(ChatMessageSchema),
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "As Ollama takes them; a system prompt is a first message with role system."},
    )
    options = fields.Dict(load_default=None, allow_none=True, metadata={"description": _OPTIONS_DESCRIPTION})
    keep_alive = KeepAlive(
        load_default=None,
        metadata={"description": "How long the model stays loaded afterwards (seconds, a Go duration, or forever)."},
    )
    stream = JSONBoolean(
        load_default=True, metadata={"description": "false: one JSON object with the whole answer, as Ollama answers."}
    )
    evict = JSONBoolean(**_EVICT)


#: One line of the chat stream (application/x-ndjson).
CHAT_LINE = {
    "type": "object",
    "description": "One NDJSON line, shaped like Ollama's /api/chat stream: a token per line, then a "
    "line with done true, Ollama's statistics fields and the panel's figures; or a "
    'last line {"error": text}.',
    "properties": {
        "model": {"type": "string"},
        "created_at": {"type": "string"},
        "message": {
            "type": "object",
            "properties": {"role": {"type": "string"}, "content": {"type": "string"}, "thinking": {"type": "string"}},
        },
        "done": {"type": "boolean"},
        "done_reason": {"type": "string"},
        "total_duration": {"type": "integer"},
        "load_duration": {"type": "integer"},
        "prompt_eval_count": {"type": "integer"},
        "prompt_eval_duration": {"type": "integer"},
        "eval_count": {"type": "integer"},
        "eval_duration": {"type": "integer"},
        "figures": {
            "type": "object",
            "description": "ttft_ms, tokens_per_second, prompt_tokens_per_second, "
            "load_ms, total_ms (null where Ollama did not say).",
            "properties": {
                name: {"type": ["number", "null"]}
                for name in ("ttft_ms", "tokens_per_second", "prompt_tokens_per_second", "load_ms", "total_ms")
            },
        },
        "error": {"type": "string"},
    },
}


class EmbedBodySchema(Schema):
    endpoint = fields.String(**_ENDPOINT)
    model = fields.String(**_MODEL, metadata={"example": "nomic-embed-text"})
    input = fields.String(required=True, validate=validate.Length(min=1, max=100_000))
    dimensions = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=65536))
    keep_alive = KeepAlive(load_default=None)
    evict = JSONBoolean(**_EVICT)


class EmbedResultSchema(Schema):
    model = fields.String()
    endpoint = fields.String()
    dimensions = fields.Integer(metadata={"description": "The length of the vector."})
    preview = fields.List(fields.Float(), metadata={"description": "Its first numbers."})
    load_ms = fields.Float(allow_none=True)
    total_ms = fields.Float(allow_none=True)


class BuildBodySchema(Schema):
    endpoint = fields.String(**_ENDPOINT)
    name = fields.String(**_MODEL, metadata={"description": "The new model's name.", "example": "llama3.2-pirate"})
    base = fields.String(
        required=True,
        data_key="from",
        validate=validate.Length(min=1, max=500),
        metadata={"description": "The model it is based on.", "example": "llama3.2"},
    )
    system = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100_000))
    template = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100_000))
    parameters = fields.Dict(load_default=None, allow_none=True, metadata={"description": _OPTIONS_DESCRIPTION})
    license = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200_000))
    adapter = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=4096),
        metadata={
            "description": "A LoRA adapter (GGUF or safetensors), as a path inside "
            "the import folder; uploaded when the server lacks it."
        },
    )
    overwrite = JSONBoolean(
        load_default=False,
        metadata={"description": "Replace a model that already has this name (else 409 model_exists)."},
    )


class BuildPreviewSchema(Schema):
    method = fields.String()
    url = fields.String()
    body = fields.Dict(metadata={"description": "The JSON body of Ollama's /api/create request."})
    adapter_path = fields.String(allow_none=True)
    overwrite = fields.Boolean()


class RecipeSchema(Schema):
    endpoint = fields.String()
    base = fields.String(data_key="from")
    system = fields.String()
    template = fields.String()
    parameters = fields.Dict()
    license = fields.String()


class BudgetSchema(Schema):
    endpoint = fields.String()
    vram_bytes = fields.Integer(allow_none=True)
    max_models = fields.Integer(allow_none=True)


class BudgetBodySchema(Schema):
    vram_bytes = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1),
        metadata={"description": "The most bytes of VRAM the loaded models may hold (null: no limit)."},
    )
    max_models = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "The most models loaded at once (null: no limit)."},
    )


class BenchmarkBodySchema(Schema):
    endpoint = fields.String(**_ENDPOINT)
    model = fields.String(**_MODEL)
    runs = fields.Integer(
        load_default=3,
        validate=validate.Range(min=1, max=MAX_RUNS),
        metadata={"description": "How many times the prompt set is sent."},
    )
    evict = JSONBoolean(**_EVICT)


class BenchmarkQuerySchema(Schema):
    model = fields.String(validate=validate.Length(min=1, max=500))
    endpoint = fields.String(validate=validate.Length(min=1, max=32))


class BenchmarkResultSchema(Schema):
    id = fields.String()
    created_at = fields.String()
    endpoint = fields.String()
    url = fields.String()
    model = fields.String()
    digest = fields.String(allow_none=True)
    runs = fields.Integer()
    ttft_ms = fields.Float(allow_none=True, metadata={"description": "Median time to first token."})
    tokens_per_second = fields.Float(allow_none=True, metadata={"description": "Median generation speed."})
    prompt_tokens_per_second = fields.Float(allow_none=True, metadata={"description": "Median prompt speed."})
    load_ms = fields.Float(allow_none=True, metadata={"description": "The cold load of the first answer."})
    gpu = fields.String(
        allow_none=True,
        metadata={"description": "The GPU's name (a JSON list of names when several); null in CPU mode."},
    )
    vram_used = fields.Integer(allow_none=True, metadata={"description": "Bytes in use on the GPUs, model loaded."})
    vram_total = fields.Integer(allow_none=True)
    model_vram = fields.Integer(allow_none=True, metadata={"description": "The model's share, from /api/ps."})
    task_id = fields.String(allow_none=True)


class BenchmarkListSchema(Schema):
    results = fields.List(fields.Nested(BenchmarkResultSchema), required=True)
    prompts = fields.List(fields.String(), metadata={"description": "The fixed prompt set."})
    options = fields.Dict(metadata={"description": "The options of every benchmark request."})


BuildStartedSchema = TaskSchema
