"""How the Ollama feature plugs into the AI module (see :mod:`open1panel_ai.features`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from open1panel_ai import i18n
from open1panel_ai.features import Event, Feature, Topic
from open1panel_ai.interfaces import LoadedModels, OllamaEndpoints
from open1panel_ai.ollama import (
    cli,
    provider,
    views,
    workbench,
    workbench_views,  # noqa: F401  (attaches the model page's routes)
)
from open1panel_ai.ollama.server import builtin as server_builtin
from open1panel_ai.ollama.server import service as server_service
from open1panel_ai.ollama.server import views as server_views  # noqa: F401  (the server page's routes)
from open1panel_ai.ollama.service import OllamaService
from open1panel_ai.overview import ollama_overview

if TYPE_CHECKING:
    from open1panel_ai.context import AIContext

BUILTIN_PROVIDERS = [provider, server_builtin]


def menu_item() -> dict[str, Any]:
    return {"id": "ollama", "title": i18n.titles("ollama.menu"), "url": "/ai/ollama/", "icon": "ollama"}


def start(context: AIContext) -> OllamaService:
    service = OllamaService(context)
    workbench.start(service, context)
    server_service.start(service, context)
    service.start()
    return service


def stop(service: OllamaService) -> None:
    """Stops the endpoint watchers; pulls and imports are tasks, which the task runner stops."""
    server_service.stop(service)
    service.stop()


add_commands = cli.add_commands


FEATURE = Feature(
    name="ollama",
    order=10,
    kind="ollama",
    start=start,
    stop=stop,
    builtin_providers=tuple(BUILTIN_PROVIDERS),
    menu=menu_item,
    topics=(
        Topic(
            "ollama",
            "ollama",
            (
                Event(
                    "ollama",
                    '`{"type", "endpoint", "fetched_at", …}`: `model_added` and `model_changed` (with `model`,'
                    " as `GET /ollama/models` lists it) and `model_removed` (with its `name`), changes made"
                    " outside the panel included; `running` (`models`: the loaded ones with `expires_at`,"
                    " `expires_in` and `vram_share`); `status` (the endpoint reachable or not)",
                ),
            ),
        ),
        Topic(
            "ollama:server",
            "ollama:server",
            (
                Event(
                    "ollama_server",
                    '`{"state"}`: the local Ollama server\'s state (as `GET /ollama/server`) when it changes',
                ),
            ),
        ),
        Topic(
            "ollama:server:logs",
            "ollama:server:logs",
            (
                Event(
                    "ollama_server_log",
                    '`{"lines", "skipped"}`: new lines of the local Ollama server\'s log, and how many were left'
                    " out to keep up",
                ),
            ),
        ),
    ),
    views=views,
    api_tag="ollama",
    api_title="Ollama models",
    guide="ollama.md",
    add_commands=add_commands,
    overview=ollama_overview,
    offers=(OllamaEndpoints, LoadedModels),
)
