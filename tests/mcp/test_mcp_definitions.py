"""MCP server definitions: validation, unique names and ports, write-only secrets, tokens,
client configurations and import. Nothing here starts a server."""

import json
import socket
import sqlite3
import threading

import pytest

from tests.helpers import TIME_SERVER


def create(api, **fields):
    body = {"name": "time", "command": TIME_SERVER, **fields}
    return api("post", "/servers", json=body)


def test_a_string_command_is_split_and_defaults_are_filled_in(mcp_api):
    status, server = create(mcp_api, command="uvx mcp-server-time --local-timezone 'America/New_York'")
    assert status == 201, server
    assert server["command"] == ["uvx", "mcp-server-time", "--local-timezone", "America/New_York"]
    assert server["kind"] == "stdio"
    assert server["status"] == "stopped" and server["pid"] is None
    assert server["transports"] == ["streamable-http", "sse"]
    assert server["bind_host"] == "127.0.0.1"
    # A new server starts with the panel unless told otherwise; nobody has stopped it yet.
    assert server["restart_policy"] == "on-failure" and server["autostart"] is True
    assert server["stopped_by_hand"] is False
    assert server["last_error"] is None and server["last_error_i18n"] is None
    port = server["port"]
    assert server["endpoints"] == {
        "streamable_http": f"http://127.0.0.1:{port}/mcp",
        "sse": f"http://127.0.0.1:{port}/sse",
        "public": [],
    }
    assert len(server["token_hint"]) == 4
    assert mcp_api("get", "/servers") == (200, {"servers": [server]})


def test_the_argv_is_kept_exactly_as_given(mcp_api):
    argv = ["python3", "-c", "print('a b')", 'say "hi"', "it's", "", "  padded  ", "$HOME", "*"]
    status, server = create(mcp_api, command=argv)
    assert status == 201 and server["command"] == argv
    status, updated = mcp_api("put", f"/servers/{server['id']}", json={"command": argv, "autostart": False})
    assert status == 200 and updated["command"] == argv and updated["autostart"] is False
    assert mcp_api("get", f"/servers/{server['id']}")[1]["command"] == argv


def test_the_server_list_is_dumped_again_only_when_it_changed(mcp_api, monkeypatch):
    """Under load, dumping the list is most of what ``GET /mcp/servers`` costs, the same for
    every client: an answer equal to the last one takes its JSON, and any change shows."""
    from open1panel_ai.mcp.views import _servers_answer

    server = create(mcp_api)[1]
    dumped = []
    dump = _servers_answer._schema.dump
    monkeypatch.setattr(_servers_answer._schema, "dump", lambda data: dumped.append(data) or dump(data))
    first = mcp_api("get", "/servers")
    assert first[0] == 200 and [s["name"] for s in first[1]["servers"]] == ["time"] and len(dumped) == 1
    assert mcp_api("get", "/servers") == first and len(dumped) == 1
    mcp_api("put", f"/servers/{server['id']}", json={"name": "clock"})
    assert [s["name"] for s in mcp_api("get", "/servers")[1]["servers"]] == ["clock"] and len(dumped) == 2


