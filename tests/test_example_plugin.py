"""The example plugins: examples/open1panel-ai-drm adds a menu page and a GPU provider;
examples/open1panel-ai-amd adds a GPU provider that reads AMD GPUs through amd-smi."""

import importlib.metadata
import os
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TOKEN

EXAMPLE = Path(__file__).parent.parent / "examples" / "open1panel-ai-drm"


@pytest.fixture
def sysfs(tmp_path):
    """A DRM sysfs tree with an AMD card (full readings), its connector, and a bare Intel card."""
    root = tmp_path / "drm"
    amd = root / "card0" / "device"
    (amd / "hwmon" / "hwmon3").mkdir(parents=True)
    for name, value in {
        "vendor": "0x1002",
        "gpu_busy_percent": "37",
        "mem_info_vram_total": str(8 << 30),
        "mem_info_vram_used": str(1 << 30),
        "uevent": "DRIVER=amdgpu\nPCI_SLOT_NAME=0000:03:00.0\n",
    }.items():
        (amd / name).write_text(value)
    (amd / "hwmon" / "hwmon3" / "temp1_input").write_text("54000")
    (amd / "hwmon" / "hwmon3" / "power1_average").write_text("45000000")
    (root / "card0-DP-1").mkdir()
    intel = root / "card1" / "device"
    intel.mkdir(parents=True)
    (intel / "vendor").write_text("0x8086")
    (intel / "uevent").write_text("DRIVER=i915\nPCI_SLOT_NAME=0000:00:02.0\n")
    return root


@pytest.fixture
def drm_host(make_host, panel_env, sysfs, monkeypatch):
    panel_env.setenv("OPEN1PANEL_AI_DRM_SYSFS_ROOT", str(sysfs))
    panel_env.delenv("OPEN1PANEL_AI_DISABLED_PLUGINS")
    installed = any(ep.name == "drm" for ep in importlib.metadata.entry_points(group="open1panel.plugins"))
    if installed:  # the test command installs the example like any other package
        yield make_host()
        return
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import open1panel_ai_drm

    yield make_host(("drm", open1panel_ai_drm))
    sys.modules.pop("open1panel_ai_drm", None)


def test_it_adds_a_menu_page_that_lists_the_cards(drm_host):
    client = drm_host.app.test_client()
    assert client.get("/drm/").status_code == 401  # the host's auth covers the plugin's page
    client.post("/login", data={"token": TOKEN})
    page = client.get("/drm/").get_data(as_text=True)
    assert 'data-menu="drm"' in page
    assert "card0" in page and "AMD" in page and "0000:03:00.0" in page and "1024 / 8192 MiB" in page
    assert "card1" in page and "i915" in page and "card0-DP-1" not in page


