"""A stand-in for NVIDIA's ``pynvml`` module (from ``nvidia-ml-py``) with the edge cases of real
machines: no driver, readings a board does not support, a binding newer than the driver, a GPU
that falls off the bus, a MIG device that hides per-process memory, and pids from another pid
namespace.

Only the names the panel uses exist; the error codes and constants have NVML's real values, so
code that works here works with the real module. Build a machine with :class:`FakeGPU` objects
and install :meth:`FakeNVML.module` as ``sys.modules["pynvml"]``.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_UNKNOWN = 999

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """Like pynvml's: carries the NVML return code in ``value``."""

    def __init__(self, value: int) -> None:
        super().__init__(_MESSAGES.get(value, f"NVML error {value}"))
        self.value = value


@dataclass
class FakeProcess:
    pid: int
    usedGpuMemory: int | None


@dataclass
class FakeGPU:
    """One card. ``failing`` maps a reading (the NVML function name without ``nvmlDevice``,
    e.g. ``"GetFanSpeed"``) to the error code it raises; ``lost`` makes every call raise
    GPU_IS_LOST."""

    name: str = "NVIDIA A100-SXM4-80GB"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    bus_id: str = "00000000:07:00.0"
    memory_total: int = 80 * 2**30
    memory_used: int = 10 * 2**30
    utilization: tuple[int, int] = (45, 20)
    encoder: int = 3
    decoder: int = 1
    temperature: int = 51
    fan: int = 30
    power_mw: int = 123_456
    power_limit_mw: int = 400_000
    energy_mj: int = 9_876_543
    clocks: dict[int, int] = field(default_factory=lambda: {0: 1410, 1: 1410, 2: 1593})
    pstate: int = 0
    persistence: int = 1
    compute_mode: int = 0
    ecc_uncorrected: int = 0
    mig_mode: int = 0
    compute: list[FakeProcess] = field(default_factory=list)
    graphics: list[FakeProcess] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)
    lost: bool = False