def test_the_openapi_document_says_new_servers_start_with_the_panel(mcp_api, mcp_host, auth_headers):
    document = mcp_host.app.test_client().get("/api/v2/ai/openapi.json", headers=auth_headers).get_json()
    schemas = document["components"]["schemas"]
    assert schemas["MCPServerIn"]["properties"]["autostart"]["default"] is True
    assert schemas["MCPImport"]["properties"]["autostart"]["default"] is True
    # On an update a field left out keeps its value: no default is claimed there.
    assert "default" not in schemas["MCPServerUpdate"]["properties"]["autostart"]
    assert "default" not in schemas["MCPServerUpdate"]["properties"]["bind_host"]
    assert "stopped_by_hand" in schemas["MCPServer"]["required"]


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"name": "Not A Slug"}, "name"),
        ({"name": "-dash"}, "name"),
        ({"command": ""}, "command"),
        ({"command": []}, "command"),
        ({"command": "unbalanced 'quote"}, "command"),
        ({"command": None, "url": None}, "command"),
        ({"url": "http://example.test/mcp"}, "command"),  # both a command and a url
        ({"env": [{"key": "1BAD", "value": "x"}]}, "env"),
        ({"transports": []}, "transports"),
        ({"transports": ["websocket"]}, "transports"),
        ({"port": 80}, "port"),
        ({"bind_host": "example.com"}, "bind_host"),
        ({"cwd": "relative/dir"}, "cwd"),
        ({"restart_policy": "sometimes"}, "restart_policy"),
        # JSON types as the OpenAPI document states them: no 1 for true, no "8000" for 8000
        ({"autostart": 1}, "autostart"),
        # a pattern holds for the whole value: "$" does not let a final line break through
        ({"name": "time\n"}, "name"),
        ({"env": [{"key": "A\n", "value": "x"}]}, "env"),
        ({"headers": [{"name": "X-Key\n", "value": "x"}]}, "headers"),
        ({"port": "8000"}, "port"),
        ({"port": 8000.5}, "port"),
        ({"env": [{"key": "A", "value": "x", "secret": "yes"}]}, "secret"),
    ],
)
def test_bad_input_is_a_400_with_the_field_named_and_nothing_is_stored(mcp_api, fields, field):
    status, body = create(mcp_api, **fields)
    assert status == 400, body
    assert body["error"]["code"] == "validation_error"
    assert field in json.dumps(body["error"]["details"])
    assert mcp_api("get", "/servers") == (200, {"servers": []})


@pytest.mark.parametrize("fields", [{"env": [{}]}, {"headers": [{"value": "x"}]}, {"env": [{"value": "x"}]}])
def test_an_update_needs_whole_env_entries_and_headers(mcp_api, fields):
    """Fields of an update are optional; the parts of an entry it gives are not."""
    server = create(mcp_api)[1]
    status, body = mcp_api("put", f"/servers/{server['id']}", json=fields)
    assert status == 400 and body["error"]["code"] == "validation_error", body
    assert mcp_api("get", f"/servers/{server['id']}")[1] == server


def test_import_takes_a_json_boolean_for_autostart(mcp_api):
    status, body = mcp_api("post", "/import", json={"mcpServers": {}, "autostart": 0})
    assert status == 400 and "autostart" in body["error"]["details"]["fields"]


def test_a_body_that_is_not_json_is_refused(mcp_api):
    status, body = mcp_api("post", "/servers", data="name=time", content_type="text/plain")
    assert status == 400 and body["error"]["code"] == "unsupported_media_type"
    assert mcp_api("get", "/servers")[1] == {"servers": []}


def test_a_duplicate_name_is_a_conflict_and_the_first_server_is_kept(mcp_api):
    status, first = create(mcp_api)
    assert status == 201
    status, body = create(mcp_api)
    assert status == 409 and body["error"]["code"] == "name_taken"
    assert mcp_api("get", "/servers")[1] == {"servers": [first]}


def test_ports_are_assigned_distinct_and_a_taken_port_is_a_conflict(mcp_api):
    first = create(mcp_api, name="one")[1]
    second = create(mcp_api, name="two")[1]
    assert first["port"] != second["port"]
    status, body = create(mcp_api, name="three", port=first["port"])
    assert status == 409 and body["error"]["code"] == "port_taken"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        status, body = create(mcp_api, name="four", port=busy.getsockname()[1])
    assert status == 409 and "in use" in body["error"]["message"]
    status, _ = mcp_api("put", f"/servers/{second['id']}", json={"port": first["port"]})
    assert status == 409
    assert mcp_api("get", f"/servers/{second['id']}")[1]["port"] == second["port"]


