"""Fixtures of the Ollama server tests: the stand-in installed as an ``ollama`` program, a panel
that runs it supervised, and a GPU provider plugin that offers one known GPU."""

from __future__ import annotations

import pytest

from tests.conftest import free_port
from tests.ollama_server.server_helpers import OneGPUPlugin
from tests.ollama_server.standin_serve import install


@pytest.fixture
def ollama_program(tmp_path):
    """The stand-in as an ``ollama`` program (``ollama serve`` reads its environment)."""
    return install(tmp_path / "bin")


@pytest.fixture
def server_env(panel_env, ollama_program, tmp_path):
    """A panel that runs ``ollama serve`` itself, quick to give up and to roll back."""
    port = free_port()
    panel_env.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
    panel_env.setenv("OLLAMA_MODELS", str(tmp_path / "models"))
    panel_env.setenv("OPEN1PANEL_AI_OLLAMA_SERVER_PROVIDER", "supervised")
    panel_env.setenv("OPEN1PANEL_AI_OLLAMA_SERVER_BIN", str(ollama_program))
    panel_env.setenv("OPEN1PANEL_AI_OLLAMA_SERVER_WAIT", "10")
    panel_env.setenv("OPEN1PANEL_AI_OLLAMA_SERVER_BACKOFF", "0.2")
    panel_env.setenv("OPEN1PANEL_AI_OLLAMA_SERVER_TRIES", "2")
    panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "one-gpu")
    return panel_env


@pytest.fixture
def server_api(server_env, make_host, auth_headers):
    host = make_host(("one-gpu", OneGPUPlugin()))
    client = host.app.test_client()

    def call(method, path, **kwargs):
        response = getattr(client, method)("/api/v2/ai" + path, headers=auth_headers, **kwargs)
        return response.status_code, response.get_json()

    return call
