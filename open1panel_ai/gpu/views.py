"""The GPU routes: the current sample, history, compatibility checks, Prometheus metrics, and
the GPU page."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST

from open1panel_ai.gpu.schemas import (
    GPUChecksSchema,
    GPUHistoryQuerySchema,
    GPUHistorySchema,
    GPUSampleSchema,
)
from open1panel_ai.gpu.service import GPUService
from open1panel_ai.web import (
    API_PREFIX,
    DumpedOnce,
    blueprint,
    current_ai,
    in_language,
    operation,
    request_language,
)


def _service() -> GPUService:
    return current_ai().service("gpu")


@blueprint.get("/ai/gpu/")
def gpu_page() -> ResponseReturnValue:
    """GPU monitoring: the live widget and the compatibility check."""
    return render_template("ai/gpu/page.html")


@blueprint.get(API_PREFIX + "/gpu")
@operation(
    summary="The current reading of every GPU (or of the CPU in CPU mode)",
    tag="gpu",
    response=GPUSampleSchema(),
    errors_=(503,),
)
def gpu_sample() -> ResponseReturnValue:
    return _sample_answer(_service().current())


_sample_answer = DumpedOnce(GPUSampleSchema())


@blueprint.get(API_PREFIX + "/gpu/history")
@operation(
    summary="GPU history between two times, from the finest tier that covers them",
    tag="gpu",
    query=GPUHistoryQuerySchema(),
    response=GPUHistorySchema(),
    errors_=(503,),
)
def gpu_history(query: dict[str, Any]) -> ResponseReturnValue:
    """Up to an hour back: every sample; up to a week: minute averages; else hour averages.
    At most 500 times per device: a range with more is averaged over buckets of `step` s.
    Without a range, the last hour is read once per `step` (or sampling interval) and given to
    every client meanwhile; `until` says how recent it is."""
    return _history_answer(_service().history_between(query.get("since"), query.get("until")))


_history_answer = DumpedOnce(GPUHistorySchema())


@blueprint.get(API_PREFIX + "/gpu/checks")
@operation(
    summary="The GPU compatibility check: what was checked and how to fix what is missing",
    tag="gpu",
    response=GPUChecksSchema(),
    errors_=(503,),
)
def gpu_checks() -> ResponseReturnValue:
    """Details and fixes the panel composed are in the reader's language."""
    return in_language(_service().checks(), request_language())


@blueprint.get(API_PREFIX + "/metrics")
@operation(
    summary="Prometheus metrics: GPUs with DCGM exporter names, Ollama models, MCP servers",
    tag="gpu",
    errors_=(503,),
    raw_response={CONTENT_TYPE_LATEST: {"type": "string"}},
)
def gpu_prometheus_metrics() -> ResponseReturnValue:
    """Besides the admin token, the standalone panel takes its scrape token here
    (`<data dir>/metrics-token` or `OPEN1PANEL_AI_METRICS_TOKEN`), which opens this route and
    nothing else: give Prometheus that one."""
    return Response(_service().metrics(), mimetype=None, content_type=CONTENT_TYPE_LATEST)