def test_secret_env_values_are_write_only_and_kept_on_update(mcp_api, data_dir):
    status, server = create(
        mcp_api, env=[{"key": "API_KEY", "value": "sk-very-secret", "secret": True}, {"key": "REGION", "value": "eu"}]
    )
    assert status == 201
    assert server["env"] == [
        {"key": "API_KEY", "value": None, "secret": True},
        {"key": "REGION", "value": "eu", "secret": False},
    ]
    # An update that leaves the secret's value out keeps it; others change.
    status, updated = mcp_api(
        "put",
        f"/servers/{server['id']}",
        json={"env": [{"key": "API_KEY", "secret": True}, {"key": "REGION", "value": "us"}]},
    )
    assert status == 200, updated
    assert updated["env"] == [
        {"key": "API_KEY", "value": None, "secret": True},
        {"key": "REGION", "value": "us", "secret": False},
    ]
    for path in ("/servers", f"/servers/{server['id']}"):
        assert "sk-very-secret" not in json.dumps(mcp_api("get", path)[1])
    db = sqlite3.connect(data_dir / "open1panel-ai.sqlite3")
    stored = json.loads(db.execute("SELECT definition FROM mcp_servers").fetchone()[0])
    db.close()
    assert {"key": "API_KEY", "value": "sk-very-secret", "secret": True} in stored["env"]
    # A new secret without a value has nothing to keep: refused, and nothing changes.
    status, body = mcp_api("put", f"/servers/{server['id']}", json={"env": [{"key": "OTHER", "secret": True}]})
    assert status == 400 and "env.0.value" in body["error"]["details"]["fields"]
    assert mcp_api("get", f"/servers/{server['id']}")[1]["env"] == updated["env"]


def test_remote_servers_keep_header_values_secret(mcp_api):
    status, server = mcp_api(
        "post",
        "/servers",
        json={
            "name": "remote",
            "url": "https://mcp.example.test/mcp",
            "headers": [{"name": "X-Api-Key", "value": "hdr-secret"}],
        },
    )
    assert status == 201, server
    assert server["kind"] == "remote" and server["command"] is None
    assert server["headers"] == [{"name": "X-Api-Key"}]
    assert "hdr-secret" not in json.dumps(mcp_api("get", "/servers")[1])


def test_the_token_rotates_and_only_the_client_config_and_rotation_show_it(mcp_api):
    server = create(mcp_api)[1]
    config = mcp_api("get", f"/servers/{server['id']}/client-config?client=generic")[1]
    old = json.loads(config["snippet"])["mcpServers"]["time"]["headers"]["Authorization"].split()[1]
    assert old.endswith(server["token_hint"]) and len(old) >= 32
    assert old not in json.dumps(mcp_api("get", "/servers")[1])
    status, rotated = mcp_api("post", f"/servers/{server['id']}/token")
    assert status == 200 and rotated["token"] != old
    after = mcp_api("get", f"/servers/{server['id']}")[1]
    assert after["token_hint"] == rotated["token"][-4:]


def test_client_configs_follow_each_clients_own_format(mcp_api):
    server = create(mcp_api)[1]
    base = f"http://127.0.0.1:{server['port']}"

    def config(client, transport="streamable-http"):
        status, body = mcp_api("get", f"/servers/{server['id']}/client-config?client={client}&transport={transport}")
        assert status == 200, body
        return body

    token = json.loads(config("generic")["snippet"])["mcpServers"]["time"]["headers"]["Authorization"][7:]
    cursor = json.loads(config("cursor")["snippet"])
    assert cursor == {"mcpServers": {"time": {"url": base + "/mcp", "headers": {"Authorization": f"Bearer {token}"}}}}
    vscode = json.loads(config("vscode")["snippet"])
    assert vscode["servers"]["time"] == {
        "type": "http",
        "url": base + "/mcp",
        "headers": {"Authorization": "Bearer ${input:time-token}"},
    }
    assert vscode["inputs"][0]["id"] == "time-token" and vscode["inputs"][0]["password"] is True
    # The file holds no token anywhere; it is what the user types when VS Code asks.
    assert token not in config("vscode")["snippet"]
    assert config("vscode")["prompt_value"] == token
    assert config("cursor")["prompt_value"] is None
    assert json.loads(config("vscode", "sse")["snippet"])["servers"]["time"]["type"] == "sse"
    claude_code = config("claude-code")
    assert claude_code["format"] == "shell"
    assert claude_code["snippet"] == (
        f"claude mcp add --transport http time {base}/mcp --header 'Authorization: Bearer {token}'"
    )
    assert config("claude-code", "sse")["snippet"].startswith(f"claude mcp add --transport sse time {base}/sse ")
    desktop = json.loads(config("claude-desktop")["snippet"])["mcpServers"]["time"]
    assert desktop["command"] == "npx"
    assert desktop["args"] == ["-y", "mcp-remote", base + "/mcp", "--header", "Authorization:${AUTH_HEADER}"]
    assert not any(" " in arg for arg in desktop["args"])
    assert desktop["env"] == {"AUTH_HEADER": f"Bearer {token}"}
    status, body = mcp_api("get", f"/servers/{server['id']}/client-config?client=notepad")
    assert status == 400 and "client" in body["error"]["details"]["fields"]


