"""The ``cpu`` provider: the host's CPU, load and memory, for machines without a usable GPU.

It always works, and it is tried after every GPU provider. Its samples say plainly why no GPU
is used (the NVML failure and its fix), so the GPU page can tell the admin instead of showing
empty charts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar

import psutil

from hookspecs.ai import ProviderUnavailable
from hookspecs.gpu import CompatibilityCheck, GPUSample
from open1panel_ai.gpu import doctor, nvml
from open1panel_ai.i18n import Message


class CpuProvider:
    """The host's processors and memory through psutil."""

    name: ClassVar[str] = "cpu"

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.settings = settings
        self.reason, self.fix = why_no_gpu()
        psutil.cpu_percent(interval=None)  # starts the interval the first sample measures

    def probe(self) -> None:
        """psutil reads /proc, which every Linux host has."""

    def sample(self) -> GPUSample:
        memory = psutil.virtual_memory()
        load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
        return {
            "devices": [],
            "processes": [],
            "versions": {},
            "cpu": {
                "utilization": psutil.cpu_percent(interval=None),
                "count": psutil.cpu_count(),
                "load": list(load),
                "memory_total": memory.total,
                "memory_used": memory.total - memory.available,
                "memory_available": memory.available,
            },
            "reason": self.reason,
            "fix": self.fix,
        }

    def checks(self) -> list[CompatibilityCheck]:
        return doctor.run()


def why_no_gpu() -> tuple[str, str]:
    """Why the NVML provider cannot be used here, and the fix."""
    try:
        nvml.NvmlProvider({}).probe()
    except ProviderUnavailable as exc:
        return exc.reason, exc.fix
    return Message("gpu.cpu.chosen"), Message("gpu.cpu.fix.chosen")
