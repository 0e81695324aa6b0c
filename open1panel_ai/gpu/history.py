"""GPU history in round-robin tiers, in the panel's SQLite store.

Every sample is kept at full resolution for an hour, folded into per-minute averages kept for a
week, and into per-hour averages kept for a year. Older rows are dropped as new ones arrive, so
the table stays bounded: per device at most an hour of samples plus 10,080 minute rows plus
8,760 hour rows, whatever the uptime. A range query reads the finest tier that still covers it.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from open1panel_ai.store import Store

MIGRATIONS = [
    """
    CREATE TABLE gpu_history (
        tier TEXT NOT NULL,        -- 'raw', 'minute' or 'hour'
        ts REAL NOT NULL,          -- Unix seconds: the sample's time, or its bucket's start
        device TEXT NOT NULL,      -- a GPU's UUID, or 'cpu'
        n INTEGER NOT NULL,        -- how many samples the row folds together
        sums TEXT NOT NULL,        -- JSON {field: [sum, count]} of the non-null readings
        PRIMARY KEY (tier, ts, device)
    ) WITHOUT ROWID;
    """,
]

#: Readings a GPU's history keeps; the CPU provider's history keeps the ones it has.
FIELDS = (
    "utilization_gpu",
    "utilization_memory",
    "memory_used",
    "memory_total",
    "temperature",
    "power_draw_w",
    "utilization",
)


@dataclass(frozen=True)
class Tier:
    name: str
    step: int  # bucket width in seconds (0: every sample)
    keep: int  # seconds of history kept


TIERS = (Tier("raw", 0, 3600), Tier("minute", 60, 7 * 86400), Tier("hour", 3600, 365 * 86400))
#: The most times a range query answers per device: more than a chart is wide, and few enough
#: that an answer stays small however often the sampler runs and however long the panel has.
MAX_POINTS = 500
#: Adds rows to the history: a row already there for the same tier, time and device (a minute
#: or an hour bucket) gets the new row's count and, reading by reading, its sums and counts.
_FOLD = """
INSERT INTO gpu_history (tier, ts, device, n, sums) VALUES {values}
ON CONFLICT (tier, ts, device) DO UPDATE SET
    n = gpu_history.n + excluded.n,
    sums = (
        SELECT json_group_object(key, json_array(total, count)) FROM (
            SELECT key, sum(json_extract(value, '$[0]')) AS total, sum(json_extract(value, '$[1]')) AS count
            FROM (
                SELECT key, value FROM json_each(gpu_history.sums)
                UNION ALL SELECT key, value FROM json_each(excluded.sums)
            )
            GROUP BY key
        )
    )