def test_a_client_config_for_a_transport_the_server_does_not_serve_is_a_conflict(mcp_api):
    server = create(mcp_api, transports=["streamable-http"])[1]
    assert server["endpoints"]["sse"] is None
    status, body = mcp_api("get", f"/servers/{server['id']}/client-config?client=cursor&transport=sse")
    assert status == 409 and body["error"]["code"] == "transport_disabled"


def test_import_creates_every_entry_and_reports_bad_ones_on_their_own(mcp_api):
    document = {
        "mcpServers": {
            "time": {"command": "uvx", "args": ["mcp-server-time"]},
            "No Args": {"command": "mcp-server-git"},
            "github": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-github"],
                "env": {"GITHUB_TOKEN": "ghp-secret", "LOG": "debug"},
            },
            "remote": {"url": "https://mcp.example.test/mcp", "headers": {"Authorization": "Bearer up"}},
            "broken": {"args": ["no command"]},
            "time2": {"command": "uvx", "args": ["mcp-server-time"], "env": "not an object"},
        }
    }
    status, body = mcp_api("post", "/import", json=document)
    assert status == 200, body
    results = {r["name"]: r for r in body["results"]}
    assert sorted(results) == sorted(document["mcpServers"])
    assert results["time"]["ok"] and results["time"]["server"]["command"] == ["uvx", "mcp-server-time"]
    assert results["No Args"]["ok"] and results["No Args"]["server"]["name"] == "no-args"
    assert results["No Args"]["server"]["command"] == ["mcp-server-git"]
    github = results["github"]["server"]
    assert github["env"] == [
        {"key": "GITHUB_TOKEN", "value": None, "secret": True},
        {"key": "LOG", "value": "debug", "secret": False},
    ]
    assert results["remote"]["server"]["kind"] == "remote"
    assert results["remote"]["server"]["headers"] == [{"name": "Authorization"}]
    assert not results["broken"]["ok"] and results["broken"]["error"]["code"] == "validation_error"
    assert not results["time2"]["ok"]
    assert "ghp-secret" not in json.dumps(body)
    names = sorted(s["name"] for s in mcp_api("get", "/servers")[1]["servers"])
    assert names == ["github", "no-args", "remote", "time"]
    # Importing again: every entry is a name conflict, reported per entry.
    again = mcp_api("post", "/import", json={"mcpServers": {"time": document["mcpServers"]["time"]}})[1]
    assert again["results"][0]["error"]["code"] == "name_taken"


def test_unknown_servers_are_404(mcp_api):
    for method, path in [
        ("get", "/servers/nope"),
        ("put", "/servers/nope"),
        ("delete", "/servers/nope"),
        ("post", "/servers/nope/start"),
        ("get", "/servers/nope/logs"),
        ("get", "/servers/nope/tools"),
        ("get", "/servers/nope/client-config"),
    ]:
        kwargs = {"json": {"autostart": True}} if method == "put" else {}
        status, body = mcp_api(method, path, **kwargs)
        assert status == 404, (method, path, body)
        assert body["error"]["code"] == "not_found"


def test_extra_hosts_are_validated(mcp_host, mcp_api):
    server = create(mcp_api)[1]
    service = mcp_host.app.extensions["open1panel_ai"].services["mcp"]
    assert service.set_extra_hosts(server["id"], ["MCP.Example.test", "mcp.example.test"])["extra_hosts"] == [
        "mcp.example.test"
    ]
    from open1panel_ai.errors import BadRequest

    for bad in (["evil.test/x"], ["a b"], ["host:8080"], [""]):
        with pytest.raises(BadRequest):
            service.set_extra_hosts(server["id"], bad)
    assert service.server(server["id"])["extra_hosts"] == ["mcp.example.test"]


def test_the_api_needs_the_token(mcp_host):
    response = mcp_host.app.test_client().get("/api/v2/ai/mcp/servers")
    assert response.status_code == 401


