"""Request threads of the served panel: open WebSockets never take the last of them."""

import time

import httpx
import pytest
import websocket

from tests.conftest import TOKEN

pytestmark = pytest.mark.server


def open_websocket(panel) -> websocket.WebSocket:
    """An Engine.IO WebSocket without credentials: it holds a thread all the same."""
    ws = websocket.create_connection(f"ws://127.0.0.1:{panel.port}/socket.io/?EIO=4&transport=websocket",
                                     timeout=5)
    assert ws.recv().startswith("0{")  # the Engine.IO open packet
    return ws


def eventually_open_websocket(panel, timeout: float = 10) -> websocket.WebSocket:
    """A WebSocket once the server has let go of one that was just closed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_websocket(panel)
        except websocket.WebSocketBadStatusException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_websockets_past_three_quarters_of_the_threads_are_refused_and_http_still_answers(served):
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OPEN1PANEL_AI_THREADS": "8"})
    sockets = [open_websocket(panel) for _ in range(6)]
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            open_websocket(panel)
        assert refused.value.status_code == 503
        assert b"too_many_websockets" in refused.value.resp_body
        assert httpx.get(panel.url + "/healthz", timeout=2).status_code == 200
        assert panel.api("GET", "/status").status_code == 200
        sockets.pop().close()
        sockets.append(eventually_open_websocket(panel))  # a closed one frees its place
    finally:
        for ws in sockets:
            ws.close()
