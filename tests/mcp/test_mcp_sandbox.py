"""MCP servers run sandboxed: their own uid, home and environment, bubblewrap's view of the file
system, their own PID namespace, and the network and limits of their profile.

Every server here is real and is reached through the bridge with the official client. The
probe server (sandbox_probe.py) tries what a malicious package would and reports each attempt.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from open1panel_ai import private
from tests.conftest import free_port
from tests.mcp.conftest import BIN, call_tool, wait_status

HERE = Path(__file__).parent
PROBE = HERE / "sandbox_probe.py"
TIME_SERVER = str(BIN / "mcp-server-time")
#: What a child may find in its environment besides LC_* and what it declares (bubblewrap
#: sets PWD, the working folder it starts in).
ALLOWED_ENV = {"PATH", "HOME", "LANG", "TMPDIR", "PWD"}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("bwrap") is None,
    reason="the sandbox needs a root panel and bubblewrap (scripts/test installs it)",
)


def create(api, name, command, **fields):
    status, server = api("post", "/servers", json={"name": name, "command": command, "port": free_port(), **fields})
    assert status == 201, server
    return server


def start_running(api, server, timeout=60):
    status, body = api("post", f"/servers/{server['id']}/start")
    assert status in (200, 202), body
    return wait_status(api, server["id"], "running", timeout=timeout)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (bubblewrap starts a session of its own, so the bridge's
    process group does not hold them)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            children = [int(c) for c in (task / "children").read_text().split()]
            found += children
            todo += children
    return found


def child_of(server) -> int:
    """The server's program (not the bridge, bwrap, setpriv or prlimit): the deepest process
    below the bridge that runs as the sandbox's uid."""
    below = descendants(server["pid"])
    own = [pid for pid in below if _uid(pid) == server["isolation"]["uid"]]
    assert own, f"no process of uid {server['isolation']['uid']} among {below}"
    return own[-1]


def _uid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("Uid:")).split()[1])


def environ_keys(pid: int) -> set[str]:
    with open(f"/proc/{pid}/environ", "rb") as environ:
        return {item.split(b"=", 1)[0].decode() for item in environ.read().split(b"\0") if item}


def probe(server, **attempts):
    arguments = {"read_paths": [], "list_paths": [], "write_paths": [], "connect_to": [], "pids": []}
    arguments.update(attempts)
    text = call_tool(server["endpoints"]["streamable_http"], token_of(server), "probe", arguments)
    return json.loads(text)


TOKENS: dict[str, str] = {}


def token_of(server) -> str:
    return TOKENS[server["id"]]


def with_token(api, server):
    status, body = api("post", f"/servers/{server['id']}/token")
    assert status == 200, body
    TOKENS[server["id"]] = body["token"]
    return server


def refused() -> pytest.RaisesGroup:
    """Expect a tool call the sandbox denies: the server answers with an error result, which
    :func:`call_tool` asserts against inside the client's task groups."""
    return pytest.RaisesGroup(pytest.RaisesExc(AssertionError, match="is_error=True"), flatten_subgroups=True)


def test_a_server_runs_as_its_own_user_with_only_its_environment(mcp_api, mcp_host):
    server = create(
        mcp_api,
        "time",
        [TIME_SERVER, "--local-timezone", "UTC"],
        env=[{"key": "GREETING", "value": "hi"}, {"key": "API_KEY", "value": "s3cret", "secret": True}],
    )
    running = start_running(mcp_api, with_token(mcp_api, server))
    isolation = running["isolation"]
    assert isolation["mode"] == "sandbox"
    assert all(layer["applied"] for layer in isolation["layers"]), isolation
    assert isolation["uid"] not in (None, 0, os.geteuid())
    text = call_tool(
        running["endpoints"]["streamable_http"], token_of(running), "get_current_time", {"timezone": "UTC"}
    )
    assert '"timezone": "UTC"' in text or '"timezone":"UTC"' in text

    child = child_of(running)
    assert environ_keys(child) <= ALLOWED_ENV | {"GREETING", "API_KEY"} | {
        key for key in environ_keys(child) if key.startswith("LC_")
    }
    assert {"GREETING", "API_KEY", "HOME", "PATH"} <= environ_keys(child)
    home = Path(isolation["home"])
    assert home.stat().st_uid == isolation["uid"] and oct(home.stat().st_mode)[-3:] == "700"
    # The bridge keeps the panel's uid but none of its settings or secrets.
    assert not {key for key in environ_keys(running["pid"]) if key.startswith("OPEN1PANEL_AI_")}


