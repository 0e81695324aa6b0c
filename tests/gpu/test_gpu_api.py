"""The GPU API on a standalone host: the current sample in GPU and CPU mode, history ranges,
the compatibility check, /metrics behind auth, and the sampler pushing only to listeners.
The parts fed by the Ollama and MCP services are in ``test_gpu_with_ollama_and_mcp.py``."""

import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hookspecs import hookimpl
from tests.conftest import TOKEN
from tests.gpu import fake_pynvml as fake
from tests.gpu.fake_pynvml import FakeNVML


@pytest.fixture
def gpu_host(machine, make_host, panel_env):
    panel_env.setenv("OPEN1PANEL_AI_GPU_INTERVAL", "0.5")
    panel_env.setenv("OPEN1PANEL_AI_GPU_HISTORY_INTERVAL", "0")
    # The alert rules read the GPU too (tests/alerts covers that); here only the sampler does.
    panel_env.setenv("OPEN1PANEL_AI_ALERTS_INTERVAL", "86400")
    return make_host()


@pytest.fixture
def gpu_api(gpu_host, auth_headers):
    client = gpu_host.app.test_client()

    def call(method, path, **kwargs):
        response = getattr(client, method)("/api/v2/ai" + path, headers=auth_headers, **kwargs)
        return response.status_code, response.get_json()

    return call


@pytest.fixture
def swap_service(gpu_host):
    """Stand a failing object in for another feature's service (a failure the real one cannot
    be made to show); the real one is back before the host stops."""
    services = gpu_host.app.extensions["open1panel_ai"].services
    originals = {}

    def swap(name, service):
        originals.setdefault(name, services.get(name))
        services[name] = service

    yield swap
    for name, service in originals.items():
        if service is None:
            services.pop(name, None)
        else:
            services[name] = service


def test_the_current_sample_reads_every_gpu(gpu_api):
    status, sample = gpu_api("get", "/gpu")
    assert status == 200
    assert sample["mode"] == "gpu" and sample["provider"] == "nvml" and sample["interval"] == 0.5
    assert [d["name"] for d in sample["devices"]] == [
        "NVIDIA A100-SXM4-80GB",
        "NVIDIA GeForce RTX 4090",
        "NVIDIA H100 80GB HBM3",
    ]
    assert sample["devices"][1]["fan_speed"] is None and "fan_speed" in sample["devices"][1]["unsupported"]
    assert sample["versions"] == {"driver": "550.54.15", "cuda": "12.4"}
    assert sample["cpu"] is None and sample["reason"] is None and sample["ollama_cpu_models"] == []
    assert {p["pid"] for p in sample["processes"]} >= {4_194_999}


@pytest.fixture
def quiet_gpu_host(machine, make_host, panel_env):
    """A host whose samples stay fresh for 30 s and that samples only when asked."""
    panel_env.setenv("OPEN1PANEL_AI_GPU_INTERVAL", "30")
    panel_env.setenv("OPEN1PANEL_AI_GPU_HISTORY_INTERVAL", "0")
    panel_env.setenv("OPEN1PANEL_AI_ALERTS_INTERVAL", "86400")
    return make_host()


