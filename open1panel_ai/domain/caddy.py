"""The ``caddy`` provider: one route per binding in a running Caddy, through its admin API.

Each binding is a route tagged ``"@id": "open1panel-ai-<id>"`` in the HTTP server named by
``OPEN1PANEL_AI_CADDY_SERVER`` (``open1panel_ai``; created if missing on the HTTP app's
``http_port`` and ``https_port``, 80 and 443 unless set). The ports in ready URLs and redirects
are read from that server's ``listen``. A change reads ``/config/apps``, edits it and writes it
back with ``If-Match``, so a concurrent edit by someone else gets a clear conflict instead of
being overwritten. Caddy validates and provisions the new config before it swaps, and keeps the
old one running when that fails: its error text becomes the binding's error. TLS certificates
come from Caddy's automatic HTTPS (ACME) or from files loaded under
``apps.tls.certificates.load_files``. A Caddy started without an ``apps`` section (or without
``http`` or ``servers`` in it) gets them created by the first binding.

Caddy's admin API has no authentication, and Caddy's config holds the bearer tokens and
password hashes: whoever can reach the API can read them or change the routes. So the panel
talks to it over a unix socket (``unix//run/caddy/admin.sock``, Caddy's own notation) when
``OPEN1PANEL_AI_CADDY_ADMIN`` names one, and warns (see :meth:`CaddyProvider.warnings`) while it
is on TCP, which every local user reaches, or on a socket other users may open.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from hookspecs.ai import ProviderUnavailable
from hookspecs.domain import BindingStatus, ProviderWarning, SettingInUse
from hookspecs.errors import ProxyRejected, ProxyUnreachable
from open1panel_ai.domain.binding import ProxyBinding
from open1panel_ai.i18n import Message

ID_PREFIX = "open1panel-ai-"
APPS_PATH = "/config/apps"
DEFAULT_SERVER = "open1panel_ai"
ROOT_PATH = "/config/"
#: Caddy answers its admin API in milliseconds, but provisioning TLS may take a while.
ADMIN_TIMEOUT = 60
DEFAULT_ADMIN = "http://127.0.0.1:2019"
#: Where docs/domains.md puts the admin socket.
SUGGESTED_SOCKET = "unix//run/caddy/admin.sock"

_clients_lock = threading.Lock()
_clients: dict[str, httpx.Client] = {}


class AdminUnreachable(ProxyUnreachable):
    """Caddy's admin API did not answer (refused, timed out): the proxy is away, it did not
    refuse."""


class ConcurrentChange(ProxyRejected):
    """Someone else changed Caddy's config between our read and our write."""


class AdminAddress:
    """Where Caddy's admin API listens, from ``OPEN1PANEL_AI_CADDY_ADMIN``, written as Caddy
    writes it: ``unix//run/caddy/admin.sock`` (a unix socket; Caddy 2.8 and later take a file
    mode after it, ``…|0600``, which is ignored here), or ``http://127.0.0.1:2019``,
    ``localhost:2019`` or ``tcp/localhost:2019`` (TCP)."""

    def __init__(self, value: str) -> None:
        text = value.strip()
        if not text.startswith("unix/"):
            text = text.rstrip("/")
        self.text = text
        self.socket: str | None = None
        self.url = "http://localhost"
        if text.startswith("unix/"):
            path = text.removeprefix("unix/").split("|", 1)[0]
            self.socket = path if path.startswith("/") else None
            self.valid = self.socket is not None
        else:
            text = text.removeprefix("tcp/")
            self.url = text if "://" in text else f"http://{text}"
            self.valid = self.url.startswith(("http://", "https://")) and len(self.url) > 8

    def client(self) -> httpx.Client:
        """The one HTTP client of this address, shared by every provider instance (the status
        page builds providers afresh; a client each would leave connections open). Over a unix
        socket the Host header is empty, the one value every Caddy 2 release allows there."""
        with _clients_lock:
            client = _clients.get(self.text)
            if client is None:
                if self.socket is not None:
                    client = httpx.Client(
                        transport=httpx.HTTPTransport(uds=self.socket), base_url=self.url, headers={"Host": ""}
                    )
                else:
                    client = httpx.Client(base_url=self.url)
                _clients[self.text] = client
            return client

    def warnings(self) -> list[ProviderWarning]:
        """What makes the admin API reachable by other local users: TCP, or a socket whose mode
        lets others connect (write permission) in a folder they may enter."""
        if self.socket is None:
            return [
                {
                    "warning": Message("domain.caddy.warning.tcp_admin", admin=self.text),
                    "fix": Message("domain.caddy.fix.tcp_admin", socket=SUGGESTED_SOCKET),
                }
            ]
        try:
            mode = os.stat(self.socket).st_mode
            folders = [os.stat(folder).st_mode for folder in _folders_above(self.socket)]
        except OSError:
            return []  # the probe says the API does not answer
        # Connecting takes write permission on the socket and search permission on each folder.
        group = mode & stat.S_IWGRP and all(folder & (stat.S_IXGRP | stat.S_IXOTH) for folder in folders)
        others = mode & stat.S_IWOTH and all(folder & stat.S_IXOTH for folder in folders)
        if group or others:
            return [
                {
                    "warning": Message(
                        "domain.caddy.warning.open_socket", socket=self.socket, mode=f"{stat.S_IMODE(mode):04o}"
                    ),
                    "fix": Message("domain.caddy.fix.open_socket", socket=self.socket),
                }
            ]
        return []


