"""Real reverse proxies for the domain tests: Debian's nginx and Caddy, each started on
loopback high ports with its own config root in a temp dir, and stopped afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TOKEN, free_port
from tests.ollama_standin import OllamaStandIn


class NginxServer:
    """nginx in the foreground with a main config that includes ``sites/*.conf``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sites = root / "sites"
        self.conf = root / "nginx.conf"
        self.http_port = free_port()
        self.https_port = free_port()
        self.process: subprocess.Popen | None = None

    def settings(self, data_dir: Path) -> dict[str, str]:
        """The provider settings that point at this nginx."""
        return {
            "data_dir": str(data_dir),
            "nginx_bin": shutil.which("nginx") or "/usr/sbin/nginx",
            "nginx_conf": str(self.conf),
            "nginx_sites_dir": str(self.sites),
            "nginx_http_port": f"127.0.0.1:{self.http_port}",
            "nginx_https_port": f"127.0.0.1:{self.https_port}",
        }

    def start(self) -> NginxServer:
        temp = self.root / "temp"
        for folder in (self.sites, temp):
            folder.mkdir(parents=True, exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf.write_text(f"""{user}daemon off;
worker_processes 1;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{self.http_port} default_server;
        return 421;
    }}
    include {self.sites}/*.conf;
}}
""")
        self.process = subprocess.Popen(
            ["nginx", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _wait_for_port(self.http_port, self.process)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def get(self, host: str, path: str = "/", port: int | None = None, **kwargs) -> httpx.Response:
        """A request to this nginx as a client of ``host`` would make it."""
        headers = {"Host": host, **kwargs.pop("headers", {})}
        return httpx.get(f"http://127.0.0.1:{port or self.http_port}{path}", headers=headers, timeout=10, **kwargs)


#: The config a test's Caddy starts with when it is given no ``apps``.
DEFAULT = object()


class CaddyServer:
    """``caddy run`` with an admin API and one loopback HTTP server named ``open1panel_ai``;
    with ``automatic_https``, that server listens on the HTTPS port, and on the HTTP port as
    well when ``both_ports``. With ``admin_socket`` the admin API listens on a unix socket, as
    docs/domains.md advises (``unix//…``), in a folder of its own that only its user may
    enter; else on a loopback port."""

    def __init__(
        self, root: Path, automatic_https: bool = False, both_ports: bool = False, admin_socket: bool = False
    ) -> None:
        self.root = root
        self.automatic_https = automatic_https
        self.both_ports = both_ports
        self.admin_port = free_port()
        self.http_port = free_port()
        self.https_port = free_port()
        self.admin_socket: Path | None = None
        if admin_socket:
            # A short path of its own: a unix socket's path holds at most 107 bytes.
            self.admin_socket = Path(tempfile.mkdtemp(prefix="caddy-admin-")) / "admin.sock"
            self.admin = f"unix/{self.admin_socket}"
        else:
            self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.process: subprocess.Popen | None = None

    def settings(self, data_dir: Path) -> dict[str, str]:
        return {"data_dir": str(data_dir), "caddy_admin": self.admin}

    def start(self, resume: bool = False, apps=DEFAULT) -> CaddyServer:
        """Start Caddy; with ``resume``, on the config it last held (its autosave), as a Caddy
        run with ``--resume`` comes back after a stop; with ``apps``, on that ``apps`` section
        (None: a config without one)."""
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "caddy.json"
        server = {"listen": [f"127.0.0.1:{self.http_port}"], "automatic_https": {"disable": True}, "routes": []}
        default = apps is DEFAULT
        if default:
            apps = {"http": {"servers": {"open1panel_ai": server}}}
        if default and self.automatic_https:
            # Automatic HTTPS with Caddy's own CA standing in for an ACME CA (no network here).
            ports = [self.http_port, self.https_port] if self.both_ports else [self.https_port]
            server = {"listen": [f"127.0.0.1:{port}" for port in ports], "routes": []}
            apps = {
                "http": {
                    "http_port": self.http_port,
                    "https_port": self.https_port,
                    "servers": {"open1panel_ai": server},
                },
                "tls": {"automation": {"policies": [{"issuers": [{"module": "internal"}]}]}},
            }
        listen = f"unix/{self.admin_socket}" if self.admin_socket else f"127.0.0.1:{self.admin_port}"
        document = {"admin": {"listen": listen}}
        if apps is not None:
            document["apps"] = apps
        config.write_text(json.dumps(document))
        env = {
            **os.environ,
            "HOME": str(self.root),
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
        }
        command = ["caddy", "run", "--config", str(config), *(["--resume"] if resume else [])]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_for_admin()
        if default and not self.automatic_https:
            _wait_for_port(self.http_port, self.process)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def close(self) -> None:
        """Stop Caddy and remove the admin socket's folder."""
        self.stop()
        if self.admin_socket is not None:
            shutil.rmtree(self.admin_socket.parent, ignore_errors=True)

    def admin_request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """A request to Caddy's admin API, over its unix socket or its port."""
        if self.admin_socket is None:
            return httpx.request(method, self.admin + path, timeout=10, **kwargs)
        transport = httpx.HTTPTransport(uds=str(self.admin_socket))
        with httpx.Client(transport=transport, base_url="http://localhost", headers={"Host": ""}) as client:
            return client.request(method, path, timeout=10, **kwargs)

    def config(self, path: str = "/config/"):
        """What Caddy's config holds at ``path``."""
        return self.admin_request("GET", path).json()

    def _wait_for_admin(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("caddy exited early")
            try:
                self.admin_request("GET", "/config/")
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"Caddy's admin API did not answer in {timeout}s")

    def get(self, host: str, path: str = "/", **kwargs) -> httpx.Response:
        headers = {"Host": host, **kwargs.pop("headers", {})}
        return httpx.get(f"http://127.0.0.1:{self.http_port}{path}", headers=headers, timeout=10, **kwargs)


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the proxy exited early: {process.stderr and process.stderr.read()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answered on port {port} in {timeout}s")


@pytest.fixture
def nginx(tmp_path):
    server = NginxServer(tmp_path / "nginx").start()
    yield server
    server.stop()


@pytest.fixture
def caddy(tmp_path):
    """A real Caddy whose admin API is on a unix socket, as docs/domains.md advises."""
    server = CaddyServer(tmp_path / "caddy", admin_socket=True).start()
    yield server
    server.close()


@pytest.fixture
def ollama(tmp_path):
    with OllamaStandIn(tmp_path / "ollama") as standin:
        yield standin


class DomainPanel:
    """A standalone panel whose domain provider is the nginx or Caddy of the test, and whose
    ``local`` Ollama endpoint is the stand-in."""

    def __init__(self, host, proxy) -> None:
        self.host = host
        self.proxy = proxy
        self.client = host.app.test_client()

    @property
    def context(self):
        return self.host.app.extensions["open1panel_ai"]

    def api(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {TOKEN}", **kwargs.pop("headers", {})}
        response = getattr(self.client, method)("/api/v2/ai" + path, headers=headers, **kwargs)
        return response.status_code, response.get_json()


@pytest.fixture(params=["nginx", "caddy"])
def proxy(request, tmp_path):
    """Each real proxy in turn."""
    server = (
        NginxServer(tmp_path / "nginx")
        if request.param == "nginx"
        else CaddyServer(tmp_path / "caddy", admin_socket=True)
    ).start()
    server.kind = request.param
    yield server
    getattr(server, "close", server.stop)()


def _panel(proxy, kind, panel_env, make_host, ollama, data_dir):
    for key, value in proxy.settings(data_dir).items():
        if key != "data_dir":
            panel_env.setenv("OPEN1PANEL_AI_" + key.upper(), value)
    panel_env.setenv("OPEN1PANEL_AI_DOMAIN_PROVIDER", kind)
    panel_env.setenv("OLLAMA_HOST", ollama.url)
    return DomainPanel(make_host(), proxy)


@pytest.fixture
def panel(proxy, panel_env, make_host, ollama, data_dir):
    """A panel publishing through each real proxy in turn."""
    return _panel(proxy, proxy.kind, panel_env, make_host, ollama, data_dir)


@pytest.fixture
def nginx_panel(nginx, panel_env, make_host, ollama, data_dir):
    """A panel publishing through a real nginx."""
    return _panel(nginx, "nginx", panel_env, make_host, ollama, data_dir)


@pytest.fixture
def caddy_panel(caddy, panel_env, make_host, ollama, data_dir):
    """A panel publishing through a real Caddy."""
    return _panel(caddy, "caddy", panel_env, make_host, ollama, data_dir)
