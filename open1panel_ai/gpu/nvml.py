"""The ``nvml`` GPU provider: NVIDIA GPUs read through NVML (``nvidia-ml-py``, imported as
``pynvml``).

NVML is initialised once per process and device handles are kept, so a sample is a few driver
calls per GPU instead of a process start and an XML parse (``nvidia-smi -q -x``). Each reading
is taken on its own: one a board does not support becomes None and is listed in the device's
``unsupported``; a GPU that stops answering is reported as lost while the others keep reporting.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, cast

import psutil

from hookspecs.ai import ProviderUnavailable
from hookspecs.gpu import CompatibilityCheck, GPUDevice, GPUProcess, GPUSample
from open1panel_ai.i18n import Message

#: NVML's compute modes by number.
COMPUTE_MODES = {0: "default", 1: "exclusive_thread", 2: "prohibited", 3: "exclusive_process"}


def load_module() -> ModuleType:
    """Import ``pynvml``; :class:`ProviderUnavailable` with the fix when it is not installed."""
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        raise ProviderUnavailable(Message("gpu.nvml.not_installed"), Message("gpu.nvml.fix.not_installed")) from None


class Session:
    """NVML started once for this process, with the device handles and the fixed facts of each
    GPU (name, UUID, PCI bus id), which never change while the driver runs."""

    def __init__(self, nvml: ModuleType) -> None:
        self.nvml = nvml
        nvml.nvmlInit()
        self.count = nvml.nvmlDeviceGetCount()
        self.versions = {
            "driver": _text(_optional(nvml, "nvmlSystemGetDriverVersion")),
            "cuda": _cuda_version(_optional(nvml, "nvmlSystemGetCudaDriverVersion")),
        }
        self._handles: dict[int, Any] = {}
        self.identity: dict[int, dict[str, Any]] = {}

    def handle(self, index: int) -> Any:
        handle = self._handles.get(index)
        if handle is None:
            handle = self._handles[index] = self.nvml.nvmlDeviceGetHandleByIndex(index)
        return handle

    def forget(self, index: int) -> None:
        """Drop a lost GPU's handle, so the next sample asks the driver for it again."""
        self._handles.pop(index, None)


_lock = threading.Lock()
_session: Session | None = None


def session() -> Session:
    """This process's NVML session, started at the first call. A failed start is tried again at
    the next call (the driver may have been loaded meanwhile); a different ``pynvml`` module
    (reinstalled, or replaced in tests) gets a session of its own."""
    global _session
    nvml = load_module()
    with _lock:
        if _session is None or _session.nvml is not nvml:
            try:
                _session = Session(nvml)
            except nvml.NVMLError as exc:
                _session = None
                reason, fix = init_failure(nvml, exc)
                raise ProviderUnavailable(reason, fix) from None
        return _session


def init_failure(nvml: ModuleType, exc: Exception) -> tuple[str, str]:
    """Why ``nvmlInit`` failed, in words, and what to do about it."""
    code = getattr(exc, "value", None)
    known = {
        nvml.NVML_ERROR_LIBRARY_NOT_FOUND: "library_not_found",
        nvml.NVML_ERROR_DRIVER_NOT_LOADED: "driver_not_loaded",
        nvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH: "version_mismatch",
        nvml.NVML_ERROR_NO_PERMISSION: "no_permission",
    }.get(code)
    if known is None:
        return Message("gpu.nvml.init_failed", error=str(exc)), Message("gpu.nvml.fix.init_failed")
    return Message(f"gpu.nvml.{known}"), Message(f"gpu.nvml.fix.{known}")