def _folders_above(path: str) -> list[str]:
    """Every folder from ``path``'s own up to ``/``."""
    folders, folder = [], os.path.dirname(path)
    while True:
        folders.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            return folders
        folder = parent


def etag(path: str, body: bytes) -> str:
    """Caddy's ETag of a config read: the path and the FNV-1a hash of the body it sent.

    Caddy sends it as an HTTP trailer, which HTTP clients drop, so it is recomputed here from
    the same bytes; a mismatch on write is answered 412 by Caddy, as with its own value.
    """
    value = 0x811C9DC5
    for byte in body:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f'"{path} {value:08x}"'


def listen_port(address: str) -> int | None:
    """The port of a Caddy listen address (``:80``, ``127.0.0.1:8080``, ``tcp/[::1]:8000-8010``:
    the first of a range); None for a Unix socket."""
    host_port = address.split("/", 1)[-1]
    if ":" not in host_port:
        return None
    first = host_port.rsplit(":", 1)[1].split("-", 1)[0]
    return int(first) if first.isdigit() else None


def public_ports(apps: Mapping[str, Any], server_name: str) -> tuple[int, int]:
    """The ports clients use for plain HTTP and for HTTPS on the server ``server_name``.

    Caddy serves TLS on every port of a server but its HTTP port (``http_port``, 80 unless
    set) while automatic HTTPS is on; a server that does not exist yet is created on the
    HTTP app's two ports.
    """
    http_app = apps.get("http") or {}
    http_port, https_port = int(http_app.get("http_port") or 80), int(http_app.get("https_port") or 443)
    server = (http_app.get("servers") or {}).get(server_name) or {}
    ports = [p for p in map(listen_port, server.get("listen") or []) if p is not None]
    automatic = not (server.get("automatic_https") or {}).get("disable")
    plain = http_port if automatic or not ports or http_port in ports else ports[0]
    secure = https_port if https_port in ports or not ports else next((p for p in ports if p != http_port), https_port)
    return plain, secure


def route(binding: ProxyBinding, https_port: int = 443) -> dict[str, Any]:
    """The route of ``binding``: the HTTPS redirect and access checks first, then the streaming
    reverse proxy."""
    steps: list[dict[str, Any]] = []
    if binding.tls and binding.force_https:
        suffix = "" if https_port == 443 else f":{https_port}"
        steps.append(
            {
                "match": [{"protocol": "http"}],
                "handle": [
                    {
                        "handler": "static_response",
                        "status_code": 308,
                        "headers": {"Location": [f"https://{{http.request.host}}{suffix}{{http.request.uri}}"]},
                    }
                ],
                "terminal": True,
            }
        )
    if binding.allowlist:
        steps.append(
            {
                "match": [{"not": [{"remote_ip": {"ranges": list(binding.allowlist)}}]}],
                "handle": [{"handler": "static_response", "status_code": 403, "body": "Forbidden\n"}],
                "terminal": True,
            }
        )
    if binding.auth_mode == "bearer":
        steps.append(
            {
                "match": [{"not": [{"header": {"Authorization": [f"Bearer {binding.token}"]}}]}],
                "handle": [
                    {
                        "handler": "static_response",
                        "status_code": 401,
                        "headers": {"WWW-Authenticate": ["Bearer"]},
                        "body": "Unauthorized\n",
                    }
                ],
                "terminal": True,
            }
        )
    elif binding.auth_mode == "basic":
        # The panel gives every binding with basic auth a password hash.
        assert binding.password_hash is not None
        password = base64.b64encode(binding.password_hash.encode("ascii")).decode("ascii")
        steps.append(
            {
                "handle": [
                    {
                        "handler": "authentication",
                        "providers": {
                            "http_basic": {
                                "accounts": [{"username": binding.username, "password": password}],
                                "hash": {"algorithm": "bcrypt"},
                                "realm": "open1panel-ai",
                            }
                        },
                    }
                ]
            }
        )
    proxy: dict[str, Any] = {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": binding.upstream.hostport}],
        "flush_interval": -1,
    }
    if not binding.keep_host:
        proxy["headers"] = {
            "request": {
                "set": {"Host": ["{http.reverse_proxy.upstream.hostport}"], "X-Forwarded-Host": ["{http.request.host}"]}
            }
        }
    if binding.upstream.scheme == "https":
        proxy["transport"] = {"protocol": "http", "tls": {}}
    if binding.body_limit_mb:
        steps.append({"handle": [{"handler": "request_body", "max_size": binding.body_limit_mb * 1024 * 1024}]})
    steps.append({"handle": [proxy]})
    return {
        "@id": ID_PREFIX + binding.id,
        "match": [{"host": list(binding.domains)}],
        "handle": [{"handler": "subroute", "routes": steps}],
        "terminal": True,
    }


