"""Finding 2 of the security review: clients that never sign in cannot take the served panel's
Socket.IO places or its request threads.

Reproduced on the panel before the fix: the sign-in sweeper waited forever on a polling
session whose client had gone, after which no socket that never signed in was closed again and
the admin got 503 ``too_many_websockets``; a socket could join the namespace ``/`` without
credentials and so count as signed in; and long-polls were not counted, so 600 of them on one
session held every thread and ``/healthz`` took 14 s.
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor, wait

import httpx
import pytest
import socketio
import websocket

from tests.conftest import TOKEN
from tests.test_server_threads import closed_by_server, open_websocket

pytestmark = pytest.mark.server

SIGN_IN_SECONDS = 2
#: 16 threads: 12 places for WebSockets and long-polls, 6 of them for clients not signed in.
THREADS = 16
UNSIGNED_LIMIT = 6
LONG_POLLS = 100


def polling_session(panel) -> str | None:
    """Open an Engine.IO session over long-polling without credentials; None when refused."""
    response = httpx.get(f"{panel.url}/socket.io/?EIO=4&transport=polling", timeout=5)
    if response.status_code == 503:
        assert response.json()["error"]["code"] == "too_many_sessions"
        assert response.headers["Retry-After"]
        return None
    assert response.status_code == 200 and response.text.startswith("0{")
    return json.loads(response.text[1:].split("\x1e")[0])["sid"]


def long_poll(client: httpx.Client, panel, sid: str) -> tuple[int, str]:
    response = client.get(f"{panel.url}/socket.io/?EIO=4&transport=polling&sid={sid}", timeout=60)
    return response.status_code, response.text


def healthz_seconds(panel) -> float:
    started = time.monotonic()
    assert httpx.get(panel.url + "/healthz", timeout=10).json() == {"status": "ok"}
    return time.monotonic() - started


def test_sockets_that_never_sign_in_cannot_hold_the_panel(served):
    panel = served(
        env={
            "OPEN1PANEL_AI_TOKEN": TOKEN,
            "OPEN1PANEL_AI_THREADS": str(THREADS),
            "OPEN1PANEL_AI_SIGN_IN_SECONDS": str(SIGN_IN_SECONDS),
        }
    )
    started = time.monotonic()
    # A polling session whose client goes away: nobody ever reads its close packet.
    abandoned = polling_session(panel)
    assert abandoned
    # The default namespace takes nobody: joining it does not count as signing in.
    root = open_websocket(panel)
    root.send("40")
    assert root.recv().startswith("44")  # CONNECT_ERROR
    silent = [open_websocket(panel) for _ in range(2)]  # WebSockets that never sign in
    # Sessions that have not signed in are bounded: 4 are open, 2 more fit.
    polling = [polling_session(panel) for _ in range(UNSIGNED_LIMIT)]
    opened = [sid for sid in polling if sid]
    assert len(opened) == UNSIGNED_LIMIT - 4 and None in polling

    with (
        httpx.Client(limits=httpx.Limits(max_connections=None, max_keepalive_connections=0)) as client,
        ThreadPoolExecutor(LONG_POLLS) as pool,
    ):
        polls = [pool.submit(long_poll, client, panel, opened[i % len(opened)]) for i in range(LONG_POLLS)]
        time.sleep(0.5)
        # One long-poll per session waits; every other one is answered at once.
        answered = [poll.result() for poll in polls if poll.done()]
        assert len(answered) >= LONG_POLLS - len(opened) - 2
        assert all(status == 400 and "overlapping_request" in body for status, body in answered)
        # Threads are left for HTTP, and a signed-in client gets a place in the middle of it all:
        # one that shows its token in the handshake passes the bound on those not signed in.
        assert healthz_seconds(panel) < 1
        admin = socketio.Client(reconnection=False)
        admin.connect(
            panel.url,
            namespaces=["/ai"],
            transports=["websocket"],
            headers={"Authorization": f"Bearer {TOKEN}"},
            wait_timeout=5,
        )
        try:
            # At the deadline every session that did not sign in is closed, the abandoned one too.
            for ws in [root, *silent]:
                closed_by_server(ws)
                ws.close()
            done, pending = wait(polls, timeout=SIGN_IN_SECONDS * 2 + 5)
            assert not pending
            assert time.monotonic() - started < SIGN_IN_SECONDS * 1.25 + 6  # at the deadline, not later
            assert long_poll(client, panel, abandoned)[0] == 400  # gone: "Invalid session"
            # A client that signs in only with the auth payload connects once the places are free.
            later = socketio.Client(reconnection=False)
            later.connect(
                panel.url, namespaces=["/ai"], transports=["websocket"], auth={"token": TOKEN}, wait_timeout=5
            )
            assert later.call("subscribe", {"topic": "tasks"}, namespace="/ai", timeout=5)["ok"] is True
            later.disconnect()
            assert admin.connected  # signed in: never touched by the deadline
            assert admin.call("subscribe", {"topic": "tasks"}, namespace="/ai", timeout=5)["ok"] is True
        finally:
            admin.disconnect()
    assert healthz_seconds(panel) < 1
    assert "Traceback" not in panel.log()


def test_websockets_and_long_polls_share_the_places_left_by_http(served):
    """Signed-in long-polls count against the same three quarters of the threads as WebSockets."""
    panel = served(
        env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OPEN1PANEL_AI_THREADS": "4", "OPEN1PANEL_AI_SIGN_IN_SECONDS": "600"}
    )  # 3 places
    clients = []
    try:
        for _ in range(3):  # signed-in polling clients, each keeping a long-poll in flight
            client = socketio.Client(reconnection=False)
            client.connect(panel.url, namespaces=["/ai"], transports=["polling"], auth={"token": TOKEN}, wait_timeout=5)
            clients.append(client)
        time.sleep(0.5)
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(
                f"ws://127.0.0.1:{panel.port}/socket.io/?EIO=4&transport=websocket",
                header=[f"Authorization: Bearer {TOKEN}"],
                timeout=5,
            )
        assert refused.value.status_code == 503 and b"too_many_websockets" in refused.value.resp_body
        assert healthz_seconds(panel) < 1
        assert panel.api("GET", "/status").status_code == 200
    finally:
        for client in clients:
            client.disconnect()
