"""The GPU compatibility check: what was checked, what it found, and how to fix what is missing.

Shown on the GPU page and by ``open1panel-ai gpu doctor``. Each check is
``{"name", "ok", "detail", "fix"}``; ``ok`` is None when the check could not tell (nothing to
look at yet). Checks stop at the first one that rules NVML out, since the rest depend on it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hookspecs.ai import ProviderUnavailable
from open1panel_ai.gpu import nvml as nvml_provider
from open1panel_ai.terminal import inert

#: The pynvml reinstall that replaces an old copy by NVIDIA's binding.
REINSTALL = "pip uninstall -y pynvml && pip install --force-reinstall nvidia-ml-py"


def check(name: str, ok: bool | None, detail: str, fix: str = "") -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail, "fix": fix}


def run() -> list[dict[str, Any]]:
    """Every check, in order."""
    try:
        module = nvml_provider.load_module()
    except ProviderUnavailable as exc:
        return [check("library", False, exc.reason, exc.fix)]
    results = [check("library", True, f"pynvml found at {getattr(module, '__file__', '?')}")]
    results.append(binding_check(module))
    try:
        session = nvml_provider.session()
    except ProviderUnavailable as exc:
        results.append(check("driver", False, exc.reason, exc.fix))
        return results
    results.append(check("driver", True, f"NVIDIA driver {session.versions['driver'] or 'of unknown version'}"))
    cuda = session.versions["cuda"]
    results.append(check("cuda", cuda is not None,
                         f"CUDA {cuda}" if cuda else "The driver does not report a CUDA version.",
                         "" if cuda else "Update the NVIDIA driver to one that supports CUDA."))
    sample = nvml_provider.NvmlProvider({}).sample()
    results.append(devices_check(sample["devices"]))
    results.append(process_check(sample["processes"]))
    return results


def binding_check(module: Any) -> dict[str, Any]:
    """An old ``pynvml.py`` (copied into other packages, or the deprecated ``pynvml``
    distribution before it wrapped nvidia-ml-py) can shadow NVIDIA's binding and misread newer
    drivers. NVIDIA's binding has ``_nvmlGetFunctionPointer``; old copies do not."""
    if hasattr(module, "_nvmlGetFunctionPointer"):
        return check("binding", True, "NVIDIA's own binding (nvidia-ml-py)")
    return check("binding", False,
                 f"An old pynvml module at {getattr(module, '__file__', '?')} shadows NVIDIA's "
                 f"binding; some readings may be wrong or missing.", REINSTALL)


def devices_check(devices: list[dict[str, Any]]) -> dict[str, Any]:
    if not devices:
        return check("devices", False, "The driver reports no GPU.",
                     "Check that the card is seated and powered and that nvidia-smi lists it.")
    lost = [d for d in devices if d["lost"]]
    names = ", ".join(f"{d['index']}: {d['name'] or '?'}" for d in devices)
    if lost:
        return check("devices", False, f"{len(devices)} GPU(s) ({names}); lost: "
                     + ", ".join(str(d["index"]) for d in lost),
                     "A lost GPU needs a reset (nvidia-smi -r) or a reboot; dmesg shows its Xid error.")
    return check("devices", True, f"{len(devices)} GPU(s): {names}")


def process_check(processes: list[dict[str, Any]]) -> dict[str, Any]:
    """NVML reports host pids. Inside a container without the host's pid namespace those pids
    mean nothing here, so process names and users cannot be shown."""
    container = in_container()
    where = "in a container" if container else "on the host"
    if not processes:
        return check("process_info", None,
                     f"No GPU process is running, so process visibility cannot be checked ({where}).",
                     "Run the container with --pid=host to see GPU processes." if container else "")
    hidden = [p["pid"] for p in processes if not p["visible"]]
    if not hidden:
        return check("process_info", True, f"All {len(processes)} GPU process(es) are visible ({where}).")
    return check("process_info", False,
                 f"{len(hidden)} of {len(processes)} GPU process(es) are not visible here "
                 f"(pids {', '.join(map(str, hidden[:5]))}) ({where}).",
                 "Run the panel's container with --pid=host (or on the host) to see their names "
                 "and users." if container else "Run the panel as root to see other users' processes.")


def in_container() -> bool:
    """Whether this process runs in a container (Docker, Podman, Kubernetes, LXC)."""
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists() or os.environ.get("container"):
        return True
    try:
        cgroup = Path("/proc/1/cgroup").read_text()
    except OSError:
        return False
    return any(word in cgroup for word in ("docker", "kubepods", "containerd", "lxc", "podman"))


def render(checks: list[dict[str, Any]]) -> str:
    """The checks as text for the command line. Details quote the driver, device names and
    file paths, so each is made :func:`~open1panel_ai.terminal.inert` for the terminal."""
    marks = {True: "ok ", False: "!! ", None: "?  "}
    lines = []
    for item in checks:
        lines.append(f"{marks[item['ok']]} {item['name']:<13} {inert(item['detail'])}")
        if item["fix"] and item["ok"] is not True:
            lines.append(f"{'':17}fix: {inert(item['fix'])}")
    return "\n".join(lines)
