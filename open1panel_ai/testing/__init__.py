"""The conformance kit: the contract's behavioural checks, run against a provider class.

A provider author enables the plugin and subclasses the contract of the provider's kind::

    # conftest.py
    pytest_plugins = ["open1panel_ai.testing"]

    # test_contract.py
    import pytest
    from open1panel_ai.testing import GPUProviderContract
    from my_plugin import MyGPUProvider

    class TestMyGPUProvider(GPUProviderContract):
        provider_class = MyGPUProvider

        @pytest.fixture
        def settings(self, tmp_path):            # settings under which probe() passes
            return {"data_dir": str(tmp_path)}

        @pytest.fixture
        def unavailable_settings(self, tmp_path):  # settings under which it cannot work
            return {"data_dir": str(tmp_path), "my_tool": str(tmp_path / "missing")}

Every check is a test named after its rule; a provider that breaks one fails with a message
that starts with the rule (see :data:`RULES`). The rules, per kind:

- every kind: a ``name``, every member of its protocol (:mod:`hookspecs.ai`), ``probe()``
  passing where it can work, and raising ``ProviderUnavailable`` with a reason and a fix where
  it cannot (``unavailable_settings``; a provider that can always work returns None there);
- results have the declared types (:mod:`hookspecs.ollama`, ``.mcp``, ``.gpu``, ``.domain``);
- errors are the declared ones (:mod:`hookspecs.errors`);
- streams (Ollama pulls) can be closed;
- applies (domain bindings) are idempotent, and a removal of what is not there is no error.

Some checks need the real thing the provider drives: an Ollama server (``base_url``), an MCP
server to start (``server_spec``), a proxy that serves (``settings``). Fixtures that return None
skip the checks that need them, which the report lists as skipped.
"""

from __future__ import annotations

import inspect
import socket
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

import hookspecs.ai
from hookspecs.domain import BindingStatus, ProviderWarning, ProxyBinding, SettingInUse, Upstream
from hookspecs.errors import ApiError, Conflict, NotFound, ProviderUnavailable, ProxyRejected, UpstreamUnavailable
from hookspecs.gpu import CompatibilityCheck, GPUSample
from hookspecs.mcp import MCPServerSpec, MCPServerState, MCPTool
from hookspecs.ollama import ModelEntry, ModelInfo, OllamaServerState, ProgressLine, RunningModel
from open1panel_ai.providers import with_defaults
from open1panel_ai.testing.typecheck import problems

__all__ = [
    "DomainProviderContract",
    "GPUProviderContract",
    "MCPProviderContract",
    "OllamaProviderContract",
    "OllamaServerProviderContract",
    "ProviderContract",
    "RULES",
    "problems",
]

#: How long a started MCP server may take to come up before the checks that need it are skipped.
START_SECONDS = 60.0

#: The rules, by the word that starts each failure message.
RULES = {
    "name": "a provider class has a non-empty str 'name'",
    "members": "a provider has every member of its kind's protocol",
    "probe": "probe() passes where the provider can work, quickly and changing nothing",
    "unavailable": "probe() raises ProviderUnavailable with a reason and a fix where it cannot work",
    "types": "results have the declared types",
    "errors": "errors are the declared ones",
    "streams": "streams can be closed",
    "idempotent": "applies are idempotent, and removing what is not there is no error",
}


def broken(rule: str, detail: str) -> None:
    """Fail the running check, naming its rule."""
    pytest.fail(f"[{rule}] {RULES[rule]}: {detail}", pytrace=False)


def check_type(value: Any, expected: Any, where: str) -> None:
    """Fail under the ``types`` rule unless ``value`` conforms to ``expected``."""
    found = problems(value, expected, where)
    if found:
        broken("types", "; ".join(found[:8]) + (f" (and {len(found) - 8} more)" if len(found) > 8 else ""))


def pytest_report_header(config: pytest.Config) -> str:
    return "open1panel provider contract kit: rules " + ", ".join(RULES)


