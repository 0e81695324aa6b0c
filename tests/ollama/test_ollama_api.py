"""The Ollama API of the panel against the stand-in: endpoints, models, memory, pulls, disk."""

import http.server
import json
import threading

import httpx
import psutil
import pytest

from tests.conftest import TOKEN
from tests.helpers import wait_for
from tests.ollama_standin import OllamaStandIn


def test_local_endpoint_comes_from_ollama_host_and_others_can_be_added(ollama, ollama_api, tmp_path):
    status, body = ollama_api("get", "/ollama/endpoints")
    assert status == 200
    [local] = body["endpoints"]
    assert local["name"] == "local" and local["url"] == ollama.url and local["builtin"]
    assert local["reachable"] and local["version"] == "0.12.6" and local["warnings"] == []

    with OllamaStandIn(tmp_path / "old", version="0.5.1") as old:
        status, added = ollama_api("post", "/ollama/endpoints", json={"name": "gpu-box", "url": old.url})
        assert status == 201 and added["reachable"] and added["version"] == "0.5.1"
        assert any("0.5.5" in w for w in added["warnings"])
        assert ollama_api("post", "/ollama/endpoints", json={"name": "gpu-box", "url": old.url})[0] == 409
    status, body = ollama_api("get", "/ollama/endpoints")
    gone = next(e for e in body["endpoints"] if e["name"] == "gpu-box")
    assert not gone["reachable"] and gone["error"]["code"] == "ollama_unreachable"

    for bad in (
        {"name": "Bad Name", "url": "http://x:1"},
        {"name": "ok", "url": "ftp://x"},
        {"name": "ok", "url": "http://x:1/path"},
        {"name": "ok", "url": "http://a b:1"},
        {"name": "ok", "url": "http://x:1", "models_dir": "relative"},
        {"name": "ok\n", "url": "http://x:1"},
    ):
        status, error = ollama_api("post", "/ollama/endpoints", json=bad)
        assert status == 400, bad
        assert error["error"]["details"]["fields"]
    assert ollama_api("delete", "/ollama/endpoints/local")[0] == 409
    assert ollama_api("delete", "/ollama/endpoints/gpu-box")[0] == 204
    assert ollama_api("delete", "/ollama/endpoints/gpu-box")[0] == 404
    assert [e["name"] for e in ollama_api("get", "/ollama/endpoints")[1]["endpoints"]] == ["local"]


def test_the_service_offers_endpoints_and_running_models_to_other_features(ollama, ollama_env, host):
    service = host.app.extensions["open1panel_ai"].services["ollama"]
    ollama.seed("llama3.2", [1000])
    assert service.endpoint("local")["url"] == ollama.url
    with pytest.raises(Exception) as missing:
        service.endpoint("nope")
    assert missing.value.status == 404
    service.load_model("local", "llama3.2", "5m", cpu_only=False)
    [running] = service.running_everywhere()
    assert running["endpoint"] == "local" and running["name"] == "llama3.2:latest"
    assert running["size"] > 0 and running["size_vram"] == running["size"]


