"""Where a panel under load keeps its memory (``python -m benchmarks load --trace-memory DIR``).

On ``PYTHONPATH`` of a panel started with ``OPEN1PANEL_AI_BENCH_TRACE_DIR`` set, this module
(Python imports ``sitecustomize`` at start-up) makes every process forked from there (the
gunicorn worker) write into that folder every ``OPEN1PANEL_AI_BENCH_TRACE_EVERY`` seconds (30
by default) a line of ``<pid>.stats``: its RSS, what SQLite holds (``sqlite3_memory_used``, all
connections together) and what glibc's allocator has handed out and holds free
(``mallinfo2``). Unless ``OPEN1PANEL_AI_BENCH_TRACE_PYTHON=0``, it also turns :mod:`tracemalloc`
on and writes a heap snapshot each time, which ``python -m benchmarks.memtrace DIR`` compares.
Tracing Python's heap slows the panel down several times: a traced run says where memory
goes, not how fast anything is.

``OPEN1PANEL_AI_BENCH_PROFILE`` (``--profile`` of the load benchmark) names functions of the
panel, ``module:Class.method`` separated by commas, to profile in the worker: each call runs
under :mod:`cProfile` on its own thread (wall time, so a wait for a lock shows as time spent
in the caller), and the sums go to ``<pid>-<name>.profile`` every 30 s, for :mod:`pstats`.
"""

import ctypes
import ctypes.util
import json
import os
import sys
import threading
import time
import tracemalloc

FOLDER = os.environ.get("OPEN1PANEL_AI_BENCH_TRACE_DIR")
EVERY = float(os.environ.get("OPEN1PANEL_AI_BENCH_TRACE_EVERY", "30"))
PYTHON_HEAP = os.environ.get("OPEN1PANEL_AI_BENCH_TRACE_PYTHON", "1") != "0"
FRAMES = 12


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _stats(started: float) -> dict:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = _MallInfo2
    sqlite = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    info = libc.mallinfo2()
    with open(f"/proc/{os.getpid()}/statm") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {
        "seconds": round(time.monotonic() - started),
        "rss": rss,
        "threads": threading.active_count(),
        "sqlite": sqlite.sqlite3_memory_used(),
        "malloc_used": info.uordblks + info.hblkhd,
        "malloc_free": info.fordblks,
        "malloc_arena": info.arena,
        "malloc_mmapped": info.hblkhd,
        "python_blocks": sys.getallocatedblocks(),
        "python_traced": tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None,
    }


def _record() -> None:
    started = time.monotonic()
    while True:
        time.sleep(EVERY)
        with open(os.path.join(FOLDER, f"{os.getpid()}.stats"), "a") as out:
            out.write(json.dumps(_stats(started)) + "\n")
        if PYTHON_HEAP:
            name = os.path.join(FOLDER, f"{os.getpid()}-{time.monotonic() - started:07.0f}.snapshot")
            tracemalloc.take_snapshot().dump(name + ".part")
            os.replace(name + ".part", name)


def _in_child() -> None:
    threading.Thread(target=_record, name="memory-trace", daemon=True).start()
    if PROFILE:
        threading.Thread(target=_profile, name="write-profile", daemon=True).start()


#: ``module:Class.method`` functions of the panel profiled, each call on its own thread, with
#: the sums written to ``<pid>-<name>.profile`` (pstats) every ``EVERY`` seconds.
PROFILE = [name for name in os.environ.get("OPEN1PANEL_AI_BENCH_PROFILE", "").split(",") if name]


def _profile() -> None:
    import cProfile
    import functools
    import importlib
    import pstats

    while True:  # the panel's modules are imported once the worker loads the app
        try:
            targets = []
            for name in PROFILE:
                module, _, attribute = name.partition(":")
                owner_name, _, function = attribute.rpartition(".")
                owner = importlib.import_module(module)
                for part in filter(None, owner_name.split(".")):
                    owner = getattr(owner, part)
                targets.append((name, owner, function))
            break
        except (ImportError, AttributeError):
            time.sleep(1)
    profiles: dict[str, list] = {}
    lock = threading.Lock()

    def wrap(name, original):
        @functools.wraps(original)
        def profiled(*args, **kwargs):
            profiler = cProfile.Profile()
            profiler.enable()
            try:
                return original(*args, **kwargs)
            finally:
                profiler.disable()
                with lock:
                    profiles.setdefault(name, []).append(profiler)

        return profiled

    for name, owner, function in targets:
        setattr(owner, function, wrap(name, getattr(owner, function)))
    while True:
        time.sleep(EVERY)
        with lock:
            done = {name: list(ps) for name, ps in profiles.items()}
        for name, ps in done.items():
            stats = pstats.Stats(ps[0])
            for other in ps[1:]:
                stats.add(other)
            stats.dump_stats(os.path.join(FOLDER, f"{os.getpid()}-{name.replace(':', '.')}.profile"))


if FOLDER:
    if PYTHON_HEAP:
        tracemalloc.start(FRAMES)
    os.register_at_fork(after_in_child=_in_child)
