"""Request threads of the served panel: open WebSockets never take the last of them, and one
that does not sign in is closed. (tests/security/test_host_sockets.py adds long-polls and
clients that never sign in.)"""

import errno
import logging
import threading
import time

import engineio.socket
import httpx
import pytest
import simple_websocket
import socketio
import websocket

from open1panel_ai.config import Settings
from open1panel_ai.standalone.server import check_settings
from open1panel_ai.standalone.sockets import quiet_closing_race
from tests.conftest import TOKEN

#: The handshake header of a client that shows the admin token before it signs in to ``/ai``.
WITH_TOKEN = [f"Authorization: Bearer {TOKEN}"]


def open_websocket(panel, header=()) -> websocket.WebSocket:
    """An Engine.IO WebSocket that has not signed in to a namespace: it holds a thread all the
    same. ``header=WITH_TOKEN`` shows the token in the handshake, which lets it past the bound
    on clients that show no credentials."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{panel.port}/socket.io/?EIO=4&transport=websocket", header=list(header), timeout=5
    )
    assert ws.recv().startswith("0{")  # the Engine.IO open packet
    return ws


def eventually_open_websocket(panel, timeout: float = 10, header=WITH_TOKEN) -> websocket.WebSocket:
    """A WebSocket once the server has let go of one that was just closed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_websocket(panel, header)
        except websocket.WebSocketBadStatusException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.server
def test_websockets_past_three_quarters_of_the_threads_are_refused_and_http_still_answers(served):
    # The sockets here never sign in: a long sign-in deadline keeps them open for the test.
    panel = served(
        env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OPEN1PANEL_AI_THREADS": "8", "OPEN1PANEL_AI_SIGN_IN_SECONDS": "600"}
    )
    sockets = [open_websocket(panel, WITH_TOKEN) for _ in range(6)]
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            open_websocket(panel, WITH_TOKEN)
        assert refused.value.status_code == 503
        assert b"too_many_websockets" in refused.value.resp_body
        assert httpx.get(panel.url + "/healthz", timeout=2).status_code == 200
        assert panel.api("GET", "/status").status_code == 200
        sockets.pop().close()
        sockets.append(eventually_open_websocket(panel))  # a closed one frees its place
    finally:
        for ws in sockets:
            ws.close()


def closed_by_server(ws: websocket.WebSocket) -> None:
    """Read until the server closes ``ws``; a read that times out means it was left open."""
    while True:
        try:
            if not ws.recv():
                return
        except websocket.WebSocketConnectionClosedException:
            return


@pytest.mark.server
def test_websockets_that_never_sign_in_are_closed_and_free_their_places(served):
    panel = served(
        env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OPEN1PANEL_AI_THREADS": "4", "OPEN1PANEL_AI_SIGN_IN_SECONDS": "1"}
    )  # three places for WebSockets
    client = socketio.Client(reconnection=False)
    client.connect(panel.url, namespaces=["/ai"], transports=["websocket"], auth={"token": TOKEN})
    try:
        opened = time.monotonic()
        # With the client every place is taken; one of them shows no credentials at all (the
        # one place of the three that such clients may have).
        idle = [open_websocket(panel), open_websocket(panel, WITH_TOKEN)]
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            open_websocket(panel, WITH_TOKEN)
        assert refused.value.status_code == 503
        idle[0].send('40/ai,{"token": "wrong"}')  # a refused sign-in keeps no place either
        assert idle[0].recv().startswith("44/ai,")
        for ws in idle:
            closed_by_server(ws)
            ws.close()
        # At the deadline, not before; the upper bound leaves room for a loaded machine.
        assert 1 <= time.monotonic() - opened < 15
        idle = [eventually_open_websocket(panel) for _ in range(2)]  # their places are free again
        for ws in idle:
            ws.close()
        time.sleep(1.5)  # past the deadline: the signed-in client is still served
        assert client.connected
        assert client.call("subscribe", {"topic": "tasks"}, namespace="/ai", timeout=5)["ok"] is True
    finally:
        client.disconnect()


@pytest.mark.parametrize("seconds, error", [("0", "must be 1 or more"), ("soon", "must be a whole number")])
def test_a_sign_in_deadline_below_one_second_is_refused(seconds, error):
    with pytest.raises(ValueError, match=f"OPEN1PANEL_AI_SIGN_IN_SECONDS {error}"):
        check_settings(Settings.from_environ({"OPEN1PANEL_AI_SIGN_IN_SECONDS": seconds}))


class _ClosedSocket:
    """A WebSocket whose connection the other side has closed already."""

    def __init__(self, error) -> None:
        self.error = error

    def close(self) -> None:
        raise self.error()


def _writer_of(filename: str):
    """A function laid out as python-engineio's WebSocket writer ends, compiled as if in
    ``filename``: its last statement closes the WebSocket."""
    namespace: dict = {}
    exec(compile("def writer(ws):\n    ws.close()\n", filename, "exec"), namespace)
    return namespace["writer"]


@pytest.mark.parametrize(
    "error",
    [lambda: OSError(errno.EBADF, "Bad file descriptor"), simple_websocket.ConnectionClosed],
    ids=["ebadf", "closed"],
)
def test_a_websocket_closed_by_both_sides_at_once_is_not_logged_as_an_error(error, caplog):
    """A client that leaves sends Engine.IO's close packet, then closes its WebSocket; the
    packet ends the server's writer thread, whose final close of the WebSocket then finds the
    connection closed already. That is not an error to show an admin with a traceback (it
    failed a whole-suite run once); any other error of a thread still is."""
    reported = []
    hook = quiet_closing_race(reported.append)
    writer = _writer_of(engineio.socket.__file__)
    caplog.set_level(logging.DEBUG, "open1panel_ai.standalone.sockets")

    def run(target, *args) -> None:
        previous = threading.excepthook
        threading.excepthook = hook
        try:
            thread = threading.Thread(target=target, args=args)
            thread.start()
            thread.join()
        finally:
            threading.excepthook = previous

    run(writer, _ClosedSocket(error))
    assert reported == [] and "closed by both sides at once" in caplog.text

    run(writer, _ClosedSocket(lambda: ValueError("a bug")))  # not a closed connection
    run(_writer_of(__file__), _ClosedSocket(error))  # not python-engineio's writer
    assert [type(args.exc_value) for args in reported] == [ValueError, type(error())]
