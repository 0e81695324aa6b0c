"""What the panel does with a model beyond managing its files: try it (:mod:`.chat`), build a
variant (:mod:`.build`), measure it (:mod:`.measure`), and keep each server within a memory
budget (:mod:`.budget`).

They are started with the Ollama service and reached through it: :func:`of` returns the
workbench of a running service.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from open1panel_ai.ollama.budget import MemoryBudget
from open1panel_ai.ollama.build import Builds
from open1panel_ai.ollama.chat import Chat
from open1panel_ai.ollama.measure import Benchmarks

if TYPE_CHECKING:
    from open1panel_ai.context import AIContext
    from open1panel_ai.ollama.service import OllamaService

_WORKBENCHES: weakref.WeakKeyDictionary[OllamaService, Workbench] = weakref.WeakKeyDictionary()


class Workbench:
    """The budget, chat, builds and benchmarks of one Ollama service."""

    def __init__(self, service: OllamaService, context: AIContext) -> None:
        self.budget = MemoryBudget(service, context.store)
        self.chat = Chat(service, self.budget)
        self.builds = Builds(service, context.tasks)
        self.benchmarks = Benchmarks(service, context, self.budget)


def start(service: OllamaService, context: AIContext) -> Workbench:
    """Start the workbench of ``service`` (registering its task kinds and tables)."""
    workbench = _WORKBENCHES[service] = Workbench(service, context)
    return workbench


def of(service: OllamaService) -> Workbench:
    """The workbench started with ``service``."""
    return _WORKBENCHES[service]


def forget_endpoint(service: OllamaService, endpoint: str) -> None:
    """``service`` removed ``endpoint``: what the workbench kept for it (its memory budget, the
    models' last uses) goes too. Benchmark results stay, as the record of what was measured."""
    workbench = _WORKBENCHES.get(service)
    if workbench is not None:
        workbench.budget.forget_endpoint(endpoint)
