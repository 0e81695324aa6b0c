"""The endpoint watchers: live ``ollama`` events, answers from their state with its age, and a
bound on how long a slow, hung or unreachable Ollama (or a saturated panel) holds a request."""

import contextlib
import http.server
import json
import threading

import httpx
import pytest

from open1panel_ai.ollama import provider
from tests.conftest import TOKEN
from tests.helpers import wait_for


@pytest.fixture
def watched_env(ollama_env):
    """Polls every 0.2 s while watched; a request waits for a new poll at most 1 s."""
    ollama_env.setenv("OPEN1PANEL_AI_OLLAMA_WATCH_INTERVAL", "0.2")
    ollama_env.setenv("OPEN1PANEL_AI_OLLAMA_REQUEST_WAIT", "1")
    return ollama_env


@pytest.fixture
def watched_api(watched_env, api):
    return api


def subscribed(host):
    client = host.socketio.test_client(host.app, namespace="/ai", auth={"token": TOKEN})
    assert client.emit("subscribe", {"topic": "ollama"}, namespace="/ai", callback=True) == {
        "ok": True,
        "topic": "ollama",
    }
    return client


def wait_event(client, predicate, what):
    """The first ``ollama`` event received so far (or within 15 s) that ``predicate`` holds for."""
    seen = client.__dict__.setdefault("ollama_events", [])

    def arrived():
        seen.extend(e["args"][0] for e in client.get_received("/ai") if e["name"] == "ollama")
        return next((event for event in seen if predicate(event)), None)

    return wait_for(arrived, 15, what=what)


def test_changes_made_outside_the_panel_are_pushed_to_subscribers(ollama, watched_env, host, api):
    ollama.seed("llama3.2", [3000])
    client = subscribed(host)
    assert {m["name"] for m in api("get", "/ollama/models")[1]["models"]} == {"llama3.2:latest"}

    # `ollama pull` on the server: the model appears in the models folder.
    ollama.seed("qwen2:0.5b", [500], family="qwen2")
    added = wait_event(
        client, lambda e: e["type"] == "model_added" and e["model"]["name"] == "qwen2:0.5b", "the outside pull pushed"
    )
    assert added["endpoint"] == "local" and added["model"]["name"] == "qwen2:0.5b"
    assert added["model"]["details"]["family"] == "qwen2" and added["model"]["loaded"] is False

    # Another client loads it: the loaded models are pushed, with expiry and VRAM share.
    httpx.post(ollama.url + "/api/generate", json={"model": "qwen2:0.5b", "keep_alive": "10m"}).raise_for_status()
    running = wait_event(client, lambda e: e["type"] == "running" and e["models"], "the outside load pushed")
    [loaded] = running["models"]
    assert loaded["name"] == "qwen2:0.5b" and loaded["expires_at"]
    assert 0 < loaded["expires_in"] <= 600 and loaded["vram_share"] == 1.0
    changed = wait_event(
        client, lambda e: e["type"] == "model_changed" and e["model"]["loaded"], "the model's loaded state pushed"
    )
    assert changed["model"]["name"] == "qwen2:0.5b" and changed["model"]["loaded"] is True

    # `ollama rm` on the server: the manifest goes.
    next(ollama.manifests.rglob("0.5b")).unlink()
    removed = wait_event(client, lambda e: e["type"] == "model_removed", "the outside delete pushed")
    assert removed == {**removed, "endpoint": "local", "name": "qwen2:0.5b"}


def test_answers_say_how_old_they_are_and_running_models_carry_expiry_and_vram_share(ollama, watched_api):
    ollama.seed("llama3.2", [3000])
    ollama.seed("qwen2:0.5b", [500])
    status, body = watched_api("get", "/ollama/models")
    assert status == 200 and body["endpoint"] == "local"
    assert body["stale"] is False and body["error"] is None and 0 <= body["age"] < 60
    assert body["fetched_at"].endswith("+00:00")

    assert watched_api("post", "/ollama/models/llama3.2/load", json={"keep_alive": "10m"})[0] == 204
    assert (
        watched_api("post", "/ollama/models/qwen2:0.5b/load", json={"keep_alive": "forever", "cpu_only": True})[0]
        == 204
    )
    status, body = watched_api("get", "/ollama/running", query_string={"endpoint": "local"})
    assert status == 200 and body["stale"] is False
    loaded = {m["name"]: m for m in body["models"]}
    assert loaded["llama3.2:latest"]["vram_share"] == 1.0 and 540 < loaded["llama3.2:latest"]["expires_in"] <= 600
    assert loaded["qwen2:0.5b"]["vram_share"] == 0.0 and loaded["qwen2:0.5b"]["expires_in"] > 100 * 365 * 86400
    # Every server at once: the same models, with the age of the oldest state.
    status, everywhere = watched_api("get", "/ollama/running")
    assert status == 200 and everywhere["endpoint"] is None and everywhere["age"] is not None
    assert {m["name"] for m in everywhere["models"]} == set(loaded)

    # max_age=0 asks for a poll made after the request: an outside change is in it.
    ollama.seed("phi3", [700])
    status, body = watched_api("get", "/ollama/models", query_string={"max_age": "0"})
    assert "phi3:latest" in {m["name"] for m in body["models"]}
    for bad in ("-1", "nan", "inf", "x", "3601"):
        status, error = watched_api("get", "/ollama/models", query_string={"max_age": bad})
        assert status == 400 and "max_age" in error["error"]["details"]["fields"], bad


