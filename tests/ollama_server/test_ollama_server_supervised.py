"""The supervised Ollama server for real: the tests' stand-in installed as ``ollama`` and run by
the panel, its settings applied, its models folder moved, a crash restarted, a bad setting
rolled back, and a crash loop ending in ``error`` with the server's last words."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import psutil

from open1panel_ai.ollama.server.supervised import SupervisedServer
from tests.conftest import TOKEN, free_port
from tests.helpers import wait_for
from tests.ollama_server.server_helpers import GPU_UUID, wait_state, wait_task
from tests.ollama_standin import OllamaStandIn


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def running(body):
    return body["state"]["status"] == "running" and body["version"]


def test_the_panel_runs_ollama_and_applies_settings_moves_models_restarts_and_rolls_back(
    server_api, server_env, tmp_path
):
    api = server_api
    old_models = tmp_path / "models"
    OllamaStandIn(old_models).seed("qwen2:0.5b", [300_000])  # a model in the folder it starts with

    # Started with the panel (ai_ollama_server_providers chose "supervised"), and answering.
    body = wait_state(api, running)
    assert body["mode"] == "supervised" and body["managed"] and body["version"] == "0.12.6"
    assert body["warnings"] == []
    assert [s["name"] for s in body["settings"]] == [
        "OLLAMA_MODELS",
        "OLLAMA_HOST",
        "OLLAMA_ORIGINS",
        "OLLAMA_KEEP_ALIVE",
        "OLLAMA_NUM_PARALLEL",
        "OLLAMA_MAX_LOADED_MODELS",
        "OLLAMA_MAX_QUEUE",
        "OLLAMA_FLASH_ATTENTION",
        "OLLAMA_KV_CACHE_TYPE",
        "OLLAMA_CONTEXT_LENGTH",
        "CUDA_VISIBLE_DEVICES",
    ]
    models_setting = body["settings"][0]
    assert models_setting["meaning"] and models_setting["inherited"] == str(old_models)
    assert body["gpus"] == [{"uuid": GPU_UUID, "index": 0, "name": "Test GPU"}]
    first_pid = body["state"]["pid"]
    # The panel's settings and secrets never reach the server's environment.
    assert not [name for name in environ_of(first_pid) if name.startswith("OPEN1PANEL_AI_")]

    # Settings applied, the models folder moved, as one task that waits for /api/version.
    new_models = tmp_path / "moved" / "models"
    status, task = api(
        "put",
        "/ollama/server/settings",
        json={
            "settings": {
                "OLLAMA_MODELS": str(new_models),
                "OLLAMA_NUM_PARALLEL": "3",
                "OLLAMA_FLASH_ATTENTION": "true",
                "OLLAMA_KV_CACHE_TYPE": "q8_0",
                "OLLAMA_KEEP_ALIVE": "-1",
                "CUDA_VISIBLE_DEVICES": GPU_UUID,
            },
            "unload": True,
            "move_models": True,
        },
    )
    assert status == 202 and task["kind"] == "ollama.server.apply"
    assert wait_task(api, task["id"])["status"] == "succeeded"
    body = wait_state(api, running)
    pid = body["state"]["pid"]
    assert pid != first_pid
    env = environ_of(pid)
    assert env["OLLAMA_MODELS"] == str(new_models) and env["OLLAMA_NUM_PARALLEL"] == "3"
    assert env["OLLAMA_FLASH_ATTENTION"] == "1" and env["OLLAMA_KV_CACHE_TYPE"] == "q8_0"
    assert env["CUDA_VISIBLE_DEVICES"] == GPU_UUID and env["OLLAMA_KEEP_ALIVE"] == "-1"
    values = {s["name"]: s["value"] for s in body["settings"]}
    assert values["OLLAMA_NUM_PARALLEL"] == "3" and values["OLLAMA_FLASH_ATTENTION"] == "1"
    assert (new_models / "manifests").is_dir() and not (old_models / "manifests").exists()
    status, models = api("get", "/ollama/models")
    assert status == 200 and [m["name"] for m in models["models"]] == ["qwen2:0.5b"]
    status, logs = api("get", "/ollama/server/logs?tail=50")
    assert status == 200
    assert any("server config" in line and "OLLAMA_NUM_PARALLEL:3" in line for line in logs["lines"])

    # A crash is restarted.
    os.kill(pid, signal.SIGKILL)
    body = wait_state(
        api, lambda b: running(b) and b["state"]["pid"] not in (None, pid) and b["state"]["restarts"] >= 1
    )

    # A bad setting (a port another program holds) is rolled back, with the server's words.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        status, task = api(
            "put",
            "/ollama/server/settings",
            json={
                "settings": {
                    "OLLAMA_MODELS": str(new_models),
                    "OLLAMA_NUM_PARALLEL": "3",
                    "OLLAMA_HOST": f"127.0.0.1:{busy}",
                }
            },
        )
        assert status == 202
        failed = wait_task(api, task["id"])
    assert failed["status"] == "failed"
    assert "previous settings were restored" in failed["error"]["message"]
    assert "address already in use" in failed["error"]["message"]
    body = wait_state(api, running)
    values = {s["name"]: s["value"] for s in body["settings"]}
    assert values["OLLAMA_HOST"] is None and values["OLLAMA_FLASH_ATTENTION"] == "1"
    assert environ_of(body["state"]["pid"])["OLLAMA_FLASH_ATTENTION"] == "1"

    # Stop and start; a restart may unload every model first.
    status, state = api("post", "/ollama/server/stop")
    assert status == 200 and state["status"] == "stopped"
    status, state = api("post", "/ollama/server/start")
    assert status == 200
    wait_state(api, running)
    status, state = api("post", "/ollama/server/restart?unload=true")
    assert status == 200 and state["status"] in ("starting", "running")
    wait_state(api, running)


def test_refused_settings_change_nothing(server_api, tmp_path):
    api = server_api
    before = wait_state(api, running)
    for settings, field in [
        ({"OLLAMA_DEBUG": "1"}, "OLLAMA_DEBUG"),
        ({"LD_PRELOAD": "/tmp/x.so"}, "LD_PRELOAD"),
        ({"OLLAMA_HOST=1": "x"}, "OLLAMA_HOST=1"),
        ({"OLLAMA_MODELS\nExecStartPre": "/bin/sh"}, "OLLAMA_MODELS\\nExecStartPre"),
        ({"OLLAMA_MODELS": "/data\nExecStartPre=/bin/sh"}, "OLLAMA_MODELS"),
        ({"OLLAMA_MODELS": "relative/models"}, "OLLAMA_MODELS"),
        ({"OLLAMA_MODELS": '/data/"x'}, "OLLAMA_MODELS"),
        ({"OLLAMA_ORIGINS": "http://a.example\r\nX: y"}, "OLLAMA_ORIGINS"),
        ({"OLLAMA_KEEP_ALIVE": "%h"}, "OLLAMA_KEEP_ALIVE"),
        ({"OLLAMA_NUM_PARALLEL": "0"}, "OLLAMA_NUM_PARALLEL"),
        ({"OLLAMA_KV_CACHE_TYPE": "q2"}, "OLLAMA_KV_CACHE_TYPE"),
        ({"OLLAMA_HOST": "https://0.0.0.0:443"}, "OLLAMA_HOST"),
        ({"CUDA_VISIBLE_DEVICES": "GPU-00000000-0000-0000-0000-000000000000"}, "CUDA_VISIBLE_DEVICES"),
        ({"CUDA_VISIBLE_DEVICES": "0"}, "CUDA_VISIBLE_DEVICES"),
        ({"OLLAMA_FLASH_ATTENTION": ["1"]}, "OLLAMA_FLASH_ATTENTION"),
    ]:
        status, body = api("put", "/ollama/server/settings", json={"settings": settings})
        assert status == 400, settings
        assert body["error"]["code"] == "validation_error"
        assert list(body["error"]["details"]["fields"]["settings"]) == [field], settings
    status, tasks = api("get", "/tasks?kind=ollama.server.apply")
    assert status == 200 and tasks["tasks"] == []
    after = wait_state(api, running)
    assert after["state"]["pid"] == before["state"]["pid"]
    assert all(s["value"] is None for s in after["settings"])


def test_a_crash_loop_ends_in_error_with_the_servers_last_lines(ollama_program, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    server = SupervisedServer(
        {
            "data_dir": str(tmp_path / "data"),
            "ollama_server_provider": "supervised",
            "ollama_server_bin": str(ollama_program),
            "ollama_server_backoff": "0.1",
            "ollama_server_tries": "2",
        },
        environ={**os.environ, "OLLAMA_MODELS": str(blocker / "models"), "OLLAMA_HOST": "127.0.0.1:1"},
    )
    server.probe()
    server.start()
    try:
        state = wait_for(
            lambda: server.state()["status"] == "error" and server.state(), 30, what="the crash loop giving up"
        )
    finally:
        server.detach()
    assert state["restarts"] == 2
    assert "Error: mkdir" in state["last_error"] and "not a directory" in state["last_error"]
    assert any("supervisor: ollama serve ended (3 in a row)" in line for line in server.logs(50))


def test_a_server_left_by_a_killed_panel_is_stopped_before_the_next_start(served, ollama_program, tmp_path):
    port = free_port()
    env = {
        "OPEN1PANEL_AI_TOKEN": TOKEN,
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": str(tmp_path / "models"),
        "OPEN1PANEL_AI_OLLAMA_SERVER_PROVIDER": "supervised",
        "OPEN1PANEL_AI_OLLAMA_SERVER_BIN": str(ollama_program),
    }

    def running_pid(panel):
        def check():
            body = panel.api("GET", "/ollama/server").json()
            return body["state"]["status"] == "running" and body["version"] and body["state"]["pid"]

        return wait_for(check, 30, interval=0.2, what="the server running")

    first = served(env=env, data_dir=tmp_path / "data")
    pid = running_pid(first)
    first.stop(signal.SIGKILL)
    assert psutil.pid_exists(pid)  # a killed panel cannot stop it, and it holds the port
    second = served(env=env, data_dir=tmp_path / "data")
    assert running_pid(second) != pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
