"""The Prometheus text: DCGM exporter names, units and labels for GPUs, no series for an
unsupported reading, and gauges for loaded Ollama models and MCP servers."""

from prometheus_client.parser import text_string_to_metric_families

from open1panel_ai.gpu import metrics
from open1panel_ai.gpu.nvml import NvmlProvider


def parse(text: bytes) -> dict[str, list]:
    """Metric family name → its samples, through prometheus_client's own parser."""
    return {family.name: family.samples for family in text_string_to_metric_families(text.decode())}


def gpu_sample():
    reading = NvmlProvider({}).sample()
    return {"provider": "nvml", "mode": "gpu", "cpu": None, **reading}


def test_gpu_gauges_use_dcgm_names_units_and_labels(machine):
    families = parse(metrics.render(gpu_sample(), "box-1", None, None))
    used = {s.labels["gpu"]: s for s in families["DCGM_FI_DEV_FB_USED"]}
    assert used["0"].value == 10 * 1024  # MiB, not bytes
    assert used["0"].labels == {
        "gpu": "0",
        "UUID": "GPU-00000000-0000-0000-0000-000000000000",
        "pci_bus_id": "00000000:07:00.0",
        "device": "nvidia0",
        "modelName": "NVIDIA A100-SXM4-80GB",
        "Hostname": "box-1",
    }
    power = {s.labels["gpu"]: s.value for s in families["DCGM_FI_DEV_POWER_USAGE"]}
    assert power["0"] == 123.456  # W, not mW
    assert {s.labels["gpu"]: s.value for s in families["DCGM_FI_DEV_GPU_UTIL"]}["0"] == 45
    assert families["DCGM_FI_DEV_SM_CLOCK"][0].value == 1410
    assert families["DCGM_FI_DEV_MEM_CLOCK"][0].value == 1593
    assert families["DCGM_FI_DEV_GPU_TEMP"][0].value == 51
    text = metrics.render(gpu_sample(), "box-1", None, None).decode()
    assert "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION untyped" in text
    energy = {s.labels["gpu"]: s for s in families["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]}
    assert energy["0"].name == "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION" and energy["0"].value == 9_876_543


def test_only_nvidia_gpus_get_an_nvidia_device_label():
    """NVML keeps DCGM's ``nvidia<index>``; a provider names its devices in ``device``, and a
    provider that does not gets the neutral ``gpu<index>``."""
    devices = [
        {"index": 0, "name": "Radeon", "uuid": "R-0", "lost": False, "utilization_gpu": 5, "device": "card0"},
        {"index": 1, "name": "Arc", "uuid": "A-1", "lost": False, "utilization_gpu": 6},
    ]
    sample = {"provider": "drm", "mode": "gpu", "cpu": None, "devices": devices}
    families = parse(metrics.render(sample, "box-1", None, None))
    assert {s.labels["gpu"]: s.labels["device"] for s in families["DCGM_FI_DEV_GPU_UTIL"]} == {
        "0": "card0",
        "1": "gpu1",
    }
    assert {s.labels["device"] for s in families["open1panel_ai_gpu_up"]} == {"card0", "gpu1"}


def test_an_unsupported_reading_has_no_series_at_all(machine):
    families = parse(metrics.render(gpu_sample(), "box-1", None, None))
    assert {s.labels["gpu"] for s in families["DCGM_FI_DEV_FAN_SPEED"]} == {"0", "2"}
    assert {s.labels["gpu"] for s in families["DCGM_FI_DEV_ENC_UTIL"]} == {"0", "2"}
    assert all(s.value >= 0 for samples in families.values() for s in samples)


def test_a_lost_gpu_is_down_and_exports_no_readings(machine):
    machine.gpus[1].lost = True
    families = parse(metrics.render(gpu_sample(), "box-1", None, None))
    assert {s.labels["gpu"]: s.value for s in families["open1panel_ai_gpu_up"]} == {"0": 1, "1": 0, "2": 1}
    assert "1" not in {s.labels["gpu"] for s in families["DCGM_FI_DEV_GPU_UTIL"]}


def test_ollama_models_and_mcp_servers_get_gauges():
    running = [
        {"endpoint": "local", "name": "llama3:8b", "size": 6_000_000_000, "size_vram": 6_000_000_000},
        {"endpoint": "local", "name": "phi3:mini", "size": 2_000_000_000, "size_vram": 0},
    ]
    servers = [
        {"id": "time", "name": "Time", "status": "running"},
        {"id": "git", "name": "Git", "status": "stopped"},
        {"id": "fetch", "name": "Fetch", "status": "unhealthy"},
    ]
    families = parse(metrics.render(None, "box-1", running, servers))
    vram = {s.labels["model"]: s.value for s in families["open1panel_ai_ollama_model_vram_bytes"]}
    assert vram == {"llama3:8b": 6e9, "phi3:mini": 0}
    assert families["open1panel_ai_ollama_models_loaded"][0].value == 2
    up = {s.labels["id"]: s.value for s in families["open1panel_ai_mcp_server_up"]}
    assert up == {"time": 1, "git": 0, "fetch": 0}
    assert not any(name.startswith("DCGM") for name in families)


def test_absent_features_add_nothing():
    assert metrics.render(None, "box-1", None, None) == b""
