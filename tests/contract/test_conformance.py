"""Every built-in provider and both example providers pass the conformance kit."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from open1panel_ai.domain.caddy import CaddyProvider
from open1panel_ai.domain.nginx import NginxProvider
from open1panel_ai.gpu.cpu import CpuProvider
from open1panel_ai.gpu.nvml import NvmlProvider
from open1panel_ai.mcp.runtime import ProcessRuntime, SupergatewayRuntime
from open1panel_ai.mcp.sandbox import Profile, next_uid
from open1panel_ai.ollama.provider import HttpOllamaProvider
from open1panel_ai.ollama.server.supervised import SupervisedServer
from open1panel_ai.ollama.server.systemd import SystemdServer
from open1panel_ai.testing import (
    DomainProviderContract,
    GPUProviderContract,
    MCPProviderContract,
    OllamaProviderContract,
    OllamaServerProviderContract,
)
from tests.conftest import free_port
from tests.domain.conftest import CaddyServer, NginxServer
from tests.gpu.fake_pynvml import FakeNVML, three_gpus
from tests.ollama_standin import OllamaStandIn

EXAMPLES = Path(__file__).parent.parent.parent / "examples"
for example, module in (("open1panel-ai-amd", "open1panel_ai_amd"), ("open1panel-ai-drm", "open1panel_ai_drm")):
    if importlib.util.find_spec(module) is None:  # the test command installs them; a checkout may not
        sys.path.insert(0, str(EXAMPLES / example))

from open1panel_ai_amd import AmdSmiProvider  # noqa: E402
from open1panel_ai_drm import DrmGPUProvider  # noqa: E402


class TestCpuProvider(GPUProviderContract):
    provider_class = CpuProvider


class TestNvmlProvider(GPUProviderContract):
    provider_class = NvmlProvider

    @pytest.fixture
    def settings(self, tmp_path, monkeypatch):
        monkeypatch.setitem(sys.modules, "pynvml", three_gpus(os.getpid()).module())
        return {"data_dir": str(tmp_path)}

    @pytest.fixture
    def unavailable_settings(self, tmp_path, monkeypatch):
        monkeypatch.setitem(sys.modules, "pynvml", FakeNVML([]).module())
        return {"data_dir": str(tmp_path)}


class TestHttpOllamaProvider(OllamaProviderContract):
    provider_class = HttpOllamaProvider

    @pytest.fixture
    def standin(self, tmp_path):
        with OllamaStandIn(tmp_path / "ollama") as standin:
            standin.seed("llama3.2:1b", [1000, 200])
            yield standin

    @pytest.fixture
    def base_url(self, standin):
        return standin.url

    @pytest.fixture
    def pullable_model(self, standin):
        standin.publish("qwen3:0.6b", [50_000_000, 100])
        standin.manifest_delay = 5.0
        return "qwen3:0.6b"

    def test_chat_and_embed_have_the_declared_types(self, provider, standin):
        """Beyond the kit: the chat stream and the embed reply the service reads."""
        from hookspecs.ai import ChatStream
        from hookspecs.ollama import ChatLine, EmbedReply
        from open1panel_ai.testing.typecheck import problems

        stream = provider.chat(standin.url, {"model": "llama3.2:1b", "messages": [{"role": "user", "content": "hi"}]})
        assert isinstance(stream, ChatStream)
        lines = list(stream)
        stream.close()
        assert lines and lines[-1]["done"] is True
        assert problems(lines, list[ChatLine], "chat() lines") == []
        standin.seed("all-minilm", [1000], family="bert")
        reply = provider.embed(standin.url, {"model": "all-minilm", "input": "hi"})
        assert problems(reply, EmbedReply, "embed()") == [] and reply["embeddings"]


class TestProcessRuntime(MCPProviderContract):
    provider_class = ProcessRuntime

    @pytest.fixture
    def settings(self, tmp_path):
        return {"data_dir": str(tmp_path / "data"), "mcp_homes": str(tmp_path / "homes")}

    @pytest.fixture
    def server_spec(self, tmp_path):
        """mcp-server-time from PyPI, run by the panel's Python, in its sandbox."""
        return {
            "id": "kit0time",
            "name": "time",
            "command": [sys.executable, "-m", "mcp_server_time"],
            "env_values": {},
            "cwd": None,
            "url": None,
            "header_values": {},
            "transports": ["streamable-http"],
            "bind_host": "127.0.0.1",
            "port": free_port(),
            "token": "contract-kit-token-0123456789abcdef",
            "restart_policy": "never",
            "extra_hosts": [],
            "profile": Profile().as_dict(),
            "sandbox_uid": next_uid([], tmp_path / "data"),
            "sessions": "shared",
        }


