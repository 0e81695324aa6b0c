"""The ``nginx`` provider: one site file per binding, tested and reloaded under one lock.

An apply writes the new site to a temp file, keeps the previous one, moves the new one into
place and runs ``nginx -t -c MAIN``. When nginx rejects the tree, the previous files come back
and nothing is reloaded, so the previous site keeps serving; otherwise nginx reloads
(``-s reload``: workers finish their requests, nothing is dropped). When the reload itself
fails, the previous files come back too, so what is on disk is what nginx serves. A change is
refused while nginx is not running, but a removal that passes ``nginx -t`` is kept: nginx
reads the tree when it starts, so the binding is gone then.

The previous state of each file is kept as a hard link (``.previous``) or, for a file that did
not exist, an empty ``.absent`` marker, both made in one step before the file changes and
removed once nginx has taken the change. A panel killed in between leaves them behind: the next
apply, before anything else, puts every such file back as it was and reloads nginx, so the
sites are byte for byte the old ones and nginx serves them; the interrupted binding is then
applied again from its stored record (see the domain service's start).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import psutil

from hookspecs.ai import DomainProviderDefaults, ProviderUnavailable
from hookspecs.domain import BindingStatus, SettingInUse
from hookspecs.errors import ProxyRejected
from open1panel_ai.domain.binding import ProxyBinding
from open1panel_ai.i18n import Message

log = logging.getLogger(__name__)

FILE_PREFIX = "open1panel-ai-"
#: What an apply leaves beside a site while it runs: the new text, the old file, the old absence.
NEW, PREVIOUS, ABSENT = ".new", ".previous", ".absent"
#: nginx's own checks take tens of milliseconds; this bound only catches a hung binary.
NGINX_TIMEOUT = 30
#: Streaming upstreams (Ollama's NDJSON, MCP's SSE and Streamable HTTP) wait this long.
STREAM_TIMEOUT = "3600s"
#: A site holds its bearer token, so only nginx's master (root) reads it; the password file
#: is read by the workers at each request and holds bcrypt hashes only.
_MODES = {".conf": 0o600, ".htpasswd": 0o644}
#: How long an apply waits for nginx's new workers to take over after a reload.
RELOAD_WAIT = 5.0
DEFAULT_PID_FILE = Path("/run/nginx.pid")
_PID = re.compile(r"^\s*pid\s+([^;]+);", re.MULTILINE)
#: What nginx puts before its complaint: a time (when it logs to stderr), the level, pid#tid.
_LEVEL = re.compile(
    r"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?"
    r"\[(?:emerg|alert|crit|error|warn|notice|info)\]\s*(?:\d+#\d+: )?"
)
_LISTEN = re.compile(r"^(?:(?P<host>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?P<port>\d{1,5})$")


def listen_address(value: str, setting: str) -> str:
    """Check a listen setting: a port, or ``address:port`` on one address."""
    match = _LISTEN.match(value.strip())
    if not match or not 0 < int(match["port"]) < 65536:
        raise ProviderUnavailable(
            Message("domain.nginx.bad_listen", setting=f"OPEN1PANEL_AI_{setting.upper()}", value=value),
            Message("domain.nginx.fix.bad_listen"),
        )
    return value.strip()


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[-1])


def render(binding: ProxyBinding, http_listen: str, https_listen: str, htpasswd: Path) -> str:
    """The site file of ``binding``: every value in it was validated before it got here."""
    names = " ".join(binding.domains)
    lines = [
        f"# open1panel-ai binding {binding.id}: written by the panel, changes here are replaced.",
        f"# target: {binding.target_kind} at {binding.upstream.url}",
        "",
    ]
    if binding.allowlist:
        # A geo block at http level; checked first, so a refused address gets 403 before auth.
        lines += [f"geo $open1panel_ai_{binding.id}_allowed {{", "    default 0;"]
        lines += [f"    {network} 1;" for network in binding.allowlist]
        lines += ["}", ""]
    redirect = binding.tls and binding.force_https
    lines += ["server {", f"    listen {http_listen};", f"    server_name {names};"]
    if redirect:
        https_port = port_of(https_listen)
        suffix = "" if https_port == 443 else f":{https_port}"
        lines += [f"    return 308 https://$host{suffix}$request_uri;", "}"]
    else:
        lines += _proxy_block(binding, htpasswd) + ["}"]
    if binding.tls:
        lines += [
            "",
            "server {",
            f"    listen {https_listen} ssl;",
            f"    server_name {names};",
            f'    ssl_certificate "{binding.certificate}";',
            f'    ssl_certificate_key "{binding.certificate_key}";',
            "    ssl_protocols TLSv1.2 TLSv1.3;",
        ]
        lines += _proxy_block(binding, htpasswd) + ["}"]
    return "\n".join(lines) + "\n"


def _proxy_block(binding: ProxyBinding, htpasswd: Path) -> list[str]:
    upstream = binding.upstream
    host_header = "$host" if binding.keep_host else "$proxy_host"
    lines = [f"    client_max_body_size {binding.body_limit_mb}m;", "    gzip off;", "    location / {"]
    if binding.allowlist:
        lines += [f"        if ($open1panel_ai_{binding.id}_allowed = 0) {{ return 403; }}"]
    if binding.auth_mode == "bearer":
        lines += [f'        if ($http_authorization != "Bearer {binding.token}") {{ return 401; }}']
    elif binding.auth_mode == "basic":
        lines += ['        auth_basic "open1panel-ai";', f'        auth_basic_user_file "{htpasswd}";']
    lines += [
        f"        proxy_pass {upstream.url};",
        *(["        proxy_ssl_server_name on;"] if upstream.scheme == "https" else []),
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        f"        proxy_set_header Host {host_header};",
        "        proxy_set_header X-Forwarded-Host $host;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header X-Real-IP $remote_addr;",
        "        proxy_buffering off;",
        "        proxy_cache off;",
        "        proxy_request_buffering off;",
        f"        proxy_read_timeout {STREAM_TIMEOUT};",
        f"        proxy_send_timeout {STREAM_TIMEOUT};",
        "    }",
    ]
    return lines


class NginxProvider(DomainProviderDefaults):
    """Writes site files into ``OPEN1PANEL_AI_NGINX_SITES_DIR`` for the main config
    ``OPEN1PANEL_AI_NGINX_CONF`` (which must include that folder inside its ``http`` block).
    New sites wait for old ones with the same names to go (``new_routes_first`` is False) and it
    has no warnings: both from :class:`~hookspecs.ai.DomainProviderDefaults`."""

    name: ClassVar[str] = "nginx"
    #: nginx here serves existing certificates only; ACME goes through Caddy.
    acme: ClassVar[bool] = False

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.binary = settings.get("nginx_bin", "nginx")
        self.main_conf = Path(settings.get("nginx_conf", "/etc/nginx/nginx.conf"))
        self.sites_dir = Path(settings.get("nginx_sites_dir", "/etc/nginx/conf.d"))
        self._http = settings.get("nginx_http_port", "80")
        self._https = settings.get("nginx_https_port", "443")
        self._thread_lock = threading.Lock()
        self._lock_path = Path(settings["data_dir"]) / "domain-nginx.lock"

    def probe(self) -> None:
        listen_address(self._http, "nginx_http_port")
        listen_address(self._https, "nginx_https_port")
        if shutil.which(self.binary) is None:
            raise ProviderUnavailable(
                Message("domain.nginx.no_binary", binary=self.binary), Message("domain.nginx.fix.no_binary")
            )
        if not os.access(self.main_conf, os.R_OK):
            raise ProviderUnavailable(
                Message("domain.nginx.no_conf", conf=str(self.main_conf)), Message("domain.nginx.fix.no_conf")
            )
        if not (self.sites_dir.is_dir() and os.access(self.sites_dir, os.W_OK)):
            raise ProviderUnavailable(
                Message("domain.nginx.no_sites", sites_dir=str(self.sites_dir)), Message("domain.nginx.fix.no_sites")
            )
        if self._master() is None:
            raise ProviderUnavailable(
                Message("domain.nginx.not_running", pid_file=str(self.pid_file)),
                Message("domain.nginx.fix.not_running", conf=str(self.main_conf)),
            )

    def settings_in_use(self) -> list[SettingInUse]:
        """What the panel reads and writes of nginx, and the setting that changes each, for the
        Domains page to show when nginx cannot be used (see docs/domains.md)."""
        return [
            {"label": Message("domain.nginx.item.binary"), "value": self.binary, "setting": "OPEN1PANEL_AI_NGINX_BIN"},
            {
                "label": Message("domain.nginx.item.conf"),
                "value": str(self.main_conf),
                "setting": "OPEN1PANEL_AI_NGINX_CONF",
            },
            {
                "label": Message("domain.nginx.item.pid_file"),
                "value": str(self.pid_file),
                "setting": Message("domain.nginx.item.pid_setting"),
            },
            {
                "label": Message("domain.nginx.item.sites_dir"),
                "value": str(self.sites_dir),
                "setting": "OPEN1PANEL_AI_NGINX_SITES_DIR",
            },
            {
                "label": Message("domain.nginx.item.http"),
                "value": self._http,
                "setting": "OPEN1PANEL_AI_NGINX_HTTP_PORT",
            },
            {
                "label": Message("domain.nginx.item.https"),
                "value": self._https,
                "setting": "OPEN1PANEL_AI_NGINX_HTTPS_PORT",
            },
        ]

    # -- the provider contract ----------------------------------------------------------

    def preview(self, binding: ProxyBinding) -> str:
        return render(binding, self.http_listen, self.https_listen, self.htpasswd_path(binding.id))

    def apply(self, binding: ProxyBinding) -> None:
        files = {self.site_path(binding.id): self.preview(binding)}
        htpasswd = self.htpasswd_path(binding.id)
        if binding.auth_mode == "basic":
            files[htpasswd] = f"{binding.username}:{binding.password_hash}\n"
        with self._locked():
            self._replace(files, remove=[] if binding.auth_mode == "basic" else [htpasswd])

    def remove(self, binding_id: str) -> None:
        self.remove_many([binding_id])

    def remove_many(self, binding_ids: list[str]) -> None:
        """Take several bindings out in one test and reload: each of them may fail nginx's test
        of a tree that still holds the others (a certificate file that is gone, say)."""
        paths = [
            path for binding_id in binding_ids for path in (self.site_path(binding_id), self.htpasswd_path(binding_id))
        ]
        with self._locked():
            if any(path.exists() for path in paths):
                self._replace({}, remove=paths)

    def public_port(self, tls: bool) -> int:
        return port_of(self.https_listen if tls else self.http_listen)

    def status(self, binding_id: str) -> BindingStatus:
        if self.site_path(binding_id).exists():
            return {"state": "online", "error": None}
        return {"state": "absent", "error": None}

    # -- files ----------------------------------------------------------------------------

    @property
    def http_listen(self) -> str:
        return listen_address(self._http, "nginx_http_port")

    @property
    def https_listen(self) -> str:
        return listen_address(self._https, "nginx_https_port")

    def site_path(self, binding_id: str) -> Path:
        return self.sites_dir / f"{FILE_PREFIX}{binding_id}.conf"

    def htpasswd_path(self, binding_id: str) -> Path:
        # Beside the site (nginx's workers must read it), with a suffix no include matches.
        return self.sites_dir / f"{FILE_PREFIX}{binding_id}.htpasswd"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One apply at a time, across threads and across panel processes."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, open(self._lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._undo_interrupted()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _replace(self, files: Mapping[Path, str], remove: list[Path]) -> None:
        """Put ``files`` in place and take ``remove`` away, test, then reload or restore."""
        kept: list[Path] = []
        try:
            for path, content in files.items():
                temp = path.with_name(path.name + NEW)
                _write_new(temp, content, _MODES.get(path.suffix, 0o600))
                kept.append(path)
                _keep(path)
                os.replace(temp, path)
            for path in remove:
                if path.exists():
                    kept.append(path)
                    _keep(path)
                    path.unlink()
            self._run("-t")
            # A removal stands while nginx is down: it serves nothing of the binding once it
            # starts and reads the tree. A change is refused then, as nginx cannot confirm it.
            if files or self._master() is not None:
                # Until nginx has taken the new files, the previous ones are kept: a failed
                # reload must not leave files behind that the next unrelated reload would activate.
                self._reload()
        except BaseException:
            for path in kept:
                _restore(path)
            raise
        for path in kept:
            _forget(path)

    def _undo_interrupted(self) -> None:
        """Put back every file an apply of a killed panel left half done, and have nginx serve
        them again; the caller holds the lock."""
        leftovers = sorted(self.sites_dir.glob(f"{FILE_PREFIX}*"))
        for temp in (p for p in leftovers if p.name.endswith(NEW)):
            temp.unlink(missing_ok=True)
        kept = {
            p.with_name(p.name.removesuffix(PREVIOUS).removesuffix(ABSENT))
            for p in leftovers
            if p.name.endswith((PREVIOUS, ABSENT))
        }
        if not kept:
            return
        for path in kept:
            _restore(path)
        log.warning(
            "restored %d nginx file(s) an interrupted apply left half done: %s",
            len(kept),
            ", ".join(sorted(p.name for p in kept)),
        )
        if self._master() is not None:
            try:
                self._run("-t")
                self._reload()
            except ProxyRejected as exc:
                log.warning("nginx did not take the restored files: %s", exc)

    def _reload(self) -> None:
        """Reload, and wait (briefly) until only new workers accept connections.

        Old workers finish the requests they hold (an hour-long stream included) but close
        their listening sockets first; once they have, every new connection sees the new sites.
        """
        master = self._master()
        if master is None:
            raise ProxyRejected(Message("domain.nginx.not_running_apply", pid_file=str(self.pid_file)))
        old = master.children()
        self._run("-s", "reload")
        deadline = time.monotonic() + RELOAD_WAIT
        while time.monotonic() < deadline:
            try:
                started = any(child.pid not in {o.pid for o in old} for child in master.children())
            except psutil.Error:
                return
            if started and not any(_listening(worker) for worker in old):
                return
            time.sleep(0.01)

    @property
    def pid_file(self) -> Path:
        """The pid file the main config names (its ``pid`` directive), else nginx's default."""
        try:
            match = _PID.search(self.main_conf.read_text(errors="replace"))
        except OSError:
            match = None
        return Path(match[1].strip().strip('"')) if match else DEFAULT_PID_FILE

    def _master(self) -> psutil.Process | None:
        """nginx's master process, from the pid file the main config names."""
        try:
            return psutil.Process(int(self.pid_file.read_text().strip()))
        except (OSError, ValueError, psutil.Error):
            return None

    def _run(self, *arguments: str) -> None:
        command = [self.binary, "-c", str(self.main_conf), *arguments]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=NGINX_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProxyRejected(Message("domain.nginx.cannot_run", error=str(exc))) from None
        if done.returncode != 0:
            raise ProxyRejected(
                _nginx_error(done.stderr) or Message("domain.nginx.command_failed", command=" ".join(arguments))
            )


