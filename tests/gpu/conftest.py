"""GPU test fixtures: a fake ``pynvml`` in place of NVIDIA's, and the ``nvidia_gpu`` marker."""

from __future__ import annotations

import os
import sys

import pytest

from tests.gpu.fake_pynvml import FakeNVML, three_gpus


def pytest_configure(config):
    config.addinivalue_line("markers", "nvidia_gpu: needs a real NVIDIA GPU and driver; skipped when nvmlInit fails")


@pytest.fixture
def install_nvml(monkeypatch):
    """Put a :class:`FakeNVML` machine in place of ``pynvml``: ``install_nvml(fake)``."""

    def install(fake: FakeNVML) -> FakeNVML:
        monkeypatch.setitem(sys.modules, "pynvml", fake.module())
        return fake

    return install


@pytest.fixture
def machine(install_nvml) -> FakeNVML:
    """The three-GPU machine of :func:`three_gpus`, installed."""
    return install_nvml(three_gpus(os.getpid()))
