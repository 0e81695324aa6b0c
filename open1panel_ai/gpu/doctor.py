"""The GPU compatibility check: what was checked, what it found, and how to fix what is missing.

Shown on the GPU page and by ``open1panel-ai gpu doctor``; the checks themselves are NVML's
(:func:`open1panel_ai.gpu.nvml.compatibility_checks`), this module shows them. Each check is
``{"name", "ok", "detail", "fix"}``; ``ok`` is None when the check could not tell (nothing to
look at yet). Checks stop at the first one that rules NVML out, since the rest depend on it.
"""

from __future__ import annotations

from hookspecs.gpu import CompatibilityCheck
from open1panel_ai.gpu import nvml
from open1panel_ai.gpu.nvml import REINSTALL, check
from open1panel_ai.terminal import inert

__all__ = ["REINSTALL", "check", "render", "run"]

#: Every check, in order; ``{"name", "ok", "detail", "fix"}`` each.
run = nvml.compatibility_checks


def render(checks: list[CompatibilityCheck]) -> str:
    """The checks as text for the command line. Details quote the driver, device names and
    file paths, so each is made :func:`~open1panel_ai.terminal.inert` for the terminal."""
    marks = {True: "ok ", False: "!! ", None: "?  "}
    lines = []
    for item in checks:
        lines.append(f"{marks[item['ok']]} {item['name']:<13} {inert(item['detail'])}")
        fix = item.get("fix")
        if fix and item["ok"] is not True:
            lines.append(f"{'':17}fix: {inert(fix)}")
    return "\n".join(lines)
