"""The Ollama routes and page: each view parses input, calls the service, returns its result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue

from open1panel_ai import errors, i18n
from open1panel_ai.i18n import Message
from open1panel_ai.ollama import schemas, workbench
from open1panel_ai.schemas import TaskSchema
from open1panel_ai.web import (
    API_PREFIX,
    blueprint,
    current_ai,
    json_body,
    load_input,
    operation,
    request_language,
)

if TYPE_CHECKING:
    from open1panel_ai.ollama.service import OllamaService

PREFIX = API_PREFIX + "/ollama"
MODEL_PATH = {"name": schemas.MODEL_NAME}


def _service() -> OllamaService:
    return current_ai().service("ollama")


def localized(value: Any) -> Any:
    """``value`` with every Message in it (version warnings, an endpoint's error, a pull's
    warnings) rendered in the reader's language; an ApiError's own envelope is rendered by
    the blueprint already."""
    language = request_language()

    def render(item: Any) -> Any:
        if isinstance(item, Message):
            return i18n.render(item, language)
        if isinstance(item, dict):
            return {key: render(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [render(inner) for inner in item]
        return item

    return render(value)


@blueprint.get("/ai/ollama/")
def ollama_page() -> ResponseReturnValue:
    """OllamaModelsPage: endpoints, models, running models, storage, pulls and imports. The
    import dialog offers a path field only when an import folder is configured."""
    return render_template("ai/ollama/page.html", import_folder=_service().import_folder)


@blueprint.get(PREFIX + "/endpoints")
@operation(
    summary="Ollama servers this panel manages, each with its reachability and version",
    tag="ollama",
    response=schemas.EndpointListSchema(),
)
def ollama_list_endpoints() -> ResponseReturnValue:
    return localized({"endpoints": _service().endpoints_status()})


@blueprint.post(PREFIX + "/endpoints")
@operation(
    summary="Add an Ollama server",
    tag="ollama",
    body=schemas.EndpointBodySchema(),
    response=schemas.EndpointSchema(),
    status=201,
    errors_=(409,),
)
def ollama_add_endpoint(body: dict[str, Any]) -> ResponseReturnValue:
    return localized(_service().add_endpoint(**body))


@blueprint.delete(PREFIX + "/endpoints/<name>")
@operation(
    path={"name": schemas.ENDPOINT_NAME},
    summary="Stop managing an Ollama server",
    tag="ollama",
    status=204,
    errors_=(404, 409),
)
def ollama_remove_endpoint(name: str) -> ResponseReturnValue:
    _service().remove_endpoint(name)
    return Response(status=204)


@blueprint.get(PREFIX + "/models")
@operation(
    summary="Models, with size, digest, details and whether (and how) each is loaded",
    tag="ollama",
    query=schemas.ModelsQuerySchema(),
    response=schemas.ModelListSchema(),
    errors_=(404, 502, 503, 504),
)
def ollama_list_models(query: dict[str, Any]) -> ResponseReturnValue:
    """Answered from the server's watcher: a state at most ``max_age`` seconds old, else the
    next poll, waited for up to the request wait; past it the last state, ``stale``, or an
    error saying whether the panel was too busy to ask (503 ``panel_busy``), Ollama did not
    take the connection (503 ``ollama_unreachable``) or did not answer (504 ``ollama_timeout``)."""
    return localized(_service().models_state(query["endpoint"], query.get("max_age")))


@blueprint.get(PREFIX + "/models/<path:name>")
@operation(
    path=MODEL_PATH,
    summary="One model's details (Ollama's show)",
    tag="ollama",
    query=schemas.EndpointQuerySchema(),
    errors_=(404, 502, 503),
    raw_response={"application/json": schemas.MODEL_DETAILS},
)
def ollama_show_model(name: str, query: dict[str, Any]) -> ResponseReturnValue:
    return _service().model(query["endpoint"], name)


@blueprint.delete(PREFIX + "/models/<path:name>")
@operation(
    path=MODEL_PATH,
    summary="Delete a model",
    tag="ollama",
    query=schemas.EndpointQuerySchema(),
    status=204,
    errors_=(404, 502, 503),
)
def ollama_delete_model(name: str, query: dict[str, Any]) -> ResponseReturnValue:
    _service().delete_model(query["endpoint"], name)
    return Response(status=204)


@blueprint.post(PREFIX + "/models/<path:name>/copy")
@operation(
    path=MODEL_PATH,
    summary="Copy a model to a new name; a name already in use is refused (409 model_exists) unless overwrite is true",
    tag="ollama",
    query=schemas.EndpointQuerySchema(),
    body=schemas.CopyBodySchema(),
    status=204,
    errors_=(404, 409, 502, 503),
)
def ollama_copy_model(name: str, query: dict[str, Any], body: dict[str, Any]) -> ResponseReturnValue:
    _service().copy_model(query["endpoint"], name, body["destination"], overwrite=body["overwrite"])
    return Response(status=204)


@blueprint.post(PREFIX + "/models/<path:name>/load")
@operation(
    path=MODEL_PATH,
    summary="Load a model into memory for keep_alive (forever: keep it); past the server's "
    "memory budget it is refused (409 budget_exceeded) unless evict is true",
    tag="ollama",
    query=schemas.EndpointQuerySchema(),
    body=schemas.LoadBodySchema(),
    status=204,
    errors_=(404, 409, 502, 503),
)
def ollama_load_model(name: str, query: dict[str, Any], body: dict[str, Any]) -> ResponseReturnValue:
    workbench.of(_service()).budget.admit(query["endpoint"], name, body["evict"])
    _service().load_model(query["endpoint"], name, body["keep_alive"], body["cpu_only"])
    return Response(status=204)


@blueprint.post(PREFIX + "/models/<path:name>/unload")
@operation(
    path=MODEL_PATH,
    summary="Drop a model from memory",
    tag="ollama",
    query=schemas.EndpointQuerySchema(),
    status=204,
    errors_=(404, 502, 503),
)
def ollama_unload_model(name: str, query: dict[str, Any]) -> ResponseReturnValue:
    _service().unload_model(query["endpoint"], name)
    return Response(status=204)


@blueprint.get(PREFIX + "/running")
@operation(
    summary="Loaded models, their memory and VRAM, and when they expire",
    tag="ollama",
    query=schemas.RunningQuerySchema(),
    response=schemas.RunningListSchema(),
    errors_=(404, 502, 503, 504),
)
def ollama_running(query: dict[str, Any]) -> ResponseReturnValue:
    """Answered from the servers' watchers, as ``GET /ollama/models`` is; without
    ``endpoint``, servers that cannot be reached are left out."""
    return localized(_service().running_state(query.get("endpoint"), query.get("max_age")))


@blueprint.post(PREFIX + "/pulls")
@operation(
    summary="Start pulling a model (or join its running pull)",
    tag="ollama",
    body=schemas.PullBodySchema(),
    response=schemas.PullStartedSchema(),
    status=202,
    errors_=(404, 507),
)
def ollama_start_pull(body: dict[str, Any]) -> ResponseReturnValue:
    return localized(_service().start_pull(body["endpoint"], body["name"]))


@blueprint.post(PREFIX + "/imports")
@operation(
    summary="Import a GGUF: a JSON body naming a path in the import folder, or the file "
    "as the raw body with the other fields in the query string; a name already in "
    "use is refused (409 model_exists) unless overwrite is true",
    tag="ollama",
    response=TaskSchema(),
    status=202,
    errors_=(404, 409, 507),
    raw_body={
        "application/json": schemas.ImportBodySchema(),
        "application/octet-stream": {"type": "string", "format": "binary"},
    },
    raw_query=schemas.ImportUploadQuerySchema(partial=True),
)
def ollama_start_import() -> ResponseReturnValue:
    """The query string is for uploads only (there ``name`` is required); a JSON body holds
    every field itself."""
    return _service().start_import(**import_arguments())


def import_arguments() -> dict[str, Any]:
    """The fields of an import request: a JSON body naming a path in the import folder, or
    the file as the raw body (streamed, never read whole here) with the fields in the query
    string."""
    if request.mimetype == "application/json":
        if request.args:
            raise errors.BadRequest(
                Message("ollama.error.unexpected_query"),
                code="unexpected_query",
                details={"fields": {name: ["Unknown field."] for name in request.args}},
            )
        return load_input(schemas.ImportBodySchema(), json_body(), "body")
    if request.mimetype not in ("application/octet-stream", ""):
        raise errors.BadRequest(Message("ollama.error.import_media_type"), code="unsupported_media_type")
    query = load_input(schemas.ImportUploadQuerySchema(), request.args.to_dict(flat=True), "query")
    return {**query, "upload": request.stream, "length": request.content_length}


@blueprint.get(PREFIX + "/storage")
@operation(
    summary="Models folder, free/total disk, partial downloads and clean-up suggestions",
    tag="ollama",
    query=schemas.EndpointQuerySchema(),
    response=schemas.StorageSchema(),
    errors_=(404, 502, 503),
)
def ollama_storage(query: dict[str, Any]) -> ResponseReturnValue:
    return _service().storage(query["endpoint"])


@blueprint.delete(PREFIX + "/storage/partials")
@operation(
    summary="Delete the partial downloads no pull is writing, and say how many bytes that freed; "
    "those of running pulls are kept and listed as skipped",
    tag="ollama",
    query=schemas.EndpointQuerySchema(),
    response=schemas.PartialsDeletedSchema(),
    errors_=(404, 409),
)
def ollama_delete_partials(query: dict[str, Any]) -> ResponseReturnValue:
    return _service().delete_partials(query["endpoint"])