def test_the_probe_is_refused_everything_it_was_not_granted(mcp_api, mcp_host, tmp_path):
    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "notes.txt").write_text("readable")
    other = start_running(mcp_api, with_token(mcp_api, create(mcp_api, "other", [TIME_SERVER])))
    other_home = Path(other["isolation"]["home"])
    (other_home / "private.txt").write_text("the other server's")
    server = create(
        mcp_api,
        "probe",
        [sys.executable, str(PROBE)],
        profile={"read": [str(HERE)], "write": [str(granted)], "network": "none"},
    )
    running = start_running(mcp_api, with_token(mcp_api, server))
    os.chown(granted, running["isolation"]["uid"], running["isolation"]["uid"])
    data_dir = mcp_host.data_dir
    if not (data_dir / "admin-token").exists():  # a panel whose token was made for it has one
        private.create_whole(data_dir / "admin-token", "x" * 43)
    for secret in ("admin-token", "session-secret", "open1panel-ai.sqlite3"):
        assert (data_dir / secret).is_file()  # there to be read, were the sandbox not in the way
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        report = probe(
            running,
            read_paths=[
                str(data_dir / "admin-token"),
                str(data_dir / "session-secret"),
                str(data_dir / "open1panel-ai.sqlite3"),
                str(data_dir / "host.sqlite3"),
                str(data_dir / "metrics-token"),
                str(other_home / "private.txt"),
                "/root/.profile",
                str(granted / "notes.txt"),
            ],
            list_paths=[str(data_dir), str(other_home), "/root"],
            write_paths=[str(granted), "/etc", str(HERE)],
            connect_to=[f"127.0.0.1:{listener.getsockname()[1]}"],
            pids=[running["pid"], os.getpid()],
        )
    finally:
        listener.close()
    results = report["results"]
    assert report["uid"] == running["isolation"]["uid"] != 0
    assert report["groups"] == [] or report["groups"] == [report["gid"]]
    assert set(report["env_keys"]) - ALLOWED_ENV <= {k for k in report["env_keys"] if k.startswith("LC_")}
    granted_read = f"read {granted / 'notes.txt'}"
    granted_write = f"write {granted}"
    assert results.pop(granted_read).startswith("ok")
    assert results.pop(granted_write).startswith("ok")
    assert (granted / "probe-was-here").exists()  # the grant wrote through to the real folder
    refused = {attempt: outcome for attempt, outcome in results.items() if not outcome.startswith("refused")}
    assert refused == {}, refused
    # Its /tmp is its own: nothing it writes there reaches the machine's /tmp.
    assert not Path("/tmp/probe-was-here").exists()


def test_a_profile_refuses_the_panels_folders_and_relative_paths(mcp_api, mcp_host):
    data_dir = str(mcp_host.data_dir)
    for profile, field in [
        ({"read": ["relative/path"]}, "read"),
        ({"write": ["/srv/../etc"]}, "write"),
        ({"read": [data_dir]}, "read"),
        ({"write": ["/"]}, "write"),
        ({"read": [os.environ["OPEN1PANEL_AI_MCP_HOMES"] + "/x"]}, "read"),
    ]:
        status, body = mcp_api("post", "/servers", json={"name": "bad", "command": [TIME_SERVER], "profile": profile})
        assert status == 400, (profile, body)
        fields = body["error"]["details"]["fields"]
        # marshmallow nests its own findings; the service names the entry it refused.
        assert list(fields.get("profile", {}).get(field, {})) == ["0"] or list(fields) == [f"profile.{field}.0"], body
        assert "profile" in body["error"]["message"], body
    status, body = mcp_api("get", "/servers")
    assert body["servers"] == []  # nothing half-made


def test_paths_are_stored_in_their_normal_form_and_shown(mcp_api):
    server = create(mcp_api, "tidy", [TIME_SERVER], profile={"read": ["/srv//data/./x/"], "memory_mb": 256})
    assert server["profile"]["read"] == ["/srv/data/x"]
    assert server["profile"]["memory_mb"] == 256 and server["profile"]["network"] == "all"


