"""The built-in rules, driven by real parts: the fake NVML machine for the GPU rules, the
Ollama stand-in (and a port nobody answers) for Ollama, a pull that fails for tasks, a small
tmpfs filled up for the models disk, and a real nginx for domain bindings. Each rule raises one
alert per condition after its duration, keeps quiet within its quiet period, and tells the
channels when the condition clears."""

from __future__ import annotations

import ctypes
import os
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.alerts.conftest import alerts_of, channel, wait_alerts
from tests.conftest import free_port
from tests.domain.conftest import NginxServer
from tests.helpers import wait_for
from tests.ollama_standin import OllamaStandIn

RULES = [
    "gpu_temperature",
    "gpu_memory",
    "gpu_utilization",
    "gpu_lost",
    "mcp_failing",
    "mcp_sandbox",
    "task_failed",
    "ollama_unreachable",
    "disk_low",
    "domain_error",
]


@pytest.fixture
def ollama(tmp_path):
    with OllamaStandIn(tmp_path / "ollama-models", pull_speed=50_000_000) as server:
        yield server


@pytest.fixture
def host(alerts_env, machine, ollama, make_host):
    alerts_env.setenv("OLLAMA_HOST", ollama.url)
    alerts_env.setenv("OLLAMA_MODELS", str(ollama.state_dir))
    alerts_env.setenv("OPEN1PANEL_AI_GPU_INTERVAL", "0.5")
    return make_host()


def scrape(client, auth_headers) -> dict[str, list]:
    text = client.get("/api/v2/ai/metrics", headers=auth_headers).get_data(as_text=True)
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_every_rule_is_on_from_the_first_start_with_its_defaults(api, client, auth_headers):
    status, listing = api("get", "/alerts/rules")
    assert status == 200
    rules = {rule["id"]: rule for rule in listing["rules"]}
    assert list(rules) == RULES
    assert all(rule["enabled"] and rule["notify_resolved"] for rule in rules.values())
    assert rules["gpu_temperature"]["params"] == {"threshold": 85.0}
    assert rules["gpu_temperature"]["severity"] == "critical" and rules["gpu_temperature"]["for_seconds"] == 300
    assert rules["disk_low"]["params"] == {"min_free_percent": 10.0, "min_free_gib": 5.0}
    assert all(rule["quiet_seconds"] == 3600 and rule["defaults"]["enabled"] for rule in rules.values())
    enabled = {s.labels["rule"]: s.value for s in scrape(client, auth_headers)["open1panel_ai_alert_rule_enabled"]}
    assert enabled == {rule: 1 for rule in RULES}


def test_a_hot_gpu_raises_one_alert_after_its_duration_and_a_resolved_notice_once_it_cools(
    api, only, machine, receiver, client, auth_headers
):
    hook = channel(api, receiver)
    only("gpu_temperature", for_seconds=1.0, params={"threshold": 80})
    machine.gpus[0].temperature = 91
    started = time.monotonic()
    # Pending first: the condition holds, but not for the rule's duration yet.
    pending = wait_for(lambda: api("get", "/alerts/rules")[1]["rules"][0]["pending"] == 1, 5, what="pending")
    assert pending and alerts_of(api, "gpu_temperature") == []
    states = {s.labels["alertstate"] for s in scrape(client, auth_headers)["open1panel_ai_alert"]}
    assert states == {"pending"}
    [alert] = wait_alerts(api, "gpu_temperature")
    assert time.monotonic() - started >= 1.0
    assert alert["status"] == "firing" and alert["severity"] == "critical"
    assert alert["subject_key"] == "GPU-00000000-0000-0000-0000-000000000000"
    assert alert["subject"] == "GPU 0 (NVIDIA A100-SXM4-80GB)" and alert["value"] == 91
    assert alert["summary"] == "GPU 0 (NVIDIA A100-SXM4-80GB) is at 91 °C, above the limit of 80 °C."
    [firing] = receiver.wait("/webhook")
    assert firing.json["event"] == "firing" and firing.json["alert"]["id"] == alert["id"]
    [sample] = [s for s in scrape(client, auth_headers)["open1panel_ai_alert"]]
    assert sample.labels == {
        "rule": "gpu_temperature",
        "severity": "critical",
        "subject": "GPU 0 (NVIDIA A100-SXM4-80GB)",
        "alertstate": "firing",
    }
    time.sleep(0.6)  # several more evaluations while it stays hot: still one alert, one message
    assert len(alerts_of(api, "gpu_temperature")) == 1 and len(receiver.at("/webhook")) == 1

    machine.gpus[0].temperature = 60
    [resolved] = wait_alerts(api, "gpu_temperature", status="resolved")
    assert resolved["id"] == alert["id"] and resolved["resolved_at"]
    notices = receiver.wait("/webhook", 2)
    assert [n.json["event"] for n in notices] == ["firing", "resolved"]
    assert notices[1].json["alert"]["id"] == alert["id"] and notices[1].json["alert"]["status"] == "resolved"
    assert scrape(client, auth_headers).get("open1panel_ai_alert", []) == []

    def deliveries():
        found = api("get", f"/alerts/channels/{hook['id']}/deliveries")[1]["deliveries"]
        return [(d["event"], d["status"], d["attempts"]) for d in found]

    wait_for(
        lambda: deliveries() == [("resolved", "sent", 1), ("firing", "sent", 1)],
        5,
        what="both deliveries recorded as sent, once each",
    )