def ask_at_once(host, headers, path, count):
    """Send ``count`` requests for ``path`` at once, each from a thread of its own; their answers."""
    answers, start = [], threading.Barrier(count)

    def ask():
        client = host.app.test_client()
        start.wait()
        answers.append(client.get("/api/v2/ai" + path, headers=headers).get_json())

    threads = [threading.Thread(target=ask) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_requests_that_find_a_sample_being_taken_answer_that_one(quiet_gpu_host, auth_headers):
    """Under load the sampler runs late; requests that then find the latest sample stale must
    not queue up to take one each (one provider read and one history write apiece), but wait
    for the sample under way and answer it."""
    service = quiet_gpu_host.app.extensions["open1panel_ai"].services["gpu"]
    provider = service.provider()
    taken = []
    read = provider.sample

    def slow_read():
        taken.append(threading.current_thread().name)
        time.sleep(0.3)  # a slow driver: the other requests arrive while it reads
        return read()

    provider.sample = slow_read
    service._latest = None  # stale, as when the sampler is late
    answers = ask_at_once(quiet_gpu_host, auth_headers, "/gpu", 12)
    assert len(taken) == 1
    assert len(answers) == 12 and len({answer["time"] for answer in answers}) == 1


def test_requests_answer_the_latest_sample_at_once_while_a_new_one_is_taken(quiet_gpu_host, auth_headers):
    """Once a sample exists, a request that finds it stale while the next one is being taken
    answers it at once, its ``time`` saying how old it is: under load the provider's read and
    the history's write may take seconds, and no request waits for them."""
    service = quiet_gpu_host.app.extensions["open1panel_ai"].services["gpu"]
    stale = service.sample()
    stale["time"] -= 60  # as when the sampler is late
    provider = service.provider()
    read, reading, release = provider.sample, threading.Event(), threading.Event()

    def held_read():
        reading.set()
        release.wait(10)  # held until the requests below have their answers
        return read()

    provider.sample = held_read
    sampler = threading.Thread(target=service.sample)
    sampler.start()
    try:
        assert reading.wait(10)
        answers = ask_at_once(quiet_gpu_host, auth_headers, "/gpu", 8)
        answered_while_reading = not release.is_set()
    finally:
        release.set()
        sampler.join()
    assert answered_while_reading
    assert [answer["time"] for answer in answers] == [stale["time"]] * 8
    assert service.current()["time"] > stale["time"]  # the new sample, once taken


def test_the_last_hour_is_read_once_per_interval_however_many_ask(quiet_gpu_host, auth_headers):
    """``GET /gpu/history`` without a range, the dearest read of the API, is read once per
    sampling interval: clients asking at once, or again within the interval, get that answer;
    once it is older, one request reads it again while the others get the one before. An
    explicit range is read every time."""
    service = quiet_gpu_host.app.extensions["open1panel_ai"].services["gpu"]
    service.sample()  # one sample in the history
    reads = []
    query = service.history.query

    def slow_query(*args):
        reads.append(args)
        time.sleep(0.2)  # the other requests arrive while it reads
        return query(*args)

    service.history.query = slow_query
    answers = ask_at_once(quiet_gpu_host, auth_headers, "/gpu/history", 8)
    assert len(reads) == 1
    assert len(answers) == 8 and all(answer == answers[0] for answer in answers)
    assert len(answers[0]["devices"]) == 3 and answers[0]["until"] - answers[0]["since"] == 3600
    client = quiet_gpu_host.app.test_client()
    client.get("/api/v2/ai/gpu/history", headers=auth_headers)
    assert len(reads) == 1  # within the interval
    client.get(f"/api/v2/ai/gpu/history?since={answers[0]['since']}", headers=auth_headers)
    assert len(reads) == 2  # a range of its own
    service._history_answer["until"] -= 31  # an interval later: one request reads it again,
    old = service._history_answer["until"]  # and those that come meanwhile get the one before
    answers = ask_at_once(quiet_gpu_host, auth_headers, "/gpu/history", 4)
    assert len(reads) == 3
    assert {answer["until"] for answer in answers} <= {old, service._history_answer["until"]}
    assert service._history_answer["until"] > old


def test_without_a_driver_the_cpu_provider_takes_over_and_says_why(install_nvml, make_host, panel_env):
    install_nvml(FakeNVML(init_error=fake.NVML_ERROR_LIBRARY_NOT_FOUND))
    client = make_host().app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    sample = client.get("/api/v2/ai/gpu", headers=headers).get_json()
    assert sample["mode"] == "cpu" and sample["provider"] == "cpu" and sample["devices"] == []
    assert "libnvidia-ml.so.1" in sample["reason"] and "Install the NVIDIA driver" in sample["fix"]
    assert sample["cpu"]["memory_total"] > 0
    status = client.get("/api/v2/ai/status", headers=headers).get_json()
    gpu = next(p for p in status["providers"] if p["kind"] == "gpu")
    assert gpu["provider"] == "cpu"
    nvml = next(c for c in gpu["candidates"] if c["name"] == "nvml")
    assert nvml["usable"] is False and "libnvidia-ml.so.1" in nvml["reason"]
    checks = client.get("/api/v2/ai/gpu/checks", headers=headers).get_json()
    assert checks["provider"] == "cpu"
    assert [c["name"] for c in checks["checks"]] == ["library", "binding", "driver"]


def test_history_returns_the_recorded_samples_and_rejects_bad_ranges(gpu_api):
    for _ in range(3):
        gpu_api("get", "/gpu")
        time.sleep(0.5)
    status, history = gpu_api("get", f"/gpu/history?since={time.time() - 60}")
    assert status == 200 and history["tier"] == "raw"
    series = {s["device"]: s for s in history["devices"]}
    assert set(series) == {
        "GPU-00000000-0000-0000-0000-000000000000",
        "GPU-11111111-1111-1111-1111-111111111111",
        "GPU-22222222-2222-2222-2222-222222222222",
    }
    a100 = series["GPU-00000000-0000-0000-0000-000000000000"]
    assert len(a100["times"]) >= 3 and a100["values"]["utilization_gpu"][-1] == 45
    status, week = gpu_api("get", f"/gpu/history?since={time.time() - 3 * 86400}")
    assert week["tier"] == "minute" and week["step"] == 60
    status, error = gpu_api("get", "/gpu/history?since=200&until=100")
    assert status == 400 and error["error"]["code"] == "bad_range"
    status, error = gpu_api("get", "/gpu/history?since=yesterday")
    assert status == 400 and "since" in error["error"]["details"]["fields"]


def test_metrics_need_auth_and_speak_prometheus(gpu_host):
    client = gpu_host.app.test_client()
    assert client.get("/api/v2/ai/metrics").status_code == 401
    response = client.get("/api/v2/ai/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.content_type.startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert len(families["DCGM_FI_DEV_GPU_UTIL"].samples) == 3


def test_a_failing_other_service_does_not_break_metrics(gpu_host, swap_service):
    class Broken:
        def running_everywhere(self):
            raise RuntimeError("endpoint down")

    swap_service("ollama", Broken())
    response = gpu_host.app.test_client().get("/api/v2/ai/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and b"DCGM_FI_DEV_GPU_UTIL" in response.data
    assert b"open1panel_ai_ollama" not in response.data


def test_the_gpu_routes_are_in_the_openapi_document(gpu_api):
    _, spec = gpu_api("get", "/openapi.json")
    for path in ("/gpu", "/gpu/history", "/gpu/checks", "/metrics"):
        assert path in spec["paths"], path


def gpu_events(client):
    return [e["args"][0] for e in client.get_received("/ai") if e["name"] == "gpu"]


def test_the_sampler_pushes_only_while_someone_listens(gpu_host):
    socketio = gpu_host.socketio
    listener = socketio.test_client(gpu_host.app, namespace="/ai", auth={"token": TOKEN})
    bystander = socketio.test_client(gpu_host.app, namespace="/ai", auth={"token": TOKEN})
    service = gpu_host.app.extensions["open1panel_ai"].services["gpu"]
    time.sleep(1.2)
    assert service.history.size() == {}  # nobody listens and idle sampling is off
    listener.emit("subscribe", {"topic": "gpu"}, namespace="/ai")
    deadline = time.monotonic() + 10
    events = []
    while len(events) < 2 and time.monotonic() < deadline:
        events += gpu_events(listener)
        time.sleep(0.1)
    assert len(events) >= 2 and events[-1]["mode"] == "gpu" and len(events[-1]["devices"]) == 3
    assert gpu_events(bystander) == []
    listener.emit("unsubscribe", {"topic": "gpu"}, namespace="/ai")
    time.sleep(0.8)
    gpu_events(listener)
    recorded = service.history.size()["raw"]
    time.sleep(1.5)
    assert gpu_events(listener) == [] and service.history.size()["raw"] == recorded


class VendorGPU:
    """A third-party provider (an AMD or Intel reader, say) with the fewest keys allowed."""

    name = "vendor"

    def __init__(self, settings):
        self.settings = settings

    def probe(self):
        pass

    def sample(self):
        return {
            "devices": [
                {
                    "index": 0,
                    "name": "Vendor X1",
                    "uuid": "VX-0",
                    "lost": False,
                    "unsupported": ["power_draw_w"],
                    "utilization_gpu": 7,
                    "power_draw_w": None,
                }
            ],
            "processes": [],
            "versions": {"driver": "1.0"},
        }

    def checks(self):
        return [{"name": "vendor-smi", "ok": True, "detail": "found", "fix": ""}]


class VendorPlugin:
    @hookimpl
    def ai_gpu_providers(self):
        return [VendorGPU]


def test_a_provider_plugin_goes_before_the_builtins_and_feeds_every_route(machine, make_host):
    host = make_host(("vendor", VendorPlugin()))
    client = host.app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    sample = client.get("/api/v2/ai/gpu", headers=headers).get_json()
    assert sample["provider"] == "vendor" and sample["mode"] == "gpu"
    assert sample["devices"][0]["name"] == "Vendor X1"
    checks = client.get("/api/v2/ai/gpu/checks", headers=headers).get_json()
    assert checks == {
        "provider": "vendor",
        "checks": [{"name": "vendor-smi", "ok": True, "detail": "found", "fix": ""}],
    }
    text = client.get("/api/v2/ai/metrics", headers=headers).get_data(as_text=True)
    assert "DCGM_FI_DEV_GPU_UTIL{Hostname=" in text and "DCGM_FI_DEV_POWER_USAGE{" not in text


def test_with_gpu_monitoring_off_the_routes_say_why(make_host, panel_env):
    panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "none")
    client = make_host().app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = client.get("/api/v2/ai/gpu", headers=headers)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "provider_unavailable"
    assert "turned off" in response.get_json()["error"]["message"]
    checks = client.get("/api/v2/ai/gpu/checks", headers=headers).get_json()
    assert checks["provider"] is None and checks["checks"][0]["name"] == "library"
    metrics = client.get("/api/v2/ai/metrics", headers=headers)
    assert metrics.status_code == 200 and b"DCGM" not in metrics.data


def test_a_bad_interval_setting_falls_back_to_the_default(machine, make_host, panel_env, caplog):
    panel_env.setenv("OPEN1PANEL_AI_GPU_INTERVAL", "fast")
    panel_env.setenv("OPEN1PANEL_AI_GPU_HISTORY_INTERVAL", "0.01")
    service = make_host().app.extensions["open1panel_ai"].services["gpu"]
    assert (service.interval, service.idle_interval) == (2.0, 10.0)
    assert "OPEN1PANEL_AI_GPU_INTERVAL='fast'" in caplog.text


def test_a_provider_that_fails_every_sample_is_logged_once(make_host, panel_env, caplog):
    class Failing(VendorGPU):
        name = "failing"

        def sample(self):
            raise RuntimeError("vendor tool crashed")

    class FailingPlugin:
        @hookimpl
        def ai_gpu_providers(self):
            return [Failing]

    panel_env.setenv("OPEN1PANEL_AI_GPU_HISTORY_INTERVAL", "0.5")
    make_host(("failing", FailingPlugin()))
    deadline = time.monotonic() + 10
    while "the GPU provider failed" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.2)  # at least two more failing ticks
    assert caplog.text.count("the GPU provider failed") == 1
    assert "vendor tool crashed" in caplog.text