class ProviderContract:
    """What every provider kind is checked for. Subclass one of the kinds' contracts."""

    #: The class under test; set it in the subclass.
    provider_class: ClassVar[type]
    #: The kind (``"gpu"``); each kind's contract sets it.
    kind: ClassVar[str]

    @pytest.fixture
    def settings(self, tmp_path: Any) -> Mapping[str, str]:
        """Settings under which the provider can work here (``probe()`` passes)."""
        return {"data_dir": str(tmp_path)}

    @pytest.fixture
    def unavailable_settings(self, tmp_path: Any) -> Mapping[str, str] | None:
        """Settings under which the provider cannot work; None for one that always can."""
        return None

    @pytest.fixture
    def provider(self, settings: Mapping[str, str]) -> Any:
        """The provider as the panel holds it: its class with the defaults of the optional
        members it lacks, built with ``settings``."""
        return with_defaults(self.kind, self.provider_class)(settings)

    def test_name(self) -> None:
        name = getattr(self.provider_class, "name", None)
        if not isinstance(name, str) or not name:
            broken("name", f"{self.provider_class.__name__}.name is {name!r}")

    def test_members(self) -> None:
        protocol = hookspecs.ai.PROTOCOLS[self.kind]
        optional = hookspecs.ai.OPTIONAL_MEMBERS.get(self.kind, ())
        wanted = {
            name
            for klass in protocol.__mro__
            if klass.__module__ == hookspecs.ai.__name__
            for name in (*vars(klass), *getattr(klass, "__annotations__", {}))
            if not name.startswith("_") and name not in optional
        }
        missing = sorted(name for name in wanted if not hasattr(self.provider_class, name))
        if missing:
            broken("members", f"{self.provider_class.__name__} has no {', '.join(missing)}")
        for name in sorted(wanted):
            member = inspect.getattr_static(self.provider_class, name)
            declared = inspect.getattr_static(protocol, name, None)
            if inspect.isfunction(declared) and not callable(member):
                broken("members", f"{self.provider_class.__name__}.{name} is not a method")

    def test_probe(self, provider: Any) -> None:
        try:
            result = provider.probe()
        except ProviderUnavailable as exc:
            broken("probe", f"probe() raised ProviderUnavailable with the working settings: {exc.reason}")
        if result is not None:
            broken("probe", f"probe() returned {result!r}; it returns None or raises")

    def test_unavailable(self, unavailable_settings: Mapping[str, str] | None) -> None:
        if unavailable_settings is None:
            pytest.skip("the provider can always work (unavailable_settings is None)")
        provider = with_defaults(self.kind, self.provider_class)(unavailable_settings)
        try:
            provider.probe()
        except ProviderUnavailable as exc:
            for part in ("reason", "fix"):
                text = getattr(exc, part, None)
                if not isinstance(text, str) or not text.strip():
                    broken("unavailable", f"ProviderUnavailable has {part}={text!r}; it needs a sentence")
            return
        except Exception as exc:
            broken("unavailable", f"probe() raised {type(exc).__name__}: {exc}, not ProviderUnavailable")
        broken("unavailable", "probe() passed with unavailable_settings")


class GPUProviderContract(ProviderContract):
    """The checks of a GPU monitoring provider (:class:`hookspecs.ai.GPUProvider`)."""

    kind = "gpu"

    def test_sample_types(self, provider: Any) -> None:
        sample = provider.sample()
        check_type(sample, GPUSample, "sample()")
        for device in sample["devices"]:
            for name in device["unsupported"]:
                if device.get(name) is not None:
                    broken(
                        "types", f"device {device['index']} lists {name!r} as unsupported but reads {device[name]!r}"
                    )

    def test_checks_types(self, provider: Any) -> None:
        check_type(provider.checks(), list[CompatibilityCheck], "checks()")