def test_models_merge_what_is_loaded_and_every_operation_works(ollama, ollama_api):
    ollama.seed("llama3.2", [3000], family="llama", quantization_level="Q4_K_M")
    ollama.seed("qwen2:0.5b", [500], family="qwen2", quantization_level="Q8_0")
    status, body = ollama_api("get", "/ollama/models")
    assert status == 200
    assert {m["name"] for m in body["models"]} == {"llama3.2:latest", "qwen2:0.5b"}
    assert not any(m["loaded"] for m in body["models"])

    assert ollama_api("post", "/ollama/models/llama3.2/copy", json={"destination": "mine:v1"})[0] == 204
    assert ollama_api("post", "/ollama/models/mine:v1/load", json={"keep_alive": "forever"})[0] == 204
    assert ollama_api("post", "/ollama/models/qwen2:0.5b/load", json={"keep_alive": "10m", "cpu_only": True})[0] == 204
    models = {m["name"]: m for m in ollama_api("get", "/ollama/models")[1]["models"]}
    # A copy and its original share one loaded instance.
    assert models["mine:v1"]["loaded"] and models["llama3.2:latest"]["loaded"]
    assert models["mine:v1"]["expires_at"] > "2200"
    assert models["qwen2:0.5b"]["size_vram"] == 0 and models["qwen2:0.5b"]["memory"] > 0
    running = ollama_api("get", "/ollama/running?endpoint=local")[1]["models"]
    assert {m["name"] for m in running} == {"mine:v1", "qwen2:0.5b"}

    assert ollama_api("post", "/ollama/models/mine:v1/unload")[0] == 204
    assert {m["name"] for m in ollama_api("get", "/ollama/running")[1]["models"]} == {"qwen2:0.5b"}
    status, shown = ollama_api("get", "/ollama/models/qwen2:0.5b")
    assert status == 200 and shown["details"]["family"] == "qwen2" and "model_info" in shown
    assert ollama_api("delete", "/ollama/models/mine:v1")[0] == 204
    assert {m["name"] for m in ollama_api("get", "/ollama/models")[1]["models"]} == {"llama3.2:latest", "qwen2:0.5b"}


def test_bad_input_and_missing_models_give_clear_errors_and_change_nothing(ollama, ollama_api):
    ollama.seed("llama3.2", [3000])
    status, error = ollama_api("post", "/ollama/models/llama3.2/load", json={"keep_alive": "-1"})
    assert status == 400 and "keep_alive" in error["error"]["details"]["fields"]
    status, error = ollama_api("post", "/ollama/models/llama3.2/load", json={"cpu_only": 1})
    assert status == 400 and "cpu_only" in error["error"]["details"]["fields"]
    status, error = ollama_api("get", "/ollama/models/nope")
    assert status == 404 and error["error"]["message"] == "Model 'nope:latest' not found."
    assert error["error"]["details"]["ollama"] == "model 'nope:latest' not found"
    status, error = ollama_api("delete", "/ollama/models/nope")
    assert status == 404 and error["error"]["details"]["ollama"] == "model 'nope:latest' not found"
    status, error = ollama_api("post", "/ollama/models/nope/copy", json={"destination": "x"})
    assert status == 404 and error["error"]["details"]["ollama"] == 'model "nope:latest" not found'
    status, error = ollama_api("post", "/ollama/models/llama3.2/copy", json={"destination": "bad name!"})
    assert status == 400 and error["error"]["code"] == "invalid_model_name"
    assert ollama_api("get", "/ollama/models?endpoint=elsewhere")[0] == 404
    assert [m["name"] for m in ollama_api("get", "/ollama/models")[1]["models"]] == ["llama3.2:latest"]


def test_an_unreachable_ollama_is_a_503_naming_the_address_and_the_rest_still_works(ollama, ollama_api):
    ollama.stop()
    status, error = ollama_api("get", "/ollama/models")
    assert status == 503
    assert ollama.url in error["error"]["message"]
    assert "OLLAMA_HOST" in error["error"]["details"]["fix"]
    assert ollama_api("get", "/status")[0] == 200
    assert ollama_api("get", "/ollama/endpoints")[0] == 200


def test_pull_reports_percent_over_all_layers_and_succeeds(ollama, ollama_api, wait_task):
    ollama.pull_speed = 1_000_000
    ollama.publish("llama3.2", [1_000_000, 200_000])
    status, task = ollama_api("post", "/ollama/pulls", json={"name": "ollama run llama3.2"})
    assert status == 202 and task["kind"] == "ollama.pull" and task["target"] == "llama3.2:latest@local"
    seen = []
    wait_task(task["id"], lambda t: seen.append(t) or t["status"] not in ("queued", "running"))
    done = seen[-1]
    assert done["status"] == "succeeded" and done["percent"] == 100.0
    assert done["total"] == 1_000_000 + 200_000 + 512
    percents = [t["percent"] for t in seen if t["percent"] is not None]
    assert percents == sorted(percents) and any(0 < p < 100 for p in percents)
    assert any(t["bytes_per_second"] for t in seen) and any(t["eta_seconds"] for t in seen)
    assert "llama3.2:latest" in {m["name"] for m in ollama_api("get", "/ollama/models")[1]["models"]}


