"""Stands in for NVIDIA's ``pynvml`` in a served panel: put this folder first on PYTHONPATH and
the panel sees the three GPUs of :func:`tests.gpu.fake_pynvml.three_gpus`, one of them running
a process of the panel itself."""

import os
import sys

from tests.gpu.fake_pynvml import three_gpus

sys.modules[__name__] = three_gpus(os.getpid()).module()