class OllamaProviderContract(ProviderContract):
    """The checks of a model runtime provider (:class:`hookspecs.ai.OllamaProvider`).

    ``base_url`` is a server to talk to (None skips those checks); ``pullable_model`` a model
    that server can pull, slowly enough that a close arrives while it runs.
    """

    kind = "ollama"

    @pytest.fixture
    def base_url(self) -> str | None:
        return None

    @pytest.fixture
    def pullable_model(self) -> str | None:
        return None

    @pytest.fixture
    def server(self, base_url: str | None) -> str:
        if base_url is None:
            pytest.skip("no base_url to talk to")
        return base_url

    def test_results_types(self, provider: Any, server: str) -> None:
        check_type(provider.version(server), str, "version()")
        models = provider.list_models(server)
        check_type(models, list[ModelEntry], "list_models()")
        check_type(provider.running_models(server), list[RunningModel], "running_models()")
        if models:
            check_type(provider.show(server, models[0]["name"]), ModelInfo, "show()")

    def test_unknown_model_is_not_found(self, provider: Any, server: str) -> None:
        try:
            provider.show(server, "no-such-model-of-the-contract-kit:latest")
        except NotFound:
            return
        except Exception as exc:
            broken("errors", f"show() of an unknown model raised {type(exc).__name__}, not NotFound")
        broken("errors", "show() of an unknown model returned instead of raising NotFound")

    def test_unreachable_server_is_upstream_unavailable(self, provider: Any) -> None:
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        try:
            provider.version(url)
        except UpstreamUnavailable:
            return
        except Exception as exc:
            broken(
                "errors",
                f"version() of an unreachable server raised {type(exc).__name__}: {exc}, not UpstreamUnavailable",
            )
        broken("errors", "version() of an unreachable server returned")

    def test_pull_can_be_closed(self, provider: Any, server: str, pullable_model: str | None) -> None:
        if pullable_model is None:
            pytest.skip("no pullable_model")
        stream = provider.pull(server, pullable_model)
        if not callable(getattr(stream, "close", None)):
            broken("streams", "pull() returned a stream without close()")
        lines = iter(stream)
        first = next(lines)
        check_type(first, ProgressLine, "pull() line")
        stream.close()
        stream.close()  # twice is allowed
        left = list(lines)
        check_type(left, list[ProgressLine], "pull() lines after close()")
        if any(line.get("status") == "success" for line in left):
            broken("streams", "the pull went on to success after close()")


class MCPProviderContract(ProviderContract):
    """The checks of an MCP runtime (:class:`hookspecs.ai.MCPProvider`).

    ``server_spec`` is a server that can start here (None skips the checks that run one).
    """

    kind = "mcp"

    @pytest.fixture
    def server_spec(self) -> MCPServerSpec | None:
        return None

    def test_unknown_server(self, provider: Any) -> None:
        check_type(provider.state("no-such-server"), MCPServerState, "state() of an unknown server")
        if provider.state("no-such-server")["status"] != "stopped":
            broken("types", "state() of an unknown server is not 'stopped'")
        provider.stop("no-such-server")  # stopping what is not running does nothing
        check_type(provider.logs("no-such-server", 10), list[str], "logs()")
        try:
            provider.tools("no-such-server")
        except Conflict:
            return
        except Exception as exc:
            broken("errors", f"tools() of a server that is not running raised {type(exc).__name__}, not Conflict")
        broken("errors", "tools() of a server that is not running returned")

    def test_start_and_stop(self, provider: Any, server_spec: MCPServerSpec | None) -> None:
        if server_spec is None:
            pytest.skip("no server_spec to start")
        provider.start(server_spec)
        try:
            state = provider.state(server_spec["id"])
            check_type(state, MCPServerState, "state()")
            deadline = time.monotonic() + START_SECONDS
            while state["status"] in ("starting", "restarting") and time.monotonic() < deadline:
                time.sleep(0.2)
                state = provider.state(server_spec["id"])
            check_type(state, MCPServerState, "state()")
            if state["status"] != "running":
                pytest.skip(f"the server did not come up here ({state['status']}: {state['last_error']})")
            check_type(provider.tools(server_spec["id"]), list[MCPTool], "tools()")
            check_type(provider.logs(server_spec["id"], 50), list[str], "logs()")
        finally:
            provider.stop(server_spec["id"])
            provider.stop(server_spec["id"])
        if provider.state(server_spec["id"])["status"] != "stopped":
            broken("idempotent", "the server is not stopped after stop()")


