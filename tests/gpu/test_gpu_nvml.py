"""The nvml provider against a fake NVML: every reading, per-field errors, a lost GPU, MIG,
invisible pids, init failures with their fixes, and NVML started once."""

import os

import psutil
import pytest

from hookspecs.ai import ProviderUnavailable
from open1panel_ai.gpu import doctor
from open1panel_ai.gpu.cpu import CpuProvider
from open1panel_ai.gpu.nvml import NvmlProvider
from tests.gpu import fake_pynvml as fake
from tests.gpu.fake_pynvml import FakeGPU, FakeNVML


def sample():
    provider = NvmlProvider({})
    provider.probe()
    return provider.sample()


def test_a_healthy_gpu_reports_every_reading_in_panel_units(machine):
    reading = sample()
    assert reading["versions"] == {"driver": "550.54.15", "cuda": "12.4"}
    a100 = reading["devices"][0]
    assert a100 == {
        "index": 0,
        "name": "NVIDIA A100-SXM4-80GB",
        "uuid": "GPU-00000000-0000-0000-0000-000000000000",
        "pci_bus_id": "00000000:07:00.0",
        "lost": False,
        "error": None,
        "utilization_gpu": 45,
        "utilization_memory": 20,
        "encoder_utilization": 3,
        "decoder_utilization": 1,
        "memory_total": 80 * 2**30,
        "memory_used": 10 * 2**30,
        "memory_free": 70 * 2**30,
        "temperature": 51,
        "fan_speed": 30,
        "power_draw_w": 123.456,
        "power_limit_w": 400.0,
        "energy_mj": 9_876_543,
        "clock_sm": 1410,
        "clock_memory": 1593,
        "pstate": "P0",
        "persistence_mode": True,
        "compute_mode": "default",
        "ecc_errors_uncorrected": 0,
        "mig_mode": False,
        "unsupported": [],
    }


def test_nvml_starts_once_and_device_handles_are_reused(machine):
    for _ in range(5):
        sample()
    assert machine.init_calls == 1
    assert machine.handle_calls == 3


def test_unsupported_and_missing_functions_are_null_and_listed_while_the_rest_stays(machine):
    rtx = sample()["devices"][1]
    assert rtx["fan_speed"] is None and rtx["ecc_errors_uncorrected"] is None
    assert rtx["encoder_utilization"] is None  # FunctionNotFound: binding newer than driver
    assert rtx["unsupported"] == ["ecc_errors_uncorrected", "encoder_utilization", "fan_speed"]
    assert rtx["temperature"] == 51 and rtx["memory_total"] == 24 * 2**30 and rtx["lost"] is False


def test_an_old_binding_without_a_function_marks_that_reading_unsupported(install_nvml):
    machine = install_nvml(FakeNVML([FakeGPU()]))
    module = __import__("sys").modules["pynvml"]
    del module.nvmlDeviceGetTotalEnergyConsumption
    device = sample()["devices"][0]
    assert device["energy_mj"] is None and device["unsupported"] == ["energy_mj"]
    assert machine.init_calls == 1


def test_a_lost_gpu_is_reported_lost_while_the_others_keep_reporting(machine):
    first = sample()
    machine.gpus[1].lost = True
    reading = sample()
    lost = reading["devices"][1]
    assert lost["lost"] is True and "stopped answering" in lost["error"]
    assert lost["name"] == "NVIDIA GeForce RTX 4090"  # known from before it was lost
    assert [d["lost"] for d in reading["devices"]] == [False, True, False]
    assert reading["devices"][0] == first["devices"][0] | {"unsupported": []}
    machine.gpus[1].lost = False  # back after a reset: its handle is fetched again
    assert sample()["devices"][1]["lost"] is False


def test_an_unknown_error_on_one_gpu_counts_as_lost(machine):
    machine.gpus[2].failing["GetTemperature"] = fake.NVML_ERROR_UNKNOWN
    devices = sample()["devices"]
    assert [d["lost"] for d in devices] == [False, False, True]


