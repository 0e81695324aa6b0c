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

A change that did not reach the proxy is never answered as done: the caller gets an error
(502 ``proxy_rejected``, 503 ``proxy_unreachable``) that says what the proxy serves instead. A
token rotation either takes effect or says the old token is still valid, and why. Since the
proxy checks its whole configuration on each change, one binding whose certificate a renewal
moved away would fail the changes of all the others: before each change, every file the proxy
would load is checked, and a binding whose files are gone is left out of the proxy (marked
``error``, saying which files) until they are back, when it is applied again by itself.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hookspecs.ai import DomainProvider
from hookspecs.domain import ProviderWarning
from hookspecs.errors import ProxyUnreachable
from open1panel_ai import errors, i18n
from open1panel_ai.domain import credentials, files, names
from open1panel_ai.domain.binding import ProxyBinding, Upstream
from open1panel_ai.i18n import Message
from open1panel_ai.interfaces import MCPServers, OllamaEndpoints
from open1panel_ai.store import timestamp

if TYPE_CHECKING:
    from open1panel_ai.context import AIContext

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
    # The key and values of an error or note the panel composed (a Message), so that a page
    # shows it in its reader's language; NULL for a proxy's own text.
    """
    ALTER TABLE domain_bindings ADD COLUMN error_i18n TEXT;
    ALTER TABLE domain_removals ADD COLUMN note_i18n TEXT;
    """,
    # The files the config the proxy serves for a binding makes it load (a JSON list, empty
    # without them; NULL: the proxy serves nothing of the binding), and the files whose absence
    # made the panel leave the binding out of the proxy (NULL: not left out). Bindings from
    # before are taken to be served as recorded.
    """
    ALTER TABLE domain_bindings ADD COLUMN served_files TEXT;
    ALTER TABLE domain_bindings ADD COLUMN left_out TEXT;
    UPDATE domain_bindings SET served_files = CASE WHEN tls_mode = 'existing'
        THEN json_array(certificate, certificate_key) ELSE '[]' END;
    """,
]

#: Where each target kind answers on its upstream: MCP bridges serve ``/mcp`` (and ``/sse``).
URL_PATHS = {"ollama": "", "mcp": "/mcp"}
#: The interface that offers each kind of target.
TARGETS: dict[str, type] = {"ollama": OllamaEndpoints, "mcp": MCPServers}
#: Shown in previews in place of secrets.
MASKED_TOKEN = "<token>"
MASKED_HASH = "$2b$12$<bcrypt-hash-of-the-password>"
# The Socket.IO event (on the topic of the same name) that says a binding changed or went:
# ``{"type": "changed" | "removed", "id": <binding id>}``, nothing more, so that no secret
# travels; a page reads the binding again through the API.
EVENT = TOPIC = "domain"


