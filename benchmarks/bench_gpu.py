"""GPU monitoring costs.

1. One sample of every GPU through NVML against one ``nvidia-smi -q -x`` run plus its XML parse
   (what 1Panel does per request). Needs an NVIDIA GPU; skipped without one.
2. The sampler's CPU use at a 1 s interval (sample, history write, push), with the fake
   three-GPU NVML of the tests and with the CPU provider, against starting one process per
   sample (``true``: the floor of any sampler that runs ``nvidia-smi``).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from types import SimpleNamespace
from xml.etree import ElementTree

from open1panel_ai.config import Settings
from open1panel_ai.gpu.cpu import CpuProvider
from open1panel_ai.gpu.nvml import NvmlProvider
from open1panel_ai.gpu.service import GPUService
from open1panel_ai.store import Store

SAMPLER_SECONDS = 20


def timed(call, repeat: int) -> float:
    """Mean seconds per call."""
    call()
    start = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - start) / repeat


def nvidia_smi_xml() -> None:
    xml = subprocess.run(["nvidia-smi", "-q", "-x"], capture_output=True, check=True).stdout
    root = ElementTree.fromstring(xml)
    for gpu in root.iter("gpu"):
        gpu.findtext("fb_memory_usage/used"), gpu.findtext("utilization/gpu_util")


def nvml_versus_nvidia_smi() -> None:
    print("-- one sample of every GPU: NVML vs nvidia-smi -q -x + parse")
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        print(f"skipped: no usable NVIDIA GPU here ({exc})")
        return
    if shutil.which("nvidia-smi") is None:
        print("skipped: nvidia-smi is not installed")
        return
    provider = NvmlProvider({})
    provider.probe()
    devices = len(provider.sample()["devices"])
    nvml = timed(provider.sample, 200)
    smi = timed(nvidia_smi_xml, 10)
    print(
        f"{devices} GPU(s): NVML sample {nvml * 1e3:.2f} ms, nvidia-smi -q -x + parse "
        f"{smi * 1e3:.1f} ms -> NVML is {smi / nvml:.0f}x cheaper"
    )


class _Listening:
    """Realtime with one listener on the gpu topic: the sampler runs at its live interval."""

    def __init__(self) -> None:
        self.published = 0

    def watch(self, prefix, callback) -> None:
        pass

    def listeners(self, topic: str) -> int:
        return 1

    def publish(self, event, payload, topics) -> None:
        self.published += 1


def sampler_cpu(provider, store_dir: str) -> tuple[float, int]:
    """Fraction of one core the process spends while the sampler runs at 1 s (the process does
    nothing else meanwhile)."""
    settings = Settings({"gpu_interval": "1", "gpu_history_interval": "1", "data_dir": store_dir})
    store = Store(os.path.join(store_dir, f"bench-{provider.name}.sqlite3"))
    realtime = _Listening()
    context = SimpleNamespace(
        settings=settings,
        store=store,
        realtime=realtime,
        services={},
        providers=SimpleNamespace(get=lambda kind: provider),
    )
    service = GPUService(context)
    before, start = time.process_time(), time.monotonic()
    service.start()
    time.sleep(SAMPLER_SECONDS)
    service.stop()
    used, wall = time.process_time() - before, time.monotonic() - start
    store.close()
    return used / wall, realtime.published


def process_per_sample_cpu() -> float:
    """Fraction of one core spent starting one process a second (children included)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            subprocess.run(["true"], check=True)
            stop.wait(1)

    before, children, start = time.process_time(), _children_seconds(), time.monotonic()
    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(SAMPLER_SECONDS)
    stop.set()
    thread.join()
    used = time.process_time() - before + _children_seconds() - children
    return used / (time.monotonic() - start)


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sampler_costs() -> None:
    print(f"-- the sampler at a 1 s interval, {SAMPLER_SECONDS} s each (share of one core)")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.gpu.fake_pynvml import three_gpus

    baseline = process_per_sample_cpu()
    print(f"baseline, one process start per sample: {baseline * 100:.3f}%")
    real_pynvml = sys.modules.get("pynvml")
    sys.modules["pynvml"] = three_gpus(os.getpid()).module()
    try:
        with tempfile.TemporaryDirectory() as folder:
            fake, pushes = sampler_cpu(NvmlProvider({}), folder)
            print(
                f"nvml provider (fake 3-GPU NVML): {fake * 100:.3f}% over {pushes} samples "
                f"-> {fake / baseline:.2f}x the baseline"
            )
    finally:
        if real_pynvml is not None:
            sys.modules["pynvml"] = real_pynvml
        else:
            del sys.modules["pynvml"]
    with tempfile.TemporaryDirectory() as folder:
        cpu, pushes = sampler_cpu(CpuProvider({}), folder)
        print(f"cpu provider: {cpu * 100:.3f}% over {pushes} samples -> {cpu / baseline:.2f}x the baseline")
    one_sample = timed(CpuProvider({}).sample, 50)
    print(f"(one CPU-provider sample alone: {one_sample * 1e3:.2f} ms)")


def main() -> None:
    nvml_versus_nvidia_smi()
    sampler_costs()