def test_pull_names_are_checked_before_any_task_and_hf_names_work(ollama, ollama_api, wait_task):
    status, error = ollama_api("post", "/ollama/pulls", json={"name": "bad name!"})
    assert status == 400 and error["error"]["code"] == "invalid_model_name"
    assert ollama_api("get", "/tasks")[1]["tasks"] == []
    ollama.publish("hf.co/user/repo:Q4_K_M", [10_000])
    status, task = ollama_api("post", "/ollama/pulls", json={"name": "ollama pull hf.co/user/repo:Q4_K_M"})
    assert status == 202 and wait_task(task["id"])["status"] == "succeeded"
    assert "hf.co/user/repo:q4_k_m" in {m["name"].lower() for m in ollama_api("get", "/ollama/models")[1]["models"]}


def test_an_unknown_model_fails_with_a_sentence_and_ollamas_text_in_details(ollama, ollama_api, wait_task):
    status, task = ollama_api("post", "/ollama/pulls", json={"name": "no-such-model"})
    assert status == 202
    task = wait_task(task["id"])
    assert task["status"] == "failed"
    assert task["error"]["message"].startswith("Model 'no-such-model:latest' was not found in the registry")
    assert task["error"]["details"]["ollama"] == "pull model manifest: file does not exist"


def test_a_second_pull_joins_the_first_and_cancel_then_retry_continues(ollama, ollama_api, wait_task):
    ollama.pull_speed = 1_000_000
    ollama.publish("big", [3_000_000])
    first = ollama_api("post", "/ollama/pulls", json={"name": "big"})[1]
    second = ollama_api("post", "/ollama/pulls", json={"name": "big:latest"})[1]
    assert second["id"] == first["id"]
    # Ollama compares names case-insensitively, so these are the same pull too.
    for same in ("BIG", "ollama pull Library/Big:LATEST"):
        assert ollama_api("post", "/ollama/pulls", json={"name": same})[1]["id"] == first["id"]
    assert len(ollama_api("get", "/tasks")[1]["tasks"]) == 1
    wait_task(first["id"], lambda t: (t["completed"] or 0) > 500_000)
    status, cancelled = ollama_api("post", f"/tasks/{first['id']}/cancel")
    assert status == 200
    cancelled = wait_task(first["id"])
    assert cancelled["status"] == "cancelled"
    kept = cancelled["completed"]
    ollama.pull_speed = 20_000_000
    assert ollama_api("post", f"/tasks/{first['id']}/retry")[0] == 200
    assert wait_task(first["id"])["status"] == "succeeded"
    resumed_from = ollama.pull_log[-1]["first_completed"]
    assert max(resumed_from.values()) >= kept * 0.5 > 0


def test_a_dropped_connection_is_retried_then_ends_interrupted_with_the_reason(ollama, ollama_api, wait_task):
    ollama.pull_speed = 500_000
    ollama.publish("big", [5_000_000])
    task = ollama_api("post", "/ollama/pulls", json={"name": "big"})[1]
    wait_task(task["id"], lambda t: (t["completed"] or 0) > 100_000)
    ollama.stop()
    task = wait_task(task["id"])
    assert task["status"] == "interrupted"
    assert "dropped" in task["error"]["message"] or "cannot be reached" in task["error"]["message"]
    assert task["error"]["details"]["attempts"] == 3
    ollama.start(port=ollama.port)
    ollama.pull_speed = 50_000_000
    assert ollama_api("post", f"/tasks/{task['id']}/retry")[0] == 200
    assert wait_task(task["id"])["status"] == "succeeded"


def test_a_pull_that_cannot_fit_is_refused_with_507_before_any_task(ollama, ollama_api):
    ollama.publish("huge", [1 << 62])
    status, error = ollama_api("post", "/ollama/pulls", json={"name": "huge"})
    assert status == 507 and error["error"]["code"] == "insufficient_storage"
    assert error["error"]["details"]["needed"] == 1 << 62
    assert ollama_api("get", "/tasks")[1]["tasks"] == []