def test_the_quiet_period_folds_a_flapping_condition_into_one_alert(api, only, machine, receiver):
    channel(api, receiver)
    only("gpu_temperature", quiet_seconds=2.0, params={"threshold": 80})
    gpu = machine.gpus[1]
    gpu.temperature = 90
    wait_alerts(api, "gpu_temperature")
    gpu.temperature = 50
    wait_alerts(api, "gpu_temperature", status="resolved")
    fired_again_at = time.monotonic()
    gpu.temperature = 90  # back within the quiet period: no new alert, no message
    time.sleep(0.8)
    assert len(alerts_of(api, "gpu_temperature")) == 1
    assert [r.json["event"] for r in receiver.at("/webhook")] == ["firing", "resolved"]
    # Still hot when the quiet period ends: a new alert then.
    alerts = wait_alerts(api, "gpu_temperature", 2, timeout=10)
    assert alerts[0]["status"] == "firing" and time.monotonic() - fired_again_at >= 1.0
    assert [r.json["event"] for r in receiver.wait("/webhook", 3)] == ["firing", "resolved", "firing"]


def test_gpu_memory_utilisation_and_a_lost_gpu(api, only, machine):
    only("gpu_memory", "gpu_utilization", "gpu_lost", "gpu_temperature", params={})
    api("put", "/alerts/rules/gpu_memory", json={"params": {"threshold": 90}})
    api("put", "/alerts/rules/gpu_utilization", json={"params": {"threshold": 95}})
    machine.gpus[1].memory_used = machine.gpus[1].memory_total - 2**30  # 23 of 24 GiB: 95.8 %
    machine.gpus[0].utilization = (99, 60)
    machine.gpus[2].lost = True
    [memory] = wait_alerts(api, "gpu_memory")
    assert memory["subject"] == "GPU 1 (NVIDIA GeForce RTX 4090)" and memory["value"] == 95.8
    [busy] = wait_alerts(api, "gpu_utilization")
    assert busy["subject"].startswith("GPU 0 ") and busy["value"] == 99
    [lost] = wait_alerts(api, "gpu_lost")
    assert lost["severity"] == "critical" and lost["subject_key"] == "GPU-22222222-2222-2222-2222-222222222222"
    # A lost GPU gives no temperature: the temperature rule cannot tell, and stays quiet.
    assert alerts_of(api, "gpu_temperature") == []
    machine.gpus[2].lost = False
    wait_alerts(api, "gpu_lost", status="resolved")


def test_an_ollama_endpoint_unreachable_longer_than_its_duration(api, only):
    only("ollama_unreachable", for_seconds=0.5)
    gone = f"http://127.0.0.1:{free_port()}"
    assert api("post", "/ollama/endpoints", json={"name": "gone", "url": gone})[0] == 201
    [alert] = wait_alerts(api, "ollama_unreachable")
    assert alert["subject"] == "gone" and gone in alert["summary"] and "cannot be reached" in alert["summary"]
    assert [a["subject"] for a in alerts_of(api, "ollama_unreachable")] == ["gone"]  # local answers
    assert api("delete", "/ollama/endpoints/gone")[0] == 204  # the subject is gone: resolved
    wait_alerts(api, "ollama_unreachable", status="resolved")


def test_a_failed_pull_is_one_alert_resolved_when_a_retry_succeeds(api, only, ollama, receiver):
    channel(api, receiver)
    only("task_failed")
    status, started = api("post", "/ollama/pulls", json={"name": "qwen9:404b"})
    assert status == 202, started
    task_id = started["id"]
    [alert] = wait_alerts(api, "task_failed")
    assert alert["subject_key"] == task_id and alert["severity"] == "warning"
    assert alert["subject"] == "qwen9:404b@local"
    assert alert["summary"].startswith("Pulling qwen9:404b@local failed. Model 'qwen9:404b' was not found")
    ollama.publish("qwen9:404b", [1000])
    assert api("post", f"/tasks/{task_id}/retry")[0] == 200
    wait_for(lambda: api("get", f"/tasks/{task_id}")[1]["status"] == "succeeded", 15, what="the retry")
    wait_alerts(api, "task_failed", status="resolved")
    assert [r.json["event"] for r in receiver.wait("/webhook", 2)] == ["firing", "resolved"]


