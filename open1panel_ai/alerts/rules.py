"""The built-in rule kinds: what each watches, its defaults, and how it reads the panel.

Every kind is one rule, on from the first start with the defaults below; a person changes its
settings (on/off, severity, how long a condition must hold, the quiet period, thresholds).
A rule looks at a :class:`Snapshot` of the panel and answers, per *subject* (a GPU, an MCP
server, an Ollama endpoint, a models folder, a task, a domain binding), whether its condition
holds. :mod:`open1panel_ai.alerts.service` turns those answers into alerts.

The snapshot reads the other features only through the interfaces their services offer
(:mod:`open1panel_ai.interfaces`) and the task runner; a feature that is not running, or that fails
to answer, makes the rules that need it answer "unknown", which leaves their alerts as they are.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from open1panel_ai import errors
from open1panel_ai.i18n import Message, human_bytes
from open1panel_ai.interfaces import DomainBindings, GPUReadings, MCPServers, OllamaEndpoints

log = logging.getLogger(__name__)
T = TypeVar("T")

SEVERITIES = ("info", "warning", "critical")
GIB = 2**30
#: Task kinds whose failure the ``task_failed`` rule reports (the Ollama feature's).
WATCHED_TASKS = ("ollama.pull", "ollama.import")
#: A failed task older than this when the panel first notices it raises no alert: the rule
#: is about failures as they happen, not the backlog of an earlier panel.
TASK_FAILURE_WINDOW = 24 * 3600
#: MCP statuses the ``mcp_failing`` rule counts as failing.
MCP_FAILING = ("error", "unhealthy")
#: MCP statuses in which a server's child runs, so that its sandbox matters.
MCP_RUNNING = ("starting", "running", "unhealthy", "restarting")


@dataclass(frozen=True)
class Observation:
    """What a rule found for one subject.

    :param firing: True while the condition holds, False when it does not, None when the
        panel cannot tell now (the alert, if any, stays as it is).
    :param subject: the subject as a person reads it (``GPU 0 (NVIDIA A100)``).
    :param summary: one sentence saying what is wrong, with the values that show it.
    :param value: the measured value, where there is one (°C, %, bytes free).
    """

    firing: bool | None
    subject: str = ""
    summary: Message | None = None
    value: float | None = None


@dataclass(frozen=True)
class RuleKind:
    """A built-in rule: its id, defaults, the thresholds it takes, and its reader.

    ``observe(snapshot, settings, open_keys)`` returns one :class:`Observation` per subject
    it knows of (a subject it leaves out is clear), or None when it cannot tell at all.
    ``open_keys`` are the subjects that have an open alert now.
    """

    id: str
    severity: str
    for_seconds: float
    observe: Callable[[Snapshot, Mapping[str, Any], set[str]], dict[str, Observation] | None]
    params: Mapping[str, float] = field(default_factory=dict)
    quiet_seconds: float = 3600

    def defaults(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "severity": self.severity,
            "for_seconds": self.for_seconds,
            "quiet_seconds": self.quiet_seconds,
            "notify_resolved": True,
            "params": dict(self.params),
        }


class Snapshot:
    """The panel as the rules see it at one evaluation: each source read at most once, on
    first use. A source that cannot be read is None."""

    def __init__(self, find: Callable[[type], Any], tasks: Any) -> None:
        self._find = find
        self._tasks = tasks
        self._read: dict[str, Any] = {}
        self.now = time.time()

    def _once(self, name: str, read: Callable[[], Any]) -> Any:
        if name not in self._read:
            try:
                self._read[name] = read()
            except errors.ApiError as exc:  # no usable provider: nothing to tell
                log.debug("alerts: %s cannot be read: %s", name, exc.message)
                self._read[name] = None
            except Exception:
                log.warning("alerts: reading %s failed", name, exc_info=True)
                self._read[name] = None
        return self._read[name]

    def _ask(self, interface: type[T], name: str, read: Callable[[T], Any]) -> Any:
        """``read(service)`` of the service offering ``interface``, read once under ``name``;
        None when no running feature offers it."""
        service = self._find(interface)
        if service is None:
            return None
        return self._once(name, lambda: read(service))

    def gpu_sample(self) -> dict[str, Any] | None:
        return self._ask(GPUReadings, "gpu", lambda gpu: gpu.current())

    def mcp_servers(self) -> list[dict[str, Any]] | None:
        return self._ask(MCPServers, "mcp", lambda mcp: mcp.servers())

    def ollama_status(self) -> list[dict[str, Any]] | None:
        return self._ask(OllamaEndpoints, "ollama_status", lambda ollama: ollama.endpoints_status())

    def ollama_endpoints(self) -> list[dict[str, Any]] | None:
        return self._ask(OllamaEndpoints, "ollama_endpoints", lambda ollama: ollama.endpoints())

    def domain_bindings(self) -> list[dict[str, Any]] | None:
        return self._ask(DomainBindings, "domain", lambda domain: domain.bindings())

    def failed_tasks(self) -> list[dict[str, Any]] | None:
        def read() -> list[dict[str, Any]]:
            found = []
            for kind in WATCHED_TASKS:
                found += self._tasks.list(status="failed", kind=kind, limit=1000)
            return found

        return self._once("tasks", read)


# -- GPUs ------------------------------------------------------------------------------------


def _gpus(snapshot: Snapshot) -> list[tuple[str, str, dict[str, Any]]] | None:
    """(key, name as a person reads it, reading) of every GPU in the sample."""
    sample = snapshot.gpu_sample()
    if sample is None:
        return None
    found = []
    for device in sample.get("devices") or []:
        key = device.get("uuid") or f"gpu{device['index']}"
        name = f"GPU {device['index']}" + (f" ({device['name']})" if device.get("name") else "")
        found.append((key, name, device))
    return found


def _over(
    snapshot: Snapshot, settings: Mapping[str, Any], reading: Callable[[dict[str, Any]], float | None], summary: str
) -> dict[str, Observation] | None:
    gpus = _gpus(snapshot)
    if gpus is None:
        return None
    threshold = settings["params"]["threshold"]
    found: dict[str, Observation] = {}
    for key, name, device in gpus:
        value = None if device.get("lost") else reading(device)
        if value is None:  # lost, or a reading this board does not give
            found[key] = Observation(None, name)
            continue
        value = round(float(value), 1)
        found[key] = Observation(
            value > threshold, name, Message(summary, gpu=name, value=f"{value:g}", threshold=f"{threshold:g}"), value
        )
    return found


def _memory_percent(device: dict[str, Any]) -> float | None:
    if device.get("memory_used") is None or not device.get("memory_total"):
        return None
    return 100 * device["memory_used"] / device["memory_total"]


def gpu_temperature(
    snapshot: Snapshot, settings: Mapping[str, Any], open_keys: set[str]
) -> dict[str, Observation] | None:
    return _over(snapshot, settings, lambda d: d.get("temperature"), "alerts.summary.gpu_temperature")


def gpu_memory(snapshot: Snapshot, settings: Mapping[str, Any], open_keys: set[str]) -> dict[str, Observation] | None:
    return _over(snapshot, settings, _memory_percent, "alerts.summary.gpu_memory")


def gpu_utilization(
    snapshot: Snapshot, settings: Mapping[str, Any], open_keys: set[str]
) -> dict[str, Observation] | None:
    return _over(snapshot, settings, lambda d: d.get("utilization_gpu"), "alerts.summary.gpu_utilization")


def gpu_lost(snapshot: Snapshot, settings: Mapping[str, Any], open_keys: set[str]) -> dict[str, Observation] | None:
    gpus = _gpus(snapshot)
    if gpus is None:
        return None
    return {
        key: Observation(
            bool(device.get("lost")),
            name,
            Message("alerts.summary.gpu_lost", gpu=name, error=device.get("error") or ""),
        )
        for key, name, device in gpus
    }


# -- MCP servers ------------------------------------------------------------------------------


def mcp_failing(snapshot: Snapshot, settings: Mapping[str, Any], open_keys: set[str]) -> dict[str, Observation] | None:
    servers = snapshot.mcp_servers()
    if servers is None:
        return None
    return {
        server["id"]: Observation(
            server["status"] in MCP_FAILING,
            server["name"],
            Message(
                "alerts.summary.mcp_failing",
                name=server["name"],
                status=server["status"],
                error=server.get("last_error") or "",
            ),
        )
        for server in servers
    }


def mcp_sandbox(snapshot: Snapshot, settings: Mapping[str, Any], open_keys: set[str]) -> dict[str, Observation] | None:
    servers = snapshot.mcp_servers()
    if servers is None:
        return None
    found: dict[str, Observation] = {}
    for server in servers:
        isolation = server.get("isolation")
        if server["status"] not in MCP_RUNNING or not isolation:
            continue
        missing = [layer for layer in isolation.get("layers", []) if not layer.get("applied")]
        weak = isolation["mode"] != "sandbox"
        names = ", ".join(layer["name"] for layer in missing) or isolation["mode"]
        reason = (missing[0].get("reason") or "") if missing else ""
        found[server["id"]] = Observation(
            weak,
            server["name"],
            Message(
                "alerts.summary.mcp_sandbox", name=server["name"], mode=isolation["mode"], layers=names, reason=reason
            ),
        )
    return found


# -- Ollama -----------------------------------------------------------------------------------


def ollama_unreachable(
    snapshot: Snapshot, settings: Mapping[str, Any], open_keys: set[str]
) -> dict[str, Observation] | None:
    endpoints = snapshot.ollama_status()
    if endpoints is None:
        return None
    found: dict[str, Observation] = {}
    for endpoint in endpoints:
        error = endpoint.get("error") or {}
        found[endpoint["name"]] = Observation(
            not endpoint.get("reachable"),
            endpoint["name"],
            Message(
                "alerts.summary.ollama_unreachable",
                endpoint=endpoint["name"],
                url=endpoint.get("url", ""),
                error=error.get("message") or "",
            ),
        )
    return found


def disk_low(snapshot: Snapshot, settings: Mapping[str, Any], open_keys: set[str]) -> dict[str, Observation] | None:
    """The disk holding each Ollama endpoint's models folder (the ones the panel can see)."""
    endpoints = snapshot.ollama_endpoints()
    if endpoints is None:
        return None
    percent_limit = settings["params"]["min_free_percent"]
    bytes_limit = settings["params"]["min_free_gib"] * GIB
    found: dict[str, Observation] = {}
    for folder in sorted({e["models_dir"] for e in endpoints if e.get("models_dir")}):
        if not Path(folder).is_dir():
            found[folder] = Observation(None, folder)
            continue
        usage = shutil.disk_usage(folder)
        percent = 100 * usage.free / usage.total if usage.total else 0.0
        low = (percent_limit > 0 and percent < percent_limit) or (bytes_limit > 0 and usage.free < bytes_limit)
        found[folder] = Observation(
            low,
            folder,
            Message(
                "alerts.summary.disk_low",
                folder=folder,
                free=human_bytes(usage.free),
                percent=f"{percent:.1f}",
                total=human_bytes(usage.total),
                limit_percent=f"{percent_limit:g}",
                limit_gib=f"{settings['params']['min_free_gib']:g}",
            ),
            float(usage.free),
        )
    return found


