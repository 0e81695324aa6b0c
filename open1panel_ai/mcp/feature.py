"""How the MCP feature plugs into the AI module (see :mod:`open1panel_ai.features`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from open1panel_ai import i18n
from open1panel_ai.features import Event, Feature, Topic
from open1panel_ai.interfaces import MCPServers
from open1panel_ai.mcp import runtime, views  # noqa: F401  (views attaches the routes)
from open1panel_ai.mcp.service import MCPService
from open1panel_ai.overview import mcp_overview

if TYPE_CHECKING:
    from open1panel_ai.context import AIContext

BUILTIN_PROVIDERS = [runtime]


def menu_item() -> dict[str, Any]:
    return {"id": "ai-mcp", "title": i18n.titles("mcp.menu"), "url": "/ai/mcp/", "icon": "mcp"}


def start(context: AIContext) -> MCPService:
    service = MCPService(context)
    service.start()
    return service


def stop(service: MCPService) -> None:
    service.stop()


FEATURE = Feature(
    name="mcp",
    order=20,
    kind="mcp",
    start=start,
    stop=stop,
    builtin_providers=tuple(BUILTIN_PROVIDERS),
    menu=menu_item,
    topics=(
        Topic(
            "mcp",
            "mcp",
            (
                Event(
                    "mcp",
                    'an MCP server (as `GET /mcp/servers/<id>`) when its state changes; `{"id", "deleted": true}`'
                    " when removed",
                ),
            ),
        ),
        Topic(
            r"mcp:[A-Za-z0-9_-]{1,64}:logs",
            "mcp:<id>:logs",
            (Event("mcp_log", '`{"server_id", "lines"}`: new log lines of that server'),),
        ),
    ),
    views=views,
    api_tag="mcp",
    api_title="MCP servers",
    guide="mcp.md",
    overview=mcp_overview,
    offers=(MCPServers,),
)
