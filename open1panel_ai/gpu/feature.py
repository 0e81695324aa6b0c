"""How GPU monitoring plugs into the AI module (see :mod:`open1panel_ai.features`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from open1panel_ai import i18n
from open1panel_ai.features import Event, Feature, Topic
from open1panel_ai.gpu import builtin, doctor, views
from open1panel_ai.gpu.service import GPUService
from open1panel_ai.interfaces import GPUReadings

if TYPE_CHECKING:
    from open1panel_ai.context import AIContext

BUILTIN_PROVIDERS = [builtin]


def menu_item() -> dict[str, Any]:
    return {"id": "gpu", "title": i18n.titles("gpu.menu"), "url": "/ai/gpu/", "icon": "gpu"}


def start(context: AIContext) -> GPUService:
    service = GPUService(context)
    service.start()
    return service


def stop(service: GPUService) -> None:
    service.stop()


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gpu = subparsers.add_parser("gpu", help="GPU monitoring")
    commands = gpu.add_subparsers(dest="gpu_command", required=True)
    check = commands.add_parser(
        "doctor", help="check that GPUs can be monitored here, and say how to fix what is missing"
    )
    check.set_defaults(run=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    """Print every check; exit 0 when NVIDIA GPUs can be monitored, 1 when not (CPU mode)."""
    checks = doctor.run()
    print(doctor.render(checks))
    usable = any(c["name"] == "devices" and c["ok"] for c in checks)
    print(
        "\nGPU monitoring: "
        + ("NVML works." if usable else "no NVIDIA GPU is usable; the panel monitors the CPU instead.")
    )
    return 0 if usable else 1


FEATURE = Feature(
    name="gpu",
    order=30,
    kind="gpu",
    start=start,
    stop=stop,
    builtin_providers=tuple(BUILTIN_PROVIDERS),
    menu=menu_item,
    topics=(
        Topic(
            "gpu",
            "gpu",
            (
                Event(
                    "gpu",
                    "a GPU sample (as `GET /gpu`), every `OPEN1PANEL_AI_GPU_INTERVAL` seconds while someone listens",
                ),
            ),
        ),
    ),
    views=views,
    api_tag="gpu",
    api_title="GPU monitoring",
    guide="gpu.md",
    add_commands=add_commands,
    overview=lambda service: service.summary(),
    offers=(GPUReadings,),
)