def test_storage_shows_disk_partials_and_what_each_deletion_really_frees(ollama, ollama_api):
    shared = ["sha256:" + "a" * 64]
    ollama.seed("base", [4000], layers=shared, family="llama")
    ollama.seed("variant", [4000], layers=shared, family="mistral")
    ollama.seed("alone", [9000])
    ollama.publish("partial", [5_000_000])
    ollama.pull_speed = 500_000
    with httpx.stream("POST", ollama.url + "/api/pull", json={"model": "partial"}) as response:
        for line in response.iter_lines():
            if '"completed"' in line:
                break
    assert ollama_api("post", "/ollama/models/alone/copy", json={"destination": "alone-copy"})[0] == 204
    status, report = ollama_api("get", "/ollama/storage")
    assert status == 200 and report["visible"]
    assert report["free"] > 0 and report["total"] >= report["free"]
    assert report["partial_bytes"] > 0 and len(report["partial_downloads"]) == 1
    # Ollama sizes the partial blob in full at once; only its part files say what is done.
    (partial_blob,) = (ollama.state_dir / "blobs").glob("*-partial")
    assert partial_blob.stat().st_size == 5_000_000
    assert report["partial_bytes"] < 5_000_000
    frees = {m["name"]: m["frees"] for m in report["models"]}
    # alone and its copy share every blob: deleting one of them frees nothing.
    assert frees["alone:latest"] == 0 and frees["alone-copy:latest"] == 0
    # base and variant share the weights blob: deleting either frees only its own config.
    assert frees["base:latest"] < 4000 and frees["variant:latest"] < 4000
    shared = {m["name"]: (m["shared_with"], m["shared_bytes"]) for m in report["models"]}
    assert "variant:latest" in shared["base:latest"][0] and shared["base:latest"][1] >= 4000
    assert "alone:latest" in shared["alone-copy:latest"][0]
    reasons = {(s["reason"], s["name"]) for s in report["suggestions"]}
    # alone-copy is the later name of the same model; two models that free anything are too
    # few for one of them to be unusually large.
    assert reasons == {("copy", "alone-copy:latest")}
    assert ("copy", "base:latest") not in reasons  # different manifests, a shared blob only


def test_a_full_disk_on_the_server_fails_the_pull_with_what_to_do(ollama, ollama_api, wait_task):
    ollama.publish("big", "write /models/blobs/sha256-x-partial: no space left on device")
    task = wait_task(ollama_api("post", "/ollama/pulls", json={"name": "big"})[1]["id"])
    assert task["status"] == "failed" and "disk holding Ollama's models is full" in task["error"]["message"]
    assert "no space left on device" in task["error"]["details"]["ollama"]


def test_models_not_loaded_for_n_days_are_suggested_and_loading_one_clears_it(ollama, ollama_env, make_host):
    from datetime import datetime, timedelta

    ollama_env.setenv("OPEN1PANEL_AI_OLLAMA_UNUSED_DAYS", "7")
    ollama.seed("old", [100], modified_at=datetime.now() - timedelta(days=30))
    ollama.seed("fresh", [100], family="qwen2")
    client = make_host().app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def unused():
        report = client.get("/api/v2/ai/ollama/storage", headers=headers).get_json()
        assert report["unused_days"] == 7
        return {s["name"] for s in report["suggestions"] if s["reason"] == "unused"}

    assert unused() == {"old:latest"}
    assert client.post("/api/v2/ai/ollama/models/old/load", json={}, headers=headers).status_code == 204
    assert client.post("/api/v2/ai/ollama/models/old/unload", headers=headers).status_code == 204
    assert unused() == set()


def test_storage_of_a_server_whose_folder_the_panel_cannot_see(ollama, ollama_api):
    with OllamaStandIn(ollama.state_dir.parent / "remote") as remote:
        remote.seed("far", [5000])
        assert ollama_api("post", "/ollama/endpoints", json={"name": "far", "url": remote.url})[0] == 201
        status, report = ollama_api("get", "/ollama/storage?endpoint=far")
    assert status == 200 and not report["visible"] and report["free"] is None
    assert report["used_by_models"] == report["models"][0]["size"] and report["models"][0]["frees"] is None