"""


class History:
    """Records samples into the tiers and answers range queries."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate("gpu", MIGRATIONS)
        self._lock = threading.Lock()
        self._pruned_at: dict[str, float] = {}

    def record(self, ts: float, readings: Mapping[str, Mapping[str, float | None]]) -> None:
        """Add one sample: ``readings`` maps each device to its readings (None: not available).

        The sample's raw rows and its share of every device's minute and hour buckets go in as
        one statement (:data:`_FOLD`), which adds to a bucket's sums in SQLite: the sampler
        runs while the API is busy, where each call into SQLite is a wait to get the
        interpreter back, and a write of several statements holds the write lock through
        all of those waits."""
        rows: list[Any] = []
        for device, values in readings.items():
            kept = {k: v for k, v in values.items() if k in FIELDS and v is not None}
            sums = json.dumps({k: [v, 1] for k, v in kept.items()})
            rows += ("raw", ts, device, 1, sums)
            for tier in TIERS[1:]:
                rows += (tier.name, math.floor(ts / tier.step) * tier.step, device, 1, sums)
        if not rows:
            return
        insert = _FOLD.format(values=", ".join(["(?, ?, ?, ?, ?)"] * (len(rows) // 5)))
        with self._lock:
            due = [tier for tier in TIERS if ts - self._pruned_at.get(tier.name, -math.inf) >= (tier.step or 10)]
            if not due:
                self.store.execute(insert, rows)
                return
            with self.store.transaction() as db:
                db.execute(insert, rows)
                for tier in due:
                    # Once per bucket width (every 10 s for raw samples) is enough to stay bounded.
                    db.execute("DELETE FROM gpu_history WHERE tier = ? AND ts < ?", (tier.name, ts - tier.keep))
            for tier in due:
                self._pruned_at[tier.name] = ts

    def tier_for(self, since: float, now: float) -> Tier:
        """The finest tier whose kept span reaches back to ``since``."""
        for tier in TIERS:
            if since >= now - tier.keep:
                return tier
        return TIERS[-1]

    def query(self, since: float, until: float, now: float) -> dict[str, Any]:
        """The history between ``since`` and ``until`` from the fitting tier: per device, the
        times and each reading's value (the average over the bucket in coarser tiers).

        An answer holds at most :data:`MAX_POINTS` times per device. A range with more rows
        than that (an hour of samples every second, a year of hours) is averaged, in SQLite,
        over equal buckets of ``step`` seconds: what one answer costs in memory and time
        then depends on no sampling interval and no uptime."""
        tier = self.tier_for(since, now)
        start = math.floor(since / tier.step) * tier.step if tier.step else since
        where = "FROM gpu_history WHERE tier = ? AND ts >= ? AND ts <= ?"
        counted = self.store.query_one(
            f"SELECT coalesce(max(n), 0) AS n FROM (SELECT count(*) AS n {where} GROUP BY device)",
            (tier.name, start, until),
        )
        # An aggregate without GROUP BY answers exactly one row.
        assert counted is not None
        step: int | None
        if counted["n"] > MAX_POINTS:
            step = max(tier.step, math.ceil((until - start) / MAX_POINTS))
            devices = self._buckets(tier, start, until, step)
        else:
            step = tier.step or None
            devices = self._rows(tier, start, until)
        return {"tier": tier.name, "step": step, "since": since, "until": until, "devices": devices}

    def _rows(self, tier: Tier, start: float, until: float) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT ts, device, sums FROM gpu_history WHERE tier = ? AND ts >= ? AND ts <= ? ORDER BY device, ts",
            (tier.name, start, until),
        )
        series: dict[str, dict[str, Any]] = {}
        for row in rows:
            sums = json.loads(row["sums"])
            entry = series.setdefault(row["device"], {"device": row["device"], "times": [], "values": {}})
            position = len(entry["times"])
            entry["times"].append(row["ts"])
            for key, (total, count) in sums.items():
                column = entry["values"].setdefault(key, [None] * position)
                column.append(total / count if count else None)
            for column in entry["values"].values():
                if len(column) < position + 1:
                    column.append(None)
        return list(series.values())

    def _buckets(self, tier: Tier, start: float, until: float, step: int) -> list[dict[str, Any]]:
        """Per device, the average of every reading over each ``step`` seconds from ``start``
        (buckets with no row are left out, as missing samples are)."""
        totals = ", ".join(
            f"sum(json_extract(sums, '$.{key}[0]')) AS \"{key}_total\", "
            f"sum(json_extract(sums, '$.{key}[1]')) AS \"{key}_count\""
            for key in FIELDS
        )
        columns = ", ".join(f'"{key}_total", "{key}_count"' for key in FIELDS)
        # One row per device, its buckets as one JSON array: each row handed to Python waits
        # for the interpreter again, which under load costs far more than the row itself.
        rows = self.store.query(
            f"SELECT device, json_group_array(json_array(bucket, {columns})) AS buckets FROM ("
            f"SELECT device, CAST((ts - :start) / :step AS INTEGER) AS bucket, {totals} "
            "FROM gpu_history WHERE tier = :tier AND ts >= :start AND ts <= :until "
            "GROUP BY device, bucket) GROUP BY device ORDER BY device",
            {"tier": tier.name, "start": start, "until": until, "step": step},
        )
        series: dict[str, dict[str, Any]] = {}
        for row in rows:
            entry = series[row["device"]] = {
                "device": row["device"],
                "times": [],
                "values": {key: [] for key in FIELDS},
            }
            for bucket, *sums in sorted(json.loads(row["buckets"])):
                entry["times"].append(start + bucket * step)
                for index, key in enumerate(FIELDS):
                    total, count = sums[2 * index], sums[2 * index + 1]
                    entry["values"][key].append(total / count if count else None)
        for entry in series.values():
            entry["values"] = {
                key: column for key, column in entry["values"].items() if any(value is not None for value in column)
            }
        return list(series.values())

    def size(self) -> dict[str, int]:
        """Rows kept per tier."""
        return {
            row["tier"]: row["n"]
            for row in self.store.query("SELECT tier, count(*) AS n FROM gpu_history GROUP BY tier")
        }
