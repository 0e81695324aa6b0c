"""The example plugin in examples/open1panel-ai-drm adds a menu page and a GPU provider."""

import importlib.metadata
import sys
from pathlib import Path

import pytest

from tests.conftest import TOKEN

EXAMPLE = Path(__file__).parent.parent / "examples" / "open1panel-ai-drm"


@pytest.fixture
def sysfs(tmp_path):
    """A DRM sysfs tree with an AMD card (full readings), its connector, and a bare Intel card."""
    root = tmp_path / "drm"
    amd = root / "card0" / "device"
    (amd / "hwmon" / "hwmon3").mkdir(parents=True)
    for name, value in {"vendor": "0x1002", "gpu_busy_percent": "37",
                        "mem_info_vram_total": str(8 << 30), "mem_info_vram_used": str(1 << 30),
                        "uevent": "DRIVER=amdgpu\nPCI_SLOT_NAME=0000:03:00.0\n"}.items():
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
    status = drm_host.app.test_client().get(
        "/api/v2/ai/status", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
    gpu = next(p for p in status["providers"] if p["kind"] == "gpu")
    assert (gpu["provider"], gpu["usable"]) == ("drm", True)
    sample = drm_host.app.extensions["open1panel_ai"].providers.get("gpu").sample()
    amd, intel = sample["devices"]
    assert (amd["utilization_gpu"], amd["temperature"], amd["power_draw"]) == (37.0, 54.0, 45.0)
    assert amd["unsupported"] == []
    assert intel["vendor"] == "Intel" and "utilization_gpu" in intel["unsupported"]


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
