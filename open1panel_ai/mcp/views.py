"""The MCP routes and page: each view parses with a schema and calls the service."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template
from flask.typing import ResponseReturnValue

from open1panel_ai import errors, i18n
from open1panel_ai.mcp import schemas
from open1panel_ai.mcp.service import MCPService
from open1panel_ai.web import (
    API_PREFIX,
    DumpedOnce,
    blueprint,
    current_ai,
    localized_envelope,
    operation,
    request_language,
)

PREFIX = API_PREFIX + "/mcp"
TAG = "mcp"
SERVER_PATH = {"server_id": schemas.SERVER_ID}


def _service() -> MCPService:
    return current_ai().service("mcp")


@blueprint.get("/ai/mcp/")
def mcp_page() -> ResponseReturnValue:
    """MCPServersPage: servers with status, URL and actions; form, logs, tools, configs, import."""
    return render_template("ai/mcp/index.html", clients=list(schemas.CLIENTS))


@blueprint.get(PREFIX + "/servers")
@operation(summary="MCP servers with their measured status", tag=TAG, response=schemas.MCPServerListSchema())
def mcp_list_servers() -> ResponseReturnValue:
    return _servers_answer({"servers": _service().servers()})


_servers_answer = DumpedOnce(schemas.MCPServerListSchema())


@blueprint.post(PREFIX + "/servers")
@operation(
    summary="Register an MCP server (a command, or a remote URL)",
    tag=TAG,
    status=201,
    body=schemas.MCPServerInSchema(),
    response=schemas.MCPServerSchema(),
    errors_=(409,),
)
def mcp_create_server(body: dict[str, Any]) -> ResponseReturnValue:
    """A port is assigned when none is given; a token is generated. Secret values are
    write-only: no answer carries them."""
    return _service().create(body)


@blueprint.post(PREFIX + "/command-check")
@operation(
    summary="Check that a command's program can be run, before saving it",
    tag=TAG,
    body=schemas.MCPCommandCheckInSchema(),
    response=schemas.MCPCommandCheckSchema(),
)
def mcp_check_command(body: dict[str, Any]) -> ResponseReturnValue:
    """Looks the program up as the server's child would (on the env's PATH, else the
    panel's, from the working folder) and says how to install it when it is missing. A
    string command comes back split into its list. Nothing is saved or started: a server
    whose program is missing can still be saved, and is ``error`` at once when started."""
    checked = _service().check_command(body["command"], body["env"], body["cwd"])
    checked["warning"] = i18n.render(checked["warning"], request_language())
    return checked


@blueprint.get(PREFIX + "/servers/<server_id>")
@operation(path=SERVER_PATH, summary="One MCP server", tag=TAG, response=schemas.MCPServerSchema(), errors_=(404,))
def mcp_get_server(server_id: str) -> ResponseReturnValue:
    return _service().server(server_id)


@blueprint.put(PREFIX + "/servers/<server_id>")
@operation(
    path=SERVER_PATH,
    summary="Change an MCP server; a running one restarts to take the change",
    tag=TAG,
    body=schemas.MCPServerUpdateSchema(),
    response=schemas.MCPServerSchema(),
    errors_=(404, 409),
)
def mcp_update_server(server_id: str, body: dict[str, Any]) -> ResponseReturnValue:
    """Fields left out keep their value. A secret env entry sent without a value keeps its
    stored value while it stays secret (made non-secret, it needs its value: 400), and headers
    sent without values keep theirs while the url keeps its origin (else 400)."""
    return _service().update(server_id, body)


@blueprint.delete(PREFIX + "/servers/<server_id>")
@operation(
    path=SERVER_PATH,
    summary="Stop an MCP server, kill everything it started, and forget it",
    tag=TAG,
    status=204,
    errors_=(404,),
)
def mcp_delete_server(server_id: str) -> ResponseReturnValue:
    _service().delete(server_id)
    return Response(status=204)


@blueprint.post(PREFIX + "/servers/<server_id>/start")
@operation(
    path=SERVER_PATH,
    summary="Start an MCP server; its status follows what is measured",
    tag=TAG,
    response=schemas.MCPServerSchema(),
    errors_=(404, 503),
)
def mcp_start_server(server_id: str) -> ResponseReturnValue:
    return _service().start_server(server_id)


@blueprint.post(PREFIX + "/servers/<server_id>/stop")
@operation(
    path=SERVER_PATH,
    summary="Stop an MCP server and its whole process group",
    tag=TAG,
    response=schemas.MCPServerSchema(),
    errors_=(404, 503),
)
def mcp_stop_server(server_id: str) -> ResponseReturnValue:
    """A server stopped here stays stopped when the panel starts again, even with autostart,
    until it is started (``stopped_by_hand``)."""
    return _service().stop_server(server_id)


@blueprint.post(PREFIX + "/servers/<server_id>/restart")
@operation(
    path=SERVER_PATH, summary="Restart an MCP server", tag=TAG, response=schemas.MCPServerSchema(), errors_=(404, 503)
)
def mcp_restart_server(server_id: str) -> ResponseReturnValue:
    return _service().start_server(server_id)


@blueprint.post(PREFIX + "/servers/<server_id>/token")
@operation(
    path=SERVER_PATH,
    summary="Rotate a server's bearer token (shown once)",
    tag=TAG,
    response=schemas.MCPTokenSchema(),
    errors_=(404,),
)
def mcp_rotate_token(server_id: str) -> ResponseReturnValue:
    """A running server restarts to use the new token; the old one stops working."""
    return _service().rotate_token(server_id)


@blueprint.get(PREFIX + "/servers/<server_id>/logs")
@operation(
    path=SERVER_PATH,
    summary="The last lines of a server's log (its stderr and its bridge)",
    tag=TAG,
    query=schemas.MCPLogQuerySchema(),
    response=schemas.MCPLogsSchema(),
    errors_=(404, 503),
)
def mcp_server_logs(server_id: str, query: dict[str, Any]) -> ResponseReturnValue:
    """Follow new lines live by subscribing to the Socket.IO topic ``mcp:<id>:logs``."""
    return {"lines": _service().logs(server_id, query["tail"])}


@blueprint.get(PREFIX + "/servers/<server_id>/tools")
@operation(
    path=SERVER_PATH,
    summary="The live tool list of a running server, with input schemas",
    tag=TAG,
    response=schemas.MCPToolListSchema(),
    errors_=(404, 409, 502, 503),
)
def mcp_server_tools(server_id: str) -> ResponseReturnValue:
    return {"tools": _service().tools(server_id)}


@blueprint.get(PREFIX + "/servers/<server_id>/client-config")
@operation(
    path=SERVER_PATH,
    summary="A ready configuration snippet for an MCP client",
    tag=TAG,
    query=schemas.MCPClientQuerySchema(),
    response=schemas.MCPClientConfigSchema(),
    errors_=(404, 409),
)
def mcp_server_client_config(server_id: str, query: dict[str, Any]) -> ResponseReturnValue:
    """The snippet holds the server's token; treat it as a secret. It names the server's
    bound domain when it has one (``https://<domain>/mcp``); ``address`` picks another of the
    addresses listed in the answer (400 for one that is not)."""
    return _service().client_config(server_id, query["client"], query["transport"], query["address"])


@blueprint.post(PREFIX + "/import")
@operation(
    summary="Create servers from every entry of an mcpServers document",
    tag=TAG,
    body=schemas.MCPImportSchema(),
    response=schemas.MCPImportResultSchema(),
)
def mcp_import_servers(body: dict[str, Any]) -> ResponseReturnValue:
    """Entries with ``url`` become remote servers. Each entry succeeds or fails on its own."""
    results = _service().import_document(body["mcpServers"], body["autostart"])
    return {"results": [_localized(result, request_language()) for result in results]}


def _localized(result: dict[str, Any], language: str) -> dict[str, Any]:
    """An import result with its error in the reader's language, as an error answer would be."""
    error = result["error"]
    if error is None:
        return result
    envelope = localized_envelope(errors.ApiError(error["message"], error["details"], error["code"]), language)
    details = envelope["error"]["details"]
    if "reason" in details:
        details["reason"] = str(i18n.render(details["reason"], language))
    return {**result, "error": envelope["error"]}
