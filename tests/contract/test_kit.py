"""The conformance kit fails a deliberately broken provider, each failure naming the rule it
broke, and passes a correct one (run in a separate pytest through ``pytester``)."""

from __future__ import annotations

import re

pytest_plugins = ["pytester"]

BROKEN_GPU = """
import pytest
from open1panel_ai.testing import GPUProviderContract

class BrokenGPU:
    name = ""                                   # rule "name"

    def __init__(self, settings):
        self.settings = settings

    def probe(self):
        if self.settings.get("missing"):
            raise RuntimeError("no device")     # rule "unavailable": not ProviderUnavailable

    def sample(self):                           # rule "types": memory_used is text
        return {"devices": [{"index": 0, "name": "x", "uuid": None, "lost": False,
                             "unsupported": [], "memory_used": "12 GB"}],
                "processes": [], "versions": {}}

    # no checks(): rule "members"

class TestBrokenGPU(GPUProviderContract):
    provider_class = BrokenGPU

    @pytest.fixture
    def unavailable_settings(self, tmp_path):
        return {"data_dir": str(tmp_path), "missing": "1"}
"""

BROKEN_OLLAMA = """
import pytest
from open1panel_ai.testing import OllamaProviderContract
from hookspecs.errors import ProviderUnavailable

class Stream:
    def __iter__(self):
        yield {"status": "pulling manifest"}
        yield {"status": "success"}                # rule "streams": goes on after close()

class BrokenOllama:
    name = "broken"
    def __init__(self, settings): pass
    def probe(self): pass
    def version(self, base_url):
        raise OSError("connection refused")       # rule "errors": not UpstreamUnavailable
    def list_models(self, base_url): return []
    def running_models(self, base_url): return []
    def show(self, base_url, name): raise KeyError(name)   # rule "errors": not NotFound
    def delete(self, base_url, name): pass
    def copy(self, base_url, source, destination): pass
    def load(self, base_url, name, keep_alive, options): pass
    def unload(self, base_url, name): pass
    def pull(self, base_url, name): return Stream()  # rule "streams": no close()
    def blob_exists(self, base_url, digest): return False
    def upload_blob(self, base_url, digest, chunks, size): pass
    def create(self, base_url, name, files, extra=None): return Stream()

class TestBrokenOllama(OllamaProviderContract):
    provider_class = BrokenOllama

    @pytest.fixture
    def base_url(self):
        return "http://127.0.0.1:9"

    @pytest.fixture
    def pullable_model(self):
        return "m"
"""


def outcomes(result):
    """Each failed test's report: ``{test name: the last line of its failure}``."""
    failed, test = {}, None
    for line in result.outlines:
        header = re.fullmatch(r"_+ \w+\.(test_\w+) _+", line)
        if header:
            test = header.group(1)
        elif line.startswith("=") and test is not None:
            test = None
        elif test is not None and line.strip():
            failed[test] = line.strip()
    return failed


def test_a_broken_gpu_provider_fails_naming_each_rule(pytester):
    pytester.makeconftest('pytest_plugins = ["open1panel_ai.testing"]')
    pytester.makepyfile(test_broken=BROKEN_GPU)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rf")
    failed = outcomes(result)
    assert failed["test_name"].startswith("[name]")
    assert failed["test_members"].startswith("[members]") and "checks" in failed["test_members"]
    assert failed["test_unavailable"].startswith("[unavailable]") and "RuntimeError" in failed["test_unavailable"]
    assert failed["test_sample_types"].startswith("[types]") and "memory_used" in failed["test_sample_types"]
    assert "test_probe" not in failed  # what is right is not reported
    result.assert_outcomes(failed=5, passed=1)  # checks() is missing too


def test_a_broken_ollama_provider_fails_on_errors_and_streams(pytester):
    pytester.makeconftest('pytest_plugins = ["open1panel_ai.testing"]')
    pytester.makepyfile(test_broken=BROKEN_OLLAMA)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rf")
    failed = outcomes(result)
    assert failed["test_unknown_model_is_not_found"].startswith("[errors]")
    assert "KeyError" in failed["test_unknown_model_is_not_found"]
    assert failed["test_unreachable_server_is_upstream_unavailable"].startswith("[errors]")
    assert failed["test_pull_can_be_closed"].startswith("[streams]")
    assert "open1panel provider contract kit" in result.stdout.str()  # the plugin is enabled


def test_a_correct_provider_passes(pytester):
    pytester.makeconftest('pytest_plugins = ["open1panel_ai.testing"]')
    pytester.makepyfile(
        test_cpu="""
from open1panel_ai.gpu.cpu import CpuProvider
from open1panel_ai.testing import GPUProviderContract

class TestCpu(GPUProviderContract):
    provider_class = CpuProvider
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, skipped=1)