def certificate(binding: ProxyBinding) -> dict[str, Any]:
    return {
        "@id": f"{ID_PREFIX}{binding.id}-certificate",
        "certificate": binding.certificate,
        "key": binding.certificate_key,
        "tags": [ID_PREFIX + binding.id],
    }


class CaddyProvider:
    """Publishes bindings through the Caddy admin API at ``OPEN1PANEL_AI_CADDY_ADMIN``."""

    name: ClassVar[str] = "caddy"
    #: Caddy obtains and renews certificates itself (automatic HTTPS).
    acme: ClassVar[bool] = True
    #: A new route goes before the others, so it wins over an old route for the same names
    #: that is still to be taken out.
    new_routes_first: ClassVar[bool] = True

    def __init__(self, settings: Mapping[str, str]) -> None:
        self._address = AdminAddress(settings.get("caddy_admin") or DEFAULT_ADMIN)
        self.admin = self._address.text
        self.server = settings.get("caddy_server", DEFAULT_SERVER)
        self._lock = threading.Lock()

    def probe(self) -> None:
        if not self._address.valid:
            raise ProviderUnavailable(
                Message("domain.caddy.bad_admin", admin=self.admin),
                Message("domain.caddy.fix.bad_admin", socket=SUGGESTED_SOCKET),
            )
        try:
            self._get(ROOT_PATH, timeout=0.5).raise_for_status()
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                Message("domain.caddy.no_admin", admin=self.admin, error=str(exc)), Message("domain.caddy.fix.no_admin")
            ) from None

    def warnings(self) -> list[ProviderWarning]:
        """What the Domains and status pages show as warnings while Caddy is in use: an admin
        API other local users can reach (it holds the bindings' tokens and hashes)."""
        return self._address.warnings()

    def settings_in_use(self) -> list[SettingInUse]:
        """What the panel talks to, and the setting that changes it (see docs/domains.md)."""
        return [
            {"label": Message("domain.caddy.item.admin"), "value": self.admin, "setting": "OPEN1PANEL_AI_CADDY_ADMIN"},
            {
                "label": Message("domain.caddy.item.server"),
                "value": self.server,
                "setting": "OPEN1PANEL_AI_CADDY_SERVER",
            },
        ]

    # -- the provider contract ----------------------------------------------------------

    def preview(self, binding: ProxyBinding) -> str:
        parts: dict[str, Any] = {"route": route(binding, self.public_port(True))}
        if binding.tls_mode == "existing":
            parts["certificate"] = certificate(binding)
        return json.dumps(parts, indent=2) + "\n"

    def apply(self, binding: ProxyBinding) -> None:
        self._change(binding.id, binding)

    def remove(self, binding_id: str) -> None:
        self._change(binding_id, None)

    def remove_many(self, binding_ids: list[str]) -> None:
        """Take several bindings out in one config load: Caddy provisions the whole config, so
        each of them may fail a load that still holds the others (a certificate file that is
        gone, say)."""
        self._change(binding_ids, None)

    def public_port(self, tls: bool) -> int:
        try:
            read = self._get(APPS_PATH, timeout=5)
            read.raise_for_status()
            plain, secure = public_ports(read.json() or {}, self.server)
        except (httpx.HTTPError, ValueError):
            plain, secure = public_ports({}, self.server)
        return secure if tls else plain

    def status(self, binding_id: str) -> BindingStatus:
        try:
            response = self._get(f"/id/{ID_PREFIX}{binding_id}", timeout=5)
        except httpx.HTTPError as exc:
            return {"state": "error", "error": Message("domain.caddy.no_admin", admin=self.admin, error=str(exc))}
        if response.status_code == 200:
            return {"state": "online", "error": None}
        return {"state": "absent", "error": None}

    # -- the one change -------------------------------------------------------------------

    def _get(self, path: str, timeout: float) -> httpx.Response:
        return self._address.client().get(path, timeout=timeout)

    def _change(self, binding_id: str | list[str], binding: ProxyBinding | None) -> None:
        """Put ``binding`` in place of the binding ``binding_id`` (None: take it out; then
        ``binding_id`` may be a list of ids, all taken out at once)."""
        removed = binding_id if isinstance(binding_id, list) else [binding_id]
        with self._lock:
            try:
                client = self._address.client()
                path, read = APPS_PATH, client.get(APPS_PATH, timeout=ADMIN_TIMEOUT)
                if read.status_code == 400:
                    # A Caddy with no config at all: /config/apps is no path yet, the root is.
                    path, read = ROOT_PATH, client.get(ROOT_PATH, timeout=ADMIN_TIMEOUT)
                read.raise_for_status()
                current = read.json()
                apps = (current.get("apps") if path == ROOT_PATH and isinstance(current, dict) else current) or {}
                if not isinstance(apps, dict):
                    raise ProxyRejected(Message("domain.caddy.answered", status=read.status_code))
                tag = etag(path, read.content)
                edited = json.loads(json.dumps(apps))
                for one in removed:
                    edited = self._edit(edited, one, binding)
                if edited == apps:
                    return
                if path == ROOT_PATH:  # the whole config is null: it becomes the apps
                    write = client.patch(
                        ROOT_PATH, json={"apps": edited}, timeout=ADMIN_TIMEOUT, headers={"If-Match": tag}
                    )
                elif current is None:  # a config without apps: create them
                    write = client.put(APPS_PATH, json=edited, timeout=ADMIN_TIMEOUT, headers={"If-Match": tag})
                else:
                    write = client.patch(APPS_PATH, json=edited, timeout=ADMIN_TIMEOUT, headers={"If-Match": tag})
            except httpx.TransportError as exc:
                raise AdminUnreachable(Message("domain.caddy.failed", admin=self.admin, error=str(exc))) from None
            except (httpx.HTTPError, ValueError) as exc:
                raise ProxyRejected(Message("domain.caddy.failed", admin=self.admin, error=str(exc))) from None
            if write.status_code == 412:
                raise ConcurrentChange(Message("domain.caddy.concurrent_change"))
            if write.status_code >= 400:
                raise ProxyRejected(_caddy_error(write))

    def _edit(self, apps: dict[str, Any], binding_id: str, binding: ProxyBinding | None) -> dict[str, Any]:
        """``apps`` with the binding's route and certificate replaced, added or taken out."""
        our_route, our_certificate = ID_PREFIX + binding_id, f"{ID_PREFIX}{binding_id}-certificate"
        servers = apps.get("http", {}).get("servers", {})
        if binding is None and self.server not in servers:
            return apps
        plain, secure = public_ports(apps, self.server)
        servers = apps.setdefault("http", {}).setdefault("servers", {})
        server = servers.setdefault(self.server, {"listen": [f":{plain}", f":{secure}"]})
        routes = server.setdefault("routes", [])
        old = next((r for r in routes if r.get("@id") == our_route), None)
        new = route(binding, secure) if binding else None
        if old is not None and new is not None:
            routes[routes.index(old)] = new
        elif old is not None:
            routes.remove(old)
        elif new is not None:
            # Before any catch-all route the server already had.
            routes.insert(0, new)
        self._edit_https_skip(server, our_route, old, binding)
        tls = apps.get("tls", {})
        loaded = tls.get("certificates", {}).get("load_files", [])
        loaded[:] = [c for c in loaded if c.get("@id") != our_certificate]
        if binding is not None and binding.tls_mode == "existing":
            loaded.append(certificate(binding))
            apps.setdefault("tls", tls).setdefault("certificates", {})["load_files"] = loaded
        elif "tls" in apps and not loaded:
            apps["tls"].get("certificates", {}).pop("load_files", None)
        return apps

    @staticmethod
    def _edit_https_skip(
        server: dict[str, Any], our_route: str, old: dict[str, Any] | None, binding: ProxyBinding | None
    ) -> None:
        """Keep Caddy's automatic HTTPS away from the names of bindings without TLS.

        The old route's names leave the skip list unless another route still matches them (a
        new binding without TLS that took a name over while this route waited to be taken out);
        a binding with TLS takes its own names out of it.
        """
        automatic = server.get("automatic_https") or {}
        if automatic.get("disable"):
            return
        old_hosts = set(old["match"][0]["host"]) if old else set()
        other_hosts = {
            host
            for other in server.get("routes", [])
            if other.get("@id") != our_route
            for match in other.get("match", [])
            for host in match.get("host", [])
        }
        skip = [name for name in automatic.get("skip", []) if name not in old_hosts or name in other_hosts]
        if binding is not None and binding.tls_mode == "none":
            skip += [name for name in binding.domains if name not in skip]
        elif binding is not None:
            skip = [name for name in skip if name not in binding.domains]
        if skip or automatic:
            server["automatic_https"] = {**automatic, "skip": skip}


def _caddy_error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or response.text).strip()
    except ValueError:
        return response.text.strip() or Message("domain.caddy.answered", status=response.status_code)
