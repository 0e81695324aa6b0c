"""MCP server management: definitions in SQLite, lifecycle through the chosen runtime, and the
live side (status events on topic ``mcp``, log lines on ``mcp:<id>:logs``).

Secrets never leave this module through a public object: secret env values and header values
are stored for the runtime but answered as null, and the token is only shown by
:meth:`MCPService.client_config` and :meth:`MCPService.rotate_token`. They are write-only on
updates too: a stored secret value is kept only while its entry stays secret (turning it
non-secret takes the value again), and header values only while the URL keeps its origin.

Whether a server should run is kept with its definition: a server stopped by hand stays
stopped when the panel starts again; every other server marked autostart is started, so one
that was running when the panel stopped runs again.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import urlsplit

from marshmallow import ValidationError

from hookspecs.ai import MCPProvider
from hookspecs.mcp import MCPServerSpec, MCPServerState, MCPTool
from open1panel_ai import errors, i18n
from open1panel_ai.i18n import Message
from open1panel_ai.mcp import logfile, sandbox
from open1panel_ai.mcp.clients import TRANSPORT_PATHS, PublicAddress, client_config
from open1panel_ai.mcp.program import cannot_run, child_path, find_program
from open1panel_ai.mcp.schemas import MCPServerInSchema, plain_address
from open1panel_ai.mcp.urls import base_url, masked
from open1panel_ai.store import timestamp
from open1panel_ai.supervision import stopped_state

if TYPE_CHECKING:
    from open1panel_ai.context import AIContext

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE mcp_servers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        port INTEGER NOT NULL UNIQUE,
        token TEXT NOT NULL,
        definition TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
]

#: Ports given to servers that do not name one.
PORT_RANGE = (18100, 18999)
#: A Host name a domain binding may add (no port, no wildcard).
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
#: A path prefix a proxy may serve a bridge under: segments of unreserved characters.
PATH_PREFIX = re.compile(r"^(?:/(?!\.{1,2}(?:/|$))[A-Za-z0-9._~-]+)*$")
#: Imported env keys that look like credentials are stored as secrets.
SECRET_KEY = re.compile(r"KEY|TOKEN|SECRET|PASS|AUTH|CREDENTIAL", re.IGNORECASE)
ACTIVE = frozenset({"starting", "running", "unhealthy", "restarting"})


def _port_bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class MCPService:
    """What the MCP routes and the other features call."""

    def __init__(self, context: AIContext) -> None:
        self.context = context
        self.store = context.store
        self.realtime = context.realtime
        self.store.migrate("mcp", MIGRATIONS)
        self._repair_bind_hosts()
        self._lock = threading.RLock()
        self._server_locks: dict[str, threading.RLock] = {}
        #: Guards ``_server_locks`` alone, so a delete never queues behind a create.
        self._server_locks_lock = threading.Lock()
        #: Servers being created, by id: their name, port and sandbox uid are taken before their
        #: row is stored (see :meth:`create`). Read as ``list(...)``: entries leave unlocked.
        self._claims: dict[str, dict[str, Any]] = {}
        self._watchers: list[Callable[[str, str], None]] = []
        self._published: dict[str, tuple] = {}
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._followers: dict[str, threading.Event] = {}
        self._monitor = threading.Thread(target=self._watch_status, name="mcp-status", daemon=True)
        self.realtime.watch("mcp:", self._listeners_changed)

    # -- startup and shutdown -----------------------------------------------------------

    def _repair_bind_hosts(self) -> None:
        """Rebuild each stored ``bind_host`` that is not a plain address: earlier versions took
        IPv6 zone IDs (``::1%<anything>``), which carried text into a proxy's config. The
        address is made again from its packed form, without the zone; 127.0.0.1 if it is none."""
        rows = self.store.query(
            "SELECT id, name, json_extract(definition, '$.bind_host') AS bind_host FROM mcp_servers"
        )
        for row in rows:
            plain = plain_address(row["bind_host"])
            if plain != row["bind_host"]:
                log.warning(
                    "MCP server %s: its listen address %r is not a plain address; it is now %s",
                    row["name"],
                    row["bind_host"],
                    plain,
                )
                self.store.execute(
                    "UPDATE mcp_servers SET definition = json_set(definition, '$.bind_host', ?) WHERE id = ?",
                    (plain, row["id"]),
                )

    def start(self) -> None:
        """Start the status monitor and every server marked autostart that was not stopped by
        hand, in the one process that owns the data dir (see :mod:`open1panel_ai.ownership`)."""
        self.context.when_owner(self._supervise)

    def _supervise(self) -> None:
        self._monitor.start()
        for row in self.store.query("SELECT id FROM mcp_servers ORDER BY name"):
            definition = self._row(row["id"])
            try:
                if definition["autostart"] and not definition.get("stopped_by_hand"):
                    self.start_server(definition["id"])
                elif self._provider(required=False) is not None:
                    # What a killed panel left of it goes; this is no stop by hand.
                    self.stop_server(definition["id"], by_hand=False)
            except errors.ApiError as exc:
                log.warning("autostart or stop of MCP server %s failed: %s", definition["name"], exc.message)

    def stop(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._monitor.is_alive():
            self._monitor.join(5)
        for stop in list(self._followers.values()):
            stop.set()
        provider = self._provider(required=False)
        if provider is not None:
            for row in self.store.query("SELECT id FROM mcp_servers"):
                if provider.state(row["id"])["status"] != "stopped":
                    provider.stop(row["id"])

    # -- what other features use --------------------------------------------------------

    def servers(self) -> list[dict[str, Any]]:
        """Every server definition with its measured status, by name. One read of the table, so
        a server deleted meanwhile is left out instead of failing the whole list."""
        rows = self.store.query("SELECT * FROM mcp_servers ORDER BY name")
        return [self._public(self._definition(row)) for row in rows]

    def server(self, server_id: str) -> dict[str, Any]:
        return self._public(self._row(server_id))

    def set_extra_hosts(self, server_id: str, hosts: list[str]) -> dict[str, Any]:
        """Make the server's bridge accept these Host names (bound domains) from now on, without
        restarting it or any other server."""
        cleaned = []
        for host in hosts:
            if not isinstance(host, str) or not HOSTNAME.match(host):
                raise errors.BadRequest(Message("mcp.error.not_a_host", host=str(host)), details={"hosts": hosts})
            if host.lower() not in cleaned:
                cleaned.append(host.lower())
        with self._lock:
            definition = self._row(server_id)
            definition["extra_hosts"] = cleaned
            self._save(definition)
        provider = self._provider(required=False)
        if provider is not None and hasattr(provider, "set_hosts"):
            provider.set_hosts(server_id, cleaned)
        return self._public(definition)

    def set_public_addresses(self, server_id: str, addresses: list[Mapping[str, Any]]) -> dict[str, Any]:
        """Record the addresses clients reach the server at through a reverse proxy (each
        ``{scheme, host, port, path_prefix}``: ``https``, ``mcp.example.com``, 443 or None for
        the scheme's port, ``""`` when served at the host's root), and make its bridge accept
        their host names, as :meth:`set_extra_hosts` does. Client configs then name the first
        of them by default. Every value is parsed again here; a bad one is a 400 and changes
        nothing. Addresses handed over again as they are change nothing (the domain feature
        hands every binding's over at each start), and the bridge is not told again."""
        parsed = [self._public_address(address, addresses) for address in addresses]
        unique = list(dict.fromkeys(parsed))
        hosts = list(dict.fromkeys(address.host for address in unique))
        with self._lock:
            current = self._row(server_id)
            if (
                current.get("public_addresses") == [address.as_dict() for address in unique]
                and current.get("extra_hosts") == hosts
            ):
                return self._public(current)
            self.store.execute(
                "UPDATE mcp_servers SET definition = json_set(definition, '$.public_addresses', json(?)) WHERE id = ?",
                (json.dumps([address.as_dict() for address in unique]), server_id),
            )
        return self.set_extra_hosts(server_id, hosts)

    @staticmethod
    def _public_address(value: Any, given: Any) -> PublicAddress:
        """One address handed over by another feature, rebuilt from its parsed parts."""

        def refuse() -> errors.BadRequest:
            return errors.BadRequest(
                Message("mcp.error.not_an_address", address=repr(value)[:300]),
                code="bad_address",
                details={"addresses": repr(given)[:2000]},
            )

        if not isinstance(value, Mapping):
            raise refuse()
        scheme, host = value.get("scheme"), value.get("host")
        port, prefix = value.get("port"), value.get("path_prefix") or ""
        if scheme not in ("http", "https") or not isinstance(host, str) or not HOSTNAME.match(host):
            raise refuse()
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise refuse()
        if not isinstance(prefix, str) or not PATH_PREFIX.match(prefix.rstrip("/")):
            raise refuse()
        default = {"http": 80, "https": 443}[scheme]
        return PublicAddress(scheme, host.lower(), None if port == default else port, prefix.rstrip("/"))

    def addresses(self, server_id: str) -> list[dict[str, Any]]:
        """Every base URL the server's bridge is reachable at, the one client configs use by
        default first: bound domains (``domain``), then this machine (``local``), then, for
        a bridge listening on every interface, each interface's address (``interface``)."""
        return self._addresses(self._row(server_id))

    @staticmethod
    def _addresses(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
        found = []
        hosts = set(definition.get("extra_hosts") or [])
        for stored in definition.get("public_addresses") or []:
            if stored.get("host") in hosts:  # a domain no longer bound is no address
                found.append({"url": PublicAddress(**stored).base(), "kind": "domain"})
        local = base_url(definition["bind_host"], definition["port"])
        found.append({"url": local, "kind": "local"})
        if definition["bind_host"] in ("0.0.0.0", "::"):
            for address in _interface_addresses(ipv6=definition["bind_host"] == "::"):
                url = base_url(address, definition["port"])
                if url != local:
                    found.append({"url": url, "kind": "interface"})
        return found

    def on_server_change(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(server_id, event)`` after a server is changed (``"updated"``: its port,
        bind host or anything else may be new; read it with :meth:`server`) or deleted
        (``"deleted"``), so that what another feature built on it (a domain binding) follows.
        A failing callback is logged and stops nothing."""
        self._watchers.append(callback)

    def _tell_watchers(self, server_id: str, event: str) -> None:
        for callback in list(self._watchers):
            try:
                callback(server_id, event)
            except Exception:
                log.exception("a watcher of MCP server changes failed on %s %s", event, server_id)

    # -- definitions ---------------------------------------------------------------------

    def create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Create a server from validated input (see :class:`MCPServerInSchema`).

        The service lock, which every change of a server waits for, covers one read of the
        names, ports and sandbox uids the other servers hold and the choice of this one's; the
        insert follows outside it, the choice held in ``_claims`` meanwhile so that the checks
        of other changes see it. Everything else is prepared before the lock is taken."""
        env, env_problems = self._merge_env([], data.get("env", []))
        headers, header_problems = self._merge_headers([], data.get("headers", []))
        problems = {**env_problems, **header_problems, **self._profile_problems(data.get("profile"))}
        definition = {
            "id": uuid.uuid4().hex[:12],
            "name": data["name"],
            "command": data.get("command"),
            "env": env,
            "cwd": data.get("cwd"),
            "url": data.get("url"),
            "headers": headers,
            "transports": data["transports"],
            "port": None,
            "bind_host": data["bind_host"],
            "restart_policy": data["restart_policy"],
            "autostart": data["autostart"],
            "stopped_by_hand": False,
            "extra_hosts": [],
            "token": secrets.token_urlsafe(32),
            "profile": data.get("profile") or sandbox.Profile().as_dict(),
            "sessions": data.get("sessions", "shared"),
            "sandbox_uid": None,
        }
        with self._lock:
            # Claims first: one that has left by the time of the read is in what it reads.
            held: list[Any] = [*self._claimed(), *self.store.query("SELECT name, port, definition FROM mcp_servers")]
            self._check_name(data["name"], {row["name"] for row in held})
            port = self._claim_port(data.get("port"), data["bind_host"], taken={row["port"] for row in held})
            if problems:
                raise _invalid(problems)
            definition["port"] = port
            definition["sandbox_uid"] = self._next_sandbox_uid(
                [json.loads(row["definition"]).get("sandbox_uid") for row in held]
            )
            definition["created_at"] = definition["updated_at"] = timestamp()
            self._claims[definition["id"]] = definition
        try:
            self.store.execute(
                "INSERT INTO mcp_servers (id, name, port, token, definition, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    definition["id"],
                    definition["name"],
                    port,
                    definition["token"],
                    json.dumps(self._stored(definition)),
                    definition["created_at"],
                    definition["updated_at"],
                ),
            )
        finally:
            self._claims.pop(definition["id"], None)  # the row holds them now (or nothing does)
        server = self._public(definition)
        self._announce(server)
        return server

    def update(self, server_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Change some fields of a server; a running server restarts to take them."""
        with self._server_lock(server_id):
            with self._lock:
                definition = self._row(server_id)
                if "name" in data and data["name"] != definition["name"]:
                    self._check_name(data["name"])
                changed = {**definition, **{k: v for k, v in data.items() if k not in ("env", "headers")}}
                if data.get("url") and data["url"] == masked(definition.get("url")):
                    changed["url"] = definition["url"]  # the form sent back the URL as it was shown
                if data.get("command"):
                    changed["url"] = None
                if data.get("url"):
                    changed["command"] = None
                if bool(changed.get("command")) == bool(changed.get("url")):
                    raise _invalid({"command": [Message("mcp.error.command_or_url")]})
                if data.get("port") is None:
                    changed["port"] = definition["port"]
                if changed["port"] != definition["port"] or changed["bind_host"] != definition["bind_host"]:
                    changed["port"] = self._claim_port(
                        changed["port"],
                        changed["bind_host"],
                        exclude=server_id,
                        check_bind=changed["port"] != definition["port"],
                    )
                problems = self._profile_problems(data.get("profile"))
                if "env" in data:
                    changed["env"], found = self._merge_env(definition["env"], data["env"])
                    problems.update(found)
                # Header values go only where they were entered for: to another origin, again.
                moved = changed.get("url") and _origin(changed["url"]) != _origin(definition.get("url"))
                if "headers" in data:
                    new_origin = _origin_text(changed["url"]) if moved else None
                    changed["headers"], found = self._merge_headers(definition["headers"], data["headers"], new_origin)
                    problems.update(found)
                elif moved and definition["headers"]:
                    problems["headers"] = [Message("mcp.error.headers_again", origin=_origin_text(changed["url"]))]
                if problems:
                    raise _invalid(problems)
                changed["updated_at"] = timestamp()
                self._save(changed)
            if self._status(server_id) in ACTIVE:
                self.start_server(server_id)
            server = self._public(changed)
            self._announce(server)
        self._tell_watchers(server_id, "updated")
        return server

    def delete(self, server_id: str) -> None:
        """Stop the server (its whole process group) and forget it, with its logs."""
        with self._server_lock(server_id):
            self._row(server_id)
            provider = self._provider(required=False)
            if provider is not None:
                provider.stop(server_id)
                forget = getattr(provider, "forget", None)  # a runtime that keeps homes
                if forget is not None:
                    forget(server_id)
                log_path = getattr(provider, "log_path", None)
                if log_path is not None:
                    path = log_path(server_id)
                    for old in [path, *logfile.rotated(path), path.with_name(f"{path.name}.lock")]:
                        old.unlink(missing_ok=True)
            self.store.execute("DELETE FROM mcp_servers WHERE id = ?", (server_id,))
            self._published.pop(server_id, None)
            self.realtime.publish("mcp", {"id": server_id, "deleted": True}, ["mcp"])
            with self._server_locks_lock:
                self._server_locks.pop(server_id, None)
        self._tell_watchers(server_id, "deleted")

    def rotate_token(self, server_id: str) -> dict[str, str]:
        """Give the server a new token; a running bridge restarts to use it."""
        with self._server_lock(server_id):
            with self._lock:
                definition = self._row(server_id)
                definition["token"] = secrets.token_urlsafe(32)
                definition["updated_at"] = timestamp()
                self._save(definition)
            if self._status(server_id) in ACTIVE:
                self.start_server(server_id)
            return {"token": definition["token"]}

    # -- lifecycle -----------------------------------------------------------------------

    def start_server(self, server_id: str) -> dict[str, Any]:
        """Start (or restart) the server; it is no longer stopped by hand."""
        with self._server_lock(server_id):
            definition = self._row(server_id)
            self._provider().start(self._runtime(definition))
            self._mark_stopped_by_hand(definition, False)
            self._wake.set()
            return self._public(definition)

    def stop_server(self, server_id: str, by_hand: bool = True) -> dict[str, Any]:
        """Stop the server. Stopped by hand (the default: a person or a client asked), it
        stays stopped when the panel starts again, autostart or not, until it is started."""
        with self._server_lock(server_id):
            definition = self._row(server_id)
            self._provider().stop(server_id)
            if by_hand:
                self._mark_stopped_by_hand(definition, True)
            self._wake.set()
            return self._public(definition)

    def _mark_stopped_by_hand(self, definition: dict[str, Any], value: bool) -> None:
        """Persist whether the server was stopped by hand. Only that key of the stored
        definition changes, under the lock every read-change-write of a definition holds, so
        neither this nor a concurrent change to another field is lost."""
        if bool(definition.get("stopped_by_hand")) != value:
            with self._lock:
                self.store.execute(
                    "UPDATE mcp_servers SET definition = json_set(definition, '$.stopped_by_hand', json(?))"
                    " WHERE id = ?",
                    ("true" if value else "false", definition["id"]),
                )
        definition["stopped_by_hand"] = value

    def check_command(
        self, command: list[str], env: list[Mapping[str, Any]] | None = None, cwd: str | None = None
    ) -> dict[str, Any]:
        """Whether ``command`` can be run as a server's child would run it (its ``PATH`` is
        the env's, else the panel's): what ``argv[0]`` resolves to, or why it cannot run."""
        values = {entry["key"]: entry.get("value") or "" for entry in env or []}
        reason = cannot_run(command, values, cwd)
        return {
            "argv": list(command),
            "program": command[0],
            "path": child_path(values),
            "found": find_program(command, values, cwd),
            "warning": reason,
            "warning_i18n": i18n.public(reason),
        }

    def logs(self, server_id: str, tail: int) -> list[str]:
        self._row(server_id)
        return self._provider().logs(server_id, tail)

    def tools(self, server_id: str) -> list[MCPTool]:
        self._row(server_id)
        return self._provider().tools(server_id)

    def client_config(self, server_id: str, client: str, transport: str, address: str | None = None) -> dict[str, Any]:
        """The snippet of ``client`` for the server at ``address``, one of :meth:`addresses`
        (None: the first, a bound domain when there is one), with the addresses to choose from."""
        definition = self._row(server_id)
        if transport not in definition["transports"]:
            raise errors.Conflict(
                Message("mcp.error.transport_disabled", transport=transport), code="transport_disabled"
            )
        addresses = self._addresses(definition)
        chosen = addresses[0]["url"] if address is None else address.rstrip("/")
        if chosen not in {item["url"] for item in addresses}:
            message = Message("mcp.error.not_its_address", address=chosen[:300])
            raise errors.BadRequest(message, code="validation_error", details={"fields": {"address": [message]}})
        url = chosen + TRANSPORT_PATHS[transport]
        return {
            **client_config(client, definition["name"], url, transport, definition["token"]),
            "address": chosen,
            "addresses": addresses,
        }

    def import_document(self, servers: Mapping[str, Any], autostart: bool = True) -> list[dict[str, Any]]:
        """Create a server from every entry of a ``{"mcpServers": {...}}`` document; one bad
        entry is reported and the others are still created."""
        results = []
        for name, entry in servers.items():
            try:
                data = MCPServerInSchema().load(self._from_client_entry(name, entry, autostart))
                server = self.create(data)
            except errors.ApiError as exc:
                results.append({"name": name, "ok": False, "server": None, "error": exc.envelope()["error"]})
            except (ValidationError, ValueError) as exc:
                messages = getattr(exc, "messages", None)
                results.append(
                    {
                        "name": name,
                        "ok": False,
                        "server": None,
                        "error": {
                            "code": "validation_error",
                            "message": Message("mcp.import.invalid_entry"),
                            "details": {"fields": messages} if messages else {"reason": exc.args[0]},
                        },
                    }
                )
            else:
                results.append({"name": name, "ok": True, "server": server, "error": None})
        return results

    # -- internals -----------------------------------------------------------------------

    @staticmethod
    def _from_client_entry(name: str, entry: Any, autostart: bool) -> dict[str, Any]:
        if not isinstance(entry, dict):
            raise ValueError(Message("mcp.import.not_an_object"))  # noqa: TRY004
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-") or "server"
        data: dict[str, Any] = {"name": slug, "autostart": autostart}
        url = entry.get("url") or entry.get("serverUrl") or entry.get("httpUrl")
        if url:
            data["url"] = url
            headers = entry.get("headers") or {}
            if not isinstance(headers, dict):
                raise ValueError(Message("mcp.import.not_a_mapping", field="headers"))
            data["headers"] = [{"name": key, "value": value} for key, value in headers.items()]
            if entry.get("type") == "sse" or str(url).rstrip("/").endswith("/sse"):
                raise ValueError(Message("mcp.import.sse_remote"))
        else:
            command = entry.get("command")
            args = entry.get("args") or []
            if not isinstance(command, str) or not isinstance(args, list):
                raise ValueError(Message("mcp.import.bad_command"))
            data["command"] = [command, *args] if args else command
            env = entry.get("env") or {}
            if not isinstance(env, dict):
                raise ValueError(Message("mcp.import.not_a_mapping", field="env"))
            data["env"] = [
                {"key": key, "value": value, "secret": bool(SECRET_KEY.search(key))} for key, value in env.items()
            ]
            if entry.get("cwd"):
                data["cwd"] = entry["cwd"]
        return data

    def _server_lock(self, server_id: str) -> threading.RLock:
        """The lock held while one server is started, stopped, changed or deleted, so that two
        of these never interleave (other servers go on meanwhile)."""
        with self._server_locks_lock:
            return self._server_locks.setdefault(server_id, threading.RLock())

    @overload
    def _provider(self, required: Literal[True] = True) -> MCPProvider: ...

    @overload
    def _provider(self, required: bool) -> MCPProvider | None: ...

    def _provider(self, required: bool = True) -> MCPProvider | None:
        """The chosen runtime; without ``required``, None when there is none (a 503 else)."""
        if required:
            provider = self.context.providers.get("mcp")
        else:
            choice = self.context.providers.choose("mcp")
            provider = choice.provider
        if hasattr(provider, "on_change") and provider.on_change != self._changed:
            provider.on_change = self._changed  # wakes the status monitor at once
        return provider

    def _changed(self, server_id: str) -> None:
        self._wake.set()

    def _row(self, server_id: str) -> dict[str, Any]:
        row = self.store.query_one("SELECT * FROM mcp_servers WHERE id = ?", (server_id,))
        if row is None:
            raise errors.NotFound(Message("mcp.error.no_server", id=server_id))
        return self._definition(row)

    @staticmethod
    def _definition(row: sqlite3.Row) -> dict[str, Any]:
        definition = json.loads(row["definition"])
        definition.update(
            id=row["id"],
            name=row["name"],
            port=row["port"],
            token=row["token"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        return definition

    @staticmethod
    def _stored(definition: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k: v for k, v in definition.items() if k not in ("id", "name", "port", "token", "created_at", "updated_at")
        }

    def _save(self, definition: Mapping[str, Any]) -> None:
        self.store.execute(
            "UPDATE mcp_servers SET name = ?, port = ?, token = ?, definition = ?, updated_at = ? WHERE id = ?",
            (
                definition["name"],
                definition["port"],
                definition["token"],
                json.dumps(self._stored(definition)),
                definition["updated_at"],
                definition["id"],
            ),
        )

    def _claimed(self) -> list[dict[str, Any]]:
        """The servers being created (see :meth:`create`), as rows of ``mcp_servers``: name,
        port and the definition's JSON. Read before the table, so that a claim that leaves
        meanwhile (its row stored) is in what the table gives."""
        return [
            {
                "name": claim["name"],
                "port": claim["port"],
                "definition": json.dumps({"sandbox_uid": claim["sandbox_uid"]}),
            }
            for claim in list(self._claims.values())
        ]

    def _check_name(self, name: str, taken: Collection[str] | None = None) -> None:
        """A 409 when another server has this name (``taken``: their names, when read already)."""
        if taken is None:
            claimed = {claim["name"] for claim in self._claimed()}
            row = None if name in claimed else self.store.query_one("SELECT 1 FROM mcp_servers WHERE name = ?", (name,))
            found = name in claimed or row is not None
        else:
            found = name in taken
        if found:
            raise errors.Conflict(Message("mcp.error.name_taken", name=name), code="name_taken", details={"name": name})

    def _claim_port(
        self,
        port: int | None,
        bind_host: str,
        exclude: str | None = None,
        check_bind: bool = True,
        taken: Collection[int] | None = None,
    ) -> int:
        """``port`` if it is free, else the first free one of :data:`PORT_RANGE`; ``taken``: the
        ports of the other servers, when read already."""
        if taken is None:
            claimed = {claim["port"] for claim in self._claimed()}
            taken = claimed | {
                row["port"] for row in self.store.query("SELECT port FROM mcp_servers WHERE id != ?", (exclude or "",))
            }
        if port is not None:
            if port in taken:
                raise errors.Conflict(
                    Message("mcp.error.port_of_server", port=port), code="port_taken", details={"port": port}
                )
            if check_bind and not _port_bindable(bind_host, port):
                raise errors.Conflict(
                    Message("mcp.error.port_in_use", port=port, host=bind_host),
                    code="port_taken",
                    details={"port": port},
                )
            return port
        for candidate in range(*PORT_RANGE):
            if candidate not in taken and _port_bindable(bind_host, candidate):
                return candidate
        raise errors.Conflict(Message("mcp.error.no_free_port"), code="no_free_port")

    @staticmethod
    def _merge_env(old: list[dict], new: list[dict]) -> tuple[list[dict], dict]:
        """New env entries. An entry sent without a value keeps its stored value, unless that
        would show a secret: a secret value is kept only while its entry stays secret."""
        previous = {entry["key"]: entry for entry in old}
        merged, problems, seen = [], {}, set()
        for index, entry in enumerate(new):
            key, value = entry["key"], entry.get("value")
            if key in seen:
                problems[f"env.{index}.key"] = [Message("mcp.error.env_twice", key=key)]
                continue
            seen.add(key)
            if value is None:
                stored = previous.get(key)
                if stored is None or stored.get("value") is None:
                    problems[f"env.{index}.value"] = [Message("mcp.error.value_needed")]
                    continue
                if stored.get("secret") and not entry.get("secret"):
                    problems[f"env.{index}.value"] = [Message("mcp.error.secret_value_again", key=key)]
                    continue
                value = stored["value"]
            merged.append({"key": key, "value": value, "secret": bool(entry.get("secret"))})
        return merged, problems

    @staticmethod
    def _merge_headers(old: list[dict], new: list[dict], new_origin: str | None = None) -> tuple[list[dict], dict]:
        """New headers; one sent without a value keeps its stored value, unless the URL now
        points to ``new_origin``: values are never carried to another origin."""
        previous = {entry["name"].lower(): entry for entry in old}
        merged, problems = [], {}
        for index, entry in enumerate(new):
            value = entry.get("value")
            if value is None:
                if new_origin is not None:
                    problems[f"headers.{index}.value"] = [Message("mcp.error.header_value_again", origin=new_origin)]
                    continue
                if entry["name"].lower() not in previous:
                    problems[f"headers.{index}.value"] = [Message("mcp.error.value_needed")]
                    continue
                value = previous[entry["name"].lower()]["value"]
            merged.append({"name": entry["name"], "value": value})
        return merged, problems

    @staticmethod
    def _endpoints(definition: Mapping[str, Any]) -> dict[str, Any]:
        """Where the bridge listens, per transport; ``public``: the same at each bound domain."""

        def at(base: str) -> dict[str, str | None]:
            return {
                "streamable_http": base + "/mcp" if "streamable-http" in definition["transports"] else None,
                "sse": base + "/sse" if "sse" in definition["transports"] else None,
            }

        bound = set(definition.get("extra_hosts") or [])  # a domain no longer bound is no address
        public = [
            at(PublicAddress(**stored).base())
            for stored in definition.get("public_addresses") or []
            if stored.get("host") in bound
        ]
        return {**at(base_url(definition["bind_host"], definition["port"])), "public": public}

    def _profile_problems(self, profile: Mapping[str, Any] | None) -> dict[str, list]:
        """Grants that reach the panel's data dir or the servers' homes, by field."""
        hidden = sandbox.hidden_folders({**self.context.settings.values, "data_dir": str(self.context.data_dir)})
        problems = {}
        for kind in ("read", "write"):
            for index, path in enumerate((profile or {}).get(kind, [])):
                if sandbox.refused_path(path, hidden):
                    problems[f"profile.{kind}.{index}"] = [Message("mcp.validation.hidden_path")]
        return problems

    def _next_sandbox_uid(self, taken: list[int | None] | None = None) -> int:
        """A sandbox uid no server has (``taken``: theirs, when read already)."""
        if taken is None:
            rows: list[Any] = [*self._claimed(), *self.store.query("SELECT definition FROM mcp_servers")]
            taken = [json.loads(row["definition"]).get("sandbox_uid") for row in rows]
        return sandbox.next_uid([uid for uid in taken if uid], self.context.data_dir)

    def _runtime(self, definition: Mapping[str, Any]) -> MCPServerSpec:
        """What the runtime needs to run the server, secrets included."""
        if not definition.get("sandbox_uid"):  # a server defined before sandboxes
            with self._lock:
                definition = {**definition, "sandbox_uid": self._next_sandbox_uid()}
                self._save(definition)
        return {
            "profile": definition.get("profile") or sandbox.Profile().as_dict(),
            "sandbox_uid": definition["sandbox_uid"],
            "sessions": definition.get("sessions", "shared"),
            "id": definition["id"],
            "name": definition["name"],
            "command": definition.get("command"),
            "env_values": {e["key"]: e["value"] for e in definition["env"]},
            "cwd": definition.get("cwd"),
            "url": definition.get("url"),
            "header_values": {h["name"]: h["value"] for h in definition["headers"]},
            "transports": definition["transports"],
            "bind_host": definition["bind_host"],
            "port": definition["port"],
            "token": definition["token"],
            "restart_policy": definition["restart_policy"],
            "extra_hosts": definition["extra_hosts"],
        }

    def _state(self, server_id: str) -> MCPServerState:
        provider = self._provider(required=False)
        if provider is None:
            return MCPServerState(**stopped_state())
        return provider.state(server_id)

    def _status(self, server_id: str) -> str:
        return self._state(server_id)["status"]

    def _public(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        state = self._state(definition["id"])
        return {
            "id": definition["id"],
            "name": definition["name"],
            "kind": "remote" if definition.get("url") else "stdio",
            "command": definition.get("command"),
            "env": [
                {"key": e["key"], "value": None if e["secret"] else e["value"], "secret": e["secret"]}
                for e in definition["env"]
            ],
            "cwd": definition.get("cwd"),
            "url": masked(definition.get("url")),
            "headers": [{"name": h["name"]} for h in definition["headers"]],
            "transports": definition["transports"],
            "port": definition["port"],
            "bind_host": definition["bind_host"],
            "restart_policy": definition["restart_policy"],
            "autostart": definition["autostart"],
            "stopped_by_hand": bool(definition.get("stopped_by_hand")),
            "extra_hosts": definition["extra_hosts"],
            "token_hint": definition["token"][-4:],
            "endpoints": self._endpoints(definition),
            "status": state["status"],
            "pid": state.get("pid"),
            "since": state.get("since"),
            "restarts": state.get("restarts", 0),
            "last_error": state.get("last_error"),
            "last_error_i18n": i18n.public(state.get("last_error")),
            "profile": definition.get("profile") or sandbox.Profile().as_dict(),
            "sessions": definition.get("sessions", "shared"),
            "isolation": state.get("isolation"),
            "created_at": definition["created_at"],
            "updated_at": definition["updated_at"],
        }

    # -- live ----------------------------------------------------------------------------

    def _announce(self, server: dict[str, Any]) -> None:
        self._published[server["id"]] = (server["status"], server["restarts"], server["last_error"], server["pid"])
        self.realtime.publish("mcp", server, ["mcp"])

    def _watch_status(self) -> None:
        """Publish a server's object on topic ``mcp`` whenever its measured state changes."""
        while not self._closing.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:
                for row in self.store.query("SELECT id FROM mcp_servers"):
                    state = self._state(row["id"])
                    key = (state["status"], state.get("restarts", 0), state.get("last_error"), state.get("pid"))
                    if self._published.get(row["id"]) != key:
                        try:
                            self._announce(self.server(row["id"]))
                        except errors.NotFound:
                            continue  # deleted meanwhile; the other servers are still published
            except Exception:
                log.exception("publishing MCP status failed")

    def _listeners_changed(self, topic: str, listeners: int) -> None:
        match = re.fullmatch(r"mcp:([A-Za-z0-9_-]+):logs", topic)
        if not match:
            return
        server_id = match.group(1)
        with self._lock:
            stop = self._followers.get(server_id)
            if listeners > 0 and stop is None:
                stop = threading.Event()
                self._followers[server_id] = stop
                threading.Thread(
                    target=self._follow, args=(server_id, topic, stop), name=f"mcp-follow-{server_id}", daemon=True
                ).start()
            elif listeners <= 0 and stop is not None:
                stop.set()
                del self._followers[server_id]

    def _follow(self, server_id: str, topic: str, stop: threading.Event) -> None:
        try:
            provider = self._provider(required=False)
            log_path = getattr(provider, "log_path", None)
            if log_path is None:
                return
            follower = logfile.Follower(log_path(server_id))
            try:
                while not stop.wait(0.5):
                    # Each process follows the log for its own subscribers; a burst of lines
                    # goes out in several events of bounded size.
                    for lines in logfile.batches(follower.read_new()):
                        self.realtime.publish("mcp_log", {"server_id": server_id, "lines": lines}, [topic], local=True)
            finally:
                follower.close()
        except OSError as exc:
            log.warning("following the log of MCP server %s stopped: %s", server_id, exc)
        finally:
            # However it ends, the next subscriber gets a follower of its own.
            with self._lock:
                if self._followers.get(server_id) is stop:
                    del self._followers[server_id]


def _interface_addresses(ipv6: bool = False) -> list[str]:
    """The addresses of this machine's interfaces a client elsewhere may use: IPv4 ones (and
    IPv6 ones when ``ipv6``), without loopback and link-local addresses."""
    import ipaddress

    import psutil

    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family.name == "AF_INET" or (ipv6 and address.family.name == "AF_INET6"):
                try:
                    ip = ipaddress.ip_address(address.address.split("%")[0])
                except ValueError:
                    continue
                if not (ip.is_loopback or ip.is_link_local or str(ip) in found):
                    found.append(str(ip))
    return found


def _origin(url: str | None) -> tuple[str, str, int | None] | None:
    """Where a remote server's URL sends its requests: scheme, host and port (the scheme's own
    port when none is written); None for no URL."""
    if not url:
        return None
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _origin_text(url: str) -> str:
    """The URL's origin as a person reads it, without credentials."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2]}"


def _invalid(problems: Mapping[str, Any]) -> errors.BadRequest:
    """The 400 for field problems found by the service (not the schema), each under its field."""
    return errors.BadRequest(
        Message("error.validation_error.body", fields=", ".join(problems)),
        code="validation_error",
        details={"fields": dict(problems)},
    )