# -- tasks and domains ------------------------------------------------------------------------


def task_failed(snapshot: Snapshot, settings: Mapping[str, Any], open_keys: set[str]) -> dict[str, Observation] | None:
    """A failed pull or import is one alert, raised while the failure is recent and resolved
    when the task is retried (it is then no longer ``failed``) or removed."""
    tasks = snapshot.failed_tasks()
    if tasks is None:
        return None
    found: dict[str, Observation] = {}
    for task in tasks:
        if task["id"] not in open_keys and snapshot.now - _epoch(task["updated_at"]) > TASK_FAILURE_WINDOW:
            continue
        error = (task.get("error") or {}).get("message") or ""
        kind = "import" if task["kind"] == "ollama.import" else "pull"
        found[task["id"]] = Observation(
            True, task["target"], Message(f"alerts.summary.task_failed.{kind}", target=task["target"], error=error)
        )
    return found


def domain_error(snapshot: Snapshot, settings: Mapping[str, Any], open_keys: set[str]) -> dict[str, Observation] | None:
    bindings = snapshot.domain_bindings()
    if bindings is None:
        return None
    return {
        binding["id"]: Observation(
            binding["state"] == "error",
            ", ".join(binding["domains"]),
            Message(
                "alerts.summary.domain_error", domains=", ".join(binding["domains"]), error=binding.get("error") or ""
            ),
        )
        for binding in bindings
    }


def _epoch(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC).timestamp()
    except (AttributeError, ValueError):
        return 0.0


#: Every built-in rule, in the order the page lists them.
KINDS: tuple[RuleKind, ...] = (
    RuleKind("gpu_temperature", "critical", 300, gpu_temperature, {"threshold": 85.0}),
    RuleKind("gpu_memory", "warning", 600, gpu_memory, {"threshold": 95.0}),
    RuleKind("gpu_utilization", "info", 1800, gpu_utilization, {"threshold": 95.0}),
    RuleKind("gpu_lost", "critical", 0, gpu_lost),
    RuleKind("mcp_failing", "critical", 120, mcp_failing),
    RuleKind("mcp_sandbox", "warning", 0, mcp_sandbox),
    RuleKind("task_failed", "warning", 0, task_failed),
    RuleKind("ollama_unreachable", "critical", 120, ollama_unreachable),
    RuleKind("disk_low", "warning", 60, disk_low, {"min_free_percent": 10.0, "min_free_gib": 5.0}),
    RuleKind("domain_error", "warning", 60, domain_error),
)
BY_ID: dict[str, RuleKind] = {kind.id: kind for kind in KINDS}