def _keep(path: Path) -> None:
    """Record how ``path`` is before it changes, in one step: a hard link to it, or a marker
    that it does not exist."""
    for marker in (path.with_name(path.name + PREVIOUS), path.with_name(path.name + ABSENT)):
        marker.unlink(missing_ok=True)
    try:
        os.link(path, path.with_name(path.name + PREVIOUS))
    except FileNotFoundError:
        _write_new(path.with_name(path.name + ABSENT), "", 0o600)


def _restore(path: Path) -> None:
    """Put ``path`` back as :func:`_keep` recorded it."""
    previous, absent = path.with_name(path.name + PREVIOUS), path.with_name(path.name + ABSENT)
    if previous.exists():
        os.replace(previous, path)
    elif absent.exists():
        path.unlink(missing_ok=True)
    absent.unlink(missing_ok=True)


def _forget(path: Path) -> None:
    """Drop what :func:`_keep` recorded once the change is served."""
    for marker in (path.with_name(path.name + PREVIOUS), path.with_name(path.name + ABSENT)):
        marker.unlink(missing_ok=True)


def _write_new(path: Path, content: str, mode: int) -> None:
    """Write ``path`` afresh, created with ``mode`` (never readable by others in between)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(content)


def _listening(worker: psutil.Process) -> bool:
    try:
        return any(c.status == psutil.CONN_LISTEN for c in worker.net_connections("tcp"))
    except psutil.Error:
        return False


def _nginx_error(stderr: str) -> str:
    """nginx's complaint as one line, without the banner lines it prints around it, and without
    the time, ``[emerg]`` level and pid marks: ``cannot load certificate "/x.pem": …``."""
    lines = [
        _LEVEL.sub("", line.removeprefix("nginx: ")).strip()
        for line in stderr.strip().splitlines()
        if "test failed" not in line and "syntax is ok" not in line
    ]
    return "; ".join(line for line in lines if line)