class DomainProviderContract(ProviderContract):
    """The checks of a reverse-proxy provider (:class:`hookspecs.ai.DomainProvider`).

    ``settings`` must reach a proxy that serves; ``binding`` is what is applied (its upstream
    need not answer).
    """

    kind = "domain"

    @pytest.fixture
    def binding(self) -> ProxyBinding:
        return ProxyBinding(
            id="contractkit1",
            domains=("kit.example.test",),
            target_kind="ollama",
            upstream=Upstream("http", "127.0.0.1", 9),
        )

    def test_apply_is_idempotent(self, provider: Any, binding: ProxyBinding) -> None:
        check_type(provider.preview(binding), str, "preview()")
        try:
            provider.apply(binding)
            first = provider.status(binding.id)
            check_type(first, BindingStatus, "status()")
            provider.apply(binding)
            again = provider.status(binding.id)
            if again != first:
                broken("idempotent", f"status after a second apply is {again!r}, after the first {first!r}")
            if first["state"] != "online":
                broken("idempotent", f"status after apply is {first!r}, not online")
        finally:
            provider.remove(binding.id)
        provider.remove(binding.id)
        gone = provider.status(binding.id)
        check_type(gone, BindingStatus, "status() after remove()")
        if gone["state"] != "absent":
            broken("idempotent", f"status after remove() is {gone!r}, not absent")

    def test_refusal_is_proxy_rejected(self, provider: Any, binding: ProxyBinding, tmp_path: Any) -> None:
        bad = ProxyBinding(
            id="contractkit2",
            domains=("bad.example.test",),
            target_kind="ollama",
            upstream=binding.upstream,
            tls_mode="existing",
            certificate=str(tmp_path / "missing.pem"),
            certificate_key=str(tmp_path / "missing.key"),
        )
        try:
            provider.apply(bad)
        except ProxyRejected:
            return
        except ApiError:
            return
        except Exception as exc:
            broken("errors", f"apply() of a binding the proxy refuses raised {type(exc).__name__}, not ProxyRejected")
        finally:
            provider.remove(bad.id)
        broken("errors", "apply() of a binding with missing certificate files did not fail")

    def test_described_types(self, provider: Any) -> None:
        check_type(provider.public_port(True), int, "public_port(True)")
        check_type(provider.public_port(False), int, "public_port(False)")
        check_type(provider.acme, bool, "acme")
        check_type(provider.new_routes_first, bool, "new_routes_first")
        check_type(list(provider.settings_in_use()), list[SettingInUse], "settings_in_use()")
        check_type(list(provider.warnings()), list[ProviderWarning], "warnings()")


class OllamaServerProviderContract(ProviderContract):
    """The checks of a way to run the local Ollama server (:class:`hookspecs.ai.OllamaServerProvider`).

    ``values`` are settings the panel would write (already validated); the checks write them,
    read them back and write nothing again, and stop a server that is not running.
    """

    kind = "ollama_server"

    @pytest.fixture
    def values(self) -> Mapping[str, str]:
        return {"OLLAMA_NUM_PARALLEL": "2", "OLLAMA_KEEP_ALIVE": "10m"}

    def test_reads_have_the_declared_types(self, provider: Any) -> None:
        check_type(provider.settings(), dict[str, str], "settings()")
        check_type(provider.inherited(), dict[str, str], "inherited()")
        check_type(provider.logs(5), list[str], "logs()")
        state = provider.state()
        check_type(state, OllamaServerState, "state()")
        if state["status"] == "unhealthy":
            broken("types", "state()['status'] is 'unhealthy', which only the panel's watcher says of Ollama")

    def test_write_is_idempotent(self, provider: Any, values: Mapping[str, str]) -> None:
        provider.write(values)
        provider.write(values)
        if provider.settings() != dict(values):
            broken("idempotent", f"settings() after writing {dict(values)} twice is {provider.settings()}")
        provider.write({})
        if provider.settings() != {}:
            broken("idempotent", f"settings() after writing none is {provider.settings()}")

    def test_stopping_a_stopped_server_is_no_error(self, provider: Any) -> None:
        provider.stop()
        provider.stop()
        check_type(provider.state(), OllamaServerState, "state() after stop()")
