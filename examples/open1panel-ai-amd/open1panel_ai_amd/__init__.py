"""Example open1panel plugin: AMD GPUs read through ROCm's ``amd-smi`` command line tool.

The provider runs ``amd-smi <command> --json`` (an argument list, never a shell, with a
timeout). The facts that do not change while the driver runs (name, UUID, PCI address, power
limit, driver version) come from ``amd-smi list`` and ``amd-smi static`` once; every sample is
one ``amd-smi metric``. Readings a card does not report (amd-smi prints ``"N/A"``) are None and
listed in the device's ``unsupported``, as the GPU feature expects of every provider.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any, ClassVar

from hookspecs import hookimpl
from hookspecs.ai import ProviderUnavailable

#: The program the provider runs, looked up on the panel's PATH.
AMD_SMI = "amd-smi"
#: How long one amd-smi call may take; it answers in well under a second on a healthy machine.
TIMEOUT_SECONDS = 10
#: amd-smi writes memory in binary units under decimal names ("MB" is 2**20 bytes).
BYTES_PER_UNIT = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}
#: The readings this provider fills in; those a card does not report go to ``unsupported``.
READINGS = (
    "utilization_gpu",
    "utilization_memory",
    "memory_total",
    "memory_used",
    "memory_free",
    "temperature",
    "fan_speed",
    "power_draw_w",
    "power_limit_w",
    "energy_mj",
    "clock_sm",
    "clock_memory",
)
INSTALL_FIX = (
    "Install ROCm's amd-smi (the amd-smi-lib package) and put its folder (usually /opt/rocm/bin) on the panel's PATH."
)
ACCESS_FIX = (
    "Run 'amd-smi list' as the panel's user: the amdgpu driver must be loaded and the "
    "user needs the 'render' and 'video' groups."
)


class AmdSmiError(RuntimeError):
    """amd-smi failed, timed out, or printed something that is not its JSON."""


def run_amd_smi(command: str) -> list[dict[str, Any]]:
    """The per-GPU entries ``amd-smi <command> --json`` prints."""
    program = shutil.which(AMD_SMI)
    if program is None:
        raise AmdSmiError(f"{AMD_SMI} is not on the panel's PATH")
    try:
        done = subprocess.run(
            [program, command, "--json"], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise AmdSmiError(f"'amd-smi {command}' did not answer within {TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise AmdSmiError(f"'amd-smi {command}' failed with exit code {done.returncode}: {said[0]}")
    try:
        return gpu_entries(json.loads(done.stdout))
    except ValueError:
        raise AmdSmiError(f"'amd-smi {command} --json' did not print JSON") from None


def gpu_entries(document: Any) -> list[dict[str, Any]]:
    """The GPUs of an amd-smi JSON document: a plain list up to amd-smi 25, wrapped as
    ``{"gpu_data": [...]}`` by ``static`` and ``metric`` from amd-smi 26 (ROCm 7)."""
    if isinstance(document, dict):
        document = document.get("gpu_data", [])
    if not isinstance(document, list):
        return []
    return [entry for entry in document if isinstance(entry, dict) and isinstance(entry.get("gpu"), int)]


def reading(entry: Mapping[str, Any], *path: str) -> float | None:
    """The number at ``path``, or None where amd-smi has none ("N/A", missing).

    amd-smi writes a measured value as ``{"value": v, "unit": u}`` and sometimes as a bare
    number; memory is converted to bytes by its unit.
    """
    value: Any = entry
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    unit = None
    if isinstance(value, Mapping):
        value, unit = value.get("value"), value.get("unit")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value * BYTES_PER_UNIT[unit] if unit in BYTES_PER_UNIT else value


def _first(*values: float | None) -> float | None:
    return next((value for value in values if value is not None), None)


def identities(listed: list[dict[str, Any]], static: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per GPU index, what stays fixed while the driver runs, from ``list`` and ``static``."""
    by_index = {entry["gpu"]: entry for entry in static}
    result = {}
    for entry in listed:
        fixed = by_index.get(entry["gpu"], {})
        name = fixed.get("asic", {}).get("market_name") if isinstance(fixed.get("asic"), dict) else None
        limit = _first(reading(fixed, "limit", "socket_power"), reading(fixed, "limit", "ppt0", "socket_power_limit"))
        result[entry["gpu"]] = {
            "name": name if isinstance(name, str) and name != "N/A" else None,
            "uuid": entry.get("uuid"),
            "pci_bus_id": entry.get("bdf"),
            "power_limit_w": limit,
            "vram_bytes": reading(fixed, "vram", "size"),
        }
    return result