def test_other_features_are_told_when_a_server_changes_or_goes(mcp_host, mcp_api):
    service = mcp_host.app.extensions["open1panel_ai"].services["mcp"]
    told = []

    def failing(server_id, event):
        raise RuntimeError("a broken watcher")

    service.on_server_change(failing)
    service.on_server_change(
        lambda server_id, event: told.append(
            (server_id, event, service.server(server_id)["port"] if event == "updated" else None)
        )
    )
    server = create(mcp_api)[1]
    other = create(mcp_api, name="other")[1]
    status, moved = mcp_api("put", f"/servers/{server['id']}", json={"port": server["port"] + 500})
    assert status == 200, moved
    assert told == [(server["id"], "updated", server["port"] + 500)]
    # A refused change tells nobody.
    assert mcp_api("put", f"/servers/{server['id']}", json={"port": other["port"]})[0] == 409
    assert mcp_api("delete", f"/servers/{server['id']}")[0] == 204
    assert told == [(server["id"], "updated", server["port"] + 500), (server["id"], "deleted", None)]


def test_the_list_holds_while_other_servers_are_created_and_deleted(mcp_host, mcp_api, auth_headers):
    """A server deleted while the list is being read is left out; the list never fails on it."""
    kept = {create(mcp_api, name=f"kept-{index}")[1]["id"] for index in range(30)}
    churning = mcp_host.app.test_client()
    stop = threading.Event()
    churned = []

    def churn():  # names that sort after the kept ones: a delete lands while the list is read
        while not stop.is_set():
            made = churning.post(
                "/api/v2/ai/mcp/servers",
                headers=auth_headers,
                json={"name": f"zz-churn-{len(churned)}", "command": TIME_SERVER},
            )
            churned.append(
                churning.delete(f"/api/v2/ai/mcp/servers/{made.get_json()['id']}", headers=auth_headers).status_code
            )

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        lists = [mcp_api("get", "/servers") for _ in range(150)]
    finally:
        stop.set()
        thread.join()
    assert churned and set(churned) == {204}
    failures = [body for status, body in lists if status != 200]
    assert not failures, failures[0]
    assert all(kept <= {server["id"] for server in body["servers"]} for _, body in lists)


def check(api, **body):
    return api("post", "/command-check", json=body)


def path_env(folder):
    """A server env whose PATH is ``folder`` alone: none of this machine's programs."""
    return [{"key": "PATH", "value": str(folder)}]


def test_the_command_check_finds_the_program_on_the_path_the_child_gets(mcp_api, tmp_path):
    status, found = check(mcp_api, command=TIME_SERVER)
    assert status == 200, found
    assert found["found"] == TIME_SERVER[0] and found["warning"] is None and found["warning_i18n"] is None
    assert found["argv"] == TIME_SERVER and found["program"] == TIME_SERVER[0]
    # A string is split the way the API splits it, so the form can show the list.
    status, split = check(mcp_api, command="python3 -c \"print('a b')\"")
    assert split["argv"] == ["python3", "-c", "print('a b')"] and split["found"]
    # The server's own PATH is where its child looks: here one without python3.
    status, answer = check(mcp_api, command=["python3", "-V"], env=path_env(tmp_path))
    assert answer["found"] is None and answer["path"] == str(tmp_path)
    assert "python3" in answer["warning"] and "Check the command" in answer["warning"]


@pytest.mark.parametrize(
    "program, advice",
    [
        ("uvx", "Install uv, which brings uvx"),
        ("npx", "Install Node.js, which brings npm and npx"),
        ("mcp-servre-time", "Check the command"),
    ],
)
def test_a_missing_program_is_named_with_how_to_install_it(mcp_api, tmp_path, program, advice):
    status, answer = check(mcp_api, command=[program, "some-package"], env=path_env(tmp_path))
    assert status == 200 and answer["found"] is None
    assert answer["warning"].startswith(program) and advice in answer["warning"]
    assert answer["warning_i18n"]["params"]["program"] == program


def test_a_relative_program_is_found_from_the_working_folder(mcp_api, tmp_path):
    script = tmp_path / "server.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    found = check(mcp_api, command=["./server.sh"], cwd=str(tmp_path))[1]["found"]
    assert found == str(tmp_path / "server.sh")
    missing = check(mcp_api, command=["./other.sh"], cwd=str(tmp_path))[1]
    assert missing["found"] is None
    assert missing["warning"] == "./other.sh does not exist or is not executable. Check the command."
    gone = check(mcp_api, command=TIME_SERVER, cwd=str(tmp_path / "gone"))[1]
    assert gone["warning"].startswith(f"The working folder {tmp_path / 'gone'} does not exist")


