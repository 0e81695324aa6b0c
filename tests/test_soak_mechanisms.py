"""What keeps a served panel's memory flat under sustained load (the load benchmark's soak,
``python -m benchmarks load --duration 600``, measures the outcome; these tests check the
mechanisms, without timing anything).

The worker bounds glibc's malloc arenas: with one arena per thread up to eight per core, the
memory hundreds of request and WebSocket threads free stays resident in their arenas. And it
runs without glibc's per-thread caches of freed blocks, which hundreds of threads fill a little
more at each turn. (The store's bounded connection pool, the other part, is tested in
``tests/test_store.py``.)
"""

import os
import subprocess
import sys
import time

import psutil
import pytest

from open1panel_ai.standalone.server import ALLOCATOR_TUNABLES, MALLOC_ARENAS
from tests.conftest import TOKEN

#: Six threads allocate at once (a block above Python's small-object size, so from malloc) and
#: hold it; then glibc's ``malloc_info`` counts the arenas (one ``<heap nr=…>`` each).
COUNT_ARENAS = """
import ctypes, sys, tempfile, threading
if sys.argv[1] == "limit":
    from open1panel_ai.standalone.server import limit_malloc_arenas
    assert limit_malloc_arenas()
libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fflush.argtypes = [ctypes.c_void_p]
go, ready, held = threading.Event(), threading.Semaphore(0), []
def allocate():
    held.append(bytes(2000))
    ready.release()
    go.wait()
threads = [threading.Thread(target=allocate) for _ in range(6)]
for thread in threads:
    thread.start()
for _ in threads:
    ready.acquire()
with tempfile.TemporaryFile() as out:
    stream = libc.fdopen(out.fileno(), b"w")
    libc.malloc_info(0, stream)
    libc.fflush(stream)
    out.seek(0)
    print(out.read().count(b"<heap nr="))
go.set()
"""


def arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", COUNT_ARENAS, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_limiting_the_arenas_keeps_threads_that_allocate_at_once_in_two():
    assert arenas("limit") <= MALLOC_ARENAS
    assert arenas("default") > MALLOC_ARENAS  # what the limit changes: one arena per thread


def thread_heaps(pid: int) -> int:
    """The heaps of glibc's thread arenas in a process's memory map: anonymous mappings that
    start on a 64 MiB boundary (glibc aligns each to its maximum size), the main arena aside."""
    count = 0
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            start = int(fields[0].split("-")[0], 16)
            if len(fields) == 5 and start % (64 * 2**20) == 0:  # no path: anonymous
                count += 1
    return count


@pytest.mark.server
def test_the_served_worker_runs_with_the_arena_limit(served):
    panel = served()
    # Its threads have started and allocated: the GPU sampler, the task runner, supervision.
    assert panel.api("GET", "/status").status_code == 200
    worker = psutil.Process(panel.process.pid).children()[0]
    deadline = time.monotonic() + 10
    while worker.num_threads() < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker.num_threads() >= 4
    assert thread_heaps(worker.pid) <= MALLOC_ARENAS - 1


#: Forty threads each allocate and free seven blocks of every size up to 1 KiB from malloc,
#: then stay alive (a thread's cache is given back when it ends) while glibc's ``mallinfo2``
#: tells how much of the heap is in use: the bytes in use beyond the start are printed.
HELD_AFTER_FREE = """
import ctypes, threading
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
done, stop = threading.Semaphore(0), threading.Event()
def churn():
    blocks = [libc.malloc(size) for size in range(24, 1024, 16) for _ in range(7)]
    for block in blocks:
        libc.free(block)
    done.release()
    stop.wait()
threads = [threading.Thread(target=churn) for _ in range(40)]
before = libc.mallinfo2().uordblks
for thread in threads:
    thread.start()
for _ in threads:
    done.acquire()
print(libc.mallinfo2().uordblks - before)
stop.set()
"""


def held_after_free(tunables: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    done = subprocess.run([sys.executable, "-c", HELD_AFTER_FREE], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_without_thread_caches_threads_hold_no_freed_blocks():
    """What the panel's tunables change: by default each thread keeps what it freed for itself
    (about 230 KiB for each of these threads) and glibc counts it as in use; without the
    caches, freed blocks are free for every thread."""
    assert held_after_free(None) > 4 * 2**20
    assert held_after_free(ALLOCATOR_TUNABLES) < 2**20


@pytest.mark.server
def test_the_served_panel_runs_without_thread_caches(served):
    """``open1panel-ai serve`` runs itself again with the tunables, so its worker has them."""
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, "GLIBC_TUNABLES": ""})  # none given
    worker = psutil.Process(panel.process.pid).children()[0]
    assert ALLOCATOR_TUNABLES in worker.environ().get("GLIBC_TUNABLES", "").split(":")