def device(index: int, fixed: Mapping[str, Any], metric: Mapping[str, Any] | None) -> dict[str, Any]:
    """One GPU in the GPU feature's shape (``hookspecs.ai.GPUProvider.sample``)."""
    base = {
        "index": index,
        "device": f"amd{index}",
        "name": fixed["name"],
        "uuid": fixed["uuid"],
        "pci_bus_id": fixed["pci_bus_id"],
    }
    if metric is None:
        return {
            **base,
            "lost": True,
            "unsupported": [],
            "error": "amd-smi metric reports nothing for this GPU; check 'dmesg | grep amdgpu' "
            "and reset the GPU or reboot.",
        }
    energy_joules = reading(metric, "energy", "total_energy_consumption")
    readings = {
        "utilization_gpu": reading(metric, "usage", "gfx_activity"),
        "utilization_memory": reading(metric, "usage", "umc_activity"),
        "memory_total": _whole(_first(reading(metric, "mem_usage", "total_vram"), fixed["vram_bytes"])),
        "memory_used": _whole(reading(metric, "mem_usage", "used_vram")),
        "memory_free": _whole(reading(metric, "mem_usage", "free_vram")),
        # The edge sensor is the one NVML's GPU temperature compares to; Instinct cards have
        # none and report the hotspot (junction) instead.
        "temperature": _first(reading(metric, "temperature", "edge"), reading(metric, "temperature", "hotspot")),
        "fan_speed": reading(metric, "fan", "usage"),
        "power_draw_w": _first(
            reading(metric, "power", "socket_power"), reading(metric, "power", "average_socket_power")
        ),
        "power_limit_w": fixed["power_limit_w"],
        "energy_mj": _whole(energy_joules * 1000) if energy_joules is not None else None,
        "clock_sm": reading(metric, "clock", "gfx_0", "clk"),
        "clock_memory": reading(metric, "clock", "mem_0", "clk"),
    }
    return {
        **base,
        "lost": False,
        "error": None,
        **readings,
        "unsupported": sorted(name for name in READINGS if readings[name] is None),
    }


def _whole(value: float | None) -> int | None:
    return round(value) if value is not None else None


class AmdSmiProvider:
    """AMD GPUs through ROCm's ``amd-smi``; choose it with ``OPEN1PANEL_AI_GPU_PROVIDER=amd-smi``."""

    name: ClassVar[str] = "amd-smi"

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.settings = settings
        self._fixed: dict[int, dict[str, Any]] | None = None
        self._versions: dict[str, str | None] = {}

    def probe(self) -> None:
        if shutil.which(AMD_SMI) is None:
            raise ProviderUnavailable(
                "amd-smi is not installed: there is no 'amd-smi' on the panel's PATH.", INSTALL_FIX
            )
        try:
            listed = run_amd_smi("list")
        except AmdSmiError as exc:
            raise ProviderUnavailable(f"{exc}.", ACCESS_FIX) from None
        if not listed:
            raise ProviderUnavailable(
                "amd-smi lists no AMD GPU.", "Check that the amdgpu driver is loaded: lsmod | grep amdgpu."
            )

    def sample(self) -> dict[str, Any]:
        """Every GPU ``amd-smi list`` knows. When ``amd-smi metric`` fails, each of them is
        shown lost with amd-smi's words, so the page says what went wrong."""
        fixed = self._fixed_facts()
        try:
            metrics = {entry["gpu"]: entry for entry in run_amd_smi("metric")}
            failure = None
        except AmdSmiError as exc:
            metrics, failure = {}, f"{exc}. {ACCESS_FIX}"
        devices = [device(index, fixed[index], metrics.get(index)) for index in sorted(fixed)]
        if failure is not None:
            for lost in devices:
                lost["error"] = failure
        return {"devices": devices, "processes": [], "versions": dict(self._versions)}

    def checks(self) -> list[dict[str, Any]]:
        program = shutil.which(AMD_SMI)
        checks = [
            {
                "name": "amd-smi",
                "ok": program is not None,
                "detail": program or "not found on the panel's PATH",
                "fix": "" if program else INSTALL_FIX,
            }
        ]
        if program is not None:
            try:
                count = len(run_amd_smi("list"))
                checks.append(
                    {
                        "name": "devices",
                        "ok": count > 0,
                        "detail": f"{count} AMD GPU(s) listed",
                        "fix": "" if count else "Check that the amdgpu driver is loaded.",
                    }
                )
            except AmdSmiError as exc:
                checks.append({"name": "devices", "ok": False, "detail": str(exc), "fix": ACCESS_FIX})
        return checks

    def _fixed_facts(self) -> dict[int, dict[str, Any]]:
        """Name, UUID, PCI address and power limit of each GPU, read at the first sample."""
        if self._fixed is None:
            static = run_amd_smi("static")
            self._fixed = identities(run_amd_smi("list"), static)
            drivers = [entry.get("driver") for entry in static if isinstance(entry.get("driver"), dict)]
            self._versions = {"driver": drivers[0].get("version") if drivers else None}
        return self._fixed


@hookimpl
def ai_gpu_providers():
    return [AmdSmiProvider]