def test_processes_merge_by_pid_with_mig_memory_null_and_invisible_pids(machine):
    processes = {p["pid"]: p for p in sample()["processes"]}
    me = processes[os.getpid()]
    assert me["kinds"] == ["compute", "graphics"] and me["gpus"] == [0, 2]
    # 4 GiB compute + 256 MiB graphics on GPU 0; the MIG GPU 2 reports no memory.
    assert me["used_memory"] == 4 * 2**30 + 256 * 2**20
    assert me["name"] == psutil.Process().name() and me["visible"] is True
    assert me["user"] == psutil.Process().username()
    ghost = processes[4_194_999]
    assert ghost == {
        "pid": 4_194_999,
        "kinds": ["compute"],
        "gpus": [0],
        "used_memory": 2**30,
        "name": None,
        "user": None,
        "visible": False,
    }


def test_a_mig_process_alone_has_null_memory(install_nvml):
    install_nvml(FakeNVML([FakeGPU(mig_mode=1, compute=[fake.FakeProcess(os.getpid(), None)])]))
    reading = sample()
    assert reading["devices"][0]["mig_mode"] is True
    assert reading["processes"][0]["used_memory"] is None


@pytest.mark.parametrize(
    ("code", "reason", "fix"),
    [
        (fake.NVML_ERROR_LIBRARY_NOT_FOUND, "libnvidia-ml.so.1) is not installed", "Install the NVIDIA driver"),
        (fake.NVML_ERROR_DRIVER_NOT_LOADED, "kernel module is not loaded", "modprobe nvidia"),
        (fake.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "different versions", "Reboot"),
        (fake.NVML_ERROR_NO_PERMISSION, "/dev/nvidia*", "video"),
    ],
)
def test_an_init_failure_says_why_and_how_to_fix_it_and_the_cpu_provider_says_so(install_nvml, code, reason, fix):
    machine = install_nvml(FakeNVML([FakeGPU()], init_error=code))
    with pytest.raises(ProviderUnavailable) as failure:
        NvmlProvider({}).probe()
    assert reason in failure.value.reason and fix in failure.value.fix
    cpu = CpuProvider({})
    cpu.probe()
    reading = cpu.sample()
    assert reading["devices"] == [] and reading["reason"] == failure.value.reason
    assert reading["fix"] == failure.value.fix
    assert reading["cpu"]["count"] == psutil.cpu_count() and reading["cpu"]["memory_total"] > 0
    # The driver gets loaded: the next try starts NVML.
    machine.init_error = None
    NvmlProvider({}).probe()


def test_no_gpu_behind_a_working_driver_is_unavailable_too(install_nvml):
    install_nvml(FakeNVML([]))
    with pytest.raises(ProviderUnavailable, match="reports no GPU"):
        NvmlProvider({}).probe()


def test_doctor_lists_every_check_on_a_healthy_machine(machine):
    checks = {c["name"]: c for c in doctor.run()}
    assert list(checks) == ["library", "binding", "driver", "cuda", "devices", "process_info"]
    assert checks["driver"] == {"name": "driver", "ok": True, "detail": "NVIDIA driver 550.54.15", "fix": ""}
    assert checks["cuda"]["detail"] == "CUDA 12.4"
    assert checks["devices"]["ok"] is True and "3 GPU(s)" in checks["devices"]["detail"]
    info = checks["process_info"]
    assert info["ok"] is False and "1 of 2" in info["detail"] and "4194999" in info["detail"]
    assert info["fix"]


def test_doctor_stops_at_the_driver_when_nvml_cannot_start(install_nvml):
    install_nvml(FakeNVML(init_error=fake.NVML_ERROR_DRIVER_NOT_LOADED))
    checks = doctor.run()
    assert [c["name"] for c in checks] == ["library", "binding", "driver"]
    assert checks[-1]["ok"] is False and "modprobe" in checks[-1]["fix"]


def test_doctor_warns_about_an_old_pynvml_shadowing_nvidias_binding(install_nvml):
    install_nvml(FakeNVML([FakeGPU()], old_binding=True))
    binding = next(c for c in doctor.run() if c["name"] == "binding")
    assert binding["ok"] is False and "shadows" in binding["detail"]
    assert binding["fix"] == doctor.REINSTALL


def test_doctor_reports_a_lost_gpu(machine):
    machine.gpus[0].lost = True
    devices = next(c for c in doctor.run() if c["name"] == "devices")
    assert devices["ok"] is False and "lost: 0" in devices["detail"] and "reboot" in devices["fix"]
