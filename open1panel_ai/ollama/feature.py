"""How the Ollama feature plugs into the AI module (see :mod:`open1panel_ai.features`)."""

from __future__ import annotations

from open1panel_ai import i18n
from open1panel_ai.ollama import cli, provider, views  # noqa: F401  (views attaches the routes)
from open1panel_ai.ollama.service import OllamaService

BUILTIN_PROVIDERS = [provider]


def menu_item():
    return {"id": "ollama", "title": i18n.titles("ollama.menu"), "url": "/ai/ollama/", "icon": "ollama"}


def start(context):
    return OllamaService(context)


def stop(service):
    """Pulls and imports are tasks; the task runner stops them."""


add_commands = cli.add_commands
