"""The static checks, run as part of the one test command (``scripts/test``, which CI runs):

- ``mypy --strict hookspecs``: the contract is typed completely;
- ``mypy``: ``hookspecs`` and ``open1panel_ai`` as configured in pyproject.toml's
  ``[tool.mypy]`` (every function of the package annotated: ``disallow_untyped_defs``);
- ``ruff check .``: the lint rules of ``[tool.ruff.lint]``;
- ``ruff format --check .``: every file as ``ruff format`` writes it.

Each check is the tool's own command run from the repository root (ruff's findings one per
line), so a developer reproduces a failure by running the command the failure message names; the
message carries the tool's whole output.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent

#: (name, argv after ``python -m``) of each check.
CHECKS = [
    ("mypy --strict hookspecs", ["mypy", "--strict", "hookspecs"]),
    ("mypy", ["mypy"]),
    ("ruff check .", ["ruff", "check", "--no-cache", "--output-format", "concise", "."]),
    ("ruff format --check .", ["ruff", "format", "--check", "--no-cache", "--output-format", "concise", "."]),
]


@pytest.mark.parametrize("argv", [argv for _, argv in CHECKS], ids=[name for name, _ in CHECKS])
def test_the_static_check_finds_nothing(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"`{' '.join(argv)}` exited with {done.returncode}:\n{done.stdout}{done.stderr}"
