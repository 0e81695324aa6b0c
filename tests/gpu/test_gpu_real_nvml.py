"""The nvml provider on a real NVIDIA GPU. Skipped unless NVML starts on this machine; run with
``pytest -m nvidia_gpu tests/gpu`` on a GPU machine."""

import importlib
import shutil
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hookspecs.gpu import READINGS
from open1panel_ai.gpu import doctor, metrics
from open1panel_ai.gpu.nvml import NvmlProvider

pytestmark = pytest.mark.nvidia_gpu


@pytest.fixture(autouse=True)
def real_nvml(monkeypatch):
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    pynvml = importlib.import_module("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        pytest.skip(f"no usable NVIDIA GPU here: {exc}")
    return pynvml


def test_every_gpu_reports_each_reading_or_lists_it_unsupported():
    provider = NvmlProvider({})
    provider.probe()
    sample = provider.sample()
    print(sample)
    assert sample["devices"] and sample["versions"]["driver"]
    for device in sample["devices"]:
        assert device["lost"] is False and device["name"] and device["uuid"].startswith(("GPU-", "MIG-"))
        assert device["memory_total"] > 0
        assert device["utilization_gpu"] is None or 0 <= device["utilization_gpu"] <= 100
        for reading in READINGS:
            assert (device[reading] is None) == (reading in device["unsupported"]), reading
        if device["power_draw_w"] is not None:
            assert 1 < device["power_draw_w"] < 2000  # watts, not milliwatts


@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="nvidia-smi is not installed")
def test_nvml_sees_the_gpus_nvidia_smi_lists():
    listed = subprocess.run(
        ["nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader"], capture_output=True, text=True, check=True
    ).stdout.split()
    sample = NvmlProvider({}).sample()
    assert [d["uuid"] for d in sample["devices"]] == listed


def test_doctor_passes_and_metrics_parse():
    checks = {c["name"]: c for c in doctor.run()}
    print(doctor.render(list(checks.values())))
    assert all(checks[name]["ok"] for name in ("library", "binding", "driver", "cuda", "devices"))
    sample = {"mode": "gpu", "cpu": None, **NvmlProvider({}).sample()}
    families = {
        f.name: f for f in text_string_to_metric_families(metrics.render(sample, "gpu-host", None, None).decode())
    }
    assert len(families["DCGM_FI_DEV_FB_USED"].samples) == len(sample["devices"])
