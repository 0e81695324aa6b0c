"""Fixtures of the Ollama tests: a stand-in Ollama and a panel whose ``local`` endpoint is it."""

from __future__ import annotations

import pytest

from tests.helpers import wait_for
from tests.ollama_standin import OllamaStandIn


@pytest.fixture
def ollama(tmp_path):
    """The stand-in, its state dir doubling as the models folder the panel can see."""
    with OllamaStandIn(tmp_path / "ollama-models", pull_speed=20_000_000) as server:
        yield server


@pytest.fixture
def ollama_env(panel_env, ollama):
    panel_env.setenv("OLLAMA_HOST", ollama.url)
    panel_env.setenv("OLLAMA_MODELS", str(ollama.state_dir))
    panel_env.setenv("OPEN1PANEL_AI_OLLAMA_PULL_BACKOFF", "0.2")
    panel_env.setenv("OPEN1PANEL_AI_OLLAMA_PULL_RETRIES", "2")
    return panel_env


@pytest.fixture
def ollama_api(ollama_env, api):
    return api


@pytest.fixture
def wait_task(api):
    """Poll ``GET /tasks/<id>`` until ``predicate`` holds (by default: the task ended)."""

    def wait(task_id, predicate=lambda t: t["status"] not in ("queued", "running"), timeout=30):
        def task_there():
            status, task = api("get", f"/tasks/{task_id}")
            assert status == 200, task
            return task if predicate(task) else None

        return wait_for(task_there, timeout, what=f"task {task_id} reaching the state asked for")

    return wait
