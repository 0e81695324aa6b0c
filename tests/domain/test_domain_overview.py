"""What the landing page reads through the API: ``GET /overview`` (the health of what runs, with
the Ollama stand-in, real MCP servers and a real nginx) and ``GET /domains/proxy`` (why a
stopped nginx cannot apply changes, what the panel checks of it, and which setting changes it),
and the config preview, which needs no running nginx."""

from __future__ import annotations

import sys

from tests.conftest import free_port
from tests.helpers import TIME_SERVER
from tests.mcp.conftest import wait_status

#: A program that fails at once, as a mistyped MCP server does.
FAILING = [sys.executable, "-c", "import sys; sys.stderr.write('no such tool\\n'); sys.exit(3)"]


def broken_certificate(folder) -> str:
    """A certificate file nginx refuses to load: it exists, but holds no certificate."""
    path = folder / "broken.example.test.pem"
    path.write_text("not a certificate\n")
    return str(path)


def mcp_server(panel, name, command, start):
    status, server = panel.api(
        "post", "/mcp/servers", json={"name": name, "command": command, "port": free_port(), "autostart": False}
    )
    assert status == 201, server
    if start:
        assert panel.api("post", f"/mcp/servers/{server['id']}/start")[0] == 200
    return server


def test_the_overview_gives_the_health_of_what_runs(nginx_panel, ollama, tmp_path):
    api = nginx_panel.api
    ollama.seed("qwen2:0.5b", [352_000_000])
    ollama.seed("llama3.2:1b", [1_300_000_000])
    assert api("post", "/ollama/models/qwen2:0.5b/load", json={"keep_alive": "10m"})[0] == 204
    for name in ("gone", "spare"):  # two Ollama servers that do not answer
        url = f"http://127.0.0.1:{free_port()}"
        status, added = api("post", "/ollama/endpoints", json={"name": name, "url": url})
        assert status == 201, added

    def mcp_api(method, path, **kwargs):
        return api(method, "/mcp" + path, **kwargs)

    running = mcp_server(nginx_panel, "time", TIME_SERVER, start=True)
    broken = mcp_server(nginx_panel, "broken", FAILING, start=True)
    mcp_server(nginx_panel, "idle", TIME_SERVER, start=False)
    wait_status(mcp_api, running["id"], "running")
    wait_status(mcp_api, broken["id"], ("error", "restarting", "unhealthy"))

    online = api(
        "post",
        "/domains",
        json={"domains": ["ok.example.test"], "auth": {"mode": "none"}, "target": {"kind": "ollama", "name": "local"}},
    )[1]
    unloadable = broken_certificate(tmp_path)
    status, refusal = api(
        "post",
        "/domains",
        json={
            "domains": ["broken.example.test"],
            "target": {"kind": "ollama", "name": "local"},
            "tls": {"mode": "existing", "certificate": unloadable, "key": unloadable},
        },
    )
    assert status == 502, refusal
    refused = refusal["error"]["details"]["binding"]
    orphan = api(
        "post", "/domains", json={"domains": ["spare.example.test"], "target": {"kind": "ollama", "name": "spare"}}
    )[1]
    assert (online["state"], refused["state"], orphan["state"]) == ("online", "error", "online")
    assert api("delete", "/ollama/endpoints/spare")[0] == 204

    status, overview = api("get", "/overview")
    assert status == 200, overview
    assert {p["kind"] for p in overview["providers"]} == {"ollama", "mcp", "gpu", "domain"}

    local, gone = overview["ollama"]["endpoints"]
    assert overview["ollama"]["state"] == "attention"  # one server cannot be reached
    assert (local["name"], local["reachable"], local["models"], local["loaded"]) == ("local", True, 2, 1)
    assert local["loaded_models"] == ["qwen2:0.5b"]
    assert (gone["name"], gone["reachable"], gone["models"], gone["loaded"]) == ("gone", False, None, None)
    assert "cannot be reached" in gone["error"]

    mcp = overview["mcp"]
    assert (mcp["state"], mcp["total"], mcp["running"], mcp["stopped"]) == ("attention", 3, 1, 1)
    [failing] = mcp["failing"]
    assert (failing["id"], failing["name"]) == (broken["id"], "broken")
    assert failing["status"] in ("error", "restarting", "unhealthy")

    gpu = overview["gpu"]
    assert gpu["mode"] in ("cpu", "gpu")
    assert gpu["state"] == {"cpu": "cpu", "gpu": "ready"}[gpu["mode"]]  # never "ready" without a GPU
    if gpu["mode"] == "cpu":
        assert gpu["devices"] == 0 and gpu["reason"]

    domain = overview["domain"]
    assert (domain["state"], domain["provider"], domain["total"]) == ("attention", "nginx", 3)
    assert (domain["online"], domain["error"], domain["removals"]) == (1, 2, 0)
    errors = {b["id"]: b for b in domain["failing"]}
    assert set(errors) == {refused["id"], orphan["id"]}
    assert unloadable in errors[refused["id"]]["error"]
    assert errors[refused["id"]]["error_i18n"] is None  # nginx's own words
    assert errors[orphan["id"]]["error_i18n"]["key"] == "domain.error.target_gone.ollama"
    assert errors[orphan["id"]]["error_i18n"]["params"]["name"] == "'spare'"


