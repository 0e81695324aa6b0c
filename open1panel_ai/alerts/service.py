"""The alerts service: rules evaluated in the owner process, alerts kept in SQLite, channels.

Every ``OPEN1PANEL_AI_ALERTS_INTERVAL`` seconds (15 by default) the owner process (see
docs/scaling.md) reads the panel once (:class:`~open1panel_ai.alerts.rules.Snapshot`) and asks
each rule which of its subjects are in trouble. Per rule and subject:

- a condition that holds for the rule's ``for_seconds`` raises one alert, which stays open
  while the condition holds: one condition is one alert, never a stream of them;
- when it clears, the alert is resolved and a resolved notice goes out (``notify_resolved``);
- within ``quiet_seconds`` of the last alert of the same rule and subject, no new alert is
  raised: a condition that comes and goes is told once per quiet period, not at each flap.
  If it still holds when the quiet period ends, a new alert is raised then.

An alert and its deliveries are written in one transaction, before anything is sent
(:mod:`open1panel_ai.alerts.delivery`). Each change is pushed on the Socket.IO topic ``alerts``
(the bell's unread count) and each channel's delivery state as ``alert_channel``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from prometheus_client.core import GaugeMetricFamily, Metric

from open1panel_ai import errors, i18n
from open1panel_ai.alerts import channels, rules
from open1panel_ai.alerts.channels import Notice
from open1panel_ai.alerts.delivery import DeliverySettings, Outbox
from open1panel_ai.i18n import Message
from open1panel_ai.store import timestamp

if TYPE_CHECKING:
    from open1panel_ai.config import Settings
    from open1panel_ai.context import AIContext

log = logging.getLogger(__name__)

TOPIC = "alerts"
EVENT = "alerts"
CHANNEL_EVENT = "alert_channel"
#: Resolved alerts older than this are removed at start.
KEEP_RESOLVED = timedelta(days=90)
SEVERITY_RANK = {name: rank for rank, name in enumerate(rules.SEVERITIES)}
#: Bounds of each threshold a rule takes.
PARAM_RANGES = {"threshold": (0.0, 1000.0), "min_free_percent": (0.0, 100.0), "min_free_gib": (0.0, 1_000_000.0)}
EMAIL_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")

MIGRATIONS = [
    """
    CREATE TABLE alert_rules (
        id TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE alert_states (
        rule TEXT NOT NULL,
        subject_key TEXT NOT NULL,
        since REAL,
        alert_id TEXT,
        last_fired_at REAL,
        PRIMARY KEY (rule, subject_key)
    );
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        rule TEXT NOT NULL,
        subject_key TEXT NOT NULL,
        subject TEXT NOT NULL,
        severity TEXT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL,
        summary_i18n TEXT,
        value REAL,
        started_at TEXT NOT NULL,
        fired_at TEXT NOT NULL,
        resolved_at TEXT,
        acknowledged_at TEXT,
        acknowledged_by TEXT
    );
    CREATE INDEX alerts_by_fired ON alerts (fired_at);
    CREATE INDEX alerts_by_acknowledged ON alerts (acknowledged_at);
    CREATE TABLE alert_channels (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        language TEXT NOT NULL,
        min_severity TEXT NOT NULL,
        send_resolved INTEGER NOT NULL,
        config TEXT NOT NULL,
        last_attempt_at TEXT,
        last_success_at TEXT,
        last_error TEXT,
        last_error_i18n TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE alert_deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        channel_id TEXT NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        last_error_i18n TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX alert_deliveries_by_channel ON alert_deliveries (channel_id, status, seq);
    """,
]


def seconds_setting(settings: Settings, name: str, default: float, minimum: float) -> float:
    """A number of seconds from ``OPEN1PANEL_AI_<NAME>``; a bad value falls back to the default."""
    raw = settings.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not minimum <= value <= 86400:
        log.warning(
            "OPEN1PANEL_AI_%s=%r is not a number of seconds between %s and 86400; using %s",
            name.upper(),
            raw,
            minimum,
            default,
        )
        return default
    return value


def count_setting(settings: Settings, name: str, default: int) -> int:
    """A whole number from 1 to 1000 from ``OPEN1PANEL_AI_<NAME>``; a bad value falls back."""
    raw = settings.get(name) or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        log.warning("OPEN1PANEL_AI_%s=%r is not a whole number from 1 to 1000; using %s", name.upper(), raw, default)
        return default
    return int(raw)


class AlertService:
    """What the alert routes, the evaluator, the outbox and ``/metrics`` share."""

    def __init__(self, context: AIContext) -> None:
        self.context = context
        self.store = context.store
        self.store.migrate("alerts", MIGRATIONS)
        settings = context.settings
        self.interval = seconds_setting(settings, "alerts_interval", 15.0, 0.1)
        self.hostname = socket.gethostname()
        self.panel_url = (settings.get("alerts_panel_url") or "").strip() or None
        attempts = count_setting(settings, "alerts_attempts", 12)
        self.outbox = Outbox(
            self.store,
            DeliverySettings(
                retry_base=seconds_setting(settings, "alerts_retry_base", 30.0, 0.05),
                retry_max=seconds_setting(settings, "alerts_retry_max", 3600.0, 0.05),
                attempts=attempts,
                timeout=seconds_setting(settings, "alerts_send_timeout", 10.0, 0.5),
            ),
            self._notice,
            self._publish_channel,
        )
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._evaluating = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="alerts-evaluator", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.context.when_owner(self._start_owner_work)

    def _start_owner_work(self) -> None:
        """Evaluate and deliver, once per data dir: in the owner process only."""
        cutoff = (datetime.now(UTC) - KEEP_RESOLVED).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.store.execute("DELETE FROM alerts WHERE status = 'resolved' AND fired_at < ?", (cutoff,))
        self.outbox.start()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        self.outbox.stop()

    def _run(self) -> None:
        """Evaluate every interval, the first time one interval after the start, once the other
        features had a moment to start what they run (MCP servers marked autostart, say)."""
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.evaluate()
            except Exception:
                log.exception("evaluating the alert rules failed; they are evaluated again shortly")

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self) -> None:
        """Read the panel once, and move every rule's alerts on."""
        with self._evaluating:
            snapshot = rules.Snapshot(self.context.find, self.context.tasks)
            changed: list[str] = []
            for kind in rules.KINDS:
                settings = self.rule_settings(kind.id)
                if not settings["enabled"]:
                    changed += self._close_rule(kind.id, snapshot.now)
                    continue
                open_keys = {
                    row["subject_key"]
                    for row in self.store.query(
                        "SELECT subject_key FROM alert_states WHERE rule = ? AND alert_id IS NOT NULL", (kind.id,)
                    )
                }
                try:
                    observed = kind.observe(snapshot, settings, open_keys)
                except Exception:
                    log.exception("the alert rule %s failed to read the panel", kind.id)
                    continue
                if observed is not None:
                    changed += self._step(kind, settings, observed, snapshot.now)
        if changed:
            self.outbox.wake()
            for alert_id in changed:
                self._publish(self.alert(alert_id))

    def _step(
        self, kind: rules.RuleKind, settings: Mapping[str, Any], observed: Mapping[str, rules.Observation], now: float
    ) -> list[str]:
        """Move one rule's states on by what it observed; return the alerts raised or resolved."""
        changed: list[str] = []
        with self.store.transaction() as db:
            states: dict[str, dict[str, Any]] = {
                row["subject_key"]: dict(row)
                for row in db.execute("SELECT * FROM alert_states WHERE rule = ?", (kind.id,))
            }
            for key, seen in observed.items():
                if seen.firing is None:
                    continue  # cannot tell now: leave it as it is
                state: dict[str, Any] | None = states.pop(key, None)
                if not seen.firing:
                    if state is not None:
                        changed += self._clear(db, kind.id, settings, state, now)
                    continue
                before = dict(state) if state is not None else None
                if state is None:
                    state = {"rule": kind.id, "subject_key": key, "since": now, "alert_id": None, "last_fired_at": None}
                state["since"] = state["since"] or now
                quiet = state["last_fired_at"] is not None and now - state["last_fired_at"] < settings["quiet_seconds"]
                if state["alert_id"] is None and now - state["since"] >= settings["for_seconds"] and not quiet:
                    alert_id = self._raise(db, kind.id, key, settings, seen, state["since"])
                    state["alert_id"] = alert_id
                    state["last_fired_at"] = now
                    changed.append(alert_id)
                elif state["alert_id"] is not None and seen.value is not None:
                    db.execute(
                        "UPDATE alerts SET value = ? WHERE id = ? AND value IS NOT ?",
                        (seen.value, state["alert_id"], seen.value),
                    )
                if state != before:
                    db.execute(
                        "INSERT OR REPLACE INTO alert_states (rule, subject_key, since, alert_id,"
                        " last_fired_at) VALUES (?, ?, ?, ?, ?)",
                        (kind.id, key, state["since"], state["alert_id"], state["last_fired_at"]),
                    )
            for key, state in states.items():
                if key not in observed:  # the subject is gone (a server deleted, a GPU removed)
                    changed += self._clear(db, kind.id, settings, state, now)
        return changed

    def _raise(
        self,
        db: sqlite3.Connection,
        rule: str,
        key: str,
        settings: Mapping[str, Any],
        seen: rules.Observation,
        since: float,
    ) -> str:
        alert_id = secrets.token_hex(6)
        summary = seen.summary or Message(f"alerts.rule.{rule}")
        db.execute(
            "INSERT INTO alerts (id, rule, subject_key, subject, severity, status, summary,"
            " summary_i18n, value, started_at, fired_at) VALUES (?, ?, ?, ?, ?, 'firing', ?, ?, ?, ?, ?)",
            (
                alert_id,
                rule,
                key,
                seen.subject or key,
                settings["severity"],
                str(summary),
                json.dumps(i18n.public(summary)),
                seen.value,
                _iso(since),
                timestamp(),
            ),
        )
        Outbox.enqueue(db, alert_id, "firing", self._channels_for(db, settings["severity"], "firing"))
        log.info("alert %s: %s", alert_id, summary)
        return alert_id

    def _clear(
        self,
        db: sqlite3.Connection,
        rule: str,
        settings: Mapping[str, Any],
        state: Mapping[str, Any],
        now: float,
        notify: bool = True,
    ) -> list[str]:
        """The condition no longer holds: resolve its alert and tell the channels."""
        changed = []
        if state["alert_id"] is not None:
            db.execute(
                "UPDATE alerts SET status = 'resolved', resolved_at = ? WHERE id = ?", (timestamp(), state["alert_id"])
            )
            if notify and settings["notify_resolved"]:
                Outbox.enqueue(
                    db, state["alert_id"], "resolved", self._channels_for(db, settings["severity"], "resolved")
                )
            changed.append(state["alert_id"])
        if state["last_fired_at"] is not None and now - state["last_fired_at"] < settings["quiet_seconds"]:
            # Remembered until the quiet period ends, so that a new flap stays quiet.
            db.execute(
                "UPDATE alert_states SET since = NULL, alert_id = NULL WHERE rule = ? AND subject_key = ?",
                (rule, state["subject_key"]),
            )
        else:
            db.execute("DELETE FROM alert_states WHERE rule = ? AND subject_key = ?", (rule, state["subject_key"]))
        return changed

    def _close_rule(self, rule: str, now: float) -> list[str]:
        """A rule turned off: its open alerts are resolved without a notice, its states dropped."""
        changed: list[str] = []
        if self.store.query_one("SELECT 1 FROM alert_states WHERE rule = ? LIMIT 1", (rule,)) is None:
            return changed
        with self.store.transaction() as db:
            for state in db.execute("SELECT * FROM alert_states WHERE rule = ?", (rule,)).fetchall():
                changed += self._clear(
                    db, rule, {"notify_resolved": False, "quiet_seconds": 0}, dict(state), now, notify=False
                )
        return changed

    @staticmethod
    def _channels_for(db: sqlite3.Connection, severity: str, event: str) -> list[str]:
        rank = SEVERITY_RANK[severity]
        return [
            row["id"]
            for row in db.execute(
                "SELECT id, min_severity, send_resolved FROM alert_channels WHERE enabled = 1 ORDER BY name"
            )
            if SEVERITY_RANK.get(row["min_severity"], 0) <= rank and (event != "resolved" or row["send_resolved"])
        ]

    # -- rules --------------------------------------------------------------------------------

    def rule_settings(self, rule_id: str) -> dict[str, Any]:
        kind = rules.BY_ID[rule_id]
        settings = kind.defaults()
        row = self.store.query_one("SELECT settings FROM alert_rules WHERE id = ?", (rule_id,))
        if row is not None:
            stored = json.loads(row["settings"])
            settings.update({k: v for k, v in stored.items() if k in settings and k != "params"})
            settings["params"].update({k: v for k, v in stored.get("params", {}).items() if k in settings["params"]})
        return settings

    def rules(self) -> list[dict[str, Any]]:
        return [self.rule(kind.id) for kind in rules.KINDS]

    def rule(self, rule_id: str) -> dict[str, Any]:
        if rule_id not in rules.BY_ID:
            raise errors.NotFound(Message("alerts.error.no_rule", id=rule_id), code="rule_not_found")
        states = self.store.query("SELECT alert_id, since FROM alert_states WHERE rule = ?", (rule_id,))
        return {
            "id": rule_id,
            **self.rule_settings(rule_id),
            "defaults": rules.BY_ID[rule_id].defaults(),
            "firing": sum(1 for s in states if s["alert_id"]),
            "pending": sum(1 for s in states if s["since"] is not None and not s["alert_id"]),
        }

    def update_rule(self, rule_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        self.rule(rule_id)  # a 404 for a rule that does not exist
        settings = self.rule_settings(rule_id)
        params = changes.get("params") or {}
        unknown = sorted(set(params) - set(settings["params"]))
        if unknown:
            message = Message("alerts.validation.params", rule=rule_id, allowed=", ".join(settings["params"]) or "-")
            raise errors.BadRequest(
                message, code="validation_error", details={"fields": {"params": {name: [message] for name in unknown}}}
            )
        for name, value in params.items():
            low, high = PARAM_RANGES[name]
            if not low <= value <= high:
                message = Message("alerts.validation.range", low=f"{low:g}", high=f"{high:g}")
                raise errors.BadRequest(
                    message, code="validation_error", details={"fields": {"params": {name: [message]}}}
                )
        settings.update({k: v for k, v in changes.items() if k != "params"})
        settings["params"].update(params)
        self.store.execute(
            "INSERT OR REPLACE INTO alert_rules (id, settings, updated_at) VALUES (?, ?, ?)",
            (rule_id, json.dumps(settings), timestamp()),
        )
        self._wake.set()  # evaluate with the new settings now
        return self.rule(rule_id)

    # -- alerts -------------------------------------------------------------------------------

    def alerts(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT * FROM alerts"
        params: list[str | int] = []
        if status:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY fired_at DESC, rowid DESC LIMIT ?"
        params.append(limit)
        return [_public_alert(row) for row in self.store.query(sql, params)]

    def alert(self, alert_id: str) -> dict[str, Any]:
        row = self.store.query_one("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        if row is None:
            raise errors.NotFound(Message("alerts.error.no_alert", id=alert_id), code="alert_not_found")
        return _public_alert(row)

    def counts(self) -> dict[str, int]:
        row = self.store.query_one(
            "SELECT sum(acknowledged_at IS NULL) AS unread, sum(status = 'firing') AS firing FROM alerts"
        )
        # An aggregate without GROUP BY answers exactly one row.
        assert row is not None
        return {"unread": row["unread"] or 0, "firing": row["firing"] or 0}

    def acknowledge(self, alert_id: str, by: str | None) -> dict[str, Any]:
        self.alert(alert_id)
        self.store.execute(
            "UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ? AND acknowledged_at IS NULL",
            (timestamp(), by, alert_id),
        )
        alert = self.alert(alert_id)
        self._publish(alert)
        return alert

    def acknowledge_all(self, by: str | None) -> int:
        count = self.store.execute(
            "UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE acknowledged_at IS NULL",
            (timestamp(), by),
        )
        self._publish(None)
        return count

    def _publish(self, alert: dict[str, Any] | None) -> None:
        try:
            self.context.realtime.publish(EVENT, {**self.counts(), "alert": alert}, [TOPIC])
        except Exception:
            log.exception("pushing an alert change failed")

    # -- channels -----------------------------------------------------------------------------

    def channels(self) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT * FROM alert_channels ORDER BY name")
        return [self._public_channel(row) for row in rows]

    def channel(self, channel_id: str) -> dict[str, Any]:
        return self._public_channel(self._channel_row(channel_id))

    def _channel_row(self, channel_id: str) -> sqlite3.Row:
        row = self.store.query_one("SELECT * FROM alert_channels WHERE id = ?", (channel_id,))
        if row is None:
            raise errors.NotFound(Message("alerts.error.no_channel", id=channel_id), code="channel_not_found")
        return row

    def create_channel(self, data: Mapping[str, Any]) -> dict[str, Any]:
        config = self._config(data["kind"], data, {})
        channel_id = secrets.token_hex(6)
        now = timestamp()
        self._unique_name(data["name"], None)
        self.store.execute(
            "INSERT INTO alert_channels (id, name, kind, enabled, language, min_severity, send_resolved,"
            " config, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                channel_id,
                data["name"],
                data["kind"],
                int(data["enabled"]),
                data["language"],
                data["min_severity"],
                int(data["send_resolved"]),
                json.dumps(config),
                now,
                now,
            ),
        )
        return self.channel(channel_id)

    def update_channel(self, channel_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        row = self._channel_row(channel_id)
        if "kind" in data and data["kind"] != row["kind"]:
            message = Message("alerts.validation.kind_fixed")
            raise errors.BadRequest(message, code="validation_error", details={"fields": {"kind": [message]}})
        if "name" in data:
            self._unique_name(data["name"], channel_id)
        config = self._config(row["kind"], data, json.loads(row["config"]))
        merged = {
            "name": row["name"],
            "enabled": bool(row["enabled"]),
            "language": row["language"],
            "min_severity": row["min_severity"],
            "send_resolved": bool(row["send_resolved"]),
            **{k: v for k, v in data.items() if k in ("name", "enabled", "language", "min_severity", "send_resolved")},
        }
        self.store.execute(
            "UPDATE alert_channels SET name = ?, enabled = ?, language = ?, min_severity = ?,"
            " send_resolved = ?, config = ?, updated_at = ? WHERE id = ?",
            (
                merged["name"],
                int(merged["enabled"]),
                merged["language"],
                merged["min_severity"],
                int(merged["send_resolved"]),
                json.dumps(config),
                timestamp(),
                channel_id,
            ),
        )
        self.outbox.wake()  # a channel turned on sends what waited for it
        return self.channel(channel_id)

    def delete_channel(self, channel_id: str) -> None:
        self._channel_row(channel_id)
        self.store.execute("DELETE FROM alert_channels WHERE id = ?", (channel_id,))

    def _unique_name(self, name: str, channel_id: str | None) -> None:
        row = self.store.query_one("SELECT id FROM alert_channels WHERE name = ?", (name,))
        if row is not None and row["id"] != channel_id:
            message = Message("alerts.error.channel_exists", name=name)
            raise errors.Conflict(message, code="channel_exists", details={"fields": {"name": [message]}})

    def _config(self, kind: str, data: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
        """The channel's stored settings after ``data``: secrets left out keep their value, a
        secret sent as null is removed."""

        def refuse(field: str, message: Message) -> NoReturn:
            raise errors.BadRequest(message, code="validation_error", details={"fields": {field: [message]}})

        config = dict(stored)
        if kind == "email":
            for field in ("url", "secret"):
                if data.get(field) is not None:
                    refuse(field, Message("alerts.validation.not_for_email"))
            if "email" in data:
                email = dict(data["email"] or {})
                if "password" not in email:
                    email["password"] = stored.get("password")
                config = email  # given whole, as the form sends it
            for field in ("host", "from_address", "to"):
                if not config.get(field):
                    refuse(
                        f"email.{field}" if "email" in data else "email", Message("alerts.validation.email_required")
                    )
            for address in [config["from_address"], *config["to"]]:
                if not EMAIL_ADDRESS.match(address):
                    refuse("email", Message("alerts.validation.email_address", address=address))
            return config
        if data.get("email") is not None:
            refuse("email", Message("alerts.validation.email_only"))
        if "url" in data and data["url"] is not None:
            parts = urlsplit(data["url"])
            if parts.scheme not in ("http", "https") or not parts.hostname:
                refuse("url", Message("alerts.validation.url"))
            config["url"] = data["url"]
        if not config.get("url"):
            refuse("url", Message("alerts.validation.url_required"))
        if "secret" in data:
            if data["secret"] is not None and kind not in channels.SIGNED_KINDS:
                refuse("secret", Message("alerts.validation.no_secret", kind=Message(f"alerts.kind.{kind}")))
            config["secret"] = data["secret"] or None
        return config

    def test_channel(self, channel_id: str) -> dict[str, Any]:
        """Send a test message now, through the channel as it is saved; a 502 with the reason
        when the channel does not take it."""
        from open1panel_ai.alerts.delivery import stored_channel

        row = self._channel_row(channel_id)
        now = timestamp()
        alert = {
            "id": "test",
            "rule": "test",
            "severity": "info",
            "status": "firing",
            "subject_key": "test",
            "subject": self.hostname,
            "summary": "",
            "summary_i18n": i18n.public(Message("alerts.notice.test_text")),
            "value": None,
            "started_at": now,
            "fired_at": now,
            "resolved_at": None,
        }
        notice = channels.Notice(secrets.token_hex(16), "test", alert, self.hostname, self.panel_url)
        try:
            answer = channels.send(stored_channel(row), notice, self.outbox.settings.timeout)
        except channels.SendError as exc:
            raise errors.UpstreamError(
                Message("alerts.error.test_failed", error=exc.message), code="channel_test_failed"
            ) from None
        return {"ok": True, "answer": answer, "delivery_id": notice.delivery_id}

    def retry_channel(self, channel_id: str) -> dict[str, Any]:
        self._channel_row(channel_id)
        self.outbox.retry_failed(channel_id)
        return self.channel(channel_id)

    def deliveries(self, channel_id: str, limit: int) -> list[dict[str, Any]]:
        self._channel_row(channel_id)
        rows = self.store.query(
            "SELECT d.*, a.rule, a.subject FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id"
            " WHERE d.channel_id = ? ORDER BY d.seq DESC LIMIT ?",
            (channel_id, limit),
        )
        return [
            {
                "id": r["id"],
                "alert_id": r["alert_id"],
                "rule": r["rule"],
                "subject": r["subject"],
                "event": r["event"],
                "status": r["status"],
                "attempts": r["attempts"],
                "next_attempt_at": _iso(r["next_attempt_at"]) if r["status"] == "pending" and r["attempts"] else None,
                "error": r["last_error"],
                "error_i18n": _loads(r["last_error_i18n"]),
                "created_at": r["created_at"],
                "sent_at": r["sent_at"],
            }
            for r in rows
        ]

    def _public_channel(self, row: sqlite3.Row) -> dict[str, Any]:
        config = json.loads(row["config"])
        email = None
        if row["kind"] == "email":
            email = {
                key: config.get(key)
                for key in ("host", "port", "security", "username", "from_address", "to", "verify_tls")
            }
            email["has_password"] = bool(config.get("password"))
        queue = self.store.query_one(
            "SELECT sum(status IN ('pending', 'sending')) AS waiting, sum(status = 'failed') AS failed,"
            " min(CASE WHEN status = 'pending' AND attempts > 0 THEN next_attempt_at END) AS next_try"
            " FROM alert_deliveries WHERE channel_id = ?",
            (row["id"],),
        )
        assert queue is not None  # an aggregate without GROUP BY answers exactly one row
        return {
            "id": row["id"],
            "name": row["name"],
            "kind": row["kind"],
            "enabled": bool(row["enabled"]),
            "language": row["language"],
            "min_severity": row["min_severity"],
            "send_resolved": bool(row["send_resolved"]),
            "url": channels.masked_url(config.get("url")),
            "has_secret": bool(config.get("secret")),
            "email": email,
            "delivery": {
                "waiting": queue["waiting"] or 0,
                "failed": queue["failed"] or 0,
                "next_attempt_at": _iso(queue["next_try"]) if queue["next_try"] else None,
                "last_attempt_at": row["last_attempt_at"],
                "last_success_at": row["last_success_at"],
                "last_error": row["last_error"],
                "last_error_i18n": _loads(row["last_error_i18n"]),
            },
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    def _publish_channel(self, channel_id: str) -> None:
        try:
            channel = self.channel(channel_id)
        except errors.NotFound:
            return  # deleted meanwhile
        try:
            self.context.realtime.publish(CHANNEL_EVENT, channel, [TOPIC])
        except Exception:
            log.exception("pushing a channel's delivery state failed")

    def _notice(self, alert: dict[str, Any], event: str, delivery_id: str) -> Notice:
        return Notice(delivery_id, event, _public_alert(alert), self.hostname, self.panel_url)

    # -- /metrics -----------------------------------------------------------------------------

    def metric_families(self) -> list[Metric]:
        """The alert states for Prometheus, read from the store (any process can answer)."""
        state = GaugeMetricFamily(
            "open1panel_ai_alert",
            "1 for each rule and subject whose condition holds: pending "
            "(waiting for its duration) or firing (an alert is open), as Prometheus' ALERTS.",
            labels=["rule", "severity", "subject", "alertstate"],
        )
        severities = {kind.id: self.rule_settings(kind.id) for kind in rules.KINDS}
        open_alerts = {
            row["id"]: row for row in self.store.query("SELECT id, subject FROM alerts WHERE status = 'firing'")
        }
        for row in self.store.query("SELECT * FROM alert_states WHERE since IS NOT NULL"):
            if row["rule"] not in severities:
                continue
            alert = open_alerts.get(row["alert_id"]) if row["alert_id"] else None
            state.add_metric(
                [
                    row["rule"],
                    severities[row["rule"]]["severity"],
                    alert["subject"] if alert else row["subject_key"],
                    "firing" if alert else "pending",
                ],
                1,
            )
        enabled = GaugeMetricFamily("open1panel_ai_alert_rule_enabled", "1 when the alert rule is on.", labels=["rule"])
        for rule_id, settings in severities.items():
            enabled.add_metric([rule_id], 1 if settings["enabled"] else 0)
        unread = GaugeMetricFamily("open1panel_ai_alerts_unacknowledged", "Alerts nobody acknowledged yet.")
        unread.add_metric([], self.counts()["unread"])
        queue = GaugeMetricFamily(
            "open1panel_ai_alert_deliveries",
            "Alert messages per channel that wait to be sent (pending) or were given up after every retry (failed).",
            labels=["channel", "kind", "status"],
        )
        for row in self.store.query(
            "SELECT c.name, c.kind, sum(d.status IN ('pending', 'sending')) AS pending,"
            " sum(d.status = 'failed') AS failed FROM alert_channels c"
            " LEFT JOIN alert_deliveries d ON d.channel_id = c.id GROUP BY c.id ORDER BY c.name"
        ):
            queue.add_metric([row["name"], row["kind"], "pending"], row["pending"] or 0)
            queue.add_metric([row["name"], row["kind"], "failed"], row["failed"] or 0)
        return [state, enabled, unread, queue]


def _public_alert(row: sqlite3.Row | Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "rule": row["rule"],
        "subject_key": row["subject_key"],
        "subject": row["subject"],
        "severity": row["severity"],
        "status": row["status"],
        "summary": row["summary"],
        "summary_i18n": _loads(row["summary_i18n"]),
        "value": row["value"],
        "started_at": row["started_at"],
        "fired_at": row["fired_at"],
        "resolved_at": row["resolved_at"],
        "acknowledged_at": row["acknowledged_at"],
        "acknowledged_by": row["acknowledged_by"],
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None
