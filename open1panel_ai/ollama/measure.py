"""Measure a model: a benchmark that answers "does this model run fast enough here?".

A benchmark (the ``ollama.benchmark`` task) unloads the model, then sends the fixed prompt
set :data:`PROMPTS` ``runs`` times with fixed options (:data:`OPTIONS`), each as a streamed
chat, and reads Ollama's final statistics of every answer (:func:`.chat.figures`). It keeps:

- ``ttft_ms``: the median time to first token (load plus prompt reading), every answer;
- ``tokens_per_second``: the median generation speed;
- ``prompt_tokens_per_second``: the median prompt reading speed;
- ``load_ms``: the load time of the first answer (a cold load, as the model was unloaded);
- ``gpu`` and ``vram_used``: the accelerators and the memory in use on them while the model is
  loaded, read from the GPU provider through its declared interface
  (:class:`hookspecs.ai.GPUProvider`), and ``model_vram``, the model's share as ``/api/ps``
  reports it. In CPU mode ``gpu`` is None.

Results are stored, so models and servers compare in one table; :func:`to_csv` exports it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import statistics
import uuid
from typing import TYPE_CHECKING, Any

from open1panel_ai import errors
from open1panel_ai.i18n import Message
from open1panel_ai.ollama import names
from open1panel_ai.ollama.chat import clean_line, figures
from open1panel_ai.store import timestamp
from open1panel_ai.tasks import TaskContext, TaskError, TaskInterrupted, TaskKind

if TYPE_CHECKING:
    from open1panel_ai.context import AIContext
    from open1panel_ai.ollama.budget import MemoryBudget
    from open1panel_ai.ollama.service import OllamaService

log = logging.getLogger(__name__)

KIND = "ollama.benchmark"
#: The fixed prompt set, the same for every model so results compare.
PROMPTS = (
    "In one sentence, what is a GPU?",
    "Summarise in three short bullet points why a smaller quantized model can answer faster "
    "than a larger one on the same graphics card.",
    "Write a Python function fib(n) that returns the n-th Fibonacci number, with a docstring.",
)
#: The options of every benchmark request: no randomness, a bounded answer, a common context.
OPTIONS = {"temperature": 0, "seed": 42, "num_predict": 128, "num_ctx": 4096}
MAX_RUNS = 20
#: The columns of the results table and of its CSV export, in order.
COLUMNS = (
    "id",
    "created_at",
    "endpoint",
    "url",
    "model",
    "digest",
    "runs",
    "ttft_ms",
    "tokens_per_second",
    "prompt_tokens_per_second",
    "load_ms",
    "gpu",
    "vram_used",
    "vram_total",
    "model_vram",
    "task_id",
)

MIGRATIONS = [
    """
    CREATE TABLE ollama_benchmarks (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        url TEXT NOT NULL,
        model TEXT NOT NULL,
        digest TEXT,
        runs INTEGER NOT NULL,
        ttft_ms REAL,
        tokens_per_second REAL,
        prompt_tokens_per_second REAL,
        load_ms REAL,
        gpu TEXT,
        vram_used INTEGER,
        vram_total INTEGER,
        model_vram INTEGER,
        task_id TEXT
    );
    CREATE INDEX ollama_benchmarks_by_model ON ollama_benchmarks (model, endpoint);
    """,
]


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The results as CSV, a header line first. Text cells that a spreadsheet would read as a
    formula (``=``, ``+``, ``-``, ``@`` first) are quoted with a leading apostrophe: a model
    name comes from a server and is untrusted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        cells = []
        for column in COLUMNS:
            value = row.get(column)
            if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
                value = "'" + value
            cells.append("" if value is None else value)
        writer.writerow(cells)
    return out.getvalue()


class Benchmarks:
    """Runs benchmarks and keeps their results."""

    def __init__(self, service: OllamaService, context: AIContext, budget: MemoryBudget) -> None:
        self._service = service
        self._context = context
        self._budget = budget
        self._store = context.store
        self._store.migrate("ollama_benchmarks", MIGRATIONS)
        context.tasks.register(TaskKind(KIND, self.run))

    def start(self, endpoint: str, model: str, runs: int = 3, evict: bool = False) -> dict[str, Any]:
        """Start a benchmark of ``model`` on ``endpoint`` (404 for an unknown model, the
        budget's 409 when loading it would exceed it and ``evict`` is not given)."""
        url = self._service.endpoint(endpoint)["url"]
        try:
            target = names.parse(model)
        except names.InvalidModelName as exc:
            raise errors.BadRequest(
                exc.args[0], code="invalid_model_name", details={"fields": {"model": [exc.args[0]]}}
            ) from None
        found = self._service.existing_model(url, target)
        if found is None:
            message = Message("ollama.bench.error.no_model", name=target.short, endpoint=endpoint)
            raise errors.NotFound(
                message, code="model_not_found", details={"fields": {"model": [message]}, "endpoint": endpoint}
            )
        self._budget.admit(endpoint, target.short, evict)
        return self._context.tasks.submit(
            KIND,
            f"{target.key}@{endpoint}",
            {"endpoint": endpoint, "model": target.short, "runs": runs, "digest": found.get("digest")},
        )

    def results(self, model: str | None = None, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Stored results, newest first, optionally of one model and/or one server."""
        sql, args = "SELECT * FROM ollama_benchmarks WHERE 1 = 1", []
        if model:
            sql += " AND model = ?"
            args.append(model)
        if endpoint:
            sql += " AND endpoint = ?"
            args.append(endpoint)
        return [dict(row) for row in self._store.query(sql + " ORDER BY created_at DESC, id", args)]

    def delete(self, result_id: str) -> None:
        if not self._store.execute("DELETE FROM ollama_benchmarks WHERE id = ?", (result_id,)):
            raise errors.NotFound(
                Message("ollama.bench.error.no_result", id=result_id),
                code="benchmark_not_found",
                details={"id": result_id},
            )

    # -- the task ------------------------------------------------------------------------------

    def run(self, ctx: TaskContext) -> None:
        params = ctx.params
        model, endpoint, runs = params["model"], params["endpoint"], int(params["runs"])
        try:
            url = self._service.endpoint(endpoint)["url"]
            provider = self._service.provider()
            provider.unload(url, model)  # so the first answer measures a cold load
            total = runs * len(PROMPTS)
            samples = []
            ctx.progress(completed=0, total=total, message=Message("ollama.bench.status.starting", name=model))
            for run in range(runs):
                for number, prompt in enumerate(PROMPTS):
                    ctx.raise_if_cancelled()
                    samples.append(self._ask(ctx, provider, url, model, prompt))
                    ctx.progress(
                        completed=len(samples),
                        total=total,
                        message=Message(
                            "ollama.bench.status.running",
                            name=model,
                            run=run + 1,
                            runs=runs,
                            prompt=number + 1,
                            prompts=len(PROMPTS),
                        ),
                    )
            gpu = self._gpu()
            model_vram = self._model_vram(provider, url, model)
        except errors.UpstreamUnavailable as exc:
            raise TaskInterrupted(exc.message, exc.details) from None
        except errors.ApiError as exc:
            raise TaskError(exc.message, exc.details) from None
        self._budget.note_use(endpoint, model)
        self._store.execute(
            f"INSERT INTO ollama_benchmarks ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            (
                uuid.uuid4().hex[:12],
                timestamp(),
                endpoint,
                url,
                model,
                params.get("digest"),
                runs,
                median([s["ttft_ms"] for s in samples]),
                median([s["tokens_per_second"] for s in samples]),
                median([s["prompt_tokens_per_second"] for s in samples]),
                samples[0]["load_ms"],
                gpu["gpu"],
                gpu["vram_used"],
                gpu["vram_total"],
                model_vram,
                ctx.id,
            ),
        )
        ctx.progress(
            completed=len(samples), total=len(samples), message=Message("ollama.bench.status.done", name=model)
        )

    def _ask(self, ctx: TaskContext, provider: Any, url: str, model: str, prompt: str) -> dict[str, Any]:
        """One answer of the prompt set, streamed as a person's chat is: its figures."""
        stream = provider.chat(
            url, {"model": model, "messages": [{"role": "user", "content": prompt}], "options": OPTIONS}
        )
        ctx.on_cancel(stream.close)
        try:
            for line in stream:
                if "error" in line:
                    raise TaskError(
                        Message("ollama.bench.error.failed", name=model, error=str(line["error"])[:300]), {"url": url}
                    )
                if line.get("done") is True:
                    return figures(clean_line(line))
        finally:
            stream.close()
        ctx.raise_if_cancelled()
        raise TaskInterrupted(Message("ollama.bench.error.cut", name=model), {"url": url})

    def _gpu(self) -> dict[str, Any]:
        """The accelerators and their memory in use now, from the GPU provider; all None when
        there is none (CPU mode, no provider, or it failed: a benchmark still counts then)."""
        empty = {"gpu": None, "vram_used": None, "vram_total": None}
        try:
            reading = self._context.providers.get("gpu").sample()
        except Exception:  # a provider plugin may fail in any way; the benchmark stands
            log.warning("no GPU reading for the benchmark", exc_info=True)
            return empty
        devices = [d for d in reading.get("devices") or [] if isinstance(d, dict) and not d.get("lost")]
        if not devices:
            return empty

        def total(key: str) -> int | None:
            values = [value for d in devices if isinstance(value := d.get(key), int)]
            return sum(values) if values else None

        gpu_names = [str(d.get("name") or f"gpu{d.get('index')}") for d in devices]
        return {
            "gpu": json.dumps(gpu_names) if len(gpu_names) > 1 else gpu_names[0],
            "vram_used": total("memory_used"),
            "vram_total": total("memory_total"),
        }

    @staticmethod
    def _model_vram(provider: Any, url: str, model: str) -> int | None:
        key = names.parse(model).key
        for loaded in provider.running_models(url):
            if (
                isinstance(loaded, dict)
                and names.is_valid(loaded.get("name"))
                and names.parse(loaded["name"]).key == key
            ):
                value = loaded.get("size_vram")
                return value if isinstance(value, int) and not isinstance(value, bool) else None
        return None