def test_a_pull_that_leaves_little_room_comes_with_a_warning(ollama):
    import shutil

    from open1panel_ai.ollama import storage

    free = shutil.disk_usage(ollama.state_dir).free
    fits, warning = storage.fit_check(str(ollama.state_dir), free - 1000)
    assert fits and "only" in warning
    assert storage.fit_check(str(ollama.state_dir), free + 1) == (False, None)
    assert storage.fit_check(None, 1 << 62) == (True, None)


def test_the_disk_check_never_holds_a_pull_request_for_long(ollama, ollama_api, wait_task, monkeypatch):
    from open1panel_ai.ollama import service

    monkeypatch.setattr(service, "PREFLIGHT_SECONDS", 0.3)
    ollama.manifest_delay = 60.0  # a slow registry: the size is not known in time
    ollama.publish("huge", [1 << 62])
    status, task = ollama_api("post", "/ollama/pulls", json={"name": "huge"})
    assert status == 202
    wait_task(task["id"], lambda t: (t["message_i18n"] or {}).get("key") == "ollama.pull.status.manifest")
    # Only the task's own pull is connected: the disk check closed its stream when it gave up.
    connections = [
        c
        for c in psutil.Process().net_connections("tcp")
        if c.raddr and c.raddr.port == ollama.port and c.status == psutil.CONN_ESTABLISHED
    ]
    assert len(connections) == 1, connections
    assert ollama_api("post", f"/tasks/{task['id']}/cancel")[0] == 200
    assert wait_task(task["id"])["status"] == "cancelled"


def test_running_everywhere_skips_servers_that_do_not_answer(ollama, ollama_api, tmp_path):
    ollama.seed("llama3.2", [1000])
    with OllamaStandIn(tmp_path / "second") as second:
        second.seed("qwen2:0.5b", [500])
        assert ollama_api("post", "/ollama/endpoints", json={"name": "second", "url": second.url})[0] == 201
        assert ollama_api("post", "/ollama/endpoints", json={"name": "gone", "url": "http://127.0.0.1:9"})[0] == 201
        assert ollama_api("post", "/ollama/models/llama3.2/load", json={})[0] == 204
        assert ollama_api("post", "/ollama/models/qwen2:0.5b/load?endpoint=second", json={})[0] == 204
        status, body = ollama_api("get", "/ollama/running")
    assert status == 200
    assert {(m["endpoint"], m["name"]) for m in body["models"]} == {
        ("local", "llama3.2:latest"),
        ("second", "qwen2:0.5b"),
    }


def test_one_endpoint_is_asked_in_the_calling_thread(ollama, ollama_env, host, monkeypatch):
    """A panel with one Ollama server starts no thread to list its endpoints or what is loaded."""
    service = host.app.extensions["open1panel_ai"].services["ollama"]
    ollama.seed("llama3.2", [1000])
    service.load_model("local", "llama3.2", "5m", cpu_only=False)
    asked_from = []
    for method in ("running", "_with_status"):
        original = getattr(service, method)

        def record(*args, _original=original, **kwargs):
            asked_from.append(threading.get_ident())
            return _original(*args, **kwargs)

        monkeypatch.setattr(service, method, record)
    [running] = service.running_everywhere()
    [local] = service.endpoints_status()
    assert running["name"] == "llama3.2:latest" and local["reachable"]
    assert asked_from == [threading.get_ident()] * 2


