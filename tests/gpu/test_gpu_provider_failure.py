"""A GPU provider whose ``sample()`` raises: ``GET /gpu`` answers 503 with the provider's words,
history and ``/metrics`` still answer, and the sampler logs the failure and keeps sampling, so
pushes and history resume as soon as the provider reads again."""

import threading

import pytest

from hookspecs import hookimpl
from tests.conftest import TOKEN
from tests.helpers import wait_for


class FlakyGPU:
    """A provider that raises while ``broken`` is set and reads one GPU otherwise; ``samples``
    counts the calls of ``sample()``, failing or not."""

    name = "flaky"
    broken = threading.Event()
    samples = 0
    _counting = threading.Lock()

    def __init__(self, settings):
        pass

    def probe(self):
        pass

    def sample(self):
        with FlakyGPU._counting:
            FlakyGPU.samples += 1
        if self.broken.is_set():
            raise OSError("flaky-smi: device or resource busy")
        return {
            "devices": [
                {
                    "index": 0,
                    "name": "Flaky F1",
                    "uuid": "FL-0",
                    "lost": False,
                    "unsupported": [],
                    "utilization_gpu": 12,
                }
            ],
            "processes": [],
            "versions": {},
        }

    def checks(self):
        return [{"name": "flaky-smi", "ok": True, "detail": "found", "fix": ""}]


class FlakyPlugin:
    @hookimpl
    def ai_gpu_providers(self):
        return [FlakyGPU]


@pytest.fixture
def flaky_host(make_host, panel_env):
    """A panel whose GPU provider starts out failing; sampling every 0.5 s."""
    panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "flaky")
    panel_env.setenv("OPEN1PANEL_AI_GPU_INTERVAL", "0.5")
    panel_env.setenv("OPEN1PANEL_AI_GPU_HISTORY_INTERVAL", "0.5")
    FlakyGPU.broken.set()
    FlakyGPU.samples = 0
    yield make_host(("flaky", FlakyPlugin()))
    FlakyGPU.broken.clear()


def test_the_api_answers_503_with_the_providers_error_and_recovers(flaky_host, auth_headers):
    client = flaky_host.app.test_client()
    response = client.get("/api/v2/ai/gpu", headers=auth_headers)
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "gpu_provider_failed"
    assert "'flaky'" in error["message"] and "flaky-smi: device or resource busy" in error["message"]
    assert error["details"]["provider"] == "flaky"
    assert error["details"]["error"] == "OSError: flaky-smi: device or resource busy"
    assert "/gpu/checks" in error["details"]["fix"]
    assert client.get("/api/v2/ai/gpu/history", headers=auth_headers).status_code == 200
    metrics = client.get("/api/v2/ai/metrics", headers=auth_headers)
    assert metrics.status_code == 200 and b"DCGM" not in metrics.data
    FlakyGPU.broken.clear()
    response = client.get("/api/v2/ai/gpu", headers=auth_headers)
    assert response.status_code == 200 and response.get_json()["devices"][0]["name"] == "Flaky F1"


def test_the_sampler_logs_the_failure_and_keeps_sampling(flaky_host, auth_headers, caplog):
    socketio = flaky_host.socketio
    listener = socketio.test_client(flaky_host.app, namespace="/ai", auth={"token": TOKEN})
    listener.emit("subscribe", {"topic": "gpu"}, namespace="/ai")

    def failures():  # the sampler starts with the panel, so its first tick may log during setup
        return [
            record.getMessage()
            for when in ("setup", "call")
            for record in caplog.get_records(when)
            if record.getMessage().startswith("the GPU provider failed")
        ]

    wait_for(failures, timeout=10, what="the first failure to be logged")
    failed_so_far = FlakyGPU.samples
    wait_for(lambda: FlakyGPU.samples >= failed_so_far + 2, timeout=10, what="two more failing samples")
    assert [e for e in listener.get_received("/ai") if e["name"] == "gpu"] == []
    assert failures() == ["the GPU provider failed: OSError: flaky-smi: device or resource busy"]

    FlakyGPU.broken.clear()
    events = []

    def pushed_twice():
        for event in listener.get_received("/ai"):
            if event["name"] == "gpu":
                events.append(event["args"][0])
        return len(events) >= 2

    wait_for(pushed_twice, timeout=10, what="two pushes once the provider reads again")
    assert events[-1]["provider"] == "flaky" and events[-1]["devices"][0]["utilization_gpu"] == 12
    history = flaky_host.app.test_client().get("/api/v2/ai/gpu/history", headers=auth_headers).get_json()
    assert [series["device"] for series in history["devices"]] == ["FL-0"]
