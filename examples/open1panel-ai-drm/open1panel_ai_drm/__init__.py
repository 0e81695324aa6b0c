"""Example open1panel plugin: a DRM sysfs GPU provider and a page that lists the cards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, render_template, request

from hookspecs import hookimpl
from hookspecs.ai import ProviderUnavailable

DEFAULT_ROOT = "/sys/class/drm"
VENDORS = {"0x1002": "AMD", "0x10de": "NVIDIA", "0x8086": "Intel"}

blueprint = Blueprint("drm", __name__, template_folder="templates")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _number(path: Path, scale: float = 1.0) -> float | None:
    text = _read(path)
    try:
        return float(text) * scale if text is not None else None
    except ValueError:
        return None


def _bytes(path: Path) -> int | None:
    """A byte count: a whole number, as the GPU feature's memory readings are."""
    value = _number(path)
    return round(value) if value is not None else None


def read_cards(root: Path) -> list[dict[str, Any]]:
    """Every ``cardN`` under ``root`` in the GPU feature's device shape, with the readings its
    driver exposes; the others are None and named in ``unsupported``."""
    cards = []
    for entry in sorted(root.glob("card*")):
        if not entry.name[4:].isdigit():
            continue  # connectors such as card0-DP-1
        device = entry / "device"
        uevent = dict(line.split("=", 1) for line in (_read(device / "uevent") or "").splitlines() if "=" in line)
        hwmon = next(iter(sorted((device / "hwmon").glob("hwmon*"))), None) if (device / "hwmon").is_dir() else None
        readings = {
            "utilization_gpu": _number(device / "gpu_busy_percent"),
            "memory_total": _bytes(device / "mem_info_vram_total"),
            "memory_used": _bytes(device / "mem_info_vram_used"),
            "temperature": _number(hwmon / "temp1_input", 1 / 1000) if hwmon else None,
            "power_draw_w": _number(hwmon / "power1_average", 1 / 1_000_000) if hwmon else None,
        }
        cards.append(
            {
                "index": int(entry.name[4:]),
                "device": entry.name,  # the kernel's name, which the /metrics device label carries
                "name": None,
                "uuid": None,
                "vendor": VENDORS.get(_read(device / "vendor") or "", _read(device / "vendor")),
                "pci_bus_id": uevent.get("PCI_SLOT_NAME"),
                "driver": uevent.get("DRIVER"),
                "lost": False,
                "error": None,
                **readings,
                "unsupported": sorted(name for name, value in readings.items() if value is None),
            }
        )
    return cards


class DrmGPUProvider:
    """Reads GPUs from the DRM sysfs; works for any vendor, with what its driver exposes."""

    name = "drm"

    def __init__(self, settings):
        self.root = Path(settings.get("drm_sysfs_root") or DEFAULT_ROOT)

    def probe(self) -> None:
        if not self.root.is_dir():
            raise ProviderUnavailable(f"{self.root} does not exist", "Run on Linux with a DRM driver loaded.")
        if not read_cards(self.root):
            raise ProviderUnavailable(
                f"no GPU is listed under {self.root}", "Load the GPU's kernel driver (amdgpu, i915, nouveau, …)."
            )

    def sample(self) -> dict[str, Any]:
        return {"devices": read_cards(self.root), "processes": [], "versions": {}}

    def checks(self) -> list[dict[str, Any]]:
        cards = read_cards(self.root) if self.root.is_dir() else []
        return [
            {
                "name": "DRM cards",
                "ok": bool(cards),
                "detail": f"{len(cards)} found in {self.root}",
                "fix": "" if cards else "Load the GPU's kernel driver.",
            }
        ]


@hookimpl
def ai_gpu_providers():
    return [DrmGPUProvider]


@hookimpl
def panel_menu_items():
    return [{"id": "drm", "title": {"en": "DRM cards", "zh-CN": "DRM 显卡"}, "url": "/drm/", "order": 50}]


@hookimpl
def panel_blueprints():
    return [blueprint]


@hookimpl
def panel_startup(host):
    host.app.extensions["open1panel_ai_drm"] = host.plugin_manager


@blueprint.before_request
def _require_user():
    plugin_manager = current_app.extensions["open1panel_ai_drm"]
    if plugin_manager.hook.panel_authenticate(request=request, auth=None) is None:
        return "Sign in to the panel first.\n", 401, {"Content-Type": "text/plain"}
    return None


@blueprint.get("/drm/")
def cards_page():
    root = Path(os.environ.get("OPEN1PANEL_AI_DRM_SYSFS_ROOT", DEFAULT_ROOT))
    return render_template("drm/cards.html", cards=read_cards(root), root=root)