def test_cancel_closes_a_pull_that_waits_on_a_silent_stream(ollama, ollama_api, wait_task, monkeypatch):
    from open1panel_ai.ollama import service

    monkeypatch.setattr(service, "PREFLIGHT_SECONDS", 0.3)
    ollama.manifest_delay = 60.0  # the registry is slow: no line comes for a minute
    ollama.publish("slow", [1_000_000])
    status, task = ollama_api("post", "/ollama/pulls", json={"name": "slow"})
    assert status == 202
    wait_task(task["id"], lambda t: (t["message_i18n"] or {}).get("key") == "ollama.pull.status.manifest")
    assert ollama_api("post", f"/tasks/{task['id']}/cancel")[0] == 200
    # The stream is closed at once rather than when Ollama next speaks.
    assert wait_task(task["id"], timeout=10)["status"] == "cancelled"


def test_a_bad_number_in_the_settings_falls_back_to_its_default_with_a_warning(ollama, ollama_env, make_host, caplog):
    ollama_env.setenv("OPEN1PANEL_AI_OLLAMA_PULL_RETRIES", "three")
    ollama_env.setenv("OPEN1PANEL_AI_OLLAMA_PULL_BACKOFF", "-1")
    ollama_env.setenv("OPEN1PANEL_AI_OLLAMA_UNUSED_DAYS", "nan")
    client = make_host().app.test_client()
    response = client.get("/api/v2/ai/ollama/storage", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["unused_days"] == 30
    warned = " ".join(r.getMessage() for r in caplog.records)
    for name in ("OLLAMA_PULL_RETRIES", "OLLAMA_PULL_BACKOFF", "OLLAMA_UNUSED_DAYS"):
        assert name in warned


def test_every_provider_instance_shares_one_http_client():
    from open1panel_ai.ollama.provider import HttpOllamaProvider

    first, second = HttpOllamaProvider({}), HttpOllamaProvider({})
    assert first._client is second._client and not first._client.is_closed


class _NotOllama(http.server.BaseHTTPRequestHandler):
    """Something else listening where an endpoint points: a proxy's error page, say."""

    def do_GET(self):
        body = (
            (b'{"error": "' + b"x" * 5000 + b'"}')
            if self.path == "/api/ps"
            else b"<html>upstream admin page, session=secret-0123</html>"
        )
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_only_ollamas_own_error_text_goes_back_in_details(ollama, ollama_api):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotOllama)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert ollama_api("post", "/ollama/endpoints", json={"name": "other", "url": url})[0] == 201
        status, error = ollama_api("get", "/ollama/models", query_string={"endpoint": "other"})
        assert status == 502 and "secret" not in json.dumps(error), error
        assert error["error"]["details"] == {"url": url, "status": 500}
        status, error = ollama_api("get", "/ollama/running", query_string={"endpoint": "other"})
        assert status == 502 and len(error["error"]["details"]["ollama"]) <= 300
    finally:
        server.shutdown()
        server.server_close()


def models_of(ollama):
    """The stand-in's own view of its models: name → (digest, size)."""
    return {m["name"]: (m["digest"], m["size"]) for m in ollama.tags()["models"]}