def test_the_overview_leaves_out_a_feature_that_cannot_work(make_host, panel_env, auth_headers):
    panel_env.setenv("OPEN1PANEL_AI_DOMAIN_PROVIDER", "none")
    client = make_host().app.test_client()
    overview = client.get("/api/v2/ai/overview", headers=auth_headers).get_json()
    domain = next(p for p in overview["providers"] if p["kind"] == "domain")
    assert not domain["usable"] and "turned off" in domain["reason"]
    assert overview["domain"] is None
    assert overview["mcp"] == {
        "state": "ready",
        "total": 0,
        "running": 0,
        "stopped": 0,
        "changing": 0,
        "failing": [],
        "unisolated": [],
    }


def test_a_stopped_nginx_is_explained_with_what_the_panel_checks(nginx_panel):
    nginx = nginx_panel.proxy
    api = nginx_panel.api
    status, proxy = api("get", "/domains/proxy")
    assert status == 200 and (proxy["usable"], proxy["provider"], proxy["reason"]) == (True, "nginx", None)

    nginx.stop()
    status, proxy = api("get", "/domains/proxy")
    assert status == 200
    assert (proxy["usable"], proxy["provider"], proxy["setting"], proxy["preview_provider"]) == (
        False,
        None,
        "nginx",
        "nginx",
    )
    pid_file = str(nginx.root / "nginx.pid")
    assert proxy["reason"] == f"nginx is not running: no live nginx process has the pid written in {pid_file}."
    assert "Start nginx" in proxy["fix"] and str(nginx.conf) in proxy["fix"]
    [candidate] = proxy["candidates"]
    settings = {item["setting"]: item["value"] for item in candidate["settings"]}
    assert settings["OPEN1PANEL_AI_NGINX_CONF"] == str(nginx.conf)
    assert settings["OPEN1PANEL_AI_NGINX_SITES_DIR"] == str(nginx.sites)
    assert settings["the pid directive of the main config"] == pid_file
    assert settings["OPEN1PANEL_AI_NGINX_HTTP_PORT"] == f"127.0.0.1:{nginx.http_port}"

    # The preview needs no running nginx; a change does, and says so in one sentence.
    body = {"domains": ["ollama.example.test"], "target": {"kind": "ollama", "name": "local"}}
    status, preview = api("post", "/domains/preview", json=body)
    assert status == 200 and "server_name ollama.example.test;" in preview["config"]
    status, refused = api("post", "/domains", json=body)
    assert status == 503 and refused["error"]["message"] == proxy["reason"]
    assert refused["error"]["message"].count(". ") == 0 and "\n" not in refused["error"]["message"]

    status, chinese = api("get", "/domains/proxy", headers={"Accept-Language": "zh-CN"})
    assert chinese["reason"] == f"nginx 未运行：{pid_file} 中记录的 pid 没有对应的 nginx 进程。"
    assert chinese["candidates"][0]["settings"][1]["label"].startswith("主配置")
    status, refused = api("post", "/domains", json=body, headers={"Accept-Language": "zh-CN"})
    assert status == 503 and refused["error"]["message"].startswith("nginx 未运行")

    nginx.start()
    status, proxy = api("get", "/domains/proxy")  # probed afresh: no wait for the recheck
    assert (proxy["usable"], proxy["provider"]) == (True, "nginx")
    assert api("post", "/domains", json=body)[0] == 201


def test_an_nginx_refusal_is_one_line_without_its_level_mark(nginx_panel, tmp_path):
    broken = broken_certificate(tmp_path)
    status, refusal = nginx_panel.api(
        "post",
        "/domains",
        json={
            "domains": ["broken.example.test"],
            "target": {"kind": "ollama", "name": "local"},
            "tls": {"mode": "existing", "certificate": broken, "key": broken},
        },
    )
    assert status == 502 and refusal["error"]["code"] == "proxy_rejected"
    refused = refusal["error"]["details"]["binding"]
    assert refused["state"] == "error"
    assert refused["error"].startswith(f'cannot load certificate "{broken}"')
    assert "[emerg]" not in refused["error"] and "\n" not in refused["error"]
    assert refusal["error"]["message"].endswith(refused["error"])
