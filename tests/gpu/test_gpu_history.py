"""Round-robin GPU history in real SQLite: full resolution for an hour, minute averages for a
week, hour averages for a year, bounded, and a range query answered from the fitting tier."""

import json

import pytest

from open1panel_ai.gpu.history import MAX_POINTS, TIERS, History
from open1panel_ai.store import Store

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 3600  # on an hour boundary


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "history.sqlite3")
    yield store
    store.close()


def test_samples_fold_into_minute_and_hour_averages(store):
    history = History(store)
    for second in range(0, 120, 2):  # two minutes, every 2 s; utilization 0..59 then 60..119
        history.record(T0 + second, {"GPU-a": {"utilization_gpu": second // 2, "temperature": None, "not_kept": 5}})
    raw = history.query(T0, T0 + 120, now=T0 + 120)
    assert raw["tier"] == "raw" and raw["step"] is None
    series = raw["devices"][0]
    assert series["device"] == "GPU-a" and len(series["times"]) == 60
    assert series["values"] == {"utilization_gpu": [float(v) for v in range(60)]}
    # A day later the same range is only in the minute tier: two averages.
    minute = history.query(T0, T0 + 120, now=T0 + 86400)
    assert minute["tier"] == "minute" and minute["step"] == 60
    assert minute["devices"][0]["times"] == [T0, T0 + 60]
    assert minute["devices"][0]["values"]["utilization_gpu"] == [14.5, 44.5]
    hour = history.query(T0, T0 + 3600, now=T0 + 30 * 86400)
    assert hour["tier"] == "hour" and hour["devices"][0]["values"]["utilization_gpu"] == [29.5]


def test_the_tier_is_the_finest_that_reaches_back_to_since(store):
    history = History(store)
    now = T0
    assert history.tier_for(now - 3599, now).name == "raw"
    assert history.tier_for(now - 3601, now).name == "minute"
    assert history.tier_for(now - 7 * 86400 + 1, now).name == "minute"
    assert history.tier_for(now - 8 * 86400, now).name == "hour"
    assert history.tier_for(now - 2 * 365 * 86400, now).name == "hour"


def test_history_stays_bounded_however_long_it_runs(store):
    history = History(store)
    # Nine days at one sample a minute, then two hours at one sample every 2 s.
    for minute in range(9 * 1440):
        history.record(T0 + minute * 60, {"GPU-a": {"utilization_gpu": 1}, "cpu": {"utilization": 2}})
    end = T0 + 9 * 86400
    for second in range(0, 7200, 2):
        history.record(end + second, {"GPU-a": {"utilization_gpu": 1}, "cpu": {"utilization": 2}})
    size = history.size()
    keep = {tier.name: tier.keep for tier in TIERS}
    assert size["raw"] <= 2 * (keep["raw"] / 2 + 10)  # two devices, one hour at 2 s (+ prune lag)
    assert size["minute"] <= 2 * (keep["minute"] / 60 + 2)
    assert size["hour"] == 2 * (9 * 24 + 2)  # less than a year: every hour still there
    oldest_minute = store.query_one("SELECT min(ts) AS t FROM gpu_history WHERE tier = 'minute'")["t"]
    assert oldest_minute >= end + 7200 - 7 * 86400 - 60


def test_gaps_in_one_reading_keep_the_columns_aligned(store):
    history = History(store)
    history.record(T0, {"GPU-a": {"utilization_gpu": 10, "power_draw_w": 100.0}})
    history.record(T0 + 2, {"GPU-a": {"utilization_gpu": 20, "power_draw_w": None}})
    history.record(T0 + 4, {"GPU-a": {"utilization_gpu": 30, "power_draw_w": 300.0}})
    values = history.query(T0, T0 + 10, now=T0 + 10)["devices"][0]["values"]
    assert values == {"utilization_gpu": [10.0, 20.0, 30.0], "power_draw_w": [100.0, None, 300.0]}


def test_history_survives_a_restart_and_keeps_folding_the_open_minute(tmp_path):
    store = Store(tmp_path / "h.sqlite3")
    History(store).record(T0, {"GPU-a": {"utilization_gpu": 10}})
    store.close()
    store = Store(tmp_path / "h.sqlite3")
    history = History(store)
    history.record(T0 + 30, {"GPU-a": {"utilization_gpu": 30}})
    minute = history.query(T0, T0 + 60, now=T0 + 86400)
    assert minute["devices"][0]["values"]["utilization_gpu"] == [20.0]
    store.close()


def test_an_answer_holds_at_most_max_points_per_device_however_many_samples_the_range_has(store):
    """An answer's size (and what building it holds in memory) does not grow with the sampling
    rate or the uptime: an hour of samples every 0.5 s from two devices comes back as bucket
    averages, at most MAX_POINTS per device, each bucket the mean of its samples."""
    history = History(store)
    with store.transaction() as db:  # an hour every 0.5 s, written the way record() writes it
        for half_second in range(7200):
            for device, offset in (("GPU-a", 0), ("GPU-b", 100)):
                sums = {"utilization_gpu": [float(half_second % 8 + offset), 1]}
                if device == "GPU-a":
                    sums["power_draw_w"] = [200.0, 1]
                db.execute(
                    "INSERT INTO gpu_history VALUES ('raw', ?, ?, 1, ?)",
                    (T0 + half_second / 2, device, json.dumps(sums)),
                )
    answer = history.query(T0, T0 + 3600, now=T0 + 3600)
    assert answer["tier"] == "raw" and answer["step"] == 8  # 3600 s / MAX_POINTS, rounded up
    a, b = answer["devices"]
    assert a["device"] == "GPU-a" and b["device"] == "GPU-b"
    assert len(a["times"]) == len(b["times"]) == 450 <= MAX_POINTS
    assert a["times"][:2] == [T0, T0 + 8]
    # 16 samples a bucket, utilization 0..7 twice over: the mean is 3.5.
    assert set(a["values"]["utilization_gpu"]) == {3.5} and set(b["values"]["utilization_gpu"]) == {103.5}
    assert set(a["values"]["power_draw_w"]) == {200.0} and "power_draw_w" not in b["values"]
    # A range within MAX_POINTS samples still answers every sample.
    recent = history.query(T0 + 3500, T0 + 3600, now=T0 + 3600)
    assert recent["step"] is None and len(recent["devices"][0]["times"]) == 200


def test_a_sample_is_one_statement_whatever_the_number_of_gpus(store):
    """The sampler writes while the API is busy, where each call into SQLite is a wait for the
    interpreter, and a write of several statements holds the write lock through all of them;
    so a sample of three GPUs, raw row and minute and hour buckets each, is one statement
    (pruning, once per 10 s, aside)."""
    history = History(store)
    readings = {f"GPU-{name}": {"utilization_gpu": n, "memory_used": None} for n, name in enumerate("abc")}
    history.record(T0, readings)  # the first prunes every tier
    statements = []
    with store._using() as db:  # the pooled connection the next write gets
        db.set_trace_callback(statements.append)
        try:
            history.record(T0 + 1, readings)
        finally:
            db.set_trace_callback(None)
    assert len(statements) == 1 and statements[0].lstrip().startswith("INSERT INTO gpu_history")
    minute = store.query_one("SELECT n, sums FROM gpu_history WHERE tier = 'minute' AND device = 'GPU-b'")
    assert minute["n"] == 2 and json.loads(minute["sums"]) == {"utilization_gpu": [2, 2]}