def test_the_command_check_answers_in_the_readers_language_and_refuses_bad_input(mcp_api, tmp_path):
    chinese = {"Accept-Language": "zh-CN"}
    status, answer = mcp_api(
        "post", "/command-check", headers=chinese, json={"command": ["uvx", "x"], "env": path_env(tmp_path)}
    )
    assert status == 200 and answer["warning"].startswith("未安装 uvx") and "安装 uv" in answer["warning"]
    assert answer["warning_i18n"]["key"] == "mcp.reason.missing_uv"
    for body, field in [
        ({"command": "'unbalanced"}, "command"),
        ({"command": []}, "command"),
        ({}, "command"),
        ({"command": "x", "cwd": "relative"}, "cwd"),
    ]:
        status, error = mcp_api("post", "/command-check", json=body)
        assert status == 400 and field in error["error"]["details"]["fields"], (body, error)
    status, error = mcp_api("post", "/command-check", headers=chinese, json={"command": "'unbalanced"})
    assert error["error"]["details"]["fields"]["command"] == ["无法拆分命令：No closing quotation。"]


def test_errors_and_import_results_come_in_the_readers_language(mcp_api):
    chinese = {"Accept-Language": "zh-CN"}
    create(mcp_api)
    status, body = mcp_api("post", "/servers", headers=chinese, json={"name": "time", "command": TIME_SERVER})
    assert status == 409 and body["error"]["message"] == "名为 time 的服务器已存在，请换一个名称。"
    status, body = mcp_api("get", "/servers/000000000000", headers=chinese)
    assert status == 404 and body["error"]["message"] == "没有 ID 为 000000000000 的 MCP 服务器。"
    status, body = mcp_api(
        "post", "/servers", headers=chinese, json={"name": "x", "command": TIME_SERVER, "bind_host": "example.com"}
    )
    assert body["error"]["details"]["fields"]["bind_host"] == [
        "请填写 IP 地址，例如 127.0.0.1（0.0.0.0 表示对外开放）。"
    ]
    status, body = mcp_api(
        "post",
        "/import",
        headers=chinese,
        json={
            "mcpServers": {
                "bad-env": {"command": "uvx", "env": "not an object"},
                "time": {"command": "uvx"},
                "nothing": 3,
            }
        },
    )
    results = {r["name"]: r["error"] for r in body["results"]}
    assert results["bad-env"]["message"] == "此条目无效。"
    assert results["bad-env"]["details"]["reason"] == "“env”必须是对象。"
    assert results["nothing"]["details"]["reason"] == "每个条目必须是包含 command 或 url 的对象。"
    assert results["time"]["message"] == "名为 time 的服务器已存在，请换一个名称。"


def test_servers_created_at_once_get_their_own_name_port_and_sandbox_uid(mcp_host, auth_headers):
    """Creates run side by side, each storing its row after the service lock is released: the
    names, ports and sandbox uids chosen meanwhile are still each given once, and a name
    asked for twice at once is one 201 and one 409, never a 500."""
    results: list[tuple[int, dict]] = []

    def creator(worker: int) -> None:
        client = mcp_host.app.test_client()
        for index in range(6):
            for name in (f"par-{worker}-{index}", f"same-{index}"):
                answer = client.post(
                    "/api/v2/ai/mcp/servers", headers=auth_headers, json={"name": name, "command": TIME_SERVER}
                )
                results.append((answer.status_code, answer.get_json()))

    threads = [threading.Thread(target=creator, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {status for status, _ in results} <= {201, 409}, [body for status, body in results if status >= 500][:1]
    made = [body for status, body in results if status == 201]
    assert sorted(server["name"] for server in made) == sorted(
        [f"par-{worker}-{index}" for worker in range(6) for index in range(6)] + [f"same-{index}" for index in range(6)]
    )
    assert all(body["error"]["code"] == "name_taken" for status, body in results if status == 409)
    assert len({server["port"] for server in made}) == len(made)
    store = mcp_host.app.extensions["open1panel_ai"].store
    uids = [json.loads(row["definition"])["sandbox_uid"] for row in store.query("SELECT definition FROM mcp_servers")]
    assert len(uids) == len(made) and len(set(uids)) == len(uids)
