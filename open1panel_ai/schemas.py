"""Marshmallow schemas of the shared API objects: errors, tasks and the status report."""

from __future__ import annotations

import json
import operator
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, cast, overload

from marshmallow import Schema, ValidationError, fields, validate

from open1panel_ai.tasks import STATUSES

#: A task id (a UUID's 32 hex digits), as the document states it for path arguments.
TASK_ID = r"^[0-9a-f]{32}$"


class Pattern(validate.Regexp):
    """A ``^…$`` pattern the whole value must match, as the OpenAPI document's ``pattern``
    means it. ``re.match`` would also let ``$`` match before a final line break, so a name
    such as ``"time\\n"`` would pass."""

    @overload
    def __call__(self, value: str) -> str: ...

    @overload
    def __call__(self, value: bytes) -> bytes: ...

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class JSONBoolean(fields.Boolean):
    """A boolean in a JSON body: ``true`` or ``false`` only. Marshmallow's own Boolean also
    takes 1, "yes" or "on", which the OpenAPI document (``type: boolean``) forbids."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
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


class TranslatableSchema(Schema):
    """A message's key in the UI catalog and the values it is filled with, so that a page
    shows it in its reader's language."""

    key = fields.String(required=True)
    params = fields.Dict(required=True)


class TaskErrorSchema(Schema):
    message = fields.String(required=True, metadata={"description": "In English."})
    details = fields.Dict(required=True)
    i18n = fields.Nested(TranslatableSchema, metadata={"description": "The message's key and values, when it has one."})


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
    message = fields.String(allow_none=True, metadata={"description": "In English."})
    message_i18n = fields.Nested(
        TranslatableSchema, allow_none=True, metadata={"description": "The message's key and values, when it has one."}
    )
    error = fields.Nested(TaskErrorSchema, allow_none=True)
    created_at = fields.String(required=True, metadata={"description": "RFC 3339, UTC."})
    updated_at = fields.String(required=True, metadata={"description": "RFC 3339, UTC."})


class TaskDumps:
    """The answer of a list of tasks, each task dumped by :class:`TaskSchema` and encoded as JSON
    once per change.

    A task changes while it runs and never after, so a list of a hundred tasks, asked for many
    times a second while one of them runs, dumps and encodes that one again and joins the
    others' JSON as it was. A task is the same while its status, progress, message and
    ``updated_at`` are. One encoding is kept per task, its latest, for the :data:`KEPT` tasks
    listed last: a running task's earlier versions are never asked for again.
    """

    KEPT = 1024

    def __init__(self) -> None:
        self._schema = TaskSchema()
        self._kept: OrderedDict[str, tuple[tuple[Any, ...], bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, tasks: Sequence[Mapping[str, Any]]) -> bytes:
        """``{"tasks": [...]}`` of ``tasks``, as JSON."""
        encoded: list[bytes | None] = []
        with self._lock:
            for task in tasks:
                kept = self._kept.get(task["id"])
                if kept is not None and kept[0] == _task_version(task):
                    self._kept.move_to_end(task["id"])
                    encoded.append(kept[1])
                else:
                    encoded.append(None)
        for index, task in enumerate(tasks):
            if encoded[index] is None:
                encoded[index] = self._encode(task)
        return b'{"tasks":[' + b",".join(cast("list[bytes]", encoded)) + b"]}\n"

    def _encode(self, task: Mapping[str, Any]) -> bytes:
        data = json.dumps(self._schema.dump(task), separators=(",", ":"), sort_keys=True).encode()
        with self._lock:
            self._kept[task["id"]] = (_task_version(task), data)
            self._kept.move_to_end(task["id"])
            while len(self._kept) > self.KEPT:
                self._kept.popitem(last=False)
        return data


#: What tells two states of a task apart (see :class:`TaskDumps`).
_task_version = operator.itemgetter("updated_at", "status", "completed", "total", "message")


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
    plugin_errors = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "Plugins the host could not load, with why."},
    )


# -- the overview (GET /overview): the health of what runs, for the landing page ----------------

_OVERVIEW_STATES = ["ready", "attention", "cpu"]


class OllamaEndpointOverviewSchema(Schema):
    name = fields.String(required=True)
    url = fields.String(required=True)
    reachable = fields.Boolean(required=True)
    error = fields.String(allow_none=True, metadata={"description": "Why it cannot be reached."})
    models = fields.Integer(allow_none=True, metadata={"description": "Models on it; null when unreachable."})
    loaded = fields.Integer(allow_none=True, metadata={"description": "Models loaded in memory now."})
    loaded_models = fields.List(fields.String(), required=True)


