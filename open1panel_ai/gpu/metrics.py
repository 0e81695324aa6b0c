"""``/metrics``: the Prometheus text format, with NVIDIA DCGM exporter names for GPUs.

Grafana dashboards built for the DCGM exporter work unchanged: the same metric names, units
(MiB for framebuffer memory, W for power, mJ for energy) and labels (``gpu``, ``UUID``,
``pci_bus_id``, ``device``, ``modelName``, ``Hostname``). ``device`` names the device as its
provider does (see :func:`device_label`), so only NVIDIA GPUs are called ``nvidia<index>``. A
reading the GPU does not support has no series at all rather than a sentinel value. The panel's
own gauges (GPU up, CPU mode, loaded Ollama models, MCP servers) are prefixed ``open1panel_ai_``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

MIB = 2**20

#: DCGM field name → (help, sample field, conversion from the sample's unit).
DCGM_GAUGES = {
    "DCGM_FI_DEV_GPU_UTIL": ("GPU utilization (in %).", "utilization_gpu", None),
    "DCGM_FI_DEV_MEM_COPY_UTIL": ("Memory utilization (in %).", "utilization_memory", None),
    "DCGM_FI_DEV_ENC_UTIL": ("Encoder utilization (in %).", "encoder_utilization", None),
    "DCGM_FI_DEV_DEC_UTIL": ("Decoder utilization (in %).", "decoder_utilization", None),
    "DCGM_FI_DEV_FB_USED": ("Framebuffer memory used (in MiB).", "memory_used", MIB),
    "DCGM_FI_DEV_FB_FREE": ("Framebuffer memory free (in MiB).", "memory_free", MIB),
    "DCGM_FI_DEV_GPU_TEMP": ("GPU temperature (in C).", "temperature", None),
    "DCGM_FI_DEV_FAN_SPEED": ("Fan speed (in %).", "fan_speed", None),
    "DCGM_FI_DEV_POWER_USAGE": ("Power draw (in W).", "power_draw_w", None),
    "DCGM_FI_DEV_SM_CLOCK": ("SM clock frequency (in MHz).", "clock_sm", None),
    "DCGM_FI_DEV_MEM_CLOCK": ("Memory clock frequency (in MHz).", "clock_memory", None),
}
ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
DCGM_LABELS = ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname"]
#: The ``device`` label's prefix per provider whose devices carry no name of their own: NVML's
#: is DCGM's ``nvidia``; any other provider's devices are ``gpu<index>``.
DEVICE_PREFIXES = {"nvml": "nvidia"}


class _Snapshot:
    """A collector over values read once, for one scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def render(
    sample: dict[str, Any] | None,
    hostname: str,
    ollama_running: list[dict] | None,
    mcp_servers: list[dict] | None,
    extra: Sequence[Metric] = (),
) -> bytes:
    """The Prometheus text of a sample and of the other features' state (None: not running),
    with ``extra`` families of the features that export their own (the alerts' states)."""
    families = gpu_families(sample, hostname) if sample else []
    if ollama_running is not None:
        families += ollama_families(ollama_running)
    if mcp_servers is not None:
        families += mcp_families(mcp_servers)
    families += list(extra)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)


def device_label(device: dict[str, Any], provider: str | None) -> str:
    """The ``device`` label: the name the provider gives the device in its ``device`` field
    (``card0`` from DRM), else the provider's prefix and the index (``nvidia0`` from NVML)."""
    return device.get("device") or f"{DEVICE_PREFIXES.get(provider or '', 'gpu')}{device['index']}"


def gpu_families(sample: dict[str, Any], hostname: str) -> list[Metric]:
    gauges = {name: GaugeMetricFamily(name, text, labels=DCGM_LABELS) for name, (text, _, _) in DCGM_GAUGES.items()}
    # DCGM calls energy a counter, without the _total suffix prometheus_client would add to a
    # counter's name; the exact name matters more to dashboards, so it goes out untyped.
    energy = Metric(ENERGY, "Total energy consumption since the driver loaded (in mJ).", "unknown")
    up = GaugeMetricFamily("open1panel_ai_gpu_up", "1 while the GPU answers, 0 once it is lost.", labels=DCGM_LABELS)
    for device in sample["devices"]:
        labels = [
            str(device["index"]),
            device.get("uuid") or "",
            device.get("pci_bus_id") or "",
            device_label(device, sample.get("provider")),
            device.get("name") or "",
            hostname,
        ]
        up.add_metric(labels, 0 if device.get("lost") else 1)
        if device.get("lost"):
            continue
        for name, (_, field, unit) in DCGM_GAUGES.items():
            value = device.get(field)
            if value is not None:
                gauges[name].add_metric(labels, value / unit if unit else value)
        if device.get("energy_mj") is not None:
            energy.add_sample(ENERGY, dict(zip(DCGM_LABELS, labels, strict=True)), device["energy_mj"])
    families = [*gauges.values(), energy, up]
    mode = GaugeMetricFamily("open1panel_ai_gpu_cpu_mode", "1 when no GPU is usable and the CPU is monitored instead.")
    mode.add_metric([], 1 if sample["mode"] == "cpu" else 0)
    families.append(mode)
    if sample.get("cpu"):
        cpu = sample["cpu"]
        utilization = GaugeMetricFamily("open1panel_ai_cpu_utilization_percent", "CPU utilization (in %).")
        utilization.add_metric([], cpu["utilization"])
        memory = GaugeMetricFamily("open1panel_ai_memory_used_bytes", "System memory in use (in bytes).")
        memory.add_metric([], cpu["memory_used"])
        families += [utilization, memory]
    return [family for family in families if family.samples or family is mode]


def ollama_families(running: list[dict]) -> list[Metric]:
    labels = ["endpoint", "model"]
    size = GaugeMetricFamily(
        "open1panel_ai_ollama_model_memory_bytes", "Memory a loaded Ollama model holds (in bytes).", labels=labels
    )
    vram = GaugeMetricFamily(
        "open1panel_ai_ollama_model_vram_bytes",
        "Part of that memory in GPU memory (in bytes); 0 runs on the CPU.",
        labels=labels,
    )
    loaded = GaugeMetricFamily(
        "open1panel_ai_ollama_models_loaded", "Loaded Ollama models on every reachable endpoint."
    )
    loaded.add_metric([], len(running))
    for model in running:
        key = [str(model.get("endpoint", "")), str(model.get("name", ""))]
        if model.get("size") is not None:
            size.add_metric(key, model["size"])
        if model.get("size_vram") is not None:
            vram.add_metric(key, model["size_vram"])
    return [loaded, size, vram]


def mcp_families(servers: list[dict]) -> list[Metric]:
    """One series per MCP server: up (1) only while ``running``, that is while its probe answers;
    ``unhealthy`` (the process lives, the probe fails), ``starting``, ``restarting``, ``stopping``,
    ``stopped`` and ``error`` are down (0), told apart by the ``status`` label."""
    up = GaugeMetricFamily(
        "open1panel_ai_mcp_server_up",
        "1 while the MCP server is running and answers its probe, else 0.",
        labels=["id", "name", "status"],
    )
    for server in servers:
        up.add_metric(
            [str(server.get("id", "")), str(server.get("name", "")), str(server.get("status", ""))],
            1 if server.get("status") == "running" else 0,
        )
    return [up]