class NvmlProvider:
    """NVIDIA GPUs through NVML."""

    name: ClassVar[str] = "nvml"

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.settings = settings

    def probe(self) -> None:
        current = session()
        if current.count == 0:
            raise ProviderUnavailable(Message("gpu.nvml.no_gpu"), Message("gpu.nvml.fix.no_gpu"))

    def sample(self) -> GPUSample:
        current = session()
        devices: list[GPUDevice] = []
        processes: dict[int, GPUProcess] = {}
        for index in range(current.count):
            devices.append(_read_device(current, index, processes))
        return {"devices": devices, "processes": list(processes.values()), "versions": dict(current.versions)}

    def checks(self) -> list[CompatibilityCheck]:
        return compatibility_checks()


class _Reader:
    """Takes the readings of one device, each on its own."""

    def __init__(self, nvml: ModuleType, handle: Any) -> None:
        self.nvml, self.handle = nvml, handle
        self.unsupported: list[str] = []
        # Codes that mean "this reading is not available here", not "this GPU is broken".
        self.per_field = {
            nvml.NVML_ERROR_NOT_SUPPORTED,
            nvml.NVML_ERROR_FUNCTION_NOT_FOUND,
            nvml.NVML_ERROR_NO_PERMISSION,
        }

    def __call__(self, fields: str | tuple[str, ...], function: str, *args: Any) -> Any:
        call = getattr(self.nvml, function, None)
        try:
            if call is None:  # an old binding without this function
                raise self.nvml.NVMLError(self.nvml.NVML_ERROR_FUNCTION_NOT_FOUND)
            return call(self.handle, *args)
        except self.nvml.NVMLError as exc:
            if exc.value not in self.per_field:
                raise
            self.unsupported.extend([fields] if isinstance(fields, str) else fields)
            return None


def _read_device(current: Session, index: int, processes: dict[int, GPUProcess]) -> GPUDevice:
    nvml = current.nvml
    identity = current.identity.get(index, {"name": None, "uuid": None, "pci_bus_id": None})
    try:
        handle = current.handle(index)
        read = _Reader(nvml, handle)
        if index not in current.identity:
            pci = read("pci_bus_id", "nvmlDeviceGetPciInfo")
            identity = current.identity[index] = {
                "name": _text(read("name", "nvmlDeviceGetName")),
                "uuid": _text(read("uuid", "nvmlDeviceGetUUID")),
                "pci_bus_id": _text(getattr(pci, "busId", None)),
            }
        device: dict[str, Any] = {"index": index, **identity, "lost": False, "error": None}
        device.update(_readings(nvml, read))
        _collect_processes(nvml, read, index, processes)
    except nvml.NVMLError as exc:
        current.forget(index)
        return cast(
            GPUDevice,
            {
                "index": index,
                **identity,
                "lost": True,
                "unsupported": [],
                "error": f"The GPU stopped answering ({exc}); check dmesg for Xid errors and reset or reboot.",
            },
        )
    device["unsupported"] = sorted(set(read.unsupported))
    return cast(GPUDevice, device)


