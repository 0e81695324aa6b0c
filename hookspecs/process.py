"""How a long-running process a provider keeps up is doing.

An MCP server's child and the local Ollama server are both reported this way, by
``MCPProvider.state`` and ``OllamaServerProvider.state``, and the panel shows them alike.
"""

# No ``from __future__ import annotations``: TypedDict reads the annotations at class creation.
from typing import Literal, TypedDict

#: Where a process is in its life. ``unhealthy`` is for a process that runs but fails its health
#: probe; ``error`` is for one that stopped for good, with ``last_error`` saying why.
ProcessStatus = Literal["starting", "running", "unhealthy", "restarting", "stopping", "stopped", "error"]


class ProcessState(TypedDict):
    """A process's state, measured now."""

    status: ProcessStatus
    #: Its process id while it lives, else None.
    pid: int | None
    #: When it entered this status (RFC 3339, UTC: ``2026-12-04T22:31:03.680Z``), or None.
    since: str | None
    #: How many times it was started again after it ended.
    restarts: int
    #: Why it last failed, in words for the admin, or None.
    last_error: str | None


__all__ = ["ProcessState", "ProcessStatus"]