class _Switchable(http.server.BaseHTTPRequestHandler):
    """An Ollama that lists one model until ``hang`` is set; then it takes requests and never
    answers (until ``release`` is set)."""

    protocol_version = "HTTP/1.1"
    hang = threading.Event()
    release = threading.Event()
    hanging = threading.Event()  # a request is being held

    def do_GET(self):
        if self.hang.is_set():
            self.hanging.set()
            self.release.wait(60)
            return
        body = json.dumps(
            {"models": [{"name": "tiny:latest", "size": 1, "digest": "ab"}] if self.path == "/api/tags" else []}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def switchable():
    for event in (_Switchable.hang, _Switchable.release, _Switchable.hanging):
        event.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Switchable)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Switchable.release.set()
    server.shutdown()
    server.server_close()


def test_a_hung_ollama_holds_a_request_only_up_to_the_wait_then_the_last_state_comes_stale(switchable, watched_api):
    assert watched_api("post", "/ollama/endpoints", json={"name": "hangs", "url": switchable})[0] == 201
    status, body = watched_api("get", "/ollama/models", query_string={"endpoint": "hangs"})
    assert status == 200 and [m["name"] for m in body["models"]] == ["tiny:latest"] and not body["stale"]

    _Switchable.hang.set()
    status, body = watched_api("get", "/ollama/models", query_string={"endpoint": "hangs", "max_age": "0"})
    assert status == 200 and [m["name"] for m in body["models"]] == ["tiny:latest"]
    assert body["stale"] is True and body["age"] > 0
    # It took the request and said nothing: slow or stuck, not down; waited the bound, not
    # the 30 s of the HTTP read timeout.
    assert body["error"]["code"] == "ollama_timeout"
    assert body["error"]["details"]["stage"] == "answer" and body["error"]["details"]["waited"] == 1
    assert "ollama serve" not in json.dumps(body)


def test_a_hung_ollama_never_seen_answers_a_timeout_error_not_unreachable(switchable, watched_api):
    assert watched_api("post", "/ollama/endpoints", json={"name": "hangs", "url": switchable})[0] == 201
    _Switchable.hang.set()
    status, error = watched_api("get", "/ollama/running", query_string={"endpoint": "hangs"})
    assert status == 504, error
    assert error["error"]["code"] == "ollama_timeout" and error["error"]["details"]["waited"] == 1
    assert switchable in error["error"]["message"] and "did not answer within 1 s" in error["error"]["message"]


def test_ollama_down_and_the_panel_saturated_are_told_apart(switchable, ollama, watched_env, make_host, monkeypatch):
    """Down: nothing listens (503 ollama_unreachable, with how to start Ollama). Saturated:
    every connection of the panel's pool is taken, so the request never leaves the panel
    (503 panel_busy, which does not blame Ollama)."""
    tiny_pool = httpx.Client(limits=httpx.Limits(max_connections=1), timeout=httpx.Timeout(30, connect=3, pool=0.3))
    monkeypatch.setattr(provider, "_client", tiny_pool)
    host = make_host()
    client = host.app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def get(path):
        answer = client.get("/api/v2/ai" + path, headers=headers)
        return answer.status_code, answer.get_json()

    assert (
        client.post(
            "/api/v2/ai/ollama/endpoints", headers=headers, json={"name": "gone", "url": "http://127.0.0.1:9"}
        ).status_code
        == 201
    )
    status, down = get("/ollama/models?endpoint=gone")
    assert status == 503 and down["error"]["code"] == "ollama_unreachable"
    assert down["error"]["details"]["stage"] == "connect" and down["error"]["details"]["connected"] is False
    assert "OLLAMA_HOST" in down["error"]["details"]["fix"]

    # A request the pool's one connection is busy with, to a server that does not answer. It
    # ends in an error (a read timeout, or the server gone at the end), which is not the test's.
    def hold_the_pool():
        with contextlib.suppress(httpx.HTTPError):
            tiny_pool.get(switchable + "/api/tags")

    _Switchable.hang.set()
    threading.Thread(target=hold_the_pool, daemon=True).start()
    wait_for(_Switchable.hanging.is_set, 10, what="the pool's one connection taken")
    assert (
        client.post(
            "/api/v2/ai/ollama/endpoints", headers=headers, json={"name": "fine", "url": ollama.url}
        ).status_code
        == 201
    )
    status, busy = get("/ollama/models?endpoint=fine")
    assert status == 503 and busy["error"]["code"] == "panel_busy", busy
    assert busy["error"]["details"]["stage"] == "pool" and busy["error"]["details"]["connected"] is False
    assert "panel is too busy" in busy["error"]["message"] and "OLLAMA_HOST" not in json.dumps(busy)


def test_transport_failures_are_classified_by_how_far_the_request_got():
    request = httpx.Request(
        "GET", "http://127.0.0.1:1/api/tags", extensions={"timeout": {"connect": 3, "read": 30, "write": 30, "pool": 5}}
    )
    url = "http://127.0.0.1:1"
    cases = {
        httpx.PoolTimeout: ("panel_busy", 503, 5),
        httpx.ReadTimeout: ("ollama_timeout", 504, 30),
        httpx.ConnectError: ("ollama_unreachable", 503, None),
        httpx.ConnectTimeout: ("ollama_unreachable", 503, None),
    }
    for kind, (code, status, waited) in cases.items():
        error = provider.transport_failure(url, kind("x", request=request))
        assert (error.code, error.status) == (code, status), kind
        assert error.details.get("waited") == waited, kind