class OllamaOverviewSchema(Schema):
    state = fields.String(
        required=True,
        validate=validate.OneOf(_OVERVIEW_STATES),
        metadata={"description": "attention when a server cannot be reached."},
    )
    endpoints = fields.List(fields.Nested(OllamaEndpointOverviewSchema), required=True)


class MCPFailingSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "error, unhealthy or restarting."})
    error = fields.String(allow_none=True, metadata={"description": "Its last error."})
    error_i18n = fields.Nested(TranslatableSchema, allow_none=True)


class MCPUnisolatedSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    mode = fields.String(required=True, metadata={"description": "partial or none."})
    missing = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "The layers not in effect (user, filesystem, processes, network, limits)."},
    )
    reason = fields.String(allow_none=True, metadata={"description": "Why the first of them is not."})
    reason_i18n = fields.Nested(TranslatableSchema, allow_none=True)
    fix = fields.String(allow_none=True)
    fix_i18n = fields.Nested(TranslatableSchema, allow_none=True)


class MCPOverviewSchema(Schema):
    state = fields.String(
        required=True,
        validate=validate.OneOf(_OVERVIEW_STATES),
        metadata={"description": "attention when a server is failing."},
    )
    total = fields.Integer(required=True)
    running = fields.Integer(required=True)
    stopped = fields.Integer(required=True)
    changing = fields.Integer(required=True, metadata={"description": "Starting or stopping."})
    failing = fields.List(fields.Nested(MCPFailingSchema), required=True)
    unisolated = fields.List(
        fields.Nested(MCPUnisolatedSchema),
        required=True,
        metadata={"description": "Running stdio servers whose sandbox is not wholly in effect, with why."},
    )


class GPUOverviewSchema(Schema):
    state = fields.String(
        required=True,
        validate=validate.OneOf(_OVERVIEW_STATES),
        metadata={"description": "cpu in CPU mode; attention when a GPU is lost or the provider cannot read."},
    )
    mode = fields.String(required=True, validate=validate.OneOf(["gpu", "cpu", "unavailable"]))
    provider = fields.String(allow_none=True)
    devices = fields.Integer(required=True)
    lost = fields.Integer(required=True)
    reason = fields.String(allow_none=True, metadata={"description": "Why no GPU is used, or why it cannot be read."})
    fix = fields.String(allow_none=True)


class DomainFailingSchema(Schema):
    id = fields.String(required=True)
    domains = fields.List(fields.String(), required=True)
    error = fields.String(allow_none=True)
    error_i18n = fields.Nested(TranslatableSchema, allow_none=True)


class ProviderWarningSchema(Schema):
    warning = fields.String(required=True, metadata={"description": "In the reader's language."})
    fix = fields.String(allow_none=True)


class DomainOverviewSchema(Schema):
    state = fields.String(
        required=True,
        validate=validate.OneOf(_OVERVIEW_STATES),
        metadata={"description": "attention when a binding is in error or a removal waits for its proxy."},
    )
    provider = fields.String(allow_none=True)
    total = fields.Integer(required=True)
    online = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    error = fields.Integer(required=True)
    removals = fields.Integer(
        required=True, metadata={"description": "Removals a proxy that was down has still to take."}
    )
    failing = fields.List(fields.Nested(DomainFailingSchema), required=True)
    warnings = fields.List(
        fields.Nested(ProviderWarningSchema),
        required=True,
        metadata={"description": "How the proxy is set up that needs a look (an admin API others can reach)."},
    )


class OverviewSchema(StatusSchema):
    """The status report, and the health of what each usable feature runs. A feature's part is
    null when it is not running or its provider cannot be used. Each part's ``state``: ready
    (all is well), attention (something named in it needs a look) or cpu (GPU monitoring
    watches the CPU, as no GPU is used here)."""

    ollama = fields.Nested(OllamaOverviewSchema, allow_none=True, required=True)
    mcp = fields.Nested(MCPOverviewSchema, allow_none=True, required=True)
    gpu = fields.Nested(GPUOverviewSchema, allow_none=True, required=True)
    domain = fields.Nested(DomainOverviewSchema, allow_none=True, required=True)
