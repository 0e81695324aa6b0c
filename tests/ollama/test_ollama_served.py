"""The served panel (``open1panel-ai serve``): a pull survives ``kill -9`` of the panel, and the
``open1panel-ai models`` commands drive a running panel."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import TOKEN
from tests.ollama_standin import OllamaStandIn

pytestmark = pytest.mark.server


@pytest.fixture
def standin(tmp_path):
    with OllamaStandIn(tmp_path / "models", pull_speed=400_000) as server:
        yield server


def panel_env(standin):
    return {"OPEN1PANEL_AI_TOKEN": TOKEN, "OLLAMA_HOST": standin.url, "OLLAMA_MODELS": str(standin.state_dir)}


def test_a_pull_continues_by_itself_after_the_panel_is_killed(served, standin, tmp_path):
    standin.publish("llama3.2", [4_000_000])
    data_dir = tmp_path / "panel-data"
    panel = served(env=panel_env(standin), data_dir=data_dir)
    task = panel.api("POST", "/ollama/pulls", json={"name": "llama3.2"}).json()
    panel.wait_task(task["id"], lambda t: (t["completed"] or 0) > 800_000, timeout=60)
    os.killpg(panel.process.pid, signal.SIGKILL)  # the whole panel, workers included
    panel.process.wait()
    time.sleep(0.3)  # the stand-in notices the dropped stream and keeps what it has
    done_before = sum(
        json.loads(part.read_text())["Completed"]
        for part in (standin.state_dir / "blobs").glob("*-partial-[0-9]*")
        if part.suffix != ".tmp"
    )
    assert done_before > 800_000

    standin.pull_speed = 20_000_000
    again = served(env=panel_env(standin), data_dir=data_dir)
    task = again.wait_task(task["id"], lambda t: t["status"] not in ("queued", "running", "interrupted"), timeout=60)
    assert task["status"] == "succeeded"
    assert max(standin.pull_log[-1]["first_completed"].values()) >= done_before
    names = {m["name"] for m in again.api("GET", "/ollama/models").json()["models"]}
    assert "llama3.2:latest" in names


def test_the_models_commands_list_pull_show_and_remove(served, standin):
    standin.seed("qwen2:0.5b", [5000])
    standin.publish("tiny", [600_000])
    panel = served(env=panel_env(standin))
    env = {**os.environ, "OPEN1PANEL_AI_URL": panel.url, "OPEN1PANEL_AI_TOKEN": TOKEN}

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "open1panel_ai", "models", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    listed = run("list")
    assert listed.returncode == 0 and "qwen2:0.5b" in listed.stdout and "NAME" in listed.stdout
    pulled = run("pull", "ollama run tiny")
    assert pulled.returncode == 0, pulled.stderr
    assert "100.0%" in pulled.stdout
    shown = run("show", "tiny")
    assert shown.returncode == 0 and json.loads(shown.stdout)["details"]["format"] == "gguf"
    assert run("rm", "tiny").returncode == 0
    assert "tiny" not in run("list").stdout
    missing = run("pull", "no-such-model")
    assert missing.returncode == 1 and "was not found in the registry" in missing.stderr
    wrong = subprocess.run(
        [sys.executable, "-m", "open1panel_ai", "models", "list"],
        env={**env, "OPEN1PANEL_AI_TOKEN": "wrong"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode != 0 and "token" in wrong.stderr.lower()


def test_pull_progress_reaches_a_socketio_client_live_and_never_goes_backwards(served, standin):
    import socketio

    standin.publish("llama3.2", [1_500_000, 200_000])
    panel = served(env=panel_env(standin))
    client = socketio.Client(reconnection=False)
    events = []
    client.on("task", events.append, namespace="/ai")
    client.connect(panel.url, namespaces=["/ai"], transports=["websocket"], auth={"token": TOKEN})
    try:
        assert client.call("subscribe", {"topic": "tasks"}, namespace="/ai", timeout=5)["ok"] is True
        task = panel.api("POST", "/ollama/pulls", json={"name": "llama3.2"}).json()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            e["id"] == task["id"] and e["status"] == "succeeded" for e in events
        ):
            time.sleep(0.05)
    finally:
        client.disconnect()
    mine = [e for e in events if e["id"] == task["id"]]
    assert mine[-1]["status"] == "succeeded" and mine[-1]["percent"] == 100.0
    running = [e for e in mine if e["status"] == "running" and e["percent"] is not None]
    assert len(running) >= 3 and any(0 < e["percent"] < 100 for e in running)
    percents = [e["percent"] for e in running]
    assert percents == sorted(percents)
    assert any(e["bytes_per_second"] and e["eta_seconds"] for e in running)


def test_the_watchers_polls_are_not_logged(served, standin):
    """While a page watches an Ollama server, its watcher asks it twice a second; a line per
    request in the panel's log would fill it over months of uptime. Errors still show."""
    panel = served(env={**panel_env(standin), "OPEN1PANEL_AI_OLLAMA_WATCH_INTERVAL": "0.2"})
    first = panel.api("GET", "/ollama/models", params={"max_age": "0"}).json()["fetched_at"]
    time.sleep(1)
    assert panel.api("GET", "/ollama/models", params={"max_age": "0"}).json()["fetched_at"] != first  # polled again
    standin.stop()
    assert panel.api("GET", "/ollama/models", params={"max_age": "0"}).status_code == 503
    log = panel.log()
    assert "HTTP Request" not in log
    assert "did not answer its watcher" in log
