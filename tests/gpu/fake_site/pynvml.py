"""Stands in for NVIDIA's ``pynvml`` in a served panel: put this folder first on PYTHONPATH and
the panel sees the three GPUs of :func:`tests.gpu.fake_pynvml.three_gpus`, one of them running
a process of the panel itself. ``FAKE_NVML_LOST=<index>`` makes that GPU fall off the bus."""

import os
import sys

from tests.gpu.fake_pynvml import three_gpus

_machine = three_gpus(os.getpid())
if os.environ.get("FAKE_NVML_LOST"):
    _machine.gpus[int(os.environ["FAKE_NVML_LOST"])].lost = True
sys.modules[__name__] = _machine.module()
