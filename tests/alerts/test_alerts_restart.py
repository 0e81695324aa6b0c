"""Reliable delivery with real served panels: one killed with SIGKILL while a message is on its
way sends what was stored after the restart, and never again what a channel took; and two
panel processes on one data dir evaluate the rules in the owner only, so each alert is sent
once, also after the owner dies and the other takes over."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from tests.alerts.conftest import FAST
from tests.conftest import PLUGINS_DIR, TOKEN, free_port
from tests.faults.conftest import kill_panel
from tests.helpers import wait_for
from tests.multiprocess.redis_server import RedisServer

pytestmark = [pytest.mark.server]

FAKE_SITE = Path(__file__).parent.parent / "gpu" / "fake_site"


def panel_env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(FAKE_SITE), str(PLUGINS_DIR), os.environ.get("PYTHONPATH")]))
    return {
        "OPEN1PANEL_AI_TOKEN": TOKEN,
        "PYTHONPATH": path,
        "OPEN1PANEL_AI_GPU_INTERVAL": "0.5",
        "OLLAMA_HOST": f"127.0.0.1:{free_port()}",
        **FAST,
    }


def only_hot_gpus(panel, threshold=40):
    """Every rule off but the GPU temperature, which the fake machine's 51 °C GPUs exceed."""
    for rule in panel.api("GET", "/alerts/rules").json()["rules"]:
        on = rule["id"] == "gpu_temperature"
        body = {
            "enabled": on,
            **({"for_seconds": 0, "quiet_seconds": 0, "params": {"threshold": threshold}} if on else {}),
        }
        assert panel.api("PUT", f"/alerts/rules/{rule['id']}", json=body).status_code == 200


def deliveries(panel, channel_id):
    return panel.api("GET", f"/alerts/channels/{channel_id}/deliveries").json()["deliveries"]


def test_a_panel_killed_during_delivery_sends_after_restart_and_never_twice(served, receiver, tmp_path):
    data_dir = tmp_path / "data"
    panel = served(data_dir=data_dir, env=panel_env())
    fast = panel.api(
        "POST", "/alerts/channels", json={"name": "fast", "kind": "webhook", "url": receiver.url + "/fast"}
    ).json()
    slow = panel.api(
        "POST", "/alerts/channels", json={"name": "slow", "kind": "webhook", "url": receiver.url + "/slow"}
    ).json()
    receiver.hold = {"/slow"}  # the slow channel takes the first message and never answers
    only_hot_gpus(panel)
    # The fake machine's three GPUs run at 51 °C: three alerts, a message for each on each channel.
    receiver.wait("/fast", 3)
    [held] = receiver.wait("/slow", 1)
    wait_for(
        lambda: [d["status"] for d in deliveries(panel, fast["id"])] == ["sent"] * 3,
        10,
        what="the fast channel's three messages recorded as sent",
    )

    kill_panel(panel)  # the arbiter and its worker, as the OOM killer would
    # What the killed panel left: every message stored; the one on its way still "sending".
    with sqlite3.connect(f"file:{data_dir / 'open1panel-ai.sqlite3'}?mode=ro", uri=True) as db:
        left = dict(
            db.execute("SELECT id, status FROM alert_deliveries WHERE channel_id = ?", (slow["id"],)).fetchall()
        )
    assert left[held.headers["x-open1panel-delivery"]] == "sending"
    assert sorted(left.values()) == ["pending", "pending", "sending"]

    receiver.hold = set()
    receiver.release()
    panel = served(data_dir=data_dir, env=panel_env())
    after = receiver.wait("/slow", 4)
    ids = [r.headers["x-open1panel-delivery"] for r in after]
    assert ids[1] == ids[0] == held.headers["x-open1panel-delivery"]  # sent again, first, in order
    assert len(set(ids)) == 3
    wait_for(
        lambda: [d["status"] for d in deliveries(panel, slow["id"])] == ["sent"] * 3,
        10,
        what="the slow channel's messages recorded as sent",
    )
    time.sleep(1.0)  # evaluations and the outbox go on: nothing the fast channel took comes again
    assert len(receiver.at("/fast")) == 3 and len(receiver.at("/slow")) == 4
    assert len({r.headers["x-open1panel-delivery"] for r in receiver.at("/fast")}) == 3
    alerts = panel.api("GET", "/alerts").json()
    assert alerts["firing"] == 3 and len(alerts["alerts"]) == 3  # still one alert per condition
    attempts = {d["id"]: d["attempts"] for d in deliveries(panel, slow["id"])}
    assert attempts[held.headers["x-open1panel-delivery"]] == 2


def test_two_panel_processes_send_each_alert_once_and_the_next_owner_goes_on(served, receiver, tmp_path):
    redis = RedisServer(tmp_path)
    try:
        env = {**panel_env(), "OPEN1PANEL_AI_REDIS_URL": redis.url}
        data_dir = tmp_path / "data"
        owner = served(data_dir=data_dir, env=env)
        other = served(data_dir=data_dir, env=env)
        assert (
            other.api(
                "POST", "/alerts/channels", json={"name": "hook", "kind": "webhook", "url": receiver.url + "/hook"}
            ).status_code
            == 201
        )
        only_hot_gpus(other)  # through the other process, relayed to the owner
        receiver.wait("/hook", 3)
        time.sleep(1.0)  # both processes run on: the alerts still go out once each
        assert [r.json["event"] for r in receiver.at("/hook")] == ["firing"] * 3

        kill_panel(owner)
        wait_for(lambda: other.api("GET", "/alerts/counts").status_code == 200, 15, what="the takeover")
        assert other.api("GET", "/alerts/counts").json() == {"unread": 3, "firing": 3}
        assert other.api("PUT", "/alerts/rules/gpu_temperature", json={"params": {"threshold": 85}}).status_code == 200
        resolved = receiver.wait("/hook", 6)[3:]
        assert [r.json["event"] for r in resolved] == ["resolved"] * 3
        time.sleep(0.5)
        assert len(receiver.at("/hook")) == 6
    finally:
        redis.stop()
