"""The built-in GPU providers, offered through the ``ai_gpu_providers`` hook.

Registered ``trylast`` so a provider plugin (AMD, Intel, Ascend) gets the first say; within
this list ``nvml`` comes first and ``cpu``, which always works, last.
"""

from hookspecs import hookimpl
from hookspecs.ai import GPUProvider
from open1panel_ai.gpu.cpu import CpuProvider
from open1panel_ai.gpu.nvml import NvmlProvider


@hookimpl(trylast=True)
def ai_gpu_providers() -> list[type[GPUProvider]]:
    return [NvmlProvider, CpuProvider]
