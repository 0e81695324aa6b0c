"""Asking a served MCP server what it can do, with the official client: the health probe.

A probe is an ``initialize`` plus ``tools/list`` through the bridge, with the server's token,
over the first transport it serves. Passing means the whole path works: the bridge, its auth,
the child process and the MCP session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import httpx2
import mcp_types as types
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from hookspecs.mcp import MCPTool
from open1panel_ai.providers import describe_error

if TYPE_CHECKING:
    # The streams every client transport yields, as the SDK names them.
    from mcp.client._transport import ReadStream, WriteStream
    from mcp.shared.message import SessionMessage


class ProbeFailed(Exception):
    """The server did not answer the probe correctly; the text says what happened."""


def list_tools(base_url: str, token: str, transport: str = "streamable-http", timeout: float = 10.0) -> list[MCPTool]:
    """Connect to the bridge at ``base_url`` and return the live tools, each ``{"name",
    "description", "input_schema"}``. Raises :class:`ProbeFailed` on any failure."""
    try:
        return anyio.run(_list_tools, base_url, token, transport, timeout)
    except ProbeFailed:
        raise
    except TimeoutError:
        raise ProbeFailed("no answer in time") from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ProbeFailed(describe_error(exc)) from None


async def _list_tools(base_url: str, token: str, transport: str, timeout: float) -> list[MCPTool]:
    headers = {"Authorization": f"Bearer {token}"}
    with anyio.fail_after(timeout):
        if transport == "sse":
            async with sse_client(base_url + "/sse", headers=headers, timeout=timeout) as (read, write):
                return await _session_tools(read, write)
        http = httpx2.AsyncClient(headers=headers, timeout=timeout)
        async with http, streamable_http_client(base_url + "/mcp", http_client=http) as (read, write):
            return await _session_tools(read, write)


async def _session_tools(
    read: ReadStream[SessionMessage | Exception], write: WriteStream[SessionMessage]
) -> list[MCPTool]:
    async with ClientSession(read, write) as session:
        await session.initialize()
        tools: list[MCPTool] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools += [
                {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}
                for tool in page.tools
            ]
            cursor = page.next_cursor
            if not cursor:
                return tools
