"""The standalone panel under load: API clients and Socket.IO clients at once.

A real ``open1panel-ai serve`` runs with the fake three-GPU NVML of the tests sampling every
0.5 s (its history already holds the hour it keeps every sample of, as a panel up for more than
an hour does: :func:`seed_gpu_history`), the Ollama stand-in of the tests as its Ollama, and a
pull of a stand-in model started every two seconds (then deleted), so ``gpu`` and ``tasks``
events flow all the time. Against
it run ``--api-clients`` HTTP clients, each in a loop without pauses, and ``--socket-clients``
Socket.IO clients (WebSocket transport, token in ``auth``) subscribed to ``gpu`` and
``tasks``. The load generator runs in processes of its own (one for the API clients, two
for the Socket.IO clients), on the same machine as the panel.

Two phases, with every Socket.IO client connected and the same background traffic in both:

- the baseline, a third of ``--duration`` long: the API clients ask ``GET /healthz``, the
  cheapest answer the panel's server stack gives (no auth, no store, no service);
- the measured phase, ``--duration`` seconds: the API clients ask a mix of authenticated GETs
  (status, models, running models, tasks, GPU sample and history, MCP servers, domains) and
  now and then create and delete an MCP server definition.

The ratios are the measured phase against the baseline: how much of the stack's raw request
rate the real API work leaves, what it adds to latency, and whether it slows event delivery.
Event lag is the receive time minus the event's own time (a GPU sample's ``time``, a task's
``updated_at``). Errors are any unexpected status or exception, a Socket.IO connection that
fails or drops (a client gives up on its connection when a browser would: no ping for
``pingInterval + pingTimeout``), and a client that goes without ``gpu`` events in a phase.

Through the measured phase the panel's worker is read once a second (RSS, threads, open files)
and printed every 30 s; :mod:`benchmarks.soak` judges the readings, so that a long run
(``--duration 600``) is a soak test. The exit status is non-zero when there is any error, when
the worker's RSS at the end is more than 1.1 times its RSS two minutes into the phase, or when
its thread or open-file count keeps growing. ``--plot FILE.png`` draws the curve;
``--trace-memory DIR`` records where the memory goes (:mod:`benchmarks.memtrace`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import socketio

from benchmarks import soak

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import ollama_standin  # noqa: E402 - from tests/, put on sys.path above
from conftest import ServedPanel  # noqa: E402

TOKEN = "benchmark-token-0123456789abcdefghijklmnop"
GPU_INTERVAL = 0.5
#: A pull of one 20 MB layer at 10 MB/s: two seconds of progress events, then the next one.
PULL_EVERY = 2.0
PULL_LAYER = 20_000_000
PULL_SPEED = 10_000_000
#: Models already in the stand-in and MCP definitions already stored, so the listings are not empty.
SEEDED_MODELS = 10
SEEDED_MCP_SERVERS = 5
#: Seconds of GPU history the panel holds when the run begins: the hour it keeps every sample of.
SEEDED_HISTORY = 3600.0
#: How much lower the API clients' process runs than the panel and the Socket.IO clients.
API_CLIENTS_NICENESS = 10
#: The authenticated GETs of the measured phase and their weights.
READS = {
    "/status": 10,
    "/ollama/models": 15,
    "/ollama/running": 10,
    "/tasks": 15,
    "/gpu": 15,
    "/gpu/history": 5,
    "/mcp/servers": 10,
    "/domains": 10,
}
#: Share of loop turns that create an MCP server definition and delete it (two writes).
WRITE_SHARE = 0.025
HEALTHZ = "/healthz"
API = "/api/v2/ai"
CONNECT_THREADS = 20
#: The Socket.IO clients run in this many processes, so no one interpreter holds them all.
SOCKET_PROCESSES = 2


def _percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- the API clients (a process of their own) ---------------------------------------------------


def _api_client(
    address: tuple[str, int],
    token: str,
    mix: bool,
    seed: int,
    go: threading.Event,
    until: list[float],
    results: list,
    reads: dict[str, int],
) -> None:
    """One client on one keep-alive connection (``http.client``: the cheapest client, so the
    load generator takes little of the CPU it shares with the panel): requests back to back
    until the deadline; each one's route, latency, error (None when it got the expected status)
    and end time."""
    rng = random.Random(seed)
    routes, weights = list(reads), list(reads.values())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(*address, timeout=30)
    created = 0

    def request(label: str, method: str, path: str, expected: int, body=None) -> bytes | None:
        started = time.perf_counter()
        answer, error = None, None
        try:
            connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != expected:
                error = f"{label}: {response.status} {answer[:200]!r}"
        except (OSError, http.client.HTTPException) as exc:
            connection.close()  # the next request opens a new connection
            error = f"{label}: {type(exc).__name__}: {exc}"
        results.append((label, time.perf_counter() - started, error, time.monotonic()))
        return None if error else answer

    go.wait()
    while time.monotonic() < until[0]:
        if not mix:
            request("GET /healthz", "GET", HEALTHZ, 200)
        elif rng.random() < WRITE_SHARE:
            created += 1
            made = request(
                "POST /mcp/servers",
                "POST",
                API + "/mcp/servers",
                201,
                {"name": f"load-{seed}-{created}", "command": ["mcp-server-time"]},
            )
            if made is not None:
                request("DELETE /mcp/servers/<id>", "DELETE", f"{API}/mcp/servers/{json.loads(made)['id']}", 204)
        else:
            route = rng.choices(routes, weights)[0]
            request(f"GET {route}", "GET", API + route, 200)
    connection.close()


def run_api_clients(
    address: tuple[str, int], token: str, clients: int, seconds: float, mix: bool, pipe, reads: dict[str, int]
) -> None:
    """Run ``clients`` API clients for ``seconds``; send back every request's record and the
    CPU seconds this process spent meanwhile.

    The process runs at a lower priority (``nice`` +:data:`API_CLIENTS_NICENESS`) than the
    panel and the Socket.IO clients: on two cores a load generator that takes its share first
    starves the Socket.IO clients, which then miss the server's pings and count as drops of
    the panel's (the server sent them on time), and it takes CPU time from the panel it
    measures. The same priority holds in both phases, so the ratios compare like with like."""
    os.nice(API_CLIENTS_NICENESS)
    go, until, results = threading.Event(), [0.0], []
    threads = [
        threading.Thread(target=_api_client, args=(address, token, mix, index, go, until, results, reads))
        for index in range(clients)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # every thread is waiting at the line
    cpu, started = time.process_time(), time.monotonic()
    until[0] = started + seconds
    go.set()
    for thread in threads:
        thread.join()
    pipe.send({"started": started, "results": results, "cpu": time.process_time() - cpu})
    pipe.close()


# -- the Socket.IO clients (a process of their own) ---------------------------------------------


class _Listener:
    """One Socket.IO client: every event it gets, with its lag, and whether it dropped."""

    def __init__(self, url: str, token: str, stopping: threading.Event) -> None:
        self.events: list[tuple[str, str, float, float]] = []  # (topic, key, received, lag)
        self.dropped = False
        self.stopping = stopping
        self.client = socketio.Client(reconnection=False)
        self.client.on("gpu", self._gpu, namespace="/ai")
        self.client.on("task", self._task, namespace="/ai")
        self.client.on("disconnect", self._disconnect, namespace="/ai")
        self.url, self.token = url, token

    def connect(self) -> str | None:
        """Connect and subscribe; the error text, or None."""
        try:
            self.client.connect(
                self.url, namespaces=["/ai"], transports=["websocket"], auth={"token": self.token}, wait_timeout=30
            )
            self._wait_for_pings_as_browsers_do()
            for topic in ("gpu", "tasks"):
                answer = self.client.call("subscribe", {"topic": topic}, namespace="/ai", timeout=30)
                if not answer or not answer.get("ok"):
                    return f"subscribe {topic}: {answer}"
        except (socketio.exceptions.SocketIOError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def _wait_for_pings_as_browsers_do(self) -> None:
        """Give up on the connection when a browser would: the panel's pages (Engine.IO's
        JavaScript client) close it when no ping came for ``pingInterval + pingTimeout`` after
        the last (45 s with the server's 25 + 20). python-engineio's client gives up when it
        had nothing to send for ``max(pingInterval, pingTimeout) + 5`` s, and it sends only
        its answers to pings: a ping 5 s late is a drop for it, 20 s late for a browser.
        Its wait, read on each turn of its sending loop, is made the browser's."""
        engine = self.client.eio
        engine.ping_timeout = engine.ping_interval + engine.ping_timeout - 5

    def _gpu(self, sample) -> None:
        now = time.time()
        self.events.append(("gpu", repr(sample["time"]), time.monotonic(), now - sample["time"]))

    def _task(self, task) -> None:
        now = time.time()
        updated = datetime.fromisoformat(task["updated_at"]).timestamp()
        # Two progress steps can share a millisecond, so the key holds the progress too.
        key = f"{task['id']} {task['updated_at']} {task['status']} {task['completed']}"
        self.events.append(("tasks", key, time.monotonic(), now - updated))

    def _disconnect(self, reason=None) -> None:
        if not self.stopping.is_set():
            self.dropped = True


def run_socket_clients(url: str, token: str, clients: int, pipe) -> None:
    """Connect ``clients`` Socket.IO clients, report ready, hold them until told to stop, then
    send back their events, failures and drops."""
    stopping = threading.Event()
    listeners = [_Listener(url, token, stopping) for _ in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(CONNECT_THREADS) as pool:
        failures = [f for f in pool.map(_Listener.connect, listeners) if f]
    pipe.send({"connect_seconds": time.perf_counter() - started, "failures": failures})
    pipe.recv()  # stop
    stopping.set()
    # Clients waiting for their turn to close may give up on a late ping meanwhile; that is
    # no drop, so it is not worth a line each.
    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)
    with ThreadPoolExecutor(CONNECT_THREADS) as pool:
        list(pool.map(lambda listener: listener.client.disconnect(), listeners))
    pipe.send(
        {
            "events": [listener.events for listener in listeners],
            "dropped": sum(listener.dropped for listener in listeners),
        }
    )
    pipe.close()


# -- the panel and its background traffic -------------------------------------------------------


class PullPacer(threading.Thread):
    """Starts a pull of a stand-in model every ``PULL_EVERY`` seconds and deletes the model
    once the pull is done, so ``task`` events flow at a steady pace."""

    def __init__(self, panel: ServedPanel, standin) -> None:
        super().__init__(name="pull-pacer", daemon=True)
        self.panel, self.standin = panel, standin
        self.stop = threading.Event()
        self.pulls = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            turn = time.monotonic()
            name = f"pulled-{self.pulls}"
            self.standin.publish(name, [PULL_LAYER])
            try:
                self._pull(name)
            except (httpx.HTTPError, RuntimeError, AssertionError) as exc:  # wait_task asserts
                self.errors.append(f"pull {name}: {type(exc).__name__}: {exc}")
            self.pulls += 1
            self.stop.wait(max(0.0, PULL_EVERY - (time.monotonic() - turn)))

    def _pull(self, name: str) -> None:
        response = self.panel.api("POST", "/ollama/pulls", json={"name": name})
        if response.status_code != 202:
            raise RuntimeError(f"{response.status_code} {response.text[:200]}")
        task = self.panel.wait_task(
            response.json()["id"], lambda t: t["status"] not in ("queued", "running"), timeout=60
        )
        if task["status"] != "succeeded":
            raise RuntimeError(f"the pull ended {task['status']}: {task['error']}")
        deleted = self.panel.api("DELETE", f"/ollama/models/{name}")
        if deleted.status_code not in (200, 204):
            raise RuntimeError(f"delete: {deleted.status_code} {deleted.text[:200]}")


class PhaseWatch(threading.Thread):
    """Once a second while the measured phase runs: the panel's memory, threads and open files
    (:mod:`benchmarks.soak`), printed every 30 s, and how long the Ollama stand-in takes to
    answer ``/api/tags`` itself (its share of the time of the routes that call it)."""

    def __init__(self, panel: ServedPanel, standin) -> None:
        super().__init__(name="phase-watch", daemon=True)
        self.panel, self.standin = panel, standin
        self.readings: list[soak.Reading] = []
        self.standin_ms: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        reported = -soak.REPORT_EVERY
        with httpx.Client(timeout=30) as client:
            while not self.stop.wait(1.0):
                reading = soak.read(self.panel.process.pid, time.monotonic() - started)
                self.readings.append(reading)
                if reading.seconds - reported >= soak.REPORT_EVERY:
                    reported += soak.REPORT_EVERY
                    print(soak.line(reading), flush=True)
                began = time.perf_counter()
                client.get(self.standin.url + "/api/tags").raise_for_status()
                self.standin_ms.append((time.perf_counter() - began) * 1000)


def panel_memory(panel: ServedPanel) -> tuple[float, float, int]:
    """RSS in MiB of the gunicorn master and its worker, and the worker's thread count."""
    master = psutil.Process(panel.process.pid)
    workers = master.children()
    return (
        master.memory_info().rss / 2**20,
        sum(w.memory_info().rss for w in workers) / 2**20,
        sum(w.num_threads() for w in workers),
    )


def start_panel(workdir: Path, trace_dir: Path | None = None, heap_snapshots: bool = True, profile: list[str] = ()):
    standin = ollama_standin.OllamaStandIn(workdir / "ollama", pull_speed=PULL_SPEED).start()
    for index in range(SEEDED_MODELS):
        standin.seed(f"seeded{index}:q{index % 4}", [100_000_000 + index])
    fake_nvml = ROOT / "tests" / "gpu" / "fake_site"
    panel = ServedPanel(
        workdir / "panel",
        with_test_plugin=False,
        env={
            "OPEN1PANEL_AI_TOKEN": TOKEN,
            "OLLAMA_HOST": standin.url,
            "OPEN1PANEL_AI_GPU_INTERVAL": str(GPU_INTERVAL),
            "OPEN1PANEL_AI_DOMAIN_PROVIDER": "none",
            "PYTHONPATH": os.pathsep.join([str(fake_nvml), str(ROOT)]),
            **(_tracing(trace_dir, heap_snapshots, profile) if trace_dir else {}),
        },
    )
    try:
        panel.start(timeout=180 if trace_dir and heap_snapshots else 30)  # tracing slows every import
        for index in range(SEEDED_MCP_SERVERS):
            created = panel.api(
                "POST", "/mcp/servers", json={"name": f"seeded-{index}", "command": ["mcp-server-time"]}
            )
            assert created.status_code == 201, created.text
        seed_gpu_history(panel)
    except BaseException:
        panel.stop()  # a panel that started too slowly is still running
        standin.stop()
        raise
    return standin, panel


def seed_gpu_history(panel: ServedPanel, seconds: float = SEEDED_HISTORY) -> None:
    """Fill the panel's GPU history with ``seconds`` of samples (the current one, once every
    sampling interval up to now), written as the panel writes them.

    The history keeps every sample of the last hour, so until a panel has run for an hour each
    read of that hour holds more rows: a panel up for days holds a full hour, and that steady
    state is what a soak of a few minutes should measure, not the first hour's filling."""
    from open1panel_ai.context import DATABASE_NAME
    from open1panel_ai.gpu.history import History
    from open1panel_ai.gpu.service import history_readings
    from open1panel_ai.store import Store

    readings = history_readings(panel.api("GET", "/gpu").json())
    store = Store(panel.data_dir / DATABASE_NAME)
    try:
        history, now = History(store), time.time()
        for step in range(int(seconds / GPU_INTERVAL), 0, -1):
            history.record(now - step * GPU_INTERVAL, readings)
    finally:
        store.close()


def _tracing(folder: Path, python_heap: bool, profile: list[str] = ()) -> dict[str, str]:
    """The panel's environment for memory figures (and heap snapshots, and the profiles of the
    ``profile`` functions) into ``folder`` (see :mod:`benchmarks.memtrace`)."""
    folder.mkdir(parents=True, exist_ok=True)
    fake_nvml = ROOT / "tests" / "gpu" / "fake_site"
    return {
        "OPEN1PANEL_AI_BENCH_TRACE_DIR": str(folder.resolve()),
        "OPEN1PANEL_AI_BENCH_TRACE_PYTHON": "1" if python_heap else "0",
        "OPEN1PANEL_AI_BENCH_PROFILE": ",".join(profile),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks" / "memtrace"), str(fake_nvml), str(ROOT)]),
    }


# -- the run ------------------------------------------------------------------------------------


def _api_phase(
    address: tuple[str, int], clients: int, seconds: float, mix: bool, watched: dict, reads: dict[str, int]
) -> dict:
    """One phase of API load, with the CPU seconds each watched process spent during it."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=run_api_clients, args=(address, TOKEN, clients, seconds, mix, theirs, reads))
    process.start()
    before = _cpu_seconds(watched)
    result = ours.recv()
    spent = _cpu_seconds(watched)
    process.join()
    records = result["results"]
    ended = max((done for *_, done in records), default=result["started"])
    result["rate"] = len(records) / max(ended - result["started"], 1e-9)
    result["window"] = (result["started"], ended)
    wall = ended - result["started"]
    result["cores"] = {name: (spent[name] - before[name]) / wall for name in watched}
    result["cores"]["API clients"] = result["cpu"] / wall
    return result


def _cpu_seconds(watched: dict[str, list[psutil.Process]]) -> dict[str, float]:
    total = {}
    for name, processes in watched.items():
        total[name] = 0.0
        for process in processes:
            times = process.cpu_times()
            total[name] += times.user + times.system
    return total


def _summary(api: dict, events: list[list[tuple]], window: tuple[float, float]) -> dict:
    """The figures of one phase. Its events are those first received inside its window; each
    one's every copy counts, wherever it fell, so delivery is exact at the window's edges."""
    latencies = [latency * 1000 for _, latency, _, _ in api["results"]]
    errors = [error for _, _, error, _ in api["results"] if error]
    start, end = window
    first_seen: dict[str, float] = {}
    for listener in events:
        for _, key, received, _ in listener:
            first_seen[key] = min(received, first_seen.get(key, received))
    ours = {key for key, received in first_seen.items() if start <= received <= end}
    lags = {"gpu": [], "tasks": []}
    copies = {"gpu": 0, "tasks": 0}
    distinct = {"gpu": set(), "tasks": set()}
    starved = 0
    for listener in events:
        mine = [event for event in listener if event[1] in ours]
        if not any(topic == "gpu" for topic, *_ in mine):
            starved += 1
        for topic, key, _, lag in mine:
            lags[topic].append(lag * 1000)
            copies[topic] += 1
            distinct[topic].add(key)
    clients = max(len(events), 1)
    return {
        "requests": len(latencies),
        "rate": api["rate"],
        "p50": _percentile(latencies, 0.5),
        "p99": _percentile(latencies, 0.99),
        "errors": errors,
        "starved": starved,
        "lag": {t: (_percentile(v, 0.5), _percentile(v, 0.99)) for t, v in lags.items()},
        "events": {t: len(keys) for t, keys in distinct.items()},
        # Every event should reach every client once.
        "delivered": {t: copies[t] / max(len(distinct[t]) * clients, 1) for t in copies},
    }


def _by_route(api: dict) -> dict[str, tuple[int, float, float]]:
    routes: dict[str, list[float]] = {}
    for label, latency, _, _ in api["results"]:
        routes.setdefault(label, []).append(latency * 1000)
    return {label: (len(v), _percentile(v, 0.5), _percentile(v, 0.99)) for label, v in sorted(routes.items())}


class SocketClients:
    """The Socket.IO clients, spread over ``SOCKET_PROCESSES`` processes of their own."""

    def __init__(self, url: str, clients: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes, self.processes = [], []
        for share in range(SOCKET_PROCESSES):
            count = clients // SOCKET_PROCESSES + (share < clients % SOCKET_PROCESSES)
            ours, theirs = context.Pipe()
            self.pipes.append(ours)
            self.processes.append(context.Process(target=run_socket_clients, args=(url, TOKEN, count, theirs)))

    def connect(self) -> dict:
        for process in self.processes:
            process.start()
        answers = [pipe.recv() for pipe in self.pipes]
        return {
            "seconds": max(a["connect_seconds"] for a in answers),
            "failures": [f for a in answers for f in a["failures"]],
        }

    def stop(self) -> dict:
        for pipe in self.pipes:
            pipe.send("stop")
        answers = [pipe.recv() for pipe in self.pipes]
        for process in self.processes:
            process.join()
        return {"events": [e for a in answers for e in a["events"]], "dropped": sum(a["dropped"] for a in answers)}

    def kill(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()


def measure(
    duration: float,
    api_clients: int,
    socket_clients: int,
    trace_dir: Path | None = None,
    plot: Path | None = None,
    heap_snapshots: bool = True,
    reads: dict[str, int] = READS,
    profile: list[str] = (),
) -> int:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        standin, panel = start_panel(Path(folder), trace_dir, heap_snapshots, profile)
        pacer = PullPacer(panel, standin)
        sockets = SocketClients(panel.url, socket_clients)
        address = ("127.0.0.1", panel.port)
        try:
            idle = panel_memory(panel)
            connected = sockets.connect()
            pacer.start()
            time.sleep(2 * GPU_INTERVAL)  # the first events reach everybody
            master = psutil.Process(panel.process.pid)
            watched = {
                "panel": [master, *master.children()],
                "Socket.IO clients": [psutil.Process(p.pid) for p in sockets.processes],
                "stand-in and pulls": [psutil.Process()],
            }
            loaded = panel_memory(panel)
            baseline = _api_phase(address, api_clients, duration / 3, False, watched, reads)
            before = panel_memory(panel)
            watch = PhaseWatch(panel, standin)
            print(f"the measured phase, {duration:.0f} s: the panel every {soak.REPORT_EVERY:.0f} s", flush=True)
            watch.start()
            measured = _api_phase(address, api_clients, duration, True, watched, reads)
            watch.stop.set()
            watch.join()
            after = panel_memory(panel)
            load_average = os.getloadavg()
            held = sockets.stop()
        finally:
            pacer.stop.set()
            sockets.kill()
            if pacer.is_alive():
                pacer.join(10)
            panel.stop()
            standin.stop()
            panel_log = panel.log()
    base = _summary(baseline, held["events"], baseline["window"])
    main = _summary(measured, held["events"], measured["window"])
    errors = (
        len(base["errors"])
        + len(main["errors"])
        + base["starved"]
        + main["starved"]
        + len(connected["failures"])
        + held["dropped"]
        + len(pacer.errors)
    )

    print(
        f"{api_clients} API clients, {socket_clients} Socket.IO clients (gpu + tasks), "
        f"baseline {duration / 3:.0f} s, measured {duration:.0f} s"
    )
    print(
        f"load average (1 min / 5 min) before the run {load_before[0]:.1f} / {load_before[1]:.1f} (other work), "
        f"at the end {load_average[0]:.1f} / {load_average[1]:.1f} (this run's threads included)"
    )
    print(
        f"Socket.IO clients connected and subscribed in {connected['seconds']:.1f} s; "
        f"{pacer.pulls} pulls paced in the background"
    )
    print(
        f"{'phase':<24} {'requests':>9} {'req/s':>6} {'p50':>8} {'p99':>8} "
        f"{'gpu events: lag p50/p99, delivered':>36} {'task events: lag p50/p99, delivered':>37}"
    )
    for name, s in (("baseline: GET /healthz", base), ("measured: the API mix", main)):
        topics = [
            f"{s['events'][t]:>4} {s['lag'][t][0]:>5.0f}/{s['lag'][t][1]:<5.0f}ms {s['delivered'][t]:>7.1%}"
            for t in ("gpu", "tasks")
        ]
        print(
            f"{name:<24} {s['requests']:>9} {s['rate']:>6.0f} {s['p50']:>6.1f}ms {s['p99']:>6.1f}ms "
            f"{topics[0]:>36} {topics[1]:>37}"
        )
    print(
        f"ratios measured/baseline: request rate {main['rate'] / base['rate']:.2f}, "
        f"p50 {main['p50'] / base['p50']:.2f}, p99 {main['p99'] / base['p99']:.2f}, "
        f"gpu lag p50 {main['lag']['gpu'][0] / base['lag']['gpu'][0]:.2f}, "
        f"task lag p50 {main['lag']['tasks'][0] / base['lag']['tasks'][0]:.2f}"
    )
    print(
        "CPU, in cores (baseline / measured): "
        + ", ".join(
            f"{name} {baseline['cores'][name]:.2f} / {measured['cores'][name]:.2f}" for name in measured["cores"]
        )
    )
    print("per route in the measured phase (count, p50, p99):")
    for label, (count, p50, p99) in _by_route(measured).items():
        print(f"  {label:<28} {count:>7} {p50:>7.1f}ms {p99:>7.1f}ms")
    print(
        f"  the Ollama stand-in's own /api/tags, once a second: p50 {_percentile(watch.standin_ms, 0.5):.1f}ms, "
        f"max {max(watch.standin_ms):.1f}ms"
    )
    print("panel memory (RSS, gunicorn master + worker) and worker threads:")
    middle = watch.readings[len(watch.readings) // 2]
    halfway = (middle.master_mib, middle.worker_mib, middle.threads)
    for name, (rss_master, rss_worker, threads) in (
        ("idle, just started", idle),
        ("clients connected", loaded),
        ("measured phase start", before),
        ("measured phase halfway", halfway),
        ("measured phase end", after),
    ):
        print(f"  {name:<22} {rss_master:>5.0f} + {rss_worker:>5.0f} MiB, {threads} threads")
    print(f"  peak of the worker in the measured phase: {max(r.worker_mib for r in watch.readings):.0f} MiB")
    verdict = soak.judge(watch.readings, duration)
    print("\n".join(verdict.lines()))
    if plot is not None:
        soak.plot(
            plot,
            watch.readings,
            verdict,
            f"open1panel-ai serve under load: {api_clients} API and "
            f"{socket_clients} Socket.IO clients, {duration:.0f} s",
        )
        print(f"plot: {plot}")
    print(
        f"errors: {errors} (API {len(base['errors']) + len(main['errors'])}, Socket.IO connect "
        f"failures {len(connected['failures'])}, drops {held['dropped']}, clients without gpu events "
        f"{base['starved'] + main['starved']}, background pulls {len(pacer.errors)})"
    )
    for error in (connected["failures"] + base["errors"] + main["errors"] + pacer.errors)[:10]:
        print(f"  {error}")
    if errors:
        print("the panel's log, last lines:\n" + "\n".join(panel_log.splitlines()[-15:]))
    return 1 if errors or verdict.failures else 0


def _reads(text: str) -> dict[str, int]:
    chosen = [route.strip() for route in text.split(",") if route.strip()]
    unknown = [route for route in chosen if route not in READS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(READS)}")
    return {route: READS[route] for route in chosen}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks load", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of the measured phase")
    parser.add_argument("--api-clients", type=int, default=100)
    parser.add_argument("--socket-clients", type=int, default=200)
    parser.add_argument(
        "--reads",
        type=_reads,
        default=READS,
        metavar="ROUTE,...",
        help="only these GETs in the mix (with their usual weights), e.g. "
        "/status,/tasks; the default is all of: " + ", ".join(READS),
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="PNG",
        help="draw the worker's RSS, threads and open files through the measured phase",
    )
    parser.add_argument(
        "--trace-memory",
        type=Path,
        metavar="DIR",
        help="write the worker's memory figures (RSS, SQLite, malloc) into DIR every 30 s, "
        "with a heap snapshot each time (slow; compare them with python -m "
        "benchmarks.memtrace DIR)",
    )
    parser.add_argument(
        "--no-heap-snapshots", action="store_true", help="with --trace-memory: the figures only, at full speed"
    )
    parser.add_argument(
        "--profile",
        type=lambda text: [n for n in text.split(",") if n],
        default=[],
        metavar="MODULE:CLASS.METHOD,...",
        help="with --trace-memory: profile each call of these functions in the worker "
        "(cProfile, wall time, on the calling thread) into DIR/<pid>-<name>.profile, "
        "e.g. open1panel_ai.mcp.service:MCPService.create",
    )
    options = parser.parse_args(argv or [])
    if options.duration < 3 or options.api_clients < 1 or options.socket_clients < 1:
        parser.error("give at least 3 seconds, one API client and one Socket.IO client")
    return measure(
        options.duration,
        options.api_clients,
        options.socket_clients,
        options.trace_memory,
        options.plot,
        not options.no_heap_snapshots,
        options.reads,
        options.profile,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
