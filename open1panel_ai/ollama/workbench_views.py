"""The routes of the model page: chat and embed, builds, memory budgets and benchmarks. Each
view parses input, calls the workbench (:mod:`.workbench`), returns its result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Response, g, render_template
from flask.typing import ResponseReturnValue

from open1panel_ai.ollama import schemas, workbench
from open1panel_ai.ollama import workbench_schemas as ws
from open1panel_ai.ollama.chat import Chat
from open1panel_ai.ollama.measure import OPTIONS, PROMPTS, to_csv
from open1panel_ai.schemas import TaskSchema
from open1panel_ai.web import API_PREFIX, blueprint, current_ai, operation

if TYPE_CHECKING:
    from open1panel_ai.ollama.service import OllamaService

PREFIX = API_PREFIX + "/ollama"


def _service() -> OllamaService:
    return current_ai().service("ollama")


def _bench() -> workbench.Workbench:
    return workbench.of(_service())


def _who() -> str | None:
    return (getattr(g, "ai_user", None) or {}).get("name")


@blueprint.get("/ai/ollama/model")
def ollama_model_page() -> ResponseReturnValue:
    """OllamaModelPage: try a model (chat, or an embed test), build a variant of it, benchmark
    it and compare, for the model and server named in the query string."""
    return render_template("ai/ollama/model.html", import_folder=_service().import_folder)


@blueprint.post(PREFIX + "/chat")
@operation(
    summary="Chat with a model: NDJSON lines shaped like Ollama's /api/chat stream; the last "
    "line adds figures (time to first token, tokens/s, prompt tokens/s, load time). "
    "Closing the connection stops the generation. With stream false, one JSON object",
    tag="ollama",
    body=ws.ChatBodySchema(),
    errors_=(404, 409, 502, 503),
    raw_response={"application/x-ndjson": ws.CHAT_LINE, "application/json": ws.CHAT_LINE},
)
def ollama_chat(body: dict[str, Any]) -> ResponseReturnValue:
    lines = _bench().chat.start(
        body["endpoint"],
        body["model"],
        body["messages"],
        body["options"],
        body["keep_alive"],
        body["evict"],
        user=_who(),
    )
    if not body["stream"]:
        return Chat.collect(lines)
    response = Response(lines, mimetype="application/x-ndjson")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy in front passes each line at once
    return response


@blueprint.post(PREFIX + "/embed")
@operation(
    summary="Embed a text with an embedding model: the vector's dimensions, its first numbers and the timings",
    tag="ollama",
    body=ws.EmbedBodySchema(),
    response=ws.EmbedResultSchema(),
    errors_=(404, 409, 502, 503),
)
def ollama_embed(body: dict[str, Any]) -> ResponseReturnValue:
    return _bench().chat.embed(
        body["endpoint"],
        body["model"],
        body["input"],
        body["dimensions"],
        body["keep_alive"],
        body["evict"],
        user=_who(),
    )


@blueprint.get(PREFIX + "/models/<path:name>/recipe")
@operation(
    path={"name": schemas.MODEL_NAME},
    summary="A new model's form filled from this one (Ollama's show): from, system, template, "
    "typed parameters and license",
    tag="ollama",
    query=schemas.EndpointQuerySchema(),
    response=ws.RecipeSchema(),
    errors_=(404, 502, 503),
)
def ollama_model_recipe(name: str, query: dict[str, Any]) -> ResponseReturnValue:
    recipe = _bench().builds.recipe(query["endpoint"], name)
    return {**recipe, "base": recipe.pop("from")}


def _build_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "system": body["system"],
        "template": body["template"],
        "parameters_": body["parameters"],
        "license_": body["license"],
        "adapter": body["adapter"],
        "overwrite": body["overwrite"],
    }


@blueprint.post(PREFIX + "/builds/preview")
@operation(
    summary="The /api/create request a build would send, checked as the build checks it",
    tag="ollama",
    body=ws.BuildBodySchema(),
    response=ws.BuildPreviewSchema(),
    errors_=(404,),
)
def ollama_preview_build(body: dict[str, Any]) -> ResponseReturnValue:
    return _bench().builds.preview(body["endpoint"], body["name"], body["base"], **_build_fields(body))


@blueprint.post(PREFIX + "/builds")
@operation(
    summary="Build a model from a base with a system prompt, parameters, a template, and "
    "optionally an adapter and a license: a task through Ollama's /api/create",
    tag="ollama",
    body=ws.BuildBodySchema(),
    response=TaskSchema(),
    status=202,
    errors_=(404, 409, 502, 503),
)
def ollama_start_build(body: dict[str, Any]) -> ResponseReturnValue:
    return _bench().builds.start(body["endpoint"], body["name"], body["base"], **_build_fields(body))


@blueprint.get(PREFIX + "/endpoints/<name>/budget")
@operation(
    path={"name": schemas.ENDPOINT_NAME},
    summary="A server's memory budget: most VRAM bytes and most loaded models (null: no limit)",
    tag="ollama",
    response=ws.BudgetSchema(),
    errors_=(404,),
)
def ollama_get_budget(name: str) -> ResponseReturnValue:
    return _bench().budget.get(name)


@blueprint.put(PREFIX + "/endpoints/<name>/budget")
@operation(
    path={"name": schemas.ENDPOINT_NAME},
    summary="Set a server's memory budget; both null removes it. Loads past it answer 409 "
    "budget_exceeded unless asked with evict",
    tag="ollama",
    body=ws.BudgetBodySchema(),
    response=ws.BudgetSchema(),
    errors_=(404,),
)
def ollama_set_budget(name: str, body: dict[str, Any]) -> ResponseReturnValue:
    return _bench().budget.set(name, body["vram_bytes"], body["max_models"])


@blueprint.post(PREFIX + "/benchmarks")
@operation(
    summary="Benchmark a model: the fixed prompt set N times, as a task; the result joins the table",
    tag="ollama",
    body=ws.BenchmarkBodySchema(),
    response=TaskSchema(),
    status=202,
    errors_=(404, 409, 502, 503),
)
def ollama_start_benchmark(body: dict[str, Any]) -> ResponseReturnValue:
    return _bench().benchmarks.start(body["endpoint"], body["model"], body["runs"], body["evict"])


@blueprint.get(PREFIX + "/benchmarks")
@operation(
    summary="Benchmark results of every model and server, newest first, with the prompt set",
    tag="ollama",
    query=ws.BenchmarkQuerySchema(),
    response=ws.BenchmarkListSchema(),
)
def ollama_list_benchmarks(query: dict[str, Any]) -> ResponseReturnValue:
    return {
        "results": _bench().benchmarks.results(query.get("model"), query.get("endpoint")),
        "prompts": list(PROMPTS),
        "options": OPTIONS,
    }


@blueprint.get(PREFIX + "/benchmarks.csv")
@operation(
    summary="Benchmark results as CSV",
    tag="ollama",
    query=ws.BenchmarkQuerySchema(),
    raw_response={"text/csv": {"type": "string"}},
)
def ollama_export_benchmarks(query: dict[str, Any]) -> ResponseReturnValue:
    text = to_csv(_bench().benchmarks.results(query.get("model"), query.get("endpoint")))
    return Response(
        text, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="ollama-benchmarks.csv"'}
    )


@blueprint.delete(PREFIX + "/benchmarks/<result_id>")
@operation(
    path={"result_id": "^[0-9a-f]{12}$"}, summary="Delete a benchmark result", tag="ollama", status=204, errors_=(404,)
)
def ollama_delete_benchmark(result_id: str) -> ResponseReturnValue:
    _bench().benchmarks.delete(result_id)
    return Response(status=204)
