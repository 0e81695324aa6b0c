"""Ollama model management costs, against the Ollama stand-in of the tests.

1. Relaying a pull's progress through the panel to a Socket.IO client, against reading the same
   pull stream directly with httpx: wall time to the last event, and CPU seconds spent by the
   panel (all its processes) against CPU seconds of the direct reader.
2. Listing 1,000 models: ``GET /api/v2/ai/ollama/models`` (``/api/tags`` and ``/api/ps``
   merged, validated and dumped) against ``GET /api/tags`` alone, mean latency per request.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))  # the stand-in and the panel fixture of the tests, imported below

import ollama_standin  # noqa: E402
from conftest import ServedPanel  # noqa: E402

TOKEN = "benchmark-token-0123456789abcdefghijklmnop"
LAYER = 40_000_000
LIST_MODELS = 1000
LIST_REPEAT = 20


def panel_cpu(process: psutil.Process) -> float:
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def direct_pull(standin) -> tuple[float, float, int]:
    start, cpu = time.perf_counter(), time.thread_time()
    lines = 0
    with httpx.stream("POST", standin.url + "/api/pull", json={"model": "bench"}, timeout=60) as response:
        for _ in response.iter_lines():
            lines += 1
    return time.perf_counter() - start, time.thread_time() - cpu, lines


def relayed_pull(panel: ServedPanel) -> tuple[float, float, int]:
    import socketio

    done = threading.Event()
    events = []

    def on_task(task):
        events.append(task)
        if task["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            done.set()

    client = socketio.Client(reconnection=False)
    client.on("task", on_task, namespace="/ai")
    client.connect(panel.url, namespaces=["/ai"], transports=["websocket"], auth={"token": TOKEN})
    client.call("subscribe", {"topic": "tasks"}, namespace="/ai", timeout=5)
    process = psutil.Process(panel.process.pid)
    cpu_before = panel_cpu(process)
    start = time.perf_counter()
    panel.api("POST", "/ollama/pulls", json={"name": "bench"})
    done.wait(120)
    elapsed = time.perf_counter() - start
    cpu = panel_cpu(process) - cpu_before
    client.disconnect()
    assert events and events[-1]["status"] == "succeeded", events[-1:]
    return elapsed, cpu, len(events)


def forget(standin) -> None:
    httpx.request("DELETE", standin.url + "/api/delete", json={"model": "bench"})


def relay_versus_direct(workdir: Path) -> None:
    print("-- a pull's progress: through the panel to a Socket.IO client vs httpx reading Ollama")
    ollama_standin.TICK = 0.005  # 200 progress lines a second: the relay works hard
    standin = ollama_standin.OllamaStandIn(workdir / "models", pull_speed=LAYER / 2.0).start()
    standin.publish("bench", [LAYER])
    panel = ServedPanel(
        workdir / "panel", env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OLLAMA_HOST": standin.url}, with_test_plugin=False
    ).start()
    try:
        direct_wall, direct_cpu, lines = direct_pull(standin)
        forget(standin)
        relay_wall, relay_cpu, events = relayed_pull(panel)
        forget(standin)
    finally:
        panel.stop()
        standin.stop()
    print(f"direct: {lines} lines in {direct_wall:.2f} s wall, {direct_cpu:.3f} s CPU")
    print(
        f"relayed: {events} task events in {relay_wall:.2f} s wall, {relay_cpu:.3f} s panel CPU "
        f"(events coalesced to at most 4 a second)"
    )
    print(f"ratio wall relayed/direct: {relay_wall / direct_wall:.2f}")
    print(f"ratio CPU panel/direct reader: {relay_cpu / max(direct_cpu, 1e-6):.2f}")


def listing(workdir: Path) -> None:
    print(f"-- listing {LIST_MODELS} models: panel API vs Ollama's /api/tags, mean per request")
    standin = ollama_standin.OllamaStandIn(workdir / "many").start()
    for index in range(LIST_MODELS):
        standin.seed(f"model{index}:q{index % 4}", [1000 + index])
    panel = ServedPanel(
        workdir / "panel-list", env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OLLAMA_HOST": standin.url}, with_test_plugin=False
    ).start()
    try:
        with httpx.Client(timeout=60) as client:

            def direct():
                assert len(client.get(standin.url + "/api/tags").json()["models"]) == LIST_MODELS

            def through_panel():
                response = client.get(
                    panel.url + "/api/v2/ai/ollama/models", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                assert len(response.json()["models"]) == LIST_MODELS

            direct_s = timed(direct, LIST_REPEAT)
            panel_s = timed(through_panel, LIST_REPEAT)
    finally:
        panel.stop()
        standin.stop()
    print(
        f"/api/tags: {direct_s * 1000:.1f} ms; panel: {panel_s * 1000:.1f} ms; "
        f"ratio panel/direct: {panel_s / direct_s:.2f}"
    )


def timed(call, repeat: int) -> float:
    call()
    start = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        relay_versus_direct(Path(workdir))
        listing(Path(workdir))


if __name__ == "__main__":
    main()
