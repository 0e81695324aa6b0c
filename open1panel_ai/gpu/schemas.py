"""Marshmallow schemas of the GPU API: samples, history, compatibility checks."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from open1panel_ai.schemas import TranslatableSchema


def _n(description: str, kind: type[fields.Field] = fields.Float) -> fields.Field:
    return kind(allow_none=True, metadata={"description": description + " null: not available."})


class GPUDeviceSchema(Schema):
    """One GPU. Readings it does not support are null and named in ``unsupported``."""

    index = fields.Integer(required=True)
    name = fields.String(allow_none=True)
    uuid = fields.String(allow_none=True)
    pci_bus_id = fields.String(allow_none=True)
    lost = fields.Boolean(required=True, metadata={"description": "The GPU stopped answering."})
    error = fields.String(allow_none=True, metadata={"description": "Why it is lost, and what to do."})
    utilization_gpu = _n("GPU utilization, %.")
    utilization_memory = _n("Memory controller utilization, %.")
    encoder_utilization = _n("Encoder utilization, %.")
    decoder_utilization = _n("Decoder utilization, %.")
    memory_total = _n("Bytes.", fields.Integer)
    memory_used = _n("Bytes.", fields.Integer)
    memory_free = _n("Bytes.", fields.Integer)
    temperature = _n("°C.")
    fan_speed = _n("%.")
    power_draw_w = _n("Watts.")
    power_limit_w = _n("Enforced power limit, watts.")
    energy_mj = _n("Energy since the driver loaded, mJ.", fields.Integer)
    clock_sm = _n("MHz.")
    clock_memory = _n("MHz.")
    pstate = fields.String(allow_none=True, metadata={"description": "P0 (fastest) to P15."})
    persistence_mode = fields.Boolean(allow_none=True)
    compute_mode = fields.String(allow_none=True)
    ecc_errors_uncorrected = _n("Volatile uncorrected ECC errors.", fields.Integer)
    mig_mode = fields.Boolean(allow_none=True)
    unsupported = fields.List(fields.String(), required=True)


class GPUProcessSchema(Schema):
    """A process using GPUs, its compute and graphics contexts merged."""

    pid = fields.Integer(required=True)
    kinds = fields.List(fields.String(), required=True, metadata={"description": "compute, graphics."})
    gpus = fields.List(fields.Integer(), required=True, metadata={"description": "GPU indexes."})
    used_memory = _n("GPU memory in bytes (NVML does not report it under MIG).", fields.Integer)
    name = fields.String(allow_none=True)
    user = fields.String(allow_none=True)
    visible = fields.Boolean(
        required=True,
        metadata={"description": "Whether the pid is visible here (not in a container without --pid=host)."},
    )


class GPUCpuSchema(Schema):
    utilization = fields.Float(required=True)
    count = fields.Integer(allow_none=True)
    # Named ``load`` in JSON; ``Schema.load`` keeps the attribute name.
    load_ = fields.List(fields.Float(allow_none=True), required=True, data_key="load", attribute="load")
    memory_total = fields.Integer(required=True)
    memory_used = fields.Integer(required=True)
    memory_available = fields.Integer(required=True)


class GPUOllamaCpuModelSchema(Schema):
    endpoint = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    size = fields.Integer(allow_none=True)


class GPUSampleSchema(Schema):
    """One reading of every GPU, or of the CPU when no GPU is usable."""

    time = fields.Float(required=True, metadata={"description": "Unix seconds."})
    provider = fields.String(required=True)
    mode = fields.String(required=True, validate=validate.OneOf(["gpu", "cpu"]))
    interval = fields.Float(required=True, metadata={"description": "Seconds between live samples."})
    devices = fields.List(fields.Nested(GPUDeviceSchema), required=True)
    processes = fields.List(fields.Nested(GPUProcessSchema), required=True)
    versions = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True), required=True)
    cpu = fields.Nested(GPUCpuSchema, allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "In CPU mode: why no GPU is used."})
    fix = fields.String(allow_none=True)
    reason_i18n = fields.Nested(
        TranslatableSchema,
        allow_none=True,
        metadata={"description": "The reason's key and values, for pages that show it in their language."},
    )
    fix_i18n = fields.Nested(TranslatableSchema, allow_none=True)
    ollama_cpu_models = fields.List(
        fields.Nested(GPUOllamaCpuModelSchema),
        required=True,
        metadata={
            "description": "Loaded Ollama models with nothing in GPU memory: they run on the CPU. The "
            "last known list, refreshed in the background when older than 10 s."
        },
    )


class GPUHistoryQuerySchema(Schema):
    since = fields.Float(
        validate=validate.Range(min=0), metadata={"description": "Unix seconds; default one hour before 'until'."}
    )
    until = fields.Float(validate=validate.Range(min=0), metadata={"description": "Unix seconds; default now."})


class GPUSeriesSchema(Schema):
    device = fields.String(required=True, metadata={"description": "A GPU's UUID, or cpu."})
    times = fields.List(fields.Float(), required=True)
    values = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Float(allow_none=True)),
        required=True,
        metadata={"description": "Per reading, one value per time."},
    )


class GPUHistorySchema(Schema):
    tier = fields.String(required=True, validate=validate.OneOf(["raw", "minute", "hour"]))
    step = fields.Integer(allow_none=True, metadata={"description": "Bucket seconds; null: every sample."})
    since = fields.Float(required=True)
    until = fields.Float(required=True)
    devices = fields.List(fields.Nested(GPUSeriesSchema), required=True)


class GPUCheckSchema(Schema):
    name = fields.String(required=True)
    ok = fields.Boolean(allow_none=True, metadata={"description": "null: could not tell."})
    detail = fields.String(required=True)
    fix = fields.String(required=True)


class GPUChecksSchema(Schema):
    provider = fields.String(allow_none=True, metadata={"description": "The GPU provider in use."})
    checks = fields.List(fields.Nested(GPUCheckSchema), required=True)