def test_it_adds_a_gpu_provider_that_auto_chooses_and_reads_the_cards(drm_host):
    status = (
        drm_host.app.test_client().get("/api/v2/ai/status", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
    )
    gpu = next(p for p in status["providers"] if p["kind"] == "gpu")
    assert (gpu["provider"], gpu["usable"]) == ("drm", True)
    sample = drm_host.app.extensions["open1panel_ai"].providers.get("gpu").sample()
    amd, intel = sample["devices"]
    assert (amd["utilization_gpu"], amd["temperature"], amd["power_draw_w"]) == (37.0, 54.0, 45.0)
    assert amd["unsupported"] == []
    assert intel["vendor"] == "Intel" and "utilization_gpu" in intel["unsupported"]


def test_its_readings_reach_the_gpu_api_and_the_metrics_under_the_cards_names(drm_host):
    client = drm_host.app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    amd, intel = client.get("/api/v2/ai/gpu", headers=headers).get_json()["devices"]
    assert (amd["power_draw_w"], amd["temperature"], amd["memory_used"]) == (45.0, 54.0, 1 << 30)
    assert (amd["lost"], amd["unsupported"]) == (False, [])
    assert intel["power_draw_w"] is None and intel["unsupported"] == [
        "memory_total",
        "memory_used",
        "power_draw_w",
        "temperature",
        "utilization_gpu",
    ]
    text = client.get("/api/v2/ai/metrics", headers=headers).get_data(as_text=True)
    series = {
        (s.name, s.labels["gpu"]): s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(("DCGM_FI_DEV", "open1panel_ai_gpu_up"))
    }
    assert series[("DCGM_FI_DEV_POWER_USAGE", "0")].value == 45
    assert series[("DCGM_FI_DEV_POWER_USAGE", "0")].labels["device"] == "card0"
    assert series[("open1panel_ai_gpu_up", "1")].labels["device"] == "card1"


def test_its_provider_says_why_it_cannot_work_without_cards(make_host, panel_env, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from open1panel_ai_drm import DrmGPUProvider

    from hookspecs.ai import ProviderUnavailable

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ProviderUnavailable, match="no GPU is listed"):
        DrmGPUProvider({"drm_sysfs_root": str(empty)}).probe()
    with pytest.raises(ProviderUnavailable, match="does not exist"):
        DrmGPUProvider({"drm_sysfs_root": str(tmp_path / "missing")}).probe()


AMD_EXAMPLE = Path(__file__).parent.parent / "examples" / "open1panel-ai-amd"


@pytest.fixture
def amd_panel(make_host, panel_env, monkeypatch):
    """Build a panel with the amd example enabled; by default the recorded amd-smi is on PATH."""
    panel_env.setenv("OPEN1PANEL_AI_DISABLED_PLUGINS", "drm")
    installed = any(ep.name == "amd" for ep in importlib.metadata.entry_points(group="open1panel.plugins"))

    def make(provider="amd-smi", amd_smi=AMD_EXAMPLE / "tests" / "bin"):
        panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", provider)
        monkeypatch.setenv("PATH", str(amd_smi), prepend=os.pathsep)
        if installed:  # the test command installs the example; its entry point loads it
            return make_host()
        monkeypatch.syspath_prepend(str(AMD_EXAMPLE))
        import open1panel_ai_amd

        return make_host(("amd", open1panel_ai_amd))

    yield make
    if not installed:
        sys.modules.pop("open1panel_ai_amd", None)


def test_the_amd_provider_serves_the_gpu_api_from_amd_smi(amd_panel):
    client = amd_panel().app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    status = client.get("/api/v2/ai/status", headers=headers).get_json()
    gpu = next(p for p in status["providers"] if p["kind"] == "gpu")
    assert (gpu["provider"], gpu["usable"], gpu["candidates"][0]["plugin"]) == ("amd-smi", True, "amd")
    sample = client.get("/api/v2/ai/gpu", headers=headers).get_json()
    assert (sample["provider"], sample["mode"], sample["versions"]) == ("amd-smi", "gpu", {"driver": "6.16.6"})
    busy, idle = sample["devices"]
    assert busy["name"] == "AMD Radeon AI PRO R9700" and busy["utilization_gpu"] == 97
    assert busy["memory_used"] == 29777 * 2**20 and busy["power_draw_w"] == 103 and busy["fan_speed"] == 38.82
    assert idle["unsupported"] == ["energy_mj", "fan_speed"] and idle["fan_speed"] is None
    checks = client.get("/api/v2/ai/gpu/checks", headers=headers).get_json()
    assert checks["provider"] == "amd-smi" and [c["ok"] for c in checks["checks"]] == [True, True]


def test_the_amd_provider_feeds_the_prometheus_metrics(amd_panel):
    response = amd_panel().app.test_client().get("/api/v2/ai/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    series = {
        (s.name, s.labels["gpu"]): s
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
        if s.name.startswith("DCGM_FI_DEV")
    }
    busy = series[("DCGM_FI_DEV_GPU_UTIL", "0")]
    assert busy.value == 97 and busy.labels["UUID"] == "b4ff7551-0000-1000-8059-a6be8f1c2d3e"
    assert busy.labels["modelName"] == "AMD Radeon AI PRO R9700" and busy.labels["pci_bus_id"] == "0000:03:00.0"
    assert busy.labels["device"] == "amd0" and series[("DCGM_FI_DEV_GPU_UTIL", "1")].labels["device"] == "amd1"
    assert series[("DCGM_FI_DEV_FB_USED", "0")].value == 29777  # MiB, as DCGM writes it
    assert series[("DCGM_FI_DEV_POWER_USAGE", "0")].value == 103
    assert (series[("DCGM_FI_DEV_GPU_TEMP", "0")].value, series[("DCGM_FI_DEV_FAN_SPEED", "0")].value) == (79, 38.82)
    assert ("DCGM_FI_DEV_FAN_SPEED", "1") not in series and series[("DCGM_FI_DEV_GPU_UTIL", "1")].value == 0


def test_without_amd_smi_the_status_page_says_why_and_auto_goes_on(amd_panel, tmp_path):
    client = amd_panel(provider="auto", amd_smi=tmp_path).app.test_client()
    status = client.get("/api/v2/ai/status", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
    gpu = next(p for p in status["providers"] if p["kind"] == "gpu")
    amd = next(c for c in gpu["candidates"] if c["name"] == "amd-smi")
    assert amd["usable"] is False and "no 'amd-smi' on the panel's PATH" in amd["reason"]
    assert "amd-smi-lib" in amd["fix"] and gpu["usable"] is True and gpu["provider"] != "amd-smi"
