"""The built-in ways to run the local Ollama server, offered through the provider hook."""

from __future__ import annotations

from hookspecs import hookimpl
from hookspecs.ai import OllamaServerProvider
from open1panel_ai.ollama.server.supervised import SupervisedServer
from open1panel_ai.ollama.server.systemd import SystemdServer


@hookimpl(trylast=True)
def ai_ollama_server_providers() -> list[type[OllamaServerProvider]]:
    return [SystemdServer, SupervisedServer]
