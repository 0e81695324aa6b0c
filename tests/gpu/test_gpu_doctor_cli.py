"""``open1panel-ai gpu doctor``: every check with its fix, and an exit code scripts can use."""

import subprocess
import sys

from open1panel_ai import cli
from tests.gpu import fake_pynvml as fake
from tests.gpu.fake_pynvml import FakeGPU, FakeNVML


def test_doctor_on_a_gpu_machine_lists_each_check_and_exits_0(machine, capsys):
    assert cli.main(["gpu", "doctor"]) == 0
    out = capsys.readouterr().out
    for line in (
        "ok  library",
        "ok  binding",
        "ok  driver        NVIDIA driver 550.54.15",
        "ok  cuda          CUDA 12.4",
        "ok  devices       3 GPU(s)",
        "!!  process_info",
        "GPU monitoring: NVML works.",
    ):
        assert line in out, line
    assert "fix: Run the panel" in out


def test_doctor_without_a_loaded_driver_gives_the_fix_and_exits_1(install_nvml, capsys):
    install_nvml(FakeNVML([FakeGPU()], init_error=fake.NVML_ERROR_LIB_RM_VERSION_MISMATCH))
    assert cli.main(["gpu", "doctor"]) == 1
    out = capsys.readouterr().out
    assert "!!  driver" in out and "fix: Reboot so the updated kernel driver is loaded." in out
    assert "the panel monitors the CPU instead" in out


def test_doctor_warns_about_a_shadowing_pynvml(install_nvml, capsys):
    install_nvml(FakeNVML([FakeGPU()], old_binding=True))
    cli.main(["gpu", "doctor"])
    out = capsys.readouterr().out
    assert "!!  binding" in out and "shadows NVIDIA's binding" in out
    assert "pip install --force-reinstall nvidia-ml-py" in out


def test_the_installed_command_runs_on_this_machine():
    """The real nvidia-ml-py on whatever this machine has: it must answer, never crash."""
    result = subprocess.run(
        [sys.executable, "-m", "open1panel_ai", "gpu", "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    assert result.stdout.startswith("ok  library") and "GPU monitoring:" in result.stdout
