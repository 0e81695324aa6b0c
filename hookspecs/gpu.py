"""The values a GPU monitoring provider returns.

A sample is JSON on the wire (``GET /gpu``, the ``gpu`` Socket.IO event, the history), so its
parts are :class:`~typing.TypedDict`\\ s. Readings use the names and units of the GPU
documentation: percentages 0-100, bytes, °C, W, MHz, mJ. A reading a device does not support
is None and its name is listed in that device's ``unsupported``; one failing device never hides
the others: it is ``lost`` with an ``error``.
"""

# No ``from __future__ import annotations``: TypedDict reads ``NotRequired`` at class creation.
from typing import NotRequired, TypedDict

#: Every reading a device may carry besides its identity, for ``unsupported`` and ``/metrics``.
READINGS = (
    "utilization_gpu",
    "utilization_memory",
    "encoder_utilization",
    "decoder_utilization",
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
    "pstate",
    "persistence_mode",
    "compute_mode",
    "ecc_errors_uncorrected",
    "mig_mode",
)


class GPUDevice(TypedDict):
    """One accelerator, read now."""

    index: int
    name: str | None
    uuid: str | None
    #: True when the device stopped answering; ``error`` then says what to do.
    lost: bool
    #: Names of readings this device does not report (their values are None).
    unsupported: list[str]
    error: NotRequired[str | None]
    #: The kernel's name (``card0``), the ``device`` label of ``/metrics``; without it the label
    #: is the provider's prefix and the index (``nvidia0``, ``gpu0``).
    device: NotRequired[str]
    pci_bus_id: NotRequired[str | None]
    utilization_gpu: NotRequired[float | None]
    utilization_memory: NotRequired[float | None]
    encoder_utilization: NotRequired[float | None]
    decoder_utilization: NotRequired[float | None]
    memory_total: NotRequired[int | None]
    memory_used: NotRequired[int | None]
    memory_free: NotRequired[int | None]
    temperature: NotRequired[float | None]
    fan_speed: NotRequired[float | None]
    power_draw_w: NotRequired[float | None]
    power_limit_w: NotRequired[float | None]
    energy_mj: NotRequired[int | None]
    clock_sm: NotRequired[float | None]
    clock_memory: NotRequired[float | None]
    pstate: NotRequired[str | None]
    persistence_mode: NotRequired[bool | None]
    compute_mode: NotRequired[str | None]
    ecc_errors_uncorrected: NotRequired[int | None]
    mig_mode: NotRequired[bool | None]


class GPUProcess(TypedDict):
    """A process using accelerators."""

    pid: int
    #: ``"compute"`` and/or ``"graphics"``.
    kinds: list[str]
    #: Indexes of the devices it uses.
    gpus: list[int]
    #: Bytes of device memory, None where the driver does not say (MIG, WDDM).
    used_memory: int | None
    name: NotRequired[str | None]
    user: NotRequired[str | None]
    #: False when the pid is not visible from here (a container without the host's pids).
    visible: NotRequired[bool]


class CPUReading(TypedDict):
    """The host's processors and memory, read by a provider in CPU mode."""

    utilization: float
    count: int | None
    #: 1, 5 and 15 minute load averages.
    load: list[float | None]
    memory_total: int
    memory_used: int
    memory_available: int


class GPUSample(TypedDict):
    """One reading of every device (``GPUProvider.sample``).

    A provider that reads the host instead of accelerators (CPU mode) returns no devices and
    adds ``cpu`` (its readings), ``reason`` (why no GPU is used) and ``fix``.
    """

    devices: list[GPUDevice]
    processes: list[GPUProcess]
    #: Driver and library versions by name (``driver``, ``cuda``, ``nvml``).
    versions: dict[str, str | None]
    cpu: NotRequired[CPUReading]
    reason: NotRequired[str]
    fix: NotRequired[str]


class CompatibilityCheck(TypedDict):
    """One check of whether GPUs can be monitored here (``GPUProvider.checks``)."""

    name: str
    #: None when the check could not run (an earlier one failed).
    ok: bool | None
    detail: str
    #: What to do when not ``ok``; empty or None when nothing is to be done.
    fix: NotRequired[str | None]


__all__ = ["CPUReading", "CompatibilityCheck", "GPUDevice", "GPUProcess", "GPUSample", "READINGS"]
