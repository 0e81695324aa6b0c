"""How the MCP feature plugs into the AI module (see :mod:`open1panel_ai.features`)."""

from __future__ import annotations

from open1panel_ai import i18n
from open1panel_ai.mcp import runtime, views  # noqa: F401  (views attaches the routes)
from open1panel_ai.mcp.service import MCPService

BUILTIN_PROVIDERS = [runtime]


def menu_item():
    return {"id": "ai-mcp", "title": i18n.titles("mcp.menu"), "url": "/ai/mcp/", "icon": "mcp"}


def start(context) -> MCPService:
    service = MCPService(context)
    service.start()
    return service


def stop(service: MCPService) -> None:
    service.close()
