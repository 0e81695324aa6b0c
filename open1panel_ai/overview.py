"""The overview: the health of what each usable feature runs, beside each feature's provider.

What the landing page shows (``GET /overview``): each feature's part, built from its service
by the ``overview`` of its :class:`~open1panel_ai.features.Feature`; no Flask here.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from open1panel_ai import __version__, errors

log = logging.getLogger(__name__)

#: MCP server statuses the overview counts as failing: they are not serving, and not by choice.
MCP_FAILING = ("error", "unhealthy", "restarting")
#: ... and as on their way up or down.
MCP_CHANGING = ("starting", "stopping")
#: The most Ollama servers the overview asks at the same time.
PARALLEL_ENDPOINTS = 8


def overview_of(context: Any, providers: list[dict[str, Any]]) -> dict[str, Any]:
    """The status report (``providers``, as :meth:`ProviderRegistry.status` gives it) and each
    usable feature's part; a feature that is not running, or whose provider cannot be used,
    has None. Reasons and errors are left as Messages for the caller to render."""
    usable = {p["kind"]: p["usable"] for p in providers}
    result: dict[str, Any] = {
        "version": __version__,
        "providers": providers,
        "plugin_errors": dict(context.host.plugin_errors),
    }
    for feature in context.features.values():
        if feature.overview is None or feature.kind is None:
            continue
        service = context.services.get(feature.name)
        result[feature.kind] = None
        if service is None or not usable.get(feature.kind):
            continue
        try:
            result[feature.kind] = feature.overview(service)
        except Exception:  # one feature's failure must not hide the others' health
            log.exception("the overview of the %s feature failed", feature.name)
    return result


def ollama_overview(service: Any) -> dict[str, Any]:
    """Each Ollama server with its model count and loaded models, asked at the same time."""

    def one(endpoint: dict[str, Any]) -> dict[str, Any]:
        entry = {
            "name": endpoint["name"],
            "url": endpoint["url"],
            "reachable": False,
            "error": None,
            "models": None,
            "loaded": None,
            "loaded_models": [],
        }
        try:
            models = service.models(endpoint["name"])
            running = service.running(endpoint["name"])
        except errors.ApiError as exc:
            entry["error"] = exc.message
            return entry
        entry.update(
            reachable=True,
            models=len(models),
            loaded=len(running),
            loaded_models=[model.get("name", "") for model in running],
        )
        return entry

    endpoints = service.endpoints()
    with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL_ENDPOINTS, len(endpoints)))) as pool:
        listed = list(pool.map(one, endpoints))
    return {"state": "ready" if all(e["reachable"] for e in listed) else "attention", "endpoints": listed}


def mcp_overview(service: Any) -> dict[str, Any]:
    """The MCP servers counted by state, the failing ones named with their last error."""
    servers = service.servers()
    failing = [
        {
            "id": s["id"],
            "name": s["name"],
            "status": s["status"],
            "error": s.get("last_error"),
            "error_i18n": s.get("last_error_i18n"),
        }
        for s in servers
        if s["status"] in MCP_FAILING
    ]
    unisolated = []
    for server in servers:
        isolation = server.get("isolation")
        if server["status"] == "stopped" or not isolation or isolation["mode"] == "sandbox":
            continue
        missing = [layer for layer in isolation["layers"] if not layer["applied"]]
        first = missing[0] if missing else {}
        unisolated.append(
            {
                "id": server["id"],
                "name": server["name"],
                "mode": isolation["mode"],
                "missing": [layer["name"] for layer in missing],
                **{key: first.get(key) for key in ("reason", "reason_i18n", "fix", "fix_i18n")},
            }
        )
    return {
        "state": "attention" if failing or unisolated else "ready",
        "total": len(servers),
        "running": sum(1 for s in servers if s["status"] == "running"),
        "stopped": sum(1 for s in servers if s["status"] == "stopped"),
        "changing": sum(1 for s in servers if s["status"] in MCP_CHANGING),
        "failing": failing,
        "unisolated": unisolated,
    }