def test_a_copy_onto_a_name_in_use_is_refused_and_the_model_there_is_unchanged(ollama, ollama_api):
    ollama.seed("qwen2.5:0.5b", [379_000], family="qwen2")
    ollama.seed("qwen2.5:7b", [4_400_000], family="qwen2")
    before = models_of(ollama)
    for destination in ("qwen2.5:7b", "QWEN2.5:7B", "library/qwen2.5:7b"):
        status, error = ollama_api("post", "/ollama/models/qwen2.5:0.5b/copy", json={"destination": destination})
        assert status == 409 and error["error"]["code"] == "model_exists", error
        details = error["error"]["details"]
        assert details["name"] == "qwen2.5:7b" and details["size"] == before["qwen2.5:7b"][1]
        assert "qwen2.5:7b" in error["error"]["message"] and "destination" in details["fields"]
    assert models_of(ollama) == before
    assert ("POST", "/api/copy") not in ollama.requests  # Ollama was never asked to copy
    status, error = ollama_api(
        "post",
        "/ollama/models/qwen2.5:0.5b/copy",
        json={"destination": "qwen2.5:7b"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert status == 409 and "已有名为 qwen2.5:7b 的模型" in error["error"]["message"]
    status, error = ollama_api("post", "/ollama/models/qwen2.5:0.5b/copy", json={"destination": "qwen2.5:0.5b"})
    assert status == 400 and error["error"]["code"] == "same_name"
    status, error = ollama_api(
        "post", "/ollama/models/qwen2.5:0.5b/copy", json={"destination": "qwen2.5:7b", "overwrite": "yes"}
    )
    assert status == 400 and "overwrite" in error["error"]["details"]["fields"]
    assert models_of(ollama) == before

    # Asked for, the replacement happens: the name now holds the copied model.
    assert (
        ollama_api("post", "/ollama/models/qwen2.5:0.5b/copy", json={"destination": "qwen2.5:7b", "overwrite": True})[0]
        == 204
    )
    after = models_of(ollama)
    assert after["qwen2.5:7b"] == before["qwen2.5:0.5b"] and after["qwen2.5:0.5b"] == before["qwen2.5:0.5b"]


def test_pulling_a_name_the_server_has_says_it_updates_that_model(ollama, ollama_api, wait_task):
    ollama.seed("llama3.2", [1000])
    ollama.publish("llama3.2", [2000])
    status, task = ollama_api("post", "/ollama/pulls", json={"name": "llama3.2"})
    assert status == 202
    assert any("llama3.2:latest" in w and "updates" in w for w in task["warnings"]), task["warnings"]
    assert wait_task(task["id"])["status"] == "succeeded"
    status, task = ollama_api("post", "/ollama/pulls", json={"name": "llama3.2"}, headers={"Accept-Language": "zh-CN"})
    assert any("更新" in w for w in task["warnings"])


def test_a_download_being_written_counts_as_a_partial_download(ollama, ollama_api, wait_task):
    """Ollama records a part's progress in its part file only when the part ends, so during a
    download the part files say 0; the partial blob's blocks on disk show what is there."""
    ollama.part_size = 100_000_000  # as Ollama's: the whole blob is one part
    ollama.pull_speed = 1_000_000
    ollama.publish("big", [8_000_000])
    task = ollama_api("post", "/ollama/pulls", json={"name": "big"})[1]
    wait_task(task["id"], lambda t: (t["completed"] or 0) > 1_000_000)
    status, report = ollama_api("get", "/ollama/storage")
    assert status == 200
    [partial] = report["partial_downloads"]
    # (The part file holds only what the disk check's short look at the pull left.)
    assert partial["recorded"] < 1_000_000 <= partial["bytes"] < 8_000_000
    assert partial["active"] and partial["size"] == 8_000_000
    assert report["partial_bytes"] == partial["bytes"] and report["partial_active"] == 1
    assert ollama_api("post", f"/tasks/{task['id']}/cancel")[0] == 200
    assert wait_task(task["id"])["status"] == "cancelled"
    # Cut off, Ollama records in the part file what was written.
    wait_for(
        lambda: ollama_api("get", "/ollama/storage")[1]["partial_downloads"][0]["recorded"] >= 1_000_000,
        5,
        what="the part file recording the bytes written",
    )


def test_only_real_outliers_are_suggested_and_shared_blobs_count_once(ollama, ollama_api, tmp_path):
    for name, size in (("small-a", 10_000), ("small-b", 12_000), ("small-c", 11_000), ("huge", 200_000)):
        ollama.seed(name, [size])
    weights = ["sha256:" + "b" * 64]
    ollama.seed("twin-a", [50_000], layers=weights, family="llama")
    ollama.seed("twin-b", [50_000], layers=weights, family="mistral")
    report = ollama_api("get", "/ollama/storage")[1]
    assert report["endpoint"] == "local"
    large = [s for s in report["suggestions"] if s["reason"] == "large"]
    assert [s["name"] for s in large] == ["huge:latest"]
    assert large[0]["frees"] > 3 * large[0]["typical"]
    rows = {m["name"]: m for m in report["models"]}
    # Each twin frees only its own config: the weights stay while the other uses them.
    assert rows["twin-a:latest"]["frees"] < 1000 and rows["twin-a:latest"]["shared_bytes"] >= 50_000
    assert "twin-b:latest" in rows["twin-a:latest"]["shared_with"]
    assert rows["huge:latest"]["frees"] >= 200_000

    # Models all of a size have no outlier, however large they are; and each server's
    # suggestions are its own.
    with OllamaStandIn(tmp_path / "even") as even:
        for name in ("one", "two", "three", "four"):
            even.seed(name, [5_000_000_000 + len(name)])
        assert (
            ollama_api(
                "post", "/ollama/endpoints", json={"name": "even", "url": even.url, "models_dir": str(even.state_dir)}
            )[0]
            == 201
        )
        report = ollama_api("get", "/ollama/storage?endpoint=even")[1]
    assert report["endpoint"] == "even" and report["suggestions"] == []
    assert {m["name"] for m in report["models"]} == {"one:latest", "two:latest", "three:latest", "four:latest"}


def test_deleting_partial_downloads_frees_their_bytes_and_keeps_complete_blobs_and_running_pulls(
    ollama, ollama_api, wait_task, tmp_path
):
    import os
    import time

    ollama.seed("kept", [40_000])
    blobs = ollama.state_dir / "blobs"
    complete = sorted(p for p in blobs.iterdir() if "partial" not in p.name)
    # An interrupted download, as Ollama leaves it: the partial blob and its part files, an
    # hour old, with real bytes in them.
    stale = blobs / ("sha256-" + "c" * 64 + "-partial")
    stale.write_bytes(os.urandom(300_000))
    parts = [stale.with_name(stale.name + f"-{n}") for n in range(2)]
    for n, part in enumerate(parts):
        part.write_text(json.dumps({"N": n, "Offset": n * 150_000, "Size": 150_000, "Completed": 150_000}))
    hour_ago = time.time() - 3600
    for path in (stale, *parts):
        os.utime(path, (hour_ago, hour_ago))
    on_disk = sum(min(p.stat().st_blocks * 512, p.stat().st_size) for p in (stale, *parts))
    assert on_disk >= 300_000

    # A pull of the panel under way: its partial is being written and must stay.
    ollama.pull_speed = 200_000
    ollama.publish("slow", [20_000_000])
    task = ollama_api("post", "/ollama/pulls", json={"name": "slow"})[1]
    wait_task(task["id"], lambda t: (t["completed"] or 0) > 200_000)
    [running] = [p for p in blobs.glob("*-partial") if p != stale]

    status, result = ollama_api("delete", "/ollama/storage/partials?endpoint=local")
    assert status == 200, result
    assert result["endpoint"] == "local"
    assert result["deleted"] == ["sha256:" + "c" * 64] and result["freed"] == on_disk
    digest = running.name[: -len("-partial")].replace("-", ":", 1)
    assert result["skipped"] == [{"digest": digest, "reason": "pulling"}]
    assert not stale.exists() and not any(p.exists() for p in parts)
    assert running.exists()
    assert all(p.exists() for p in complete)
    assert ollama_api("get", "/ollama/models")[1]["models"][0]["name"] == "kept:latest"

    # Nothing left to delete: nothing freed; the running pull's partial stays.
    status, again = ollama_api("delete", "/ollama/storage/partials")
    assert status == 200 and again["freed"] == 0 and again["deleted"] == []
    assert ollama_api("post", f"/tasks/{task['id']}/cancel")[0] == 200
    assert wait_task(task["id"])["status"] == "cancelled"
    assert running.exists()

    # Bad endpoints are refused, and touch nothing.
    status, error = ollama_api("delete", "/ollama/storage/partials?endpoint=nope")
    assert status == 404 and error["error"]["code"] == "endpoint_not_found"
    assert ollama_api("delete", "/ollama/storage/partials?endpoint=" + "x" * 40)[0] == 400
    assert ollama_api("post", "/ollama/endpoints", json={"name": "far", "url": "http://127.0.0.1:9"})[0] == 201
    status, error = ollama_api("delete", "/ollama/storage/partials?endpoint=far")
    assert status == 409 and error["error"]["code"] == "models_dir_not_visible"
    assert running.exists() and all(p.exists() for p in complete)