class FakeNVML:
    """A machine's NVML: its GPUs, driver versions, and what ``nvmlInit`` does."""

    def __init__(
        self,
        gpus: list[FakeGPU] | None = None,
        *,
        init_error: int | None = None,
        driver: str = "550.54.15",
        cuda: int = 12040,
        old_binding: bool = False,
    ) -> None:
        self.gpus = list(gpus or [])
        self.init_error = init_error
        self.driver = driver
        self.cuda = cuda
        self.old_binding = old_binding
        self.init_calls = 0
        self.handle_calls = 0
        self.calls = 0

    def _gpu(self, handle: int, reading: str) -> FakeGPU:
        self.calls += 1
        gpu = self.gpus[handle]
        if gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if reading in gpu.failing:
            raise NVMLError(gpu.failing[reading])
        return gpu

    def module(self) -> types.ModuleType:
        fake = self
        module = types.ModuleType("pynvml")
        module.__file__ = "/fake/site-packages/pynvml.py"
        for name, value in globals().items():
            if name.startswith("NVML_"):
                setattr(module, name, value)
        module.NVMLError = NVMLError
        module.NVML_TEMPERATURE_GPU = 0
        module.NVML_CLOCK_GRAPHICS, module.NVML_CLOCK_SM, module.NVML_CLOCK_MEM = 0, 1, 2
        module.NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
        module.NVML_VOLATILE_ECC = 0
        if not fake.old_binding:
            module._nvmlGetFunctionPointer = lambda name: None

        def init():
            fake.init_calls += 1
            if fake.init_error is not None:
                raise NVMLError(fake.init_error)

        def handle(index):
            fake.handle_calls += 1
            if fake.gpus[index].lost:
                raise NVMLError(NVML_ERROR_GPU_IS_LOST)
            return index

        def memory(h):
            gpu = fake._gpu(h, "GetMemoryInfo")
            return types.SimpleNamespace(
                total=gpu.memory_total, used=gpu.memory_used, free=gpu.memory_total - gpu.memory_used
            )

        def utilization(h):
            gpu = fake._gpu(h, "GetUtilizationRates")
            return types.SimpleNamespace(gpu=gpu.utilization[0], memory=gpu.utilization[1])

        def reader(reading, value):
            return lambda h, *args: value(fake._gpu(h, reading), *args)

        functions = {
            "nvmlInit": init,
            "nvmlShutdown": lambda: None,
            "nvmlSystemGetDriverVersion": lambda: fake.driver,
            "nvmlSystemGetCudaDriverVersion": lambda: fake.cuda,
            "nvmlDeviceGetCount": lambda: len(fake.gpus),
            "nvmlDeviceGetHandleByIndex": handle,
            "nvmlDeviceGetName": reader("GetName", lambda g: g.name),
            "nvmlDeviceGetUUID": reader("GetUUID", lambda g: g.uuid),
            "nvmlDeviceGetPciInfo": reader("GetPciInfo", lambda g: types.SimpleNamespace(busId=g.bus_id)),
            "nvmlDeviceGetMemoryInfo": memory,
            "nvmlDeviceGetUtilizationRates": utilization,
            "nvmlDeviceGetEncoderUtilization": reader("GetEncoderUtilization", lambda g: [g.encoder, 167000]),
            "nvmlDeviceGetDecoderUtilization": reader("GetDecoderUtilization", lambda g: [g.decoder, 167000]),
            "nvmlDeviceGetTemperature": reader("GetTemperature", lambda g, sensor: g.temperature),
            "nvmlDeviceGetFanSpeed": reader("GetFanSpeed", lambda g: g.fan),
            "nvmlDeviceGetPowerUsage": reader("GetPowerUsage", lambda g: g.power_mw),
            "nvmlDeviceGetEnforcedPowerLimit": reader("GetEnforcedPowerLimit", lambda g: g.power_limit_mw),
            "nvmlDeviceGetTotalEnergyConsumption": reader("GetTotalEnergyConsumption", lambda g: g.energy_mj),
            "nvmlDeviceGetClockInfo": reader("GetClockInfo", lambda g, kind: g.clocks[kind]),
            "nvmlDeviceGetPerformanceState": reader("GetPerformanceState", lambda g: g.pstate),
            "nvmlDeviceGetPersistenceMode": reader("GetPersistenceMode", lambda g: g.persistence),
            "nvmlDeviceGetComputeMode": reader("GetComputeMode", lambda g: g.compute_mode),
            "nvmlDeviceGetTotalEccErrors": reader("GetTotalEccErrors", lambda g, kind, counter: g.ecc_uncorrected),
            "nvmlDeviceGetMigMode": reader("GetMigMode", lambda g: [g.mig_mode, g.mig_mode]),
            "nvmlDeviceGetComputeRunningProcesses": reader("GetComputeRunningProcesses", lambda g: list(g.compute)),
            "nvmlDeviceGetGraphicsRunningProcesses": reader("GetGraphicsRunningProcesses", lambda g: list(g.graphics)),
        }
        for name, function in functions.items():
            setattr(module, name, function)
        return module


def three_gpus(own_pid: int) -> FakeNVML:
    """The machine most tests use: a healthy A100 running a process of ours and one from another
    pid namespace; a consumer card without fan, ECC or encoder readings; and a MIG-enabled H100
    whose process memory NVML does not report."""
    return FakeNVML(
        [
            FakeGPU(
                compute=[FakeProcess(own_pid, 4 * 2**30), FakeProcess(4_194_999, 2**30)],
                graphics=[FakeProcess(own_pid, 256 * 2**20)],
            ),
            FakeGPU(
                name="NVIDIA GeForce RTX 4090",
                uuid="GPU-11111111-1111-1111-1111-111111111111",
                bus_id="00000000:08:00.0",
                memory_total=24 * 2**30,
                memory_used=2**30,
                failing={
                    "GetFanSpeed": NVML_ERROR_NOT_SUPPORTED,
                    "GetTotalEccErrors": NVML_ERROR_NOT_SUPPORTED,
                    "GetEncoderUtilization": NVML_ERROR_FUNCTION_NOT_FOUND,
                },
            ),
            FakeGPU(
                name="NVIDIA H100 80GB HBM3",
                uuid="GPU-22222222-2222-2222-2222-222222222222",
                bus_id="00000000:09:00.0",
                mig_mode=1,
                compute=[FakeProcess(own_pid, None)],
            ),
        ]
    )
