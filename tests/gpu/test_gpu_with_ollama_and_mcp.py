"""The GPU feature with the real Ollama and MCP services: Ollama models on the CPU in the
sample, the Ollama and MCP gauges of ``/metrics``, a hung Ollama that delays no sample, and a
failing GPU provider that leaves the other gauges in place.

Ollama is the HTTP stand-in of ``tests/ollama_standin.py``; the MCP server is the real
``mcp-server-time``, created and started through the panel's MCP API."""

import contextlib
import os
import signal
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hookspecs import hookimpl
from open1panel_ai.gpu import service as gpu_service
from tests.conftest import TOKEN, free_port
from tests.helpers import TIME_SERVER, wait_for
from tests.mcp.conftest import FAST, wait_status
from tests.ollama_standin import OllamaStandIn


@pytest.fixture
def gpu_env(machine, panel_env, monkeypatch):
    """Quick sampling, no idle sampling, and an Ollama list that may be refreshed every sample."""
    panel_env.setenv("OPEN1PANEL_AI_GPU_INTERVAL", "0.5")
    panel_env.setenv("OPEN1PANEL_AI_GPU_HISTORY_INTERVAL", "0")
    # The alert rules ask Ollama and the GPU too (tests/alerts covers that); here only the
    # sampler does, so a hung Ollama is asked once.
    panel_env.setenv("OPEN1PANEL_AI_ALERTS_INTERVAL", "86400")
    monkeypatch.setattr(gpu_service, "OLLAMA_REFRESH_SECONDS", 0.2)
    return panel_env


@pytest.fixture
def ollama(tmp_path, gpu_env):
    """The stand-in as the panel's ``local`` endpoint, with one model for the GPU and one for
    the CPU."""
    with OllamaStandIn(tmp_path / "ollama-models") as server:
        gpu_env.setenv("OLLAMA_HOST", server.url)
        gpu_env.setenv("OLLAMA_MODELS", str(server.state_dir))
        server.seed("llama3.2", [3000], family="llama")
        server.seed("qwen2:0.5b", [500], family="qwen2")
        yield server


@pytest.fixture
def call(auth_headers):
    """``call(host, method, path, **kwargs)`` → (status, JSON or text) on the AI API."""

    def request(host, method, path, **kwargs):
        response = getattr(host.app.test_client(), method)("/api/v2/ai" + path, headers=auth_headers, **kwargs)
        body = response.get_json(silent=True)
        return response.status_code, response.get_data(as_text=True) if body is None else body

    return request


@pytest.fixture
def socketio_events():
    """``socketio_events(host, topic)`` subscribes a Socket.IO client to ``topic`` and returns a
    function giving every event of that name received so far."""
    clients = []

    def subscribe(host, topic):
        client = host.socketio.test_client(host.app, namespace="/ai", auth={"token": TOKEN})
        clients.append(client)
        client.emit("subscribe", {"topic": topic}, namespace="/ai")
        received = []

        def events():
            received.extend(e["args"][0] for e in client.get_received("/ai") if e["name"] == topic)
            return list(received)

        return events

    yield subscribe
    for client in clients:
        client.disconnect(namespace="/ai")


def load_both(host, call):
    assert call(host, "post", "/ollama/models/llama3.2/load", json={"keep_alive": "10m"})[0] == 204
    assert call(host, "post", "/ollama/models/qwen2:0.5b/load", json={"keep_alive": "10m", "cpu_only": True})[0] == 204
    status, running = call(host, "get", "/ollama/running?endpoint=local")
    assert status == 200
    return {m["name"]: m for m in running["models"]}


def families(text: str) -> dict:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def wait_sample(host, call, predicate, timeout=15):
    """Poll ``GET /gpu`` until ``predicate(sample)`` holds; return the sample."""

    def matching_sample():
        status, sample = call(host, "get", "/gpu")
        assert status == 200, sample
        return sample if predicate(sample) else None

    return wait_for(matching_sample, timeout, interval=0.2, what="a GPU sample that matches")


def test_ollama_models_on_the_cpu_come_from_the_ollama_service(ollama, make_host, call):
    host = make_host()
    loaded = load_both(host, call)
    assert loaded["qwen2:0.5b"]["size_vram"] == 0 and loaded["llama3.2:latest"]["size_vram"] > 0
    sample = wait_sample(host, call, lambda s: s["ollama_cpu_models"])
    assert sample["mode"] == "gpu"
    assert sample["ollama_cpu_models"] == [
        {"endpoint": "local", "name": "qwen2:0.5b", "size": loaded["qwen2:0.5b"]["size"]}
    ]
    # Unloaded, it leaves the list on a later refresh.
    assert call(host, "post", "/ollama/models/qwen2:0.5b/unload")[0] == 204
    wait_sample(host, call, lambda s: s["ollama_cpu_models"] == [])


