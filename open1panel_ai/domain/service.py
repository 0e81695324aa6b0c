"""Domain bindings: stored in SQLite, resolved to their targets, applied through a provider.

A change is saved first, with state ``pending``, then applied. When the proxy refuses it, the
proxy keeps serving the previous configuration, and the binding keeps the new settings with
state ``error`` and the proxy's text, so the user can fix the one wrong value and apply again.
A binding still ``pending`` at start was cut short by a panel that was killed; it is applied
again then, so the proxy ends up serving what the record says (or the record says why not).

A binding is removed even while its proxy is down. Where the proxy can take the removal then
(nginx's sites folder), it is done at once. Where it cannot (Caddy's admin API does not
answer), the record goes and a pending removal with a note takes its place; the removal is
done when the proxy answers again: at the panel's start, or when the bindings are listed.

Bindings follow their targets: when an MCP server's address changes its bindings are applied
again, when it is deleted they are taken out of the proxy and marked ``error``; a binding whose
target no longer resolves (an Ollama endpoint removed, say) is marked ``error`` when it is read.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from open1panel_ai import errors
from open1panel_ai.domain import credentials, names
from open1panel_ai.domain.binding import ProxyBinding, Upstream
from open1panel_ai.store import timestamp

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE domain_bindings (
        id TEXT PRIMARY KEY,
        target_kind TEXT NOT NULL,
        target_name TEXT NOT NULL,
        tls_mode TEXT NOT NULL,
        certificate TEXT,
        certificate_key TEXT,
        force_https INTEGER NOT NULL,
        allowlist TEXT NOT NULL,
        auth_mode TEXT NOT NULL,
        username TEXT,
        password_hash TEXT,
        token TEXT,
        state TEXT NOT NULL,
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE domain_names (
        name TEXT PRIMARY KEY,
        binding_id TEXT NOT NULL REFERENCES domain_bindings (id) ON DELETE CASCADE,
        position INTEGER NOT NULL
    );
    CREATE INDEX domain_names_by_binding ON domain_names (binding_id);
    """,
    """
    CREATE TABLE domain_removals (
        binding_id TEXT PRIMARY KEY,
        domains TEXT NOT NULL,
        note TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # The provider a pending removal is for: only that one can take it out. Removals recorded
    # before it have none, and are taken by whichever provider is in use.
    """
    ALTER TABLE domain_removals ADD COLUMN provider TEXT;
    """,
]

#: Where each target kind answers on its upstream: MCP bridges serve ``/mcp`` (and ``/sse``).
URL_PATHS = {"ollama": "", "mcp": "/mcp"}
#: Shown in previews in place of secrets.
MASKED_TOKEN = "<token>"
MASKED_HASH = "$2b$12$<bcrypt-hash-of-the-password>"


class DomainService:
    """Creates, changes, applies and removes domain bindings."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.store = context.store
        self.store.migrate("domain", MIGRATIONS)
        self._lock = threading.Lock()

    def start(self) -> None:
        """Follow the MCP servers' changes, and mark the bindings whose target went away while
        the panel was not running; apply again the changes a killed panel left unapplied."""
        mcp = self.context.services.get("mcp")
        if mcp is not None:
            mcp.on_server_change(self._mcp_server_changed)
        for record in self._records():
            self._check_target_exists(record)
        self.context.when_owner(self._apply_interrupted)

    def _apply_interrupted(self) -> None:
        """Apply again the bindings a killed panel left ``pending``, and finish the removals a
        proxy that was down could not take; in the process that applies changes (the owner of
        the data dir), once it is the owner."""
        self._finish_removals()
        with self._lock:
            pending = [record for record in self._records()
                       if record["state"] == "pending" and self._check_target_exists(record)]
            provider = self._provider_or_none() if pending else None
            if provider is None:
                return
            for record in pending:
                log.info("applying binding %s again: the panel stopped while applying it", record["id"])
                self._apply(record, provider, previous=None)

    # -- reading --------------------------------------------------------------------------

    def bindings(self) -> list[dict]:
        records = self._records()
        for record in records:
            self._check_target_exists(record)
        return [self._public(record) for record in records]

    def removals(self) -> list[dict]:
        """The removals a proxy that was down has still to take; each tried again first."""
        self._finish_removals()
        return [{"id": row["binding_id"], "domains": json.loads(row["domains"]), "note": row["note"],
                 "since": row["created_at"]}
                for row in self.store.query("SELECT * FROM domain_removals ORDER BY created_at")]

    def binding(self, binding_id: str) -> dict:
        """One binding, its state checked against its target and the proxy (a target that no
        longer resolves, or a vanished config, is an error)."""
        row = self._row(binding_id)
        self._check_target_exists(row)
        provider = self._provider_or_none()
        if provider is not None and row["state"] == "online":
            found = provider.status(binding_id)
            if found["state"] != "online":
                error = found["error"] or "The proxy no longer has this binding's configuration; apply it again."
                self._set_state(binding_id, "error", error)
                row = self._row(binding_id)
        return self._public(row)

    def preview(self, fields: Mapping[str, Any], binding_id: str | None = None) -> dict:
        """The config ``fields`` would be written as (secrets masked), and the public URL."""
        provider = self.context.providers.get("domain")
        current = self._row(binding_id) if binding_id else None
        record = self._merge(current, fields, for_preview=True)
        proxy = self._proxy_binding(record, masked=True)
        return {"provider": provider.name, "config": provider.preview(proxy),
                "url": self._url(record, provider)}

    # -- changing -------------------------------------------------------------------------

    def create(self, fields: Mapping[str, Any]) -> dict:
        provider = self.context.providers.get("domain")
        with self._lock:
            record = self._merge(None, fields)
            record["id"] = secrets.token_hex(6)
            record["created_at"] = record["updated_at"] = timestamp()
            self._check_target(record, provider)
            with self.store.transaction() as db:
                self._check_unique(db, record)
                self._check_not_being_removed(db, record, provider)
                columns = [c for c in record if c != "domains"]
                db.execute(f"INSERT INTO domain_bindings ({', '.join(columns)}) "
                           f"VALUES ({', '.join('?' for _ in columns)})", [record[c] for c in columns])
                self._write_names(db, record)
            self._apply(record, provider, previous=None)
        return self._public(self._row(record["id"]), token=record["token"])

    def update(self, binding_id: str, fields: Mapping[str, Any]) -> dict:
        provider = self.context.providers.get("domain")
        with self._lock:
            current = self._row(binding_id)
            record = self._merge(current, fields)
            self._check_target(record, provider)
            new_token = record["token"] if record["token"] != current["token"] else None
            record.update(state="pending", error=None, updated_at=timestamp())
            with self.store.transaction() as db:
                self._check_unique(db, record)
                self._check_not_being_removed(db, record, provider)
                columns = [c for c in record if c not in ("domains", "id", "created_at")]
                db.execute(f"UPDATE domain_bindings SET {', '.join(c + ' = ?' for c in columns)} "
                           "WHERE id = ?", [record[c] for c in columns] + [binding_id])
                db.execute("DELETE FROM domain_names WHERE binding_id = ?", (binding_id,))
                self._write_names(db, record)
            self._apply(record, provider, previous=current)
        return self._public(self._row(binding_id), token=new_token)

    def rotate_token(self, binding_id: str) -> dict:
        """Give a bearer binding a new token; the old one stops working once applied."""
        provider = self.context.providers.get("domain")
        with self._lock:
            current = self._row(binding_id)
            if current["auth_mode"] != "bearer":
                raise errors.Conflict("This binding does not use bearer auth; set auth.mode to "
                                      "bearer to get a token.", code="not_bearer")
            token = credentials.new_bearer_token()
            self.store.execute("UPDATE domain_bindings SET token = ?, state = 'pending', error = NULL, "
                               "updated_at = ? WHERE id = ?", (token, timestamp(), binding_id))
            self._apply(self._row(binding_id), provider, previous=None)
        return self._public(self._row(binding_id), token=token)

    def delete(self, binding_id: str) -> None:
        """Take the binding out of the proxy, then forget it. This works with a proxy whose
        probe failed too, where the proxy can take it (a stopped nginx's sites folder)."""
        provider = self.context.providers.get_even_if_down("domain")
        with self._lock:
            record = self._row(binding_id)
            try:
                provider.remove(binding_id)
            except Exception as exc:
                if self.context.providers.choose("domain", refresh=True).usable:
                    self._set_state(binding_id, "error", str(exc))
                    raise errors.UpstreamError(f"The proxy could not remove the binding: {exc}",
                                               code="proxy_rejected") from None
                self._remove_later(record, provider, exc)
            else:
                self.store.execute("DELETE FROM domain_bindings WHERE id = ?", (binding_id,))
            if record["target_kind"] == "mcp":
                self._share_hosts_with_mcp(record["target_name"])

    def _remove_later(self, record: Mapping[str, Any], provider: Any, exc: Exception) -> None:
        """Forget a binding its proxy, being down, could not take out: a pending removal with a
        note takes its place until the proxy answers again."""
        note = (f"{provider.name} could not take this binding out while it is down ({exc}); it is "
                f"taken out once {provider.name} answers again.")
        log.warning("binding %s removed while %s is down: %s", record["id"], provider.name, exc)
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO domain_removals "
                       "(binding_id, domains, note, provider, created_at) VALUES (?, ?, ?, ?, ?)",
                       (record["id"], json.dumps(record["domains"]), note, provider.name, timestamp()))
            db.execute("DELETE FROM domain_bindings WHERE id = ?", (record["id"],))

    def _finish_removals(self) -> None:
        """Have the proxy each pending removal was recorded for take it, once that proxy answers.

        The proxy is probed afresh (the choice kept since the removal says it was down), and
        only when removals are pending. A removal of another provider than the one in use stays
        pending: only its own proxy has its route. One the proxy refuses keeps its row, with the
        proxy's latest answer in its note; a proxy that stops answering ends the round, so a
        hung proxy costs one timeout, not one per removal.
        """
        if self.store.query_one("SELECT 1 FROM domain_removals LIMIT 1") is None:
            return
        provider = self.context.providers.choose("domain", refresh=True).provider
        if provider is None:
            return
        with self._lock:
            pending = [row["binding_id"] for row in self.store.query(
                "SELECT binding_id FROM domain_removals WHERE provider IS NULL OR provider = ? "
                "ORDER BY created_at", (provider.name,))]
            for binding_id in pending:
                try:
                    provider.remove(binding_id)
                except Exception as exc:
                    note = (f"{provider.name} did not take this binding out: {exc}. It is tried "
                            "again when the bindings are listed.")
                    self.store.execute("UPDATE domain_removals SET note = ? WHERE binding_id = ?",
                                       (note, binding_id))
                    if isinstance(exc, ConnectionError):
                        break
                    continue
                log.info("binding %s is now out of %s too", binding_id, provider.name)
                self.store.execute("DELETE FROM domain_removals WHERE binding_id = ?", (binding_id,))

    # -- following the targets ------------------------------------------------------------

    def _mcp_server_changed(self, server_id: str, event: str) -> None:
        """The MCP service's change notification (sent after the change, outside its locks):
        ``event`` is ``updated`` or ``deleted``."""
        if event == "deleted":
            self.retire_target("mcp", server_id, f"The MCP server {server_id!r} was deleted, so the "
                               "proxy no longer serves this binding; bind another target or remove it.")
        else:
            self.reapply_target("mcp", server_id)

    def reapply_target(self, kind: str, name: str) -> None:
        """Apply every binding of one target again, with the target's address as it is now."""
        binding_ids = self._binding_ids(kind, name)
        provider = self._provider_or_none() if binding_ids else None
        if provider is None:
            return
        with self._lock:
            for binding_id in binding_ids:
                record = self._row(binding_id)
                if self._check_target_exists(record):
                    self._apply(record, provider, previous=None, share_hosts=False)

    def retire_target(self, kind: str, name: str, reason: str) -> None:
        """Take every binding of a target that is gone out of the proxy, and mark it ``error``
        with ``reason``; the binding stays, so it can be pointed at another target."""
        binding_ids = self._binding_ids(kind, name)
        if not binding_ids:
            return
        try:
            provider = self.context.providers.get_even_if_down("domain")
        except errors.ApiError:
            provider = None
        with self._lock:
            for binding_id in binding_ids:
                error = reason
                if provider is not None:
                    try:
                        provider.remove(binding_id)
                    except Exception as exc:
                        error = f"{reason} The proxy could not remove it: {exc}"
                self._set_state(binding_id, "error", error)

    def _check_target_exists(self, record: dict) -> bool:
        """Whether the binding's target still resolves; marks the binding (and ``record``)
        ``error`` if not.

        A feature that is not running says nothing about its targets, so it changes nothing.
        """
        try:
            self._upstream(record)
        except errors.BadRequest as exc:
            what = "Ollama endpoint" if record["target_kind"] == "ollama" else "MCP server"
            error = (f"The {what} {record['target_name']!r} this binding points at no longer "
                     f"resolves ({exc.message}); bind another target or remove this binding.")
            if record["state"] != "error":  # an error said already (a deleted server) stays
                self._set_state(record["id"], "error", error)
                record.update(state="error", error=error)
            return False
        except errors.ApiError:
            return True
        return True

    def _binding_ids(self, kind: str, name: str) -> list[str]:
        return [row["id"] for row in self.store.query(
            "SELECT id FROM domain_bindings WHERE target_kind = ? AND target_name = ? ORDER BY created_at",
            (kind, name))]

    # -- the pieces -----------------------------------------------------------------------

    def _records(self) -> list[dict]:
        records = {row["id"]: {**dict(row), "domains": []} for row in
                   self.store.query("SELECT * FROM domain_bindings ORDER BY created_at")}
        for row in self.store.query("SELECT name, binding_id FROM domain_names ORDER BY position"):
            records[row["binding_id"]]["domains"].append(row["name"])
        return list(records.values())

    def _row(self, binding_id: str | None) -> dict:
        row = self.store.query_one("SELECT * FROM domain_bindings WHERE id = ?", (binding_id,))
        if row is None:
            raise errors.NotFound(f"There is no domain binding {binding_id!r}.")
        record = dict(row)
        record["domains"] = [r["name"] for r in self.store.query(
            "SELECT name FROM domain_names WHERE binding_id = ? ORDER BY position", (binding_id,))]
        return record

    def _merge(self, current: Mapping[str, Any] | None, fields: Mapping[str, Any],
               for_preview: bool = False) -> dict:
        """The stored record ``fields`` make of ``current`` (None: a new binding)."""
        record = dict(current) if current else {"state": "pending", "error": None}
        if "domains" in fields:
            record["domains"] = list(fields["domains"])
        if "target" in fields:
            record["target_kind"] = fields["target"]["kind"]
            record["target_name"] = fields["target"]["name"]
        if "tls" in fields:
            tls = fields["tls"]
            record.update(tls_mode=tls["mode"], force_https=int(bool(tls["force_https"])),
                          certificate=tls["certificate"] if tls["mode"] == "existing" else None,
                          certificate_key=tls["key"] if tls["mode"] == "existing" else None)
        if "allowlist" in fields:
            record["allowlist"] = json.dumps(sorted(set(fields["allowlist"]), key=fields["allowlist"].index))
        if "auth" in fields or current is None:
            self._merge_auth(record, current, fields.get("auth") or {}, for_preview)
        if record["target_kind"] == "mcp" and record["auth_mode"] != "none":
            # Basic and bearer auth at the proxy read the same Authorization header that the
            # MCP bridge checks for its own token, so no request could ever pass both.
            raise errors.BadRequest(
                "An MCP server's bridge already asks for its own bearer token; the proxy cannot "
                "ask for another in the same Authorization header. Set auth.mode to none.",
                code="auth_not_for_mcp",
                details={"fields": {"auth": {"mode": ["MCP targets take auth.mode none."]}}})
        return record

    @staticmethod
    def _merge_auth(record: dict, current: Mapping[str, Any] | None, auth: Mapping[str, Any],
                    for_preview: bool) -> None:
        default = "bearer" if record["target_kind"] == "ollama" else "none"
        mode = auth.get("mode") or (current["auth_mode"] if current else default)
        record.update(auth_mode=mode, username=None, password_hash=None, token=None)
        if mode == "bearer":
            kept = current["token"] if current and current["auth_mode"] == "bearer" else None
            record["token"] = kept or (MASKED_TOKEN if for_preview else credentials.new_bearer_token())
        elif mode == "basic":
            username = auth.get("username") or (current["username"] if current else None)
            password = auth.get("password")
            if not username:
                raise errors.BadRequest("Basic auth needs a username.", code="validation_error",
                                        details={"fields": {"auth": {"username": ["Required for basic auth."]}}})
            if password:
                record["password_hash"] = MASKED_HASH if for_preview else credentials.hash_password(password)
            elif current and current["auth_mode"] == "basic" and current["username"] == username:
                record["password_hash"] = current["password_hash"]
            elif for_preview:
                record["password_hash"] = MASKED_HASH
            else:
                raise errors.BadRequest("Basic auth needs a password.", code="validation_error",
                                        details={"fields": {"auth": {"password": ["Required for basic auth."]}}})
            record["username"] = username

    @staticmethod
    def _check_unique(db, record: Mapping[str, Any]) -> None:
        marks = ", ".join("?" for _ in record["domains"])
        taken = db.execute(f"SELECT name, binding_id FROM domain_names WHERE name IN ({marks}) "
                           "AND binding_id != ?", [*record["domains"], record["id"]]).fetchall()
        if taken:
            raise errors.Conflict(
                "These domains are bound already: " + ", ".join(r["name"] for r in taken) + ".",
                details={"domains": {r["name"]: r["binding_id"] for r in taken}}, code="domain_taken")

    @staticmethod
    def _check_not_being_removed(db, record: Mapping[str, Any], provider: Any) -> None:
        """Refuse domains whose old config the proxy still holds, as a removal still pending,
        where a new config for them would not win over it (nginx keeps serving the site file
        it read first); Caddy puts a new route first, so it needs no wait."""
        if getattr(provider, "new_routes_first", False):
            return
        rows = db.execute("SELECT domains FROM domain_removals WHERE provider IS NULL OR provider = ?",
                          (provider.name,)).fetchall()
        held = {name for row in rows for name in json.loads(row["domains"])}
        waiting = [name for name in record["domains"] if name in held]
        if waiting:
            raise errors.Conflict(
                f"{provider.name} still holds the config of a removed binding for "
                + ", ".join(waiting) + "; it is taken out when the bindings are listed once "
                f"{provider.name} takes it (see removals in GET /domains).",
                details={"domains": waiting}, code="domain_being_removed")

    @staticmethod
    def _write_names(db, record: Mapping[str, Any]) -> None:
        db.executemany("INSERT INTO domain_names (name, binding_id, position) VALUES (?, ?, ?)",
                       [(name, record["id"], i) for i, name in enumerate(record["domains"])])

    def _check_target(self, record: Mapping[str, Any], provider: Any) -> None:
        if record["tls_mode"] == "acme" and not getattr(provider, "acme", False):
            raise errors.BadRequest(
                f"The {provider.name} provider serves existing certificates only; use the caddy "
                "provider for ACME, or give a certificate and key.", code="acme_unsupported",
                details={"fields": {"tls": {"mode": ["ACME needs the caddy provider."]}}})
        self._upstream(record)

    def _upstream(self, record: Mapping[str, Any]) -> Upstream:
        """Where the target answers, asked of its feature's service."""
        kind, name = record["target_kind"], record["target_name"]
        service = self.context.services.get(kind)
        if service is None:
            raise errors.UpstreamUnavailable(
                f"The {kind} feature is not running here, so its targets cannot be bound.",
                code="target_unavailable")
        try:
            if kind == "ollama":
                url = urlsplit(service.endpoint(name)["url"])
                scheme, host = url.scheme or "http", url.hostname or "127.0.0.1"
                port = url.port or (443 if scheme == "https" else 80)
            else:
                server = service.server(name)
                scheme, host, port = "http", server["bind_host"], int(server["port"])
        except errors.NotFound as exc:
            raise errors.BadRequest(exc.message, code="unknown_target",
                                    details={"fields": {"target": {"name": [exc.message]}}}) from None
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        try:
            return Upstream(scheme, names.upstream_host(host), port)
        except names.InvalidValue as exc:
            raise errors.BadRequest(f"The target's address cannot be proxied: {exc}",
                                    code="unknown_target") from None

    def _proxy_binding(self, record: Mapping[str, Any], masked: bool = False) -> ProxyBinding:
        return ProxyBinding(
            id=record.get("id") or "preview", domains=tuple(record["domains"]),
            target_kind=record["target_kind"], upstream=self._upstream(record),
            tls_mode=record["tls_mode"], certificate=record["certificate"],
            certificate_key=record["certificate_key"], force_https=bool(record["force_https"]),
            allowlist=tuple(json.loads(record["allowlist"])), auth_mode=record["auth_mode"],
            username=record["username"],
            password_hash=MASKED_HASH if masked and record["password_hash"] else record["password_hash"],
            token=MASKED_TOKEN if masked and record["token"] else record["token"])

    def _apply(self, record: dict, provider: Any, previous: Mapping[str, Any] | None,
               share_hosts: bool = True) -> None:
        """Publish ``record`` through the proxy and record how that went."""
        if share_hosts and record["target_kind"] == "mcp":
            self._share_hosts_with_mcp(record["target_name"])
        self._set_state(record["id"], "pending", None)
        try:
            provider.apply(self._proxy_binding(record))
        except errors.ApiError as exc:
            self._set_state(record["id"], "error", exc.message)
            raise
        except Exception as exc:
            log.warning("the %s provider rejected binding %s: %s", provider.name, record["id"], exc)
            self._set_state(record["id"], "error", str(exc) or type(exc).__name__)
            return
        self._set_state(record["id"], "online", None)
        if previous and previous["target_kind"] == "mcp" and (
                previous["target_name"] != record["target_name"] or record["target_kind"] != "mcp"):
            self._share_hosts_with_mcp(previous["target_name"])

    def _share_hosts_with_mcp(self, server_id: str) -> None:
        """Tell one MCP server which public names reach it (every binding that targets it)."""
        service = self.context.services.get("mcp")
        if service is None:
            return
        rows = self.store.query(
            "SELECT n.name FROM domain_names n JOIN domain_bindings b ON b.id = n.binding_id "
            "WHERE b.target_kind = 'mcp' AND b.target_name = ? ORDER BY n.name", (server_id,))
        try:
            service.set_extra_hosts(server_id, [row["name"] for row in rows])
        except errors.NotFound:
            log.info("MCP server %s is gone; its hosts were not updated", server_id)

    def _set_state(self, binding_id: str, state: str, error: str | None) -> None:
        self.store.execute("UPDATE domain_bindings SET state = ?, error = ? WHERE id = ?",
                           (state, error, binding_id))

    def _provider_or_none(self) -> Any:
        choice = self.context.providers.choose("domain")
        return choice.provider

    def _url(self, record: Mapping[str, Any], provider: Any) -> str:
        tls = record["tls_mode"] != "none"
        port = provider.public_port(tls) if provider is not None else (443 if tls else 80)
        default = 443 if tls else 80
        origin = f"{'https' if tls else 'http'}://{record['domains'][0]}"
        return origin + ("" if port == default else f":{port}") + URL_PATHS[record["target_kind"]]

    def _public(self, row: Mapping[str, Any], token: str | None = None) -> dict:
        provider = self._provider_or_none()
        public = {
            "id": row["id"], "domains": row["domains"],
            "target": {"kind": row["target_kind"], "name": row["target_name"]},
            "tls": {"mode": row["tls_mode"], "certificate": row["certificate"],
                    "key": row["certificate_key"], "force_https": bool(row["force_https"])},
            "allowlist": json.loads(row["allowlist"]),
            "auth": {"mode": row["auth_mode"], "username": row["username"],
                     "has_secret": bool(row["password_hash"] or row["token"])},
            "state": row["state"], "error": row["error"],
            "provider": getattr(provider, "name", None), "url": self._url(row, provider),
            "created_at": row["created_at"], "updated_at": row["updated_at"],
        }
        if token is not None:
            public["token"] = token
        return public