class DomainService:
    """Creates, changes, applies and removes domain bindings."""

    def __init__(self, context: AIContext) -> None:
        self.context = context
        self.store = context.store
        self.store.migrate("domain", MIGRATIONS)
        self._lock = threading.Lock()

    def start(self) -> None:
        """Follow the MCP servers' changes, and mark the bindings whose target went away while
        the panel was not running; apply again the changes a killed panel left unapplied."""
        mcp = self.context.find(MCPServers)
        if mcp is not None:
            mcp.on_server_change(self._mcp_server_changed)
        for record in self._records():
            self._check_target_exists(record)
        self.context.when_owner(self._apply_interrupted)
        self.context.when_owner(self._share_all_hosts_with_mcp)

    def _share_all_hosts_with_mcp(self) -> None:
        """Tell every MCP server with a binding its public addresses again, once per start:
        bindings made before the MCP feature recorded them get them too (unchanged ones are
        left as they are there)."""
        targets = sorted({r["target_name"] for r in self._records() if r["target_kind"] == "mcp"})
        for server_id in targets:
            try:
                self._share_hosts_with_mcp(server_id)
            except errors.ApiError as exc:
                log.warning("the public addresses of MCP server %s were not shared: %s", server_id, exc.message)

    def _apply_interrupted(self) -> None:
        """Apply again the bindings a killed panel left ``pending``, and finish the removals a
        proxy that was down could not take; in the process that applies changes (the owner of
        the data dir), once it is the owner."""
        self._finish_removals()
        with self._lock:
            pending = [
                record
                for record in self._records()
                if record["state"] == "pending" and self._check_target_exists(record)
            ]
            provider = self._provider_or_none() if pending else None
            if provider is None:
                return
            for record in pending:
                log.info("applying binding %s again: the panel stopped while applying it", record["id"])
                try:
                    self._apply(record, provider, previous=None)
                except errors.ApiError as exc:
                    log.warning("binding %s is in error: %s", record["id"], exc.message)

    # -- reading --------------------------------------------------------------------------

    def bindings(self) -> list[dict]:
        """Every binding. Bindings whose files are gone are left out of the proxy first, and
        those left out whose files are back are applied again (see :meth:`_isolate`)."""
        provider = self._provider_or_none()
        if provider is not None:
            with self._lock:
                self._isolate(provider)
        records = self._records()
        for record in records:
            self._check_target_exists(record)
        return [self._public(record) for record in records]

    def removals(self) -> list[dict]:
        """The removals a proxy that was down has still to take; each tried again first."""
        rows = self.store.query("SELECT * FROM domain_removals ORDER BY created_at")
        if rows:
            self._finish_removals()
            rows = self.store.query("SELECT * FROM domain_removals ORDER BY created_at")
        return [
            {
                "id": row["binding_id"],
                "domains": json.loads(row["domains"]),
                "note": row["note"],
                "note_i18n": _loads(row["note_i18n"]),
                "since": row["created_at"],
            }
            for row in rows
        ]

    def binding(self, binding_id: str) -> dict:
        """One binding, its state checked against its target and the proxy (a target that no
        longer resolves, or a vanished config, is an error)."""
        row = self._row(binding_id)
        self._check_target_exists(row)
        provider = self._provider_or_none()
        if provider is not None and row["state"] == "online":
            found = provider.status(binding_id)
            if found["state"] != "online":
                error = found["error"] or Message("domain.error.config_gone")
                self._set_state(binding_id, "error", error)
                row = self._row(binding_id)
        return self._public(row)

    def preview(self, fields: Mapping[str, Any], binding_id: str | None = None) -> dict:
        """The config ``fields`` would be written as (secrets masked), and the public URL.
        A preview needs no running proxy, so a proxy that is down previews too."""
        provider = self._preview_provider()
        current = self._row(binding_id) if binding_id else None
        record = self._merge(current, fields, for_preview=True)
        proxy = self._proxy_binding(record, masked=True)
        return {"provider": provider.name, "config": provider.preview(proxy), "url": self._url(record, provider)}

    # -- changing -------------------------------------------------------------------------

    def create(self, fields: Mapping[str, Any]) -> dict:
        provider = self.context.providers.get("domain")
        with self._lock:
            record = self._merge(None, fields)
            record["id"] = secrets.token_hex(6)
            record["created_at"] = record["updated_at"] = timestamp()
            self._check_target(record, provider)
            self._check_files(record)
            with self.store.transaction() as db:
                self._check_unique(db, record)
                self._check_not_being_removed(db, record, provider)
                columns = [c for c in record if c != "domains"]
                db.execute(
                    f"INSERT INTO domain_bindings ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                    [record[c] for c in columns],
                )
                self._write_names(db, record)
            self._apply_or_raise(record, provider, previous=None, token=record["token"])
        return self._public(self._row(record["id"]), token=record["token"])

    def update(self, binding_id: str, fields: Mapping[str, Any]) -> dict:
        provider = self.context.providers.get("domain")
        with self._lock:
            current = self._row(binding_id)
            record = self._merge(current, fields)
            self._check_target(record, provider)
            self._check_files(record)
            new_token = record["token"] if record["token"] != current["token"] else None
            record.update(state="pending", error=None, error_i18n=None, updated_at=timestamp())
            with self.store.transaction() as db:
                self._check_unique(db, record)
                self._check_not_being_removed(db, record, provider)
                columns = [c for c in record if c not in ("domains", "id", "created_at")]
                db.execute(
                    f"UPDATE domain_bindings SET {', '.join(c + ' = ?' for c in columns)} WHERE id = ?",
                    [record[c] for c in columns] + [binding_id],
                )
                db.execute("DELETE FROM domain_names WHERE binding_id = ?", (binding_id,))
                self._write_names(db, record)
            self._apply_or_raise(record, provider, previous=current, token=new_token)
        return self._public(self._row(binding_id), token=new_token)

    def rotate_token(self, binding_id: str) -> dict:
        """Give a bearer binding a new token; the old one stops working once it is applied.

        When the proxy does not take the new token, the binding keeps the old one, which the
        proxy still serves, and the error says so and why (details ``old_token_valid: true``).
        A binding left out of the proxy because its files are gone serves no token at all: it
        keeps the new one, so the old one never comes back, and the error says to make a new
        token once the files are back (``old_token_valid: false``).
        """
        provider = self.context.providers.get("domain")
        with self._lock:
            current = self._row(binding_id)
            if current["auth_mode"] != "bearer":
                raise errors.Conflict(Message("domain.error.not_bearer"), code="not_bearer")
            token = credentials.new_bearer_token()
            self.store.execute(
                "UPDATE domain_bindings SET token = ?, state = 'pending', error = NULL, "
                "error_i18n = NULL, updated_at = ? WHERE id = ?",
                (token, timestamp(), binding_id),
            )
            try:
                self._apply(self._row(binding_id), provider, previous=None)
            except errors.ApiError as exc:
                raise self._rotation_failed(current, provider, exc) from None
        return self._public(self._row(binding_id), token=token)

    def _rotation_failed(
        self, current: Mapping[str, Any], provider: DomainProvider, exc: errors.ApiError
    ) -> errors.ApiError:
        """The error of a rotation the proxy did not take, with the binding put back as the
        proxy serves it: with its old token where the proxy still serves that."""
        binding_id = current["id"]
        row = self._row(binding_id)
        said = _loads(row["error_i18n"])
        # Why: the proxy's own words where it refused, else what the panel found.
        why = Message(said["key"], **said["params"]) if said else row["error"] or exc.message
        if row["served_files"] is None:
            message = Message("domain.error.rotation_left_out", provider=provider.name, error=why)
            failure: errors.ApiError = errors.Conflict(message, code=exc.code)
            old_token_valid = False
        else:
            self.store.execute(
                "UPDATE domain_bindings SET token = ?, updated_at = ? WHERE id = ?",
                (current["token"], current["updated_at"], binding_id),
            )
            if exc.code != "files_missing":  # the proxy serves the binding as it was
                self.store.execute(
                    "UPDATE domain_bindings SET state = ?, error = ?, error_i18n = ? WHERE id = ?",
                    (current["state"], current["error"], current["error_i18n"], binding_id),
                )
            message = Message("domain.error.rotation_failed", provider=provider.name, error=why)
            failure = type(exc)(message, code=exc.code)
            old_token_valid = True
        log.warning("the token of binding %s was not rotated: %s", binding_id, exc.message)
        self._announce(binding_id)
        failure.details.update(old_token_valid=old_token_valid, binding=self._public(self._row(binding_id)))
        return failure

    def delete(self, binding_id: str) -> None:
        """Take the binding out of the proxy, then forget it. This works with a proxy whose
        probe failed too, where the proxy can take it (a stopped nginx's sites folder)."""
        provider = self.context.providers.get_even_if_down("domain")
        with self._lock:
            record = self._row(binding_id)
            # Another binding's missing file would fail the proxy's check of this removal too.
            self._isolate(provider, keep=binding_id, bring_back=provider is self._provider_or_none())
            try:
                provider.remove(binding_id)
            except Exception as exc:
                if self.context.providers.choose("domain", refresh=True).usable:
                    self._set_state(binding_id, "error", _text(exc))
                    raise errors.UpstreamError(
                        Message("domain.error.remove_failed", error=_text(exc)), code="proxy_rejected"
                    ) from None
                self._remove_later(record, provider, exc)
            else:
                self.store.execute("DELETE FROM domain_bindings WHERE id = ?", (binding_id,))
                self._announce(binding_id, removed=True)
            if record["target_kind"] == "mcp":
                self._share_hosts_with_mcp(record["target_name"])

    def _remove_later(self, record: Mapping[str, Any], provider: DomainProvider, exc: Exception) -> None:
        """Forget a binding its proxy, being down, could not take out: a pending removal with a
        note takes its place until the proxy answers again."""
        note = Message("domain.removal.while_down", provider=provider.name, error=_text(exc))
        log.warning("binding %s removed while %s is down: %s", record["id"], provider.name, exc)
        with self.store.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO domain_removals (binding_id, domains, note, note_i18n, "
                "provider, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (record["id"], json.dumps(record["domains"]), note, _dumps(note), provider.name, timestamp()),
            )
            db.execute("DELETE FROM domain_bindings WHERE id = ?", (record["id"],))
        self._announce(record["id"], removed=True)

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
            pending = [
                row["binding_id"]
                for row in self.store.query(
                    "SELECT binding_id FROM domain_removals WHERE provider IS NULL OR provider = ? ORDER BY created_at",
                    (provider.name,),
                )
            ]
            for binding_id in pending:
                try:
                    provider.remove(binding_id)
                except Exception as exc:
                    note = Message("domain.removal.refused", provider=provider.name, error=_text(exc))
                    self.store.execute(
                        "UPDATE domain_removals SET note = ?, note_i18n = ? WHERE binding_id = ?",
                        (note, _dumps(note), binding_id),
                    )
                    if isinstance(exc, ProxyUnreachable):
                        break
                    continue
                log.info("binding %s is now out of %s too", binding_id, provider.name)
                self.store.execute("DELETE FROM domain_removals WHERE binding_id = ?", (binding_id,))
                self._announce(binding_id, removed=True)

    # -- following the targets ------------------------------------------------------------

    def _mcp_server_changed(self, server_id: str, event: str) -> None:
        """The MCP service's change notification (sent after the change, outside its locks):
        ``event`` is ``updated`` or ``deleted``."""
        if event == "deleted":
            self.retire_target("mcp", server_id, Message("domain.error.mcp_deleted", server=repr(server_id)))
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
                if not self._check_target_exists(record):
                    continue
                try:
                    self._apply(record, provider, previous=None, share_hosts=False)
                except errors.ApiError as exc:
                    log.warning("binding %s is in error: %s", binding_id, exc.message)

    def retire_target(self, kind: str, name: str, reason: Message) -> None:
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
                        error = Message(reason.key + ".not_removed", **reason.params, error=_text(exc))
                    else:
                        self.store.execute(
                            "UPDATE domain_bindings SET served_files = NULL, left_out = NULL WHERE id = ?",
                            (binding_id,),
                        )
                self._set_state(binding_id, "error", error)

    def _check_target_exists(self, record: dict) -> bool:
        """Whether the binding's target still resolves; marks the binding (and ``record``)
        ``error`` if not.

        A feature that is not running says nothing about its targets, so it changes nothing.
        """
        try:
            self._upstream(record)
        except errors.BadRequest as exc:
            kind = record["target_kind"]
            error = Message(f"domain.error.target_gone.{kind}", name=repr(record["target_name"]), error=exc.message)
            if record["state"] != "error":  # an error said already (a deleted server) stays
                self._set_state(record["id"], "error", error)
                record.update(state="error", error=error, error_i18n=_dumps(error))
            return False
        except errors.ApiError:
            return True
        return True

    def _binding_ids(self, kind: str, name: str) -> list[str]:
        return [
            row["id"]
            for row in self.store.query(
                "SELECT id FROM domain_bindings WHERE target_kind = ? AND target_name = ? ORDER BY created_at",
                (kind, name),
            )
        ]

    # -- the pieces -----------------------------------------------------------------------

    def _records(self) -> list[dict]:
        """Every binding with its domains, in one read: under load each call into SQLite is
        a wait for the interpreter, and ``GET /domains`` is asked for often."""
        records: dict[str, dict] = {}
        for row in self.store.query(
            "SELECT b.*, n.name AS domain_name FROM domain_bindings b "
            "LEFT JOIN domain_names n ON n.binding_id = b.id ORDER BY b.created_at, b.id, n.position"
        ):
            record = records.get(row["id"])
            if record is None:
                record = records[row["id"]] = {**dict(row), "domains": []}
                del record["domain_name"]
            if row["domain_name"] is not None:
                record["domains"].append(row["domain_name"])
        return list(records.values())

    def _row(self, binding_id: str | None) -> dict:
        row = self.store.query_one("SELECT * FROM domain_bindings WHERE id = ?", (binding_id,))
        if row is None:
            raise errors.NotFound(Message("domain.error.not_found", id=str(binding_id)))
        record = dict(row)
        record["domains"] = [
            r["name"]
            for r in self.store.query(
                "SELECT name FROM domain_names WHERE binding_id = ? ORDER BY position", (binding_id,)
            )
        ]
        return record

    def _merge(self, current: Mapping[str, Any] | None, fields: Mapping[str, Any], for_preview: bool = False) -> dict:
        """The stored record ``fields`` make of ``current`` (None: a new binding)."""
        record: dict[str, Any] = dict(current) if current else {"state": "pending", "error": None}
        if "domains" in fields:
            record["domains"] = list(fields["domains"])
        if "target" in fields:
            record["target_kind"] = fields["target"]["kind"]
            record["target_name"] = fields["target"]["name"]
        if "tls" in fields:
            tls = fields["tls"]
            record.update(
                tls_mode=tls["mode"],
                force_https=int(bool(tls["force_https"])),
                certificate=tls["certificate"] if tls["mode"] == "existing" else None,
                certificate_key=tls["key"] if tls["mode"] == "existing" else None,
            )
        if "allowlist" in fields:
            record["allowlist"] = json.dumps(sorted(set(fields["allowlist"]), key=fields["allowlist"].index))
        if "auth" in fields or current is None:
            self._merge_auth(record, current, fields.get("auth") or {}, for_preview)
        if record["target_kind"] == "mcp" and record["auth_mode"] != "none":
            # Basic and bearer auth at the proxy read the same Authorization header that the
            # MCP bridge checks for its own token, so no request could ever pass both.
            raise errors.BadRequest(
                Message("domain.error.auth_not_for_mcp"),
                code="auth_not_for_mcp",
                details={"fields": {"auth": {"mode": [Message("domain.field.auth_not_for_mcp")]}}},
            )
        return record

    @staticmethod
    def _merge_auth(
        record: dict, current: Mapping[str, Any] | None, auth: Mapping[str, Any], for_preview: bool
    ) -> None:
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
                raise errors.BadRequest(
                    Message("domain.error.basic_username"),
                    code="validation_error",
                    details={"fields": {"auth": {"username": [Message("domain.field.basic_required")]}}},
                )
            if password:
                record["password_hash"] = MASKED_HASH if for_preview else credentials.hash_password(password)
            elif current and current["auth_mode"] == "basic" and current["username"] == username:
                record["password_hash"] = current["password_hash"]
            elif for_preview:
                record["password_hash"] = MASKED_HASH
            else:
                raise errors.BadRequest(
                    Message("domain.error.basic_password"),
                    code="validation_error",
                    details={"fields": {"auth": {"password": [Message("domain.field.basic_required")]}}},
                )
            record["username"] = username

    @staticmethod
    def _check_unique(db: sqlite3.Connection, record: Mapping[str, Any]) -> None:
        marks = ", ".join("?" for _ in record["domains"])
        taken = db.execute(
            f"SELECT name, binding_id FROM domain_names WHERE name IN ({marks}) AND binding_id != ?",
            [*record["domains"], record["id"]],
        ).fetchall()
        if taken:
            raise errors.Conflict(
                Message("domain.error.taken", domains=", ".join(r["name"] for r in taken)),
                details={"domains": {r["name"]: r["binding_id"] for r in taken}},
                code="domain_taken",
            )

    @staticmethod
    def _check_not_being_removed(db: sqlite3.Connection, record: Mapping[str, Any], provider: DomainProvider) -> None:
        """Refuse domains whose old config the proxy still holds, as a removal still pending,
        where a new config for them would not win over it (nginx keeps serving the site file
        it read first); Caddy puts a new route first, so it needs no wait."""
        if provider.new_routes_first:
            return
        rows = db.execute(
            "SELECT domains FROM domain_removals WHERE provider IS NULL OR provider = ?", (provider.name,)
        ).fetchall()
        held = {name for row in rows for name in json.loads(row["domains"])}
        waiting = [name for name in record["domains"] if name in held]
        if waiting:
            raise errors.Conflict(
                Message("domain.error.being_removed", provider=provider.name, domains=", ".join(waiting)),
                details={"domains": waiting},
                code="domain_being_removed",
            )

    @staticmethod
    def _write_names(db: sqlite3.Connection, record: Mapping[str, Any]) -> None:
        db.executemany(
            "INSERT INTO domain_names (name, binding_id, position) VALUES (?, ?, ?)",
            [(name, record["id"], i) for i, name in enumerate(record["domains"])],
        )

    def _check_target(self, record: Mapping[str, Any], provider: DomainProvider) -> None:
        if record["tls_mode"] == "acme" and not provider.acme:
            raise errors.BadRequest(
                Message("domain.error.acme_unsupported", provider=provider.name),
                code="acme_unsupported",
                details={"fields": {"tls": {"mode": [Message("domain.field.acme_needs_caddy")]}}},
            )
        self._upstream(record)

    def _upstream(self, record: Mapping[str, Any]) -> Upstream:
        """Where the target answers, asked of the service that offers that kind of target."""
        kind, name = record["target_kind"], record["target_name"]
        service: Any = self.context.find(TARGETS[kind])
        if service is None:
            raise errors.UpstreamUnavailable(
                Message(f"domain.error.target_feature_off.{kind}"), code="target_unavailable"
            )
        try:
            if kind == "ollama":
                url = service.endpoint(name)["url"]
            else:
                server = service.server(name)
        except errors.NotFound as exc:
            raise errors.BadRequest(
                exc.message, code="unknown_target", details={"fields": {"target": {"name": [exc.message]}}}
            ) from None
        try:
            # What the target's feature hands over is parsed again here, never trusted: an
            # address stored by an earlier version may hold anything (an IPv6 zone, say).
            if kind == "ollama":
                parts = urlsplit(url)
                scheme, host = parts.scheme or "http", parts.hostname or "127.0.0.1"
                port = parts.port or (443 if scheme == "https" else 80)
            else:
                scheme, host, port = "http", server["bind_host"], int(server["port"])
            if scheme not in ("http", "https") or not 0 < port < 65536:
                raise ValueError(f"{scheme}://…:{port}")
            host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
            return Upstream(scheme, names.upstream_host(host), port)
        except (ValueError, TypeError, KeyError) as exc:
            message = Message("domain.error.bad_upstream", error=_text(exc))
            raise errors.BadRequest(
                message, code="unknown_target", details={"fields": {"target": {"name": [message]}}}
            ) from None

    def _proxy_binding(self, record: Mapping[str, Any], masked: bool = False) -> ProxyBinding:
        return ProxyBinding(
            id=record.get("id") or "preview",
            domains=tuple(record["domains"]),
            target_kind=record["target_kind"],
            upstream=self._upstream(record),
            tls_mode=record["tls_mode"],
            certificate=record["certificate"],
            certificate_key=record["certificate_key"],
            force_https=bool(record["force_https"]),
            allowlist=tuple(json.loads(record["allowlist"])),
            auth_mode=record["auth_mode"],
            username=record["username"],
            password_hash=MASKED_HASH if masked and record["password_hash"] else record["password_hash"],
            token=MASKED_TOKEN if masked and record["token"] else record["token"],
        )

    def _apply(
        self, record: dict, provider: DomainProvider, previous: Mapping[str, Any] | None, share_hosts: bool = True
    ) -> None:
        """Publish ``record`` through the proxy and record how that went.

        Other bindings whose files are gone are left out first, so that they cannot fail this
        change. Raises an :class:`~errors.ApiError` when the change did not reach the proxy:
        the binding is ``error`` then, with the reason, and the proxy serves what it served.
        """
        self._isolate(provider, keep=record["id"])
        gone = files.missing(_files(record))
        if gone:  # its own files went away since it was saved (a renewal moved them, say)
            self._leave_out(provider, {record["id"]: gone})
            raise errors.Conflict(
                Message("domain.error.files_gone", files=", ".join(gone)), code="files_missing", details={"files": gone}
            )
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
            self._set_state(record["id"], "error", _text(exc))
            if isinstance(exc, ProxyUnreachable):
                raise errors.UpstreamUnavailable(
                    Message("domain.error.proxy_unreachable", provider=provider.name, error=_text(exc)),
                    code="proxy_unreachable",
                ) from None
            raise errors.UpstreamError(
                Message("domain.error.proxy_rejected", provider=provider.name, error=_text(exc)), code="proxy_rejected"
            ) from None
        self._mark_served(record)
        if (
            previous
            and previous["target_kind"] == "mcp"
            and (previous["target_name"] != record["target_name"] or record["target_kind"] != "mcp")
        ):
            self._share_hosts_with_mcp(previous["target_name"])

    def _apply_or_raise(
        self, record: dict, provider: DomainProvider, previous: Mapping[str, Any] | None, token: str | None
    ) -> None:
        """:meth:`_apply` for a create or a change: the binding keeps its new settings when the
        proxy did not take them, and the error carries it (with a token made for it) under
        ``details.binding``, so the user can correct one value and save again."""
        try:
            self._apply(record, provider, previous)
        except errors.ApiError as exc:
            exc.details["binding"] = self._public(self._row(record["id"]), token=token)
            raise

    def _mark_served(self, record: Mapping[str, Any]) -> None:
        """Record that the proxy serves ``record`` now, with the files it names."""
        self.store.execute(
            "UPDATE domain_bindings SET state = 'online', error = NULL, error_i18n = NULL, "
            "served_files = ?, left_out = NULL WHERE id = ?",
            (json.dumps(_files(record)), record["id"]),
        )
        self._announce(record["id"])

    # -- keeping one binding's missing files from failing every change ---------------------

    def _isolate(self, provider: DomainProvider, keep: str | None = None, bring_back: bool = True) -> None:
        """Leave out of the proxy every binding (but ``keep``) whose served config names a file
        that is gone, and, with ``bring_back``, apply again those left out whose files are back.
        The caller holds the lock; a proxy that cannot be reached ends the round."""
        records = [record for record in self._records() if record["id"] != keep]
        broken = {}
        for record in records:
            gone = files.missing(_loads(record["served_files"]) or [])
            if gone:
                broken[record["id"]] = gone
        if broken and not self._leave_out(provider, broken):
            return
        for record in records:
            if (
                bring_back
                and record["id"] not in broken
                and record["left_out"] is not None
                and not files.missing(_files(record))
            ):
                self._bring_back(record, provider)

    def _leave_out(self, provider: DomainProvider, broken: Mapping[str, list[str]]) -> bool:
        """Take the bindings whose files are gone (``broken``: id → those files) out of the
        proxy, all in one change where the provider can (each would fail a check of a config
        that still holds another), and mark them ``error``; False when the proxy could not be
        reached."""
        failures: dict[str, Exception] = {}
        try:
            provider.remove_many(list(broken))
        except Exception as exc:
            failures = dict.fromkeys(broken, exc)
        for binding_id, gone in broken.items():
            failure = failures.get(binding_id)
            if failure is not None:
                log.warning(
                    "binding %s names missing files (%s), and %s could not leave it out: %s",
                    binding_id,
                    ", ".join(gone),
                    provider.name,
                    failure,
                )
                self._set_state(
                    binding_id,
                    "error",
                    Message("domain.error.files_missing.not_removed", files=", ".join(gone), error=_text(failure)),
                )
                continue
            log.warning(
                "binding %s is left out of %s: these files are gone: %s", binding_id, provider.name, ", ".join(gone)
            )
            self.store.execute(
                "UPDATE domain_bindings SET served_files = NULL, left_out = ? WHERE id = ?",
                (json.dumps(gone), binding_id),
            )
            self._set_state(binding_id, "error", Message("domain.error.files_missing", files=", ".join(gone)))
        return not any(isinstance(exc, ProxyUnreachable) for exc in failures.values())

    def _bring_back(self, record: dict, provider: DomainProvider) -> None:
        """Apply again a binding left out whose files are back. If the proxy refuses it, it
        stays ``error`` with the proxy's text, and is not tried again until it is saved."""
        if not self._check_target_exists(record):
            return
        try:
            provider.apply(self._proxy_binding(record))
        except Exception as exc:
            log.warning("binding %s, whose files are back, was refused by %s: %s", record["id"], provider.name, exc)
            self.store.execute("UPDATE domain_bindings SET left_out = NULL WHERE id = ?", (record["id"],))
            self._set_state(record["id"], "error", _text(exc))
            return
        log.info("binding %s is served again: its files are back", record["id"])
        self._mark_served(record)

    def _check_files(self, record: Mapping[str, Any]) -> None:
        """A 400 naming the certificate or key file of ``record`` that does not exist: the
        proxy could not load it. Nothing is saved then."""
        gone = files.missing(_files(record))
        if not gone:
            return
        fields = {
            name: [Message("domain.field.file_missing", path=path)]
            for name, path in (("certificate", record["certificate"]), ("key", record["certificate_key"]))
            if path in gone
        }
        raise errors.BadRequest(
            Message("domain.error.file_missing", files=", ".join(gone)),
            code="file_missing",
            details={"fields": {"tls": fields}},
        )

    def _share_hosts_with_mcp(self, server_id: str) -> None:
        """Tell one MCP server which public names reach it (every binding that targets it)."""
        service = self.context.find(MCPServers)
        if service is None:
            return
        rows = self.store.query(
            "SELECT n.name, b.tls_mode FROM domain_names n JOIN domain_bindings b ON b.id = n.binding_id "
            "WHERE b.target_kind = 'mcp' AND b.target_name = ? ORDER BY n.name",
            (server_id,),
        )
        try:
            # Where clients reach it, so that its client configs name the domain.
            provider = self._provider_or_none()
            service.set_public_addresses(
                server_id,
                [
                    {
                        "scheme": "https" if row["tls_mode"] != "none" else "http",
                        "host": row["name"],
                        "port": provider.public_port(row["tls_mode"] != "none") if provider is not None else None,
                        "path_prefix": "",
                    }
                    for row in rows
                ],
            )
        except errors.NotFound:
            log.info("MCP server %s is gone; its hosts were not updated", server_id)

    def _set_state(self, binding_id: str, state: str, error: str | None) -> None:
        """Record a binding's state; an ``error`` the panel composed (a Message) keeps its key
        and values beside its English text. Subscribers hear of it only when it changed: a
        page that reads the bindings again on the event must not cause another one."""
        i18n_error = _dumps(error)
        changed = self.store.execute(
            "UPDATE domain_bindings SET state = ?, error = ?, error_i18n = ? WHERE id = ? "
            "AND (state IS NOT ? OR error IS NOT ? OR error_i18n IS NOT ?)",
            (state, error, i18n_error, binding_id, state, error, i18n_error),
        )
        if changed:
            self._announce(binding_id)

    def _announce(self, binding_id: str, removed: bool = False) -> None:
        """Tell the subscribers of the ``domain`` topic that a binding changed or went (its
        id only: they read it again through the API, which masks its secrets)."""
        self.context.realtime.publish(EVENT, {"type": "removed" if removed else "changed", "id": binding_id}, [TOPIC])

    def _provider_or_none(self) -> DomainProvider | None:
        choice = self.context.providers.choose("domain")
        return choice.provider

    def _preview_provider(self) -> DomainProvider:
        """The provider that writes previews: the one in use, else the one meant to be in use
        whose probe failed (a stopped nginx still renders its sites), else the first one tried.
        A 503 when there is none at all (the feature turned off, no provider installed)."""
        choice = self.context.providers.choose("domain")
        provider = (
            choice.provider or choice.down or next((c.down for c in choice.candidates if c.down is not None), None)
        )
        return provider if provider is not None else self.context.providers.get("domain")

    # -- the proxy and the summary ----------------------------------------------------------

    def proxy(self) -> dict:
        """The reverse proxy, probed afresh: whether changes can be applied now, why not, and,
        for each provider tried, what the panel reads and writes of it and which setting
        changes that (a provider without ``settings_in_use()`` lists nothing); and the warnings
        of the provider in use (Caddy's admin API within other users' reach, say)."""
        choice = self.context.providers.choose("domain", refresh=True)
        tried = []
        for candidate in choice.candidates:
            instance = choice.provider if candidate.name == getattr(choice.provider, "name", None) else candidate.down
            if candidate.usable is None or instance is None:
                continue
            tried.append(
                {
                    "name": candidate.name,
                    "usable": bool(candidate.usable),
                    "reason": candidate.reason,
                    "fix": candidate.fix,
                    "settings": list(instance.settings_in_use()),
                }
            )
        try:
            preview = self._preview_provider().name
        except errors.ApiError:
            preview = None
        return {
            "setting": choice.setting,
            "provider": getattr(choice.provider, "name", None),
            "usable": choice.usable,
            "reason": choice.reason,
            "fix": choice.fix,
            "preview_provider": preview,
            "candidates": tried,
            "warnings": _warnings(choice.provider),
        }

    def summary(self) -> dict:
        """How the bindings fare, for the landing page: counts by state, the bindings in error
        (named, with their error), and the removals a proxy that was down has still to take."""
        bindings = self.bindings()
        count = {state: sum(1 for b in bindings if b["state"] == state) for state in ("online", "pending", "error")}
        counted = self.store.query_one("SELECT COUNT(*) AS n FROM domain_removals")
        assert counted is not None  # an aggregate without GROUP BY answers exactly one row
        removals = counted["n"]
        choice = self.context.providers.choose("domain")
        warnings = _warnings(choice.provider)
        return {
            "state": "attention" if count["error"] or removals or warnings else "ready",
            "total": len(bindings),
            **count,
            "removals": removals,
            "provider": getattr(choice.provider, "name", None),
            "warnings": warnings,
            "failing": [
                {"id": b["id"], "domains": b["domains"], "error": b["error"], "error_i18n": b["error_i18n"]}
                for b in bindings
                if b["state"] == "error"
            ],
        }

    def _url(self, record: Mapping[str, Any], provider: DomainProvider | None) -> str:
        tls = record["tls_mode"] != "none"
        port = provider.public_port(tls) if provider is not None else (443 if tls else 80)
        default = 443 if tls else 80
        origin = f"{'https' if tls else 'http'}://{record['domains'][0]}"
        return origin + ("" if port == default else f":{port}") + URL_PATHS[record["target_kind"]]

    def _public(self, row: Mapping[str, Any], token: str | None = None) -> dict:
        provider = self._provider_or_none()
        public = {
            "id": row["id"],
            "domains": row["domains"],
            "target": {"kind": row["target_kind"], "name": row["target_name"]},
            "tls": {
                "mode": row["tls_mode"],
                "certificate": row["certificate"],
                "key": row["certificate_key"],
                "force_https": bool(row["force_https"]),
            },
            "allowlist": json.loads(row["allowlist"]),
            "auth": {
                "mode": row["auth_mode"],
                "username": row["username"],
                "has_secret": bool(row["password_hash"] or row["token"]),
            },
            "state": row["state"],
            "error": row["error"],
            "error_i18n": _loads(row["error_i18n"]),
            "provider": getattr(provider, "name", None),
            "url": self._url(row, provider),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
        if token is not None:
            public["token"] = token
        return public


def _warnings(provider: DomainProvider | None) -> list[ProviderWarning]:
    """The provider's ``warnings()``: ``{warning, fix}`` Messages about how it is set up (none
    when there is no provider)."""
    if provider is None:
        return []
    try:
        return [{"warning": item["warning"], "fix": item.get("fix")} for item in provider.warnings()]
    except Exception:  # a plugin's warnings must not take the page down
        log.exception("the %s provider's warnings() failed", getattr(provider, "name", "?"))
        return []


def _files(record: Mapping[str, Any]) -> list[str]:
    """The files the proxy loads for ``record``: its certificate and key, if it has them."""
    if record["tls_mode"] != "existing":
        return []
    return [path for path in (record["certificate"], record["certificate_key"]) if path]


def _text(exc: Exception) -> str:
    """What a provider's exception says: its Message when it carries one, else its text."""
    first = exc.args[0] if exc.args else None
    return first if isinstance(first, Message) else (str(exc) or type(exc).__name__)


def _dumps(text: str | None) -> str | None:
    """The ``{key, params}`` of a Message as JSON, for its ``*_i18n`` column; else None."""
    public = i18n.public(text)
    return json.dumps(public) if public is not None else None


def _loads(column: str | None) -> dict | None:
    return json.loads(column) if column else None
