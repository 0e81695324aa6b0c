"""The "write a provider" walk-through of docs/providers.md works when followed literally:
its files are copied out of the page into a package, and the conformance kit passes on it."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent
GUIDE = ROOT / "docs" / "providers.md"
BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
FILE = re.compile(r"^# file: (\S+)$")


def files_of(text: str) -> dict[str, str]:
    """Each fenced block that names its file (``# file: path`` on its first or second line),
    without that line."""
    found = {}
    for block in BLOCK.findall(text):
        lines = block.splitlines(keepends=True)
        for i, line in enumerate(lines[:2]):
            named = FILE.match(line.strip())
            if named:
                found[named.group(1)] = "".join(lines[:i] + lines[i + 1 :])
                break
    return found


def test_the_guide_names_the_files_of_a_whole_package():
    assert set(files_of(GUIDE.read_text())) == {
        "pyproject.toml",
        "open1panel_ai_smi/__init__.py",
        "tests/bin/nvidia-smi",
        "tests/conftest.py",
        "tests/test_contract.py",
    }


def test_the_walkthrough_package_passes_the_conformance_kit(tmp_path):
    package = tmp_path / "open1panel-ai-smi"
    for name, text in files_of(GUIDE.read_text()).items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    tool = package / "tests" / "bin" / "nvidia-smi"
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)  # "Make it executable"
    env = {**os.environ, "PYTHONPATH": str(package)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-p", "no:cacheprovider", "-q", "-rA"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    for rule in (
        "test_name",
        "test_members",
        "test_probe",
        "test_unavailable",
        "test_sample_types",
        "test_checks_types",
        "test_a_reading_the_card_lacks_is_none_and_unsupported",
    ):
        assert re.search(rf"PASSED \S*{rule}\b", report), f"{rule} did not pass:\n{report}"
