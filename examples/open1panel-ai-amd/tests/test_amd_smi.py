"""The amd-smi provider against recorded amd-smi output (amd-smi 26.2, ROCm 7.2, two cards).

``tests/bin/amd-smi`` prints the recordings in ``tests/recorded``; each test puts it (or a
broken amd-smi of its own) first on PATH. Run with ``pytest examples/open1panel-ai-amd/tests``.
"""

import sys
from pathlib import Path

import open1panel_ai_amd
import pytest
from open1panel_ai_amd import AmdSmiProvider, gpu_entries, reading

from hookspecs.ai import ProviderUnavailable

RECORDED_AMD_SMI = Path(__file__).parent / "bin"
MIB = 2**20


@pytest.fixture
def recorded(monkeypatch):
    monkeypatch.setenv("PATH", str(RECORDED_AMD_SMI), prepend=":")


def broken_amd_smi(folder: Path, body: str) -> Path:
    """An ``amd-smi`` in ``folder`` running the Python ``body``."""
    program = folder / "amd-smi"
    program.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    program.chmod(0o755)
    return folder


def test_a_sample_has_every_reading_amd_smi_gives(recorded):
    provider = AmdSmiProvider({"data_dir": "/tmp"})
    provider.probe()
    sample = provider.sample()
    busy = sample["devices"][0]
    assert (busy["index"], busy["name"], busy["pci_bus_id"]) == (0, "AMD Radeon AI PRO R9700", "0000:03:00.0")
    assert busy["uuid"] == "b4ff7551-0000-1000-8059-a6be8f1c2d3e" and busy["lost"] is False
    assert (busy["utilization_gpu"], busy["utilization_memory"]) == (97, 41)
    assert (busy["memory_total"], busy["memory_used"], busy["memory_free"]) == (32624 * MIB, 29777 * MIB, 2847 * MIB)
    assert (busy["temperature"], busy["fan_speed"]) == (79, 38.82)
    assert (busy["power_draw_w"], busy["power_limit_w"], busy["energy_mj"]) == (103, 300, 2761392613)
    assert (busy["clock_sm"], busy["clock_memory"]) == (2350, 1258)
    assert busy["unsupported"] == []
    assert sample["versions"] == {"driver": "6.16.6"} and sample["processes"] == []


def test_what_a_card_does_not_report_is_none_and_named(recorded):
    idle = AmdSmiProvider({}).sample()["devices"][1]
    assert idle["temperature"] == 41  # no edge sensor: the hotspot instead
    assert idle["fan_speed"] is None and idle["energy_mj"] is None
    assert idle["unsupported"] == ["energy_mj", "fan_speed"]
    assert idle["memory_used"] == 283 * MIB and idle["power_draw_w"] == 35


def test_older_amd_smi_prints_a_plain_list():
    entries = [{"gpu": 0, "power": {"socket_power": {"value": 12, "unit": "W"}}}, {"gpu": "bad"}]
    assert gpu_entries(entries) == entries[:1] and gpu_entries({"gpu_data": entries}) == entries[:1]
    assert reading(entries[0], "power", "socket_power") == 12
    assert reading({"fan": {"usage": "N/A"}}, "fan", "usage") is None
    assert reading({"vram": {"size": {"value": 2, "unit": "GB"}}}, "vram", "size") == 2 * 2**30


def test_a_gpu_missing_from_the_metrics_is_lost_and_the_others_stay(recorded, tmp_path, monkeypatch):
    provider = AmdSmiProvider({})
    provider.sample()  # the fixed facts of both cards are known now
    only_first = (Path(__file__).parent / "recorded" / "metric.json").read_text().replace('"gpu": 1', '"gpu": 7')
    (tmp_path / "metric.json").write_text(only_first)
    monkeypatch.setenv(
        "PATH", str(broken_amd_smi(tmp_path, f"print(open({str(tmp_path / 'metric.json')!r}).read())")), prepend=":"
    )
    first, second = provider.sample()["devices"]
    assert first["lost"] is False and first["utilization_gpu"] == 97
    assert second["lost"] is True and "dmesg" in second["error"] and second["name"] == "AMD Radeon AI PRO R9700"


def test_when_amd_smi_metric_fails_every_gpu_is_lost_with_its_words(recorded, tmp_path, monkeypatch):
    provider = AmdSmiProvider({})
    provider.sample()
    broken_amd_smi(tmp_path, "sys.stderr.write('AMD-SMI: device busy\\n'); sys.exit(16)")
    monkeypatch.setenv("PATH", str(tmp_path), prepend=":")
    devices = provider.sample()["devices"]
    assert [d["lost"] for d in devices] == [True, True]
    assert all("'amd-smi metric' failed with exit code 16: AMD-SMI: device busy" in d["error"] for d in devices)


def test_without_amd_smi_the_probe_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProviderUnavailable, match="no 'amd-smi' on the panel's PATH") as caught:
        AmdSmiProvider({}).probe()
    assert "amd-smi-lib" in caught.value.fix
    assert AmdSmiProvider({}).checks()[0] == {
        "name": "amd-smi",
        "ok": False,
        "detail": "not found on the panel's PATH",
        "fix": caught.value.fix,
    }


def test_a_failing_amd_smi_makes_the_probe_fail_with_its_words(monkeypatch, tmp_path):
    broken_amd_smi(tmp_path, "sys.stderr.write('AMD-SMI: amdgpu driver not loaded\\n'); sys.exit(255)")
    monkeypatch.setenv("PATH", str(tmp_path), prepend=":")
    with pytest.raises(ProviderUnavailable, match="exit code 255: AMD-SMI: amdgpu driver not loaded") as caught:
        AmdSmiProvider({}).probe()
    assert "render" in caught.value.fix


def test_a_hung_amd_smi_is_given_up_on(monkeypatch, tmp_path):
    monkeypatch.setattr(open1panel_ai_amd, "TIMEOUT_SECONDS", 0.5)
    broken_amd_smi(tmp_path, "time.sleep(30)")
    monkeypatch.setenv("PATH", str(tmp_path), prepend=":")
    with pytest.raises(ProviderUnavailable, match="did not answer within 0.5 s"):
        AmdSmiProvider({}).probe()


def test_no_gpu_listed_is_unavailable(monkeypatch, tmp_path):
    broken_amd_smi(tmp_path, "print('[]')")
    monkeypatch.setenv("PATH", str(tmp_path), prepend=":")
    with pytest.raises(ProviderUnavailable, match="lists no AMD GPU"):
        AmdSmiProvider({}).probe()
