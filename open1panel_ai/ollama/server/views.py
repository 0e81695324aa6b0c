"""The local Ollama server's routes and page: each view parses input, calls the service."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask.typing import ResponseReturnValue

from open1panel_ai.ollama.server import schemas
from open1panel_ai.ollama.server import service as server_service
from open1panel_ai.ollama.views import PREFIX, localized
from open1panel_ai.schemas import TaskSchema
from open1panel_ai.web import blueprint, current_ai, operation

SERVER = PREFIX + "/server"


def _service() -> server_service.ServerService:
    return server_service.of(current_ai().service("ollama"))


@blueprint.get("/ai/ollama/server/")
def ollama_server_page() -> ResponseReturnValue:
    """OllamaServerPage: how the local server runs, its settings, control, version and log."""
    return render_template("ai/ollama/server.html")


@blueprint.get(SERVER)
@operation(
    summary="How the local Ollama server runs, its state, version, settings and GPUs",
    tag="ollama",
    response=schemas.ServerSchema(),
)
def ollama_server_status() -> ResponseReturnValue:
    return localized(_service().status())


@blueprint.put(SERVER + "/settings")
@operation(
    summary="Apply new server settings as a task: written, the server restarted, and the "
    "previous settings restored when it does not answer again",
    tag="ollama",
    body=schemas.ServerSettingsBodySchema(),
    response=TaskSchema(),
    status=202,
    errors_=(409,),
)
def ollama_apply_settings(body: dict[str, Any]) -> ResponseReturnValue:
    return _service().apply(body["settings"], unload=body["unload"], move_models=body["move_models"])


@blueprint.post(SERVER + "/start")
@operation(
    summary="Start the local Ollama server", tag="ollama", response=schemas.ServerStateSchema(), errors_=(409, 502, 503)
)
def ollama_start_server() -> ResponseReturnValue:
    return localized(_service().start())


@blueprint.post(SERVER + "/stop")
@operation(
    summary="Stop the local Ollama server", tag="ollama", response=schemas.ServerStateSchema(), errors_=(409, 502, 503)
)
def ollama_stop_server() -> ResponseReturnValue:
    return localized(_service().stop())


@blueprint.post(SERVER + "/restart")
@operation(
    summary="Restart the local Ollama server, unloading every model first if asked",
    tag="ollama",
    query=schemas.ServerRestartQuerySchema(),
    response=schemas.ServerStateSchema(),
    errors_=(409, 502, 503),
)
def ollama_restart_server(query: dict[str, Any]) -> ResponseReturnValue:
    return localized(_service().restart(unload=query["unload"]))


@blueprint.get(SERVER + "/logs")
@operation(
    summary="The last lines of the server's log (journalctl for systemd)",
    tag="ollama",
    query=schemas.ServerLogsQuerySchema(),
    response=schemas.ServerLogsSchema(),
    errors_=(409, 502, 503),
)
def ollama_server_logs(query: dict[str, Any]) -> ResponseReturnValue:
    return {"lines": _service().logs(query["tail"])}
