"""The outbox: every message to a channel is a row in SQLite before it is sent.

An alert's firing or resolution is written, together with one delivery row per channel, in
the transaction that records the alert (:meth:`Outbox.enqueue`). A worker in the owner process
then sends the rows in order, channel by channel:

- a delivery is marked ``sending`` (and its attempt counted) before it is sent, and ``sent``
  as soon as the channel took it; a row found ``sending`` at start was cut short by a killed
  panel, so it goes back to ``pending`` and is sent again. A ``sent`` row is never sent again.
- a failed send is tried again after a delay that doubles each time (``retry_base`` up to
  ``retry_max``); after ``attempts`` tries the delivery is given up (``failed``) until a
  person asks for it again. Meanwhile the channel's row shows the last error and the next try.
- a channel's messages go out in the order they were made: a resolution is never delivered
  before its firing. One channel's trouble does not hold up the others.

Every send carries its delivery id (``X-Open1Panel-Delivery``, ``delivery_id`` in the JSON,
the mail's ``Message-ID``), so a receiver can drop the copy that a panel killed between the
receiver's answer and the panel's record of it would send again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from open1panel_ai import i18n
from open1panel_ai.alerts import channels
from open1panel_ai.i18n import Message
from open1panel_ai.store import Store, timestamp

log = logging.getLogger(__name__)

STATUSES = ("pending", "sending", "sent", "failed")
#: Channels sent to at the same time.
PARALLEL_CHANNELS = 4


@dataclass(frozen=True)
class DeliverySettings:
    retry_base: float = 30.0
    retry_max: float = 3600.0
    attempts: int = 12
    timeout: float = 10.0

    def delay(self, attempts: int) -> float:
        """Seconds before the next try, after ``attempts`` tries."""
        return min(self.retry_max, self.retry_base * 2 ** max(0, attempts - 1))


class Outbox:
    """Stores deliveries and sends them from a worker thread (in the owner process only)."""

    def __init__(
        self,
        store: Store,
        settings: DeliverySettings,
        notice: Callable[[dict[str, Any], str, str], channels.Notice],
        channel_changed: Callable[[str], None],
    ) -> None:
        self._store = store
        self.settings = settings
        self._notice = notice
        self._channel_changed = channel_changed
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._busy: set[str] = set()  # channels with a send in flight
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Take back what a killed panel left half sent, then start sending."""
        count = self._store.execute(
            "UPDATE alert_deliveries SET status = 'pending', next_attempt_at = 0, updated_at = ?"
            " WHERE status = 'sending'",
            (timestamp(),),
        )
        if count:
            log.info("%d alert delivery(s) were being sent when the panel stopped; sending them again", count)
        self._pool = ThreadPoolExecutor(max_workers=PARALLEL_CHANNELS, thread_name_prefix="alert-send")
        self._thread = threading.Thread(target=self._run, name="alert-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def wake(self) -> None:
        self._wake.set()

    # -- writing ------------------------------------------------------------------------------

    @staticmethod
    def enqueue(db: sqlite3.Connection, alert_id: str, event: str, channel_ids: list[str]) -> int:
        """Add a delivery of ``event`` of an alert to each channel, inside the caller's open
        transaction ``db`` (the one that records the alert)."""
        now = timestamp()
        for channel_id in channel_ids:
            db.execute(
                "INSERT INTO alert_deliveries (id, alert_id, channel_id, event, status, attempts,"
                " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, 0, ?, ?)",
                (uuid.uuid4().hex, alert_id, channel_id, event, now, now),
            )
        return len(channel_ids)

    def retry_failed(self, channel_id: str) -> int:
        """Put the channel's given-up deliveries back in line, to be sent now."""
        count = self._store.execute(
            "UPDATE alert_deliveries SET status = 'pending', attempts = 0, next_attempt_at = 0,"
            " updated_at = ? WHERE channel_id = ? AND status = 'failed'",
            (timestamp(), channel_id),
        )
        self.wake()
        return count

    # -- the worker ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            pause = None
            try:
                pause = self._dispatch()
            except Exception:
                log.exception("the alert outbox failed; it tries again shortly")
                pause = 1.0
            self._wake.wait(pause)
            self._wake.clear()

    def _dispatch(self) -> float | None:
        """Start sending each channel's first due delivery; return the seconds until the next
        one is due (None: nothing waits)."""
        rows = self._store.query(
            "SELECT d.* FROM alert_deliveries d JOIN alert_channels c ON c.id = d.channel_id"
            " WHERE d.status = 'pending' AND c.enabled = 1 AND d.seq = ("
            "   SELECT min(seq) FROM alert_deliveries e WHERE e.channel_id = d.channel_id"
            "   AND e.status IN ('pending', 'sending'))"
        )
        # Set by start(), before this worker runs.
        assert self._pool is not None
        now = time.time()
        pause = None
        for row in rows:
            wait = row["next_attempt_at"] - now
            if wait > 0:
                pause = wait if pause is None else min(pause, wait)
                continue
            with self._lock:
                if row["channel_id"] in self._busy:
                    continue
                self._busy.add(row["channel_id"])
            try:
                self._pool.submit(self._deliver, row["id"], row["channel_id"])
            except RuntimeError:  # the pool is shut down: the panel is stopping
                with self._lock:
                    self._busy.discard(row["channel_id"])
        return pause

    def _deliver(self, delivery_id: str, channel_id: str) -> None:
        try:
            self._attempt(delivery_id)
        except Exception:
            log.exception("delivering alert message %s failed", delivery_id)
        finally:
            with self._lock:
                self._busy.discard(channel_id)
            self._wake.set()
            self._channel_changed(channel_id)

    def _attempt(self, delivery_id: str) -> None:
        now = timestamp()
        with self._store.transaction() as db:
            claimed = db.execute(
                "UPDATE alert_deliveries SET status = 'sending', attempts = attempts + 1,"
                " updated_at = ? WHERE id = ? AND status = 'pending'",
                (now, delivery_id),
            ).rowcount
            row = db.execute("SELECT * FROM alert_deliveries WHERE id = ?", (delivery_id,)).fetchone()
            if not claimed or row is None:
                return
            db.execute("UPDATE alert_channels SET last_attempt_at = ? WHERE id = ?", (now, row["channel_id"]))
            channel = db.execute("SELECT * FROM alert_channels WHERE id = ?", (row["channel_id"],)).fetchone()
            alert = db.execute("SELECT * FROM alerts WHERE id = ?", (row["alert_id"],)).fetchone()
        stored = stored_channel(channel)
        try:
            notice = self._notice(dict(alert), row["event"], delivery_id)
            channels.send(stored, notice, self.settings.timeout)
        except channels.SendError as exc:
            self._failed(row, exc.message)
        except Exception as exc:  # a bug must not leave the row 'sending' for good
            log.exception("sending alert message %s through channel %s failed", delivery_id, stored["name"])
            self._failed(row, Message("alerts.send.unexpected", error=f"{type(exc).__name__}: {exc}"))
        else:
            now = timestamp()
            with self._store.transaction() as db:
                db.execute(
                    "UPDATE alert_deliveries SET status = 'sent', sent_at = ?, updated_at = ?,"
                    " last_error = NULL, last_error_i18n = NULL WHERE id = ?",
                    (now, now, delivery_id),
                )
                db.execute(
                    "UPDATE alert_channels SET last_success_at = ?, last_error = NULL,"
                    " last_error_i18n = NULL WHERE id = ?",
                    (now, row["channel_id"]),
                )

    def _failed(self, row: sqlite3.Row, message: Message) -> None:
        attempts = row["attempts"]
        given_up = attempts >= self.settings.attempts
        error_i18n = json.dumps(i18n.public(message))
        log.warning(
            "alert message %s (try %d) was not taken: %s%s",
            row["id"],
            attempts,
            message,
            "; given up" if given_up else "",
        )
        now = timestamp()
        with self._store.transaction() as db:
            db.execute(
                "UPDATE alert_deliveries SET status = ?, next_attempt_at = ?, last_error = ?,"
                " last_error_i18n = ?, updated_at = ? WHERE id = ?",
                (
                    "failed" if given_up else "pending",
                    time.time() + self.settings.delay(attempts),
                    str(message),
                    error_i18n,
                    now,
                    row["id"],
                ),
            )
            db.execute(
                "UPDATE alert_channels SET last_error = ?, last_error_i18n = ? WHERE id = ?",
                (str(message), error_i18n, row["channel_id"]),
            )


def stored_channel(row: sqlite3.Row) -> dict[str, Any]:
    """A channel row as the senders take it: its settings with the secrets."""
    return {
        "id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "language": row["language"],
        "config": json.loads(row["config"]),
    }