def _mount_tmpfs(folder, size):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"tmpfs", str(folder).encode(), b"tmpfs", 0, f"size={size}".encode()) != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({os.strerror(ctypes.get_errno())}); the disk rule "
            "needs a small file system of its own to fill"
        )
    return lambda: libc.umount2(str(folder).encode(), 2)  # MNT_DETACH


def test_a_models_disk_filled_below_its_limit(api, only, ollama, tmp_path):
    folder = tmp_path / "small-disk"
    folder.mkdir()
    unmount = _mount_tmpfs(folder, "4m")
    try:
        # Below 2 MiB free: this 4 MiB disk once filled, never the disk of the stand-in's folder.
        only("disk_low", params={"min_free_percent": 0, "min_free_gib": 0.002})
        status, added = api(
            "post", "/ollama/endpoints", json={"name": "small", "url": ollama.url, "models_dir": str(folder)}
        )
        assert status == 201, added
        time.sleep(0.5)
        assert alerts_of(api, "disk_low") == []
        (folder / "blob").write_bytes(b"\0" * 3 * 2**20)  # 3 of 4 MiB: 25 % free
        [alert] = wait_alerts(api, "disk_low")
        assert alert["subject"] == str(folder) and alert["value"] < 0.002 * 2**30  # below the limit
        assert "below the limit of 0 % or 0.002 GiB" in alert["summary"] and "of 4.0 MiB" in alert["summary"]
        (folder / "blob").unlink()
        wait_alerts(api, "disk_low", status="resolved")
    finally:
        unmount()


def test_a_domain_binding_in_error(alerts_env, machine, ollama, make_host, auth_headers, tmp_path):
    nginx = NginxServer(tmp_path / "nginx").start()
    try:
        for key, value in nginx.settings(tmp_path / "data").items():
            alerts_env.setenv(f"OPEN1PANEL_AI_{key.upper()}", value)
        alerts_env.setenv("OPEN1PANEL_AI_DOMAIN_PROVIDER", "nginx")
        alerts_env.setenv("OLLAMA_HOST", ollama.url)
        client = make_host().app.test_client()

        def api(method, path, **kwargs):
            response = getattr(client, method)("/api/v2/ai" + path, headers=auth_headers, **kwargs)
            return response.status_code, response.get_json()

        for rule in RULES:
            api("put", f"/alerts/rules/{rule}", json={"enabled": rule == "domain_error", "for_seconds": 0})
        assert api("post", "/ollama/endpoints", json={"name": "spare", "url": ollama.url})[0] == 201
        status, binding = api(
            "post", "/domains", json={"domains": ["spare.example.test"], "target": {"kind": "ollama", "name": "spare"}}
        )
        assert status == 201 and binding["state"] == "online", binding
        time.sleep(0.4)
        assert alerts_of(api, "domain_error") == []
        assert api("delete", "/ollama/endpoints/spare")[0] == 204  # its target is gone: error
        [alert] = wait_alerts(api, "domain_error")
        assert alert["subject_key"] == binding["id"] and alert["subject"] == "spare.example.test"
        assert "'spare'" in alert["summary"]
        assert api("delete", f"/domains/{binding['id']}")[0] == 204
        wait_alerts(api, "domain_error", status="resolved")
    finally:
        nginx.stop()


def test_rule_settings_are_checked_and_a_rule_turned_off_resolves_without_a_notice(api, only, machine, receiver):
    status, error = api("put", "/alerts/rules/gpu_lost", json={"params": {"threshold": 5}})
    assert status == 400 and error["error"]["details"]["fields"]["params"]["threshold"]
    status, error = api("put", "/alerts/rules/disk_low", json={"params": {"min_free_percent": 101}})
    assert status == 400 and "min_free_percent" in error["error"]["details"]["fields"]["params"]
    status, error = api("put", "/alerts/rules/gpu_memory", json={"for_seconds": -1})
    assert status == 400 and "for_seconds" in error["error"]["details"]["fields"]
    assert api("put", "/alerts/rules/no_such_rule", json={"enabled": False})[0] == 404
    assert api("get", "/alerts/rules")[1]["rules"][8]["params"]["min_free_percent"] == 10  # nothing changed

    channel(api, receiver)
    only("gpu_lost")
    machine.gpus[1].lost = True
    wait_alerts(api, "gpu_lost")
    receiver.wait("/webhook")
    assert api("put", "/alerts/rules/gpu_lost", json={"enabled": False})[1]["enabled"] is False
    wait_alerts(api, "gpu_lost", status="resolved")
    time.sleep(0.4)
    assert [r.json["event"] for r in receiver.at("/webhook")] == ["firing"]
