"""Fixtures of the multi-process tests: a real Redis, a stand-in Ollama, and panels that share
one data dir through ``OPEN1PANEL_AI_REDIS_URL``."""

from __future__ import annotations

import pytest

from tests.conftest import TOKEN, free_port
from tests.multiprocess.redis_server import RedisServer
from tests.ollama_standin import OllamaStandIn


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """Debian's ``redis-server`` on a free loopback port, with nothing written to disk."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture
def standin(tmp_path):
    with OllamaStandIn(tmp_path / "models", pull_speed=2_000_000) as server:
        yield server


@pytest.fixture
def shared_env(redis_url, standin):
    """The settings every panel process of a test shares. Ollama's models folder stays out of
    sight, so a pull is one request to Ollama (no disk check reads the start of it first)."""
    return {
        "OPEN1PANEL_AI_TOKEN": TOKEN,
        "OPEN1PANEL_AI_REDIS_URL": redis_url,
        "OLLAMA_HOST": standin.url,
        "OPEN1PANEL_AI_GPU_PROVIDER": "cpu",
        "OPEN1PANEL_AI_GPU_INTERVAL": "0.5",
        "OPEN1PANEL_AI_THREADS": "32",
    }


@pytest.fixture
def mcp_port():
    """A port of its own for an MCP server, away from the range other panels share."""
    return free_port()