class TestSupergatewayRuntime(TestProcessRuntime):
    """The same server, run by supergateway (npx) behind the bridge; chosen only by name, so a
    panel that did not name it finds it unavailable, with a reason and a fix."""

    provider_class = SupergatewayRuntime

    @pytest.fixture
    def settings(self, tmp_path):
        return {
            "data_dir": str(tmp_path / "data"),
            "mcp_homes": str(tmp_path / "homes"),
            "mcp_provider": "supergateway",
            "mcp_start_timeout": "180",  # npx may fetch supergateway first
        }

    @pytest.fixture
    def unavailable_settings(self, tmp_path):
        return {"data_dir": str(tmp_path / "data"), "mcp_homes": str(tmp_path / "homes")}


class TestNginxProvider(DomainProviderContract):
    provider_class = NginxProvider

    @pytest.fixture
    def settings(self, tmp_path):
        server = NginxServer(tmp_path / "nginx").start()
        yield server.settings(tmp_path / "data")
        server.stop()

    @pytest.fixture
    def unavailable_settings(self, tmp_path):
        return {"data_dir": str(tmp_path), "nginx_bin": str(tmp_path / "no-nginx")}


class TestCaddyProvider(DomainProviderContract):
    provider_class = CaddyProvider

    @pytest.fixture
    def settings(self, tmp_path):
        server = CaddyServer(tmp_path / "caddy", admin_socket=True).start()
        yield server.settings(tmp_path / "data")
        server.close()

    @pytest.fixture
    def unavailable_settings(self, tmp_path):
        return {"data_dir": str(tmp_path), "caddy_admin": "unix/" + str(tmp_path / "no-caddy.sock")}


class TestAmdSmiExample(GPUProviderContract):
    provider_class = AmdSmiProvider

    @pytest.fixture
    def settings(self, tmp_path, monkeypatch):
        monkeypatch.setenv(
            "PATH", f"{EXAMPLES / 'open1panel-ai-amd' / 'tests' / 'bin'}{os.pathsep}{os.environ['PATH']}"
        )
        return {"data_dir": str(tmp_path)}

    @pytest.fixture
    def unavailable_settings(self, tmp_path, monkeypatch):
        monkeypatch.setenv("PATH", str(tmp_path))
        return {"data_dir": str(tmp_path)}


class TestDrmExample(GPUProviderContract):
    provider_class = DrmGPUProvider

    @pytest.fixture
    def settings(self, tmp_path):
        device = tmp_path / "drm" / "card0" / "device"
        device.mkdir(parents=True)
        for name, value in {
            "vendor": "0x1002",
            "gpu_busy_percent": "37",
            "mem_info_vram_total": str(8 << 30),
            "mem_info_vram_used": str(1 << 30),
            "uevent": "DRIVER=amdgpu\nPCI_SLOT_NAME=0000:03:00.0\n",
        }.items():
            (device / name).write_text(value)
        return {"data_dir": str(tmp_path), "drm_sysfs_root": str(tmp_path / "drm")}

    @pytest.fixture
    def unavailable_settings(self, tmp_path):
        return {"data_dir": str(tmp_path), "drm_sysfs_root": str(tmp_path / "missing")}


class TestSupervisedOllamaServer(OllamaServerProviderContract):
    """The panel running ``ollama serve`` itself, with the tests' stand-in as the program."""

    provider_class = SupervisedServer

    @pytest.fixture
    def settings(self, tmp_path):
        from tests.ollama_server.standin_serve import install

        program = install(tmp_path / "bin")
        return {"data_dir": str(tmp_path), "ollama_server_provider": "supervised", "ollama_server_bin": str(program)}

    @pytest.fixture
    def unavailable_settings(self, tmp_path):
        return {"data_dir": str(tmp_path), "ollama_server_bin": str(tmp_path / "no-ollama")}


class TestSystemdOllamaServer(OllamaServerProviderContract):
    """The official install's ollama.service, with systemd answered by a recording runner (no
    systemd runs in these containers; tests/ollama_server checks the files with systemd-analyze)."""

    provider_class = SystemdServer

    @pytest.fixture
    def settings(self, tmp_path):
        return {"data_dir": str(tmp_path), "ollama_systemd_dir": str(tmp_path / "units")}

    @pytest.fixture
    def provider(self, settings):
        from tests.ollama_server.test_ollama_server_systemd import Recorder

        return SystemdServer(settings, runner=Recorder())