def test_git_server_writes_its_granted_repository_and_sees_no_other(mcp_api, tmp_path):
    repository, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    for folder in (repository, elsewhere):
        subprocess.run(["git", "init", "-q", str(folder)], check=True)
    server = create(
        mcp_api,
        "git",
        [str(BIN / "mcp-server-git"), "--repository", str(repository)],
        profile={"write": [str(repository)]},
    )
    running = start_running(mcp_api, with_token(mcp_api, server))
    uid = running["isolation"]["uid"]
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(repository)], check=True)
    (repository / "hello.txt").write_text("hello")
    url, token = running["endpoints"]["streamable_http"], token_of(running)
    call_tool(url, token, "git_add", {"repo_path": str(repository), "files": ["hello.txt"]})
    staged = subprocess.run(
        ["git", "-C", str(repository), "-c", f"safe.directory={repository}", "diff", "--cached", "--name-only"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert staged.stdout.split() == ["hello.txt"]  # written by the sandboxed server
    with refused():
        call_tool(url, token, "git_status", {"repo_path": str(elsewhere)})


@pytest.fixture
def without_bubblewrap(mcp_env):
    """Panels made after this find no bubblewrap (list it before the panel's fixtures)."""
    mcp_env.setenv("OPEN1PANEL_AI_MCP_BWRAP", "/nonexistent/bwrap")


def test_without_bubblewrap_the_server_still_runs_and_says_what_is_missing(
    without_bubblewrap, mcp_api, mcp_host, auth_headers
):
    # The system's python3 and a script every user may read: the test's own virtual
    # environment lies where another uid cannot reach without bubblewrap's view.
    folder = Path(tempfile.mkdtemp(prefix="o1p-minimal-"))
    try:
        folder.chmod(0o755)
        script = folder / "server.py"
        shutil.copy(HERE / "minimal_stdio_server.py", script)
        script.chmod(0o644)
        server = create(mcp_api, "minimal", ["/usr/bin/python3", str(script)])
        running = start_running(mcp_api, with_token(mcp_api, server))
        isolation = running["isolation"]
        assert isolation["mode"] == "partial"
        layers = {layer["name"]: layer for layer in isolation["layers"]}
        assert layers["user"]["applied"] and layers["limits"]["applied"] and layers["environment"]["applied"]
        for name in ("filesystem", "processes"):
            assert not layers[name]["applied"]
            assert "bubblewrap" in layers[name]["reason"] and "apt-get install bubblewrap" in layers[name]["fix"]
        report = json.loads(call_tool(running["endpoints"]["streamable_http"], token_of(running), "whoami", {}))
        assert report["uid"] == isolation["uid"] != 0
        assert set(report["env_keys"]) <= ALLOWED_ENV | {k for k in report["env_keys"] if k.startswith("LC_")}
        # The status page says so too, naming the server, the layers and what to do.
        overview = mcp_host.app.test_client().get("/api/v2/ai/overview", headers=auth_headers).get_json()["mcp"]
        assert overview["state"] == "attention"
        [entry] = overview["unisolated"]
        assert (entry["name"], entry["mode"]) == ("minimal", "partial")
        assert entry["missing"] == ["filesystem", "processes"] and "bubblewrap" in entry["fix"]
    finally:
        shutil.rmtree(folder)


def test_isolation_none_is_an_explicit_opt_out_shown_as_such(mcp_api):
    server = create(mcp_api, "open", [TIME_SERVER], profile={"isolation": "none"})
    running = start_running(mcp_api, with_token(mcp_api, server))
    assert running["isolation"]["mode"] == "none" and running["isolation"]["uid"] is None
    assert all(not layer["applied"] for layer in running["isolation"]["layers"] if layer["name"] != "environment")
    assert "isolation: none" in running["isolation"]["layers"][0]["reason"]
    assert _uid(child_of_panel_user(running)) == os.geteuid()


def child_of_panel_user(server) -> int:
    below = descendants(server["pid"])
    assert below
    return below[-1]


@pytest.fixture
def slow_first_start(mcp_env):
    """Panels made after this give a first start time to download the server from its registry."""
    mcp_env.setenv("OPEN1PANEL_AI_MCP_START_TIMEOUT", "240")


@pytest.mark.skipif(shutil.which("npx") is None, reason="npx comes with npm (scripts/test installs it)")
def test_an_npx_server_fetches_into_its_home_and_sees_only_its_granted_folder(
    slow_first_start, mcp_api, mcp_host, tmp_path
):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "report.md").write_text("# granted")
    server = create(
        mcp_api,
        "files",
        ["npx", "-y", "@modelcontextprotocol/server-filesystem", str(shared)],
        profile={"read": [str(shared)]},
    )
    running = start_running(mcp_api, with_token(mcp_api, server), timeout=240)
    assert running["isolation"]["mode"] == "sandbox"
    assert (Path(running["isolation"]["home"]) / ".npm").is_dir()  # npx's cache is the server's own
    url, token = running["endpoints"]["streamable_http"], token_of(running)
    assert "report.md" in call_tool(url, token, "list_directory", {"path": str(shared)})
    with refused():
        call_tool(url, token, "list_directory", {"path": str(mcp_host.data_dir)})


@pytest.mark.skipif(shutil.which("uvx", path=str(BIN)) is None, reason="uvx comes with the test extras")
def test_a_uvx_server_fetches_into_its_home_and_runs_there(slow_first_start, mcp_api):
    server = create(
        mcp_api,
        "uvx-time",
        [str(BIN / "uvx"), "mcp-server-time"],
        env=[
            # The interpreter of the test's environment (in the sandbox's view as uvx's own
            # installation), instead of one downloaded from the internet.
            {"key": "UV_PYTHON", "value": sys.executable},
            {"key": "UV_PYTHON_DOWNLOADS", "value": "never"},
            # The machine's own certificate store, which /etc in the sandbox's view holds (as an
            # admin behind a TLS-inspecting proxy would set it).
            {"key": "UV_SYSTEM_CERTS", "value": "1"},
        ],
    )
    running = start_running(mcp_api, with_token(mcp_api, server), timeout=240)
    assert running["isolation"]["mode"] == "sandbox"
    assert any((Path(running["isolation"]["home"]) / ".cache" / "uv").iterdir())
    text = call_tool(
        running["endpoints"]["streamable_http"], token_of(running), "get_current_time", {"timezone": "UTC"}
    )
    assert "UTC" in text