def test_metrics_carry_every_loaded_ollama_model(ollama, make_host, call):
    host = make_host()
    loaded = load_both(host, call)
    status, text = call(host, "get", "/metrics")
    assert status == 200
    metrics = families(text)
    assert [s.value for s in metrics["open1panel_ai_ollama_models_loaded"]] == [2]
    memory = {
        (s.labels["endpoint"], s.labels["model"]): s.value for s in metrics["open1panel_ai_ollama_model_memory_bytes"]
    }
    vram = {
        (s.labels["endpoint"], s.labels["model"]): s.value for s in metrics["open1panel_ai_ollama_model_vram_bytes"]
    }
    assert memory == {("local", name): model["size"] for name, model in loaded.items()}
    assert vram == {("local", "llama3.2:latest"): loaded["llama3.2:latest"]["size"], ("local", "qwen2:0.5b"): 0}
    assert all(set(s.labels) == {"endpoint", "model"} for s in metrics["open1panel_ai_ollama_model_memory_bytes"])
    assert len(metrics["DCGM_FI_DEV_GPU_UTIL"]) == 3  # the GPUs are still there
    # Unloaded models drop out of the next scrape.
    assert call(host, "post", "/ollama/models/llama3.2/unload")[0] == 204
    metrics = families(call(host, "get", "/metrics")[1])
    assert [s.value for s in metrics["open1panel_ai_ollama_models_loaded"]] == [1]
    assert [s.labels["model"] for s in metrics["open1panel_ai_ollama_model_vram_bytes"]] == ["qwen2:0.5b"]


def test_a_hung_ollama_holds_up_no_sample(gpu_env, make_host, call, socketio_events):
    """Ollama accepts the connection and never answers: the sampler keeps pushing samples
    and ``GET /gpu`` keeps answering while the list refresh waits, and only one waits."""
    with socket.create_server(("127.0.0.1", 0)) as hung:
        gpu_env.setenv("OLLAMA_HOST", f"http://127.0.0.1:{hung.getsockname()[1]}")
        host = make_host()
        events = socketio_events(host, "gpu")
        hung.settimeout(15)
        asked, _ = hung.accept()  # the refresh the first sample started, now waiting
        with asked:
            first = len(events())
            deadline = time.monotonic() + 15
            while len(events()) < first + 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            pushed = events()
            assert len(pushed) >= first + 3, "the sampler stopped while Ollama hung"
            assert all(e["ollama_cpu_models"] == [] for e in pushed)
            status, sample = call(host, "get", "/gpu")
            assert status == 200 and len(sample["devices"]) == 3
            hung.setblocking(False)
            with pytest.raises(BlockingIOError):
                hung.accept()  # no second refresh while the first one waits


def test_a_failing_gpu_provider_leaves_the_other_gauges(ollama, make_host, call, caplog):
    class Failing:
        name = "failing"

        def __init__(self, settings):
            pass

        def probe(self):
            pass

        def sample(self):
            raise RuntimeError("vendor tool crashed")

        def checks(self):
            return []

    class FailingPlugin:
        @hookimpl
        def ai_gpu_providers(self):
            return [Failing]

    host = make_host(("failing", FailingPlugin()))
    load_both(host, call)
    for _ in range(3):
        status, text = call(host, "get", "/metrics")
        assert status == 200, text
        metrics = families(text)
        assert not any(name.startswith(("DCGM", "open1panel_ai_gpu")) for name in metrics)
        assert [s.value for s in metrics["open1panel_ai_ollama_models_loaded"]] == [2]
        assert "open1panel_ai_mcp_server_up" in metrics
    assert caplog.text.count("the GPU provider failed") == 1
    assert "vendor tool crashed" in caplog.text


def mcp_call(host, call, method, path, **kwargs):
    return call(host, method, "/mcp" + path, **kwargs)


def test_mcp_gauges_follow_a_real_server(gpu_env, make_host, call):
    for key, value in FAST.items():
        gpu_env.setenv(key, value)
    host = make_host()

    def api(method, path, **kwargs):
        return mcp_call(host, call, method, path, **kwargs)

    def up():
        samples = families(call(host, "get", "/metrics")[1])["open1panel_ai_mcp_server_up"]
        return {s.labels["name"]: (s.labels, s.value) for s in samples}

    # Ports of their own, away from the range other panels on this machine hand out.
    status, time_server = api("post", "/servers", json={"name": "time", "command": TIME_SERVER, "port": free_port()})
    assert status == 201, time_server
    status, idle = api("post", "/servers", json={"name": "idle", "command": TIME_SERVER, "port": free_port()})
    assert status == 201, idle
    assert up() == {
        "idle": ({"id": idle["id"], "name": "idle", "status": "stopped"}, 0),
        "time": ({"id": time_server["id"], "name": "time", "status": "stopped"}, 0),
    }

    assert api("post", f"/servers/{time_server['id']}/start")[0] == 200
    running = wait_status(api, time_server["id"], "running")
    assert up()["time"] == ({"id": time_server["id"], "name": "time", "status": "running"}, 1)
    assert up()["idle"][1] == 0

    # Frozen, the server lives but fails its probe: unhealthy, and not up.
    os.killpg(running["pid"], signal.SIGSTOP)
    try:
        wait_status(api, time_server["id"], "unhealthy", timeout=15)
        labels, value = up()["time"]
        assert labels["status"] in ("unhealthy", "restarting") and value == 0
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone if it was restarted meanwhile
            os.killpg(running["pid"], signal.SIGCONT)

    assert api("post", f"/servers/{time_server['id']}/stop")[0] == 200
    wait_status(api, time_server["id"], "stopped")
    assert up()["time"] == ({"id": time_server["id"], "name": "time", "status": "stopped"}, 0)