def _readings(nvml: ModuleType, read: _Reader) -> dict[str, Any]:
    memory = read(("memory_total", "memory_used", "memory_free"), "nvmlDeviceGetMemoryInfo")
    rates = read(("utilization_gpu", "utilization_memory"), "nvmlDeviceGetUtilizationRates")
    encoder = read("encoder_utilization", "nvmlDeviceGetEncoderUtilization")
    decoder = read("decoder_utilization", "nvmlDeviceGetDecoderUtilization")
    power = read("power_draw_w", "nvmlDeviceGetPowerUsage")
    limit = read("power_limit_w", "nvmlDeviceGetEnforcedPowerLimit")
    pstate = read("pstate", "nvmlDeviceGetPerformanceState")
    persistence = read("persistence_mode", "nvmlDeviceGetPersistenceMode")
    compute_mode = read("compute_mode", "nvmlDeviceGetComputeMode")
    mig = read("mig_mode", "nvmlDeviceGetMigMode")
    return {
        "utilization_gpu": rates.gpu if rates is not None else None,
        "utilization_memory": rates.memory if rates is not None else None,
        "encoder_utilization": encoder[0] if encoder is not None else None,
        "decoder_utilization": decoder[0] if decoder is not None else None,
        "memory_total": memory.total if memory is not None else None,
        "memory_used": memory.used if memory is not None else None,
        "memory_free": memory.free if memory is not None else None,
        "temperature": read("temperature", "nvmlDeviceGetTemperature", nvml.NVML_TEMPERATURE_GPU),
        "fan_speed": read("fan_speed", "nvmlDeviceGetFanSpeed"),
        "power_draw_w": power / 1000 if power is not None else None,
        "power_limit_w": limit / 1000 if limit is not None else None,
        "energy_mj": read("energy_mj", "nvmlDeviceGetTotalEnergyConsumption"),
        "clock_sm": read("clock_sm", "nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_SM),
        "clock_memory": read("clock_memory", "nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_MEM),
        "pstate": f"P{pstate}" if pstate is not None else None,
        "persistence_mode": bool(persistence) if persistence is not None else None,
        "compute_mode": COMPUTE_MODES.get(compute_mode, str(compute_mode)) if compute_mode is not None else None,
        "ecc_errors_uncorrected": read(
            "ecc_errors_uncorrected",
            "nvmlDeviceGetTotalEccErrors",
            nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            nvml.NVML_VOLATILE_ECC,
        ),
        "mig_mode": bool(mig[0]) if mig is not None else None,
    }


def _collect_processes(nvml: ModuleType, read: _Reader, index: int, processes: dict[int, GPUProcess]) -> None:
    """Add this GPU's compute and graphics processes to ``processes``, one entry per pid."""
    for kind, function in (
        ("compute", "nvmlDeviceGetComputeRunningProcesses"),
        ("graphics", "nvmlDeviceGetGraphicsRunningProcesses"),
    ):
        for entry in read(f"{kind}_processes", function) or []:
            pid = entry.pid
            process = processes.get(pid)
            if process is None:
                process = processes[pid] = cast(
                    GPUProcess, {"pid": pid, "kinds": [], "gpus": [], "used_memory": None, **_who(pid)}
                )
            if kind not in process["kinds"]:
                process["kinds"].append(kind)
            if index not in process["gpus"]:
                process["gpus"].append(index)
            used = getattr(entry, "usedGpuMemory", None)  # None on MIG and under WDDM
            if used is not None:
                process["used_memory"] = (process["used_memory"] or 0) + used


def _who(pid: int) -> dict[str, Any]:
    """The name and user of ``pid`` as psutil sees them. NVML reports host pids, so in a
    container without ``--pid=host`` the process is usually not visible: that is not an error."""
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            return {"name": process.name(), "user": _username(process), "visible": True}
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return {"name": None, "user": None, "visible": False}


def _username(process: psutil.Process) -> str | None:
    try:
        return process.username()
    except (psutil.AccessDenied, KeyError):  # KeyError: a uid without a passwd entry
        return None


def _optional(nvml: ModuleType, function: str) -> Any:
    call = getattr(nvml, function, None)
    if call is None:
        return None
    try:
        return call()
    except nvml.NVMLError:
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):  # bindings before 11.5 return bytes
        return value.decode(errors="replace")
    return value


def _cuda_version(value: int | None) -> str | None:
    """NVML gives CUDA as an int: 12040 means 12.4."""
    if value is None:
        return None
    return f"{value // 1000}.{value % 1000 // 10}"


# -- the compatibility checks -----------------------------------------------------------

#: The pynvml reinstall that replaces an old copy by NVIDIA's binding.
REINSTALL = "pip uninstall -y pynvml && pip install --force-reinstall nvidia-ml-py"


def check(name: str, ok: bool | None, detail: str, fix: str = "") -> CompatibilityCheck:
    return {"name": name, "ok": ok, "detail": detail, "fix": fix}


def compatibility_checks() -> list[CompatibilityCheck]:
    """Every check of whether NVML can be used here, in order (see :mod:`open1panel_ai.gpu.doctor`)."""
    try:
        module = load_module()
    except ProviderUnavailable as exc:
        return [check("library", False, exc.reason, exc.fix)]
    results = [check("library", True, f"pynvml found at {getattr(module, '__file__', '?')}")]
    results.append(binding_check(module))
    try:
        current = session()
    except ProviderUnavailable as exc:
        results.append(check("driver", False, exc.reason, exc.fix))
        return results
    results.append(check("driver", True, f"NVIDIA driver {current.versions['driver'] or 'of unknown version'}"))
    cuda = current.versions["cuda"]
    results.append(
        check(
            "cuda",
            cuda is not None,
            f"CUDA {cuda}" if cuda else "The driver does not report a CUDA version.",
            "" if cuda else "Update the NVIDIA driver to one that supports CUDA.",
        )
    )
    sample = NvmlProvider({}).sample()
    results.append(devices_check(sample["devices"]))
    results.append(process_check(sample["processes"]))
    return results


def binding_check(module: Any) -> CompatibilityCheck:
    """An old ``pynvml.py`` (copied into other packages, or the deprecated ``pynvml``
    distribution before it wrapped nvidia-ml-py) can shadow NVIDIA's binding and misread newer
    drivers. NVIDIA's binding has ``_nvmlGetFunctionPointer``; old copies do not."""
    if hasattr(module, "_nvmlGetFunctionPointer"):
        return check("binding", True, "NVIDIA's own binding (nvidia-ml-py)")
    return check(
        "binding",
        False,
        f"An old pynvml module at {getattr(module, '__file__', '?')} shadows NVIDIA's "
        f"binding; some readings may be wrong or missing.",
        REINSTALL,
    )


def devices_check(devices: list[GPUDevice]) -> CompatibilityCheck:
    if not devices:
        return check(
            "devices",
            False,
            "The driver reports no GPU.",
            "Check that the card is seated and powered and that nvidia-smi lists it.",
        )
    lost = [d for d in devices if d["lost"]]
    names = ", ".join(f"{d['index']}: {d['name'] or '?'}" for d in devices)
    if lost:
        return check(
            "devices",
            False,
            f"{len(devices)} GPU(s) ({names}); lost: " + ", ".join(str(d["index"]) for d in lost),
            "A lost GPU needs a reset (nvidia-smi -r) or a reboot; dmesg shows its Xid error.",
        )
    return check("devices", True, f"{len(devices)} GPU(s): {names}")


def process_check(processes: list[GPUProcess]) -> CompatibilityCheck:
    """NVML reports host pids. Inside a container without the host's pid namespace those pids
    mean nothing here, so process names and users cannot be shown."""
    container = in_container()
    where = "in a container" if container else "on the host"
    if not processes:
        return check(
            "process_info",
            None,
            f"No GPU process is running, so process visibility cannot be checked ({where}).",
            "Run the container with --pid=host to see GPU processes." if container else "",
        )
    hidden = [p["pid"] for p in processes if not p["visible"]]
    if not hidden:
        return check("process_info", True, f"All {len(processes)} GPU process(es) are visible ({where}).")
    return check(
        "process_info",
        False,
        f"{len(hidden)} of {len(processes)} GPU process(es) are not visible here "
        f"(pids {', '.join(map(str, hidden[:5]))}) ({where}).",
        "Run the panel's container with --pid=host (or on the host) to see their names and users."
        if container
        else "Run the panel as root to see other users' processes.",
    )


def in_container() -> bool:
    """Whether this process runs in a container (Docker, Podman, Kubernetes, LXC)."""
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists() or os.environ.get("container"):
        return True
    try:
        cgroup = Path("/proc/1/cgroup").read_text()
    except OSError:
        return False
    return any(word in cgroup for word in ("docker", "kubepods", "containerd", "lxc", "podman"))
