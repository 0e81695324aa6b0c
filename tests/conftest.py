"""Shared fixtures: a standalone host in this process, API helpers, and a real served panel."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from open1panel_ai.config import Settings
from open1panel_ai.standalone.host import create_host
from open1panel_ai.standalone.server import ALLOCATOR_TUNABLES

TOKEN = "test-admin-token-0123456789abcdefghijklmnop"
#: Debian's Chromium, started as the project's browser tests need it (never `playwright install`).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TESTS_DIR = Path(__file__).parent
#: Holds a test plugin installed as a real distribution (a .dist-info with an entry point).
PLUGINS_DIR = TESTS_DIR / "plugins"
#: The test command installs the example plugin; other tests choose their providers themselves,
#: so panels under test leave it out unless a test enables it.
EXAMPLE_PLUGINS = "drm,amd"


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def panel_env(monkeypatch, data_dir):
    """The environment of a panel under test: its own data dir and a known token."""
    for key in list(os.environ):
        if key.startswith("OPEN1PANEL_AI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OPEN1PANEL_AI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("OPEN1PANEL_AI_TOKEN", TOKEN)
    monkeypatch.setenv("OPEN1PANEL_AI_DISABLED_PLUGINS", EXAMPLE_PLUGINS)
    monkeypatch.setenv("OPEN1PANEL_AI_MCP_HOMES", str(data_dir.parent / "mcp-homes"))
    return monkeypatch


@pytest.fixture
def make_host(panel_env):
    """Build standalone hosts (with optional extra plugins); all are shut down afterwards."""
    hosts = []

    def make(*extra_plugins):
        host = create_host(Settings.from_environ(), list(extra_plugins))
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.shutdown()


@pytest.fixture
def host(make_host):
    return make_host()


@pytest.fixture
def client(host):
    return host.app.test_client()


@pytest.fixture
def auth_headers():
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(client, auth_headers):
    """Call the API with the admin token: ``api("get", "/status")`` → (status, json)."""

    def call(method, path, **kwargs):
        headers = {**auth_headers, **kwargs.pop("headers", {})}
        response = getattr(client, method)("/api/v2/ai" + path, headers=headers, **kwargs)
        return response.status_code, response.get_json()

    return call


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServedPanel:
    """``open1panel-ai serve`` running in a subprocess, as a user would start it."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, with_test_plugin: bool = True):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OPEN1PANEL_AI_")}
        self.env["OPEN1PANEL_AI_DISABLED_PLUGINS"] = EXAMPLE_PLUGINS
        self.env["OPEN1PANEL_AI_MCP_HOMES"] = str(data_dir.parent / f"mcp-homes-{data_dir.name}")
        if with_test_plugin:
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS_DIR), self.env.get("PYTHONPATH")]))
        # What serve would run itself again with, given up front so that each panel starts
        # one interpreter (tests/test_soak_mechanisms.py starts one without it).
        self.env["GLIBC_TUNABLES"] = ALLOCATOR_TUNABLES
        self.env.update(env or {})
        self.log_path = data_dir.parent / f"panel-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> ServedPanel:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "open1panel_ai",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the panel exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the panel did not answer in {timeout}s:\n{self.log()}")

    @property
    def token(self) -> str:
        return self.env.get("OPEN1PANEL_AI_TOKEN") or (self.data_dir / "admin-token").read_text().strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.url + "/api/v2/ai" + path, headers=headers, timeout=10, **kwargs)

    def wait_task(self, task_id: str, predicate, timeout: float = 30) -> dict:
        """Poll ``GET /tasks/<id>`` until ``predicate(task)`` holds; return that task."""
        deadline = time.monotonic() + timeout
        task = None
        while time.monotonic() < deadline:
            task = self.api("GET", f"/tasks/{task_id}").json()
            if predicate(task):
                return task
            time.sleep(0.1)
        raise AssertionError(f"task {task_id} never got there: {task}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process is None:
            return 0
        try:
            if self.process.poll() is not None:
                return self.process.returncode
            self.process.send_signal(sig)
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            self._log.close()


@pytest.fixture
def served(tmp_path):
    """Start real panels; each is stopped (SIGTERM, then SIGKILL) at the end."""
    panels = []

    def start(**kwargs) -> ServedPanel:
        kwargs.setdefault("env", {"OPEN1PANEL_AI_TOKEN": TOKEN})
        panel = ServedPanel(kwargs.pop("data_dir", tmp_path / "served-data"), **kwargs).start()
        panels.append(panel)
        return panel

    yield start
    for panel in panels:
        panel.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright; one per test module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh English browser context and page."""
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    yield page
    context.close()
