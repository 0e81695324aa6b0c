"""Choosing providers: by name, or ``auto`` by probe, with installed plugins first and failures
shown on the status page instead of stopping the panel."""

import pluggy
import pytest

import hookspecs.ai
from hookspecs import PROJECT_NAME, hookimpl
from hookspecs.ai import ProviderUnavailable
from open1panel_ai.errors import UpstreamUnavailable
from open1panel_ai.providers import ProviderRegistry


def provider(name, *, fails=None):
    class Provider:
        def __init__(self, settings):
            self.settings = settings

        def probe(self):
            if fails is not None:
                raise fails

    Provider.name = name
    return Provider


class Plugin:
    """A provider plugin offering ``classes`` for the GPU kind."""

    def __init__(self, *classes, trylast=False):
        def ai_gpu_providers():
            return list(classes)

        self.ai_gpu_providers = hookimpl(trylast=trylast)(ai_gpu_providers)


class Broken:
    @hookimpl
    def ai_gpu_providers(self):
        raise ImportError("libsomething.so not found")


def registry(*plugins, gpu="auto", settings=None):
    """A registry over exactly these plugins (no built-ins), the way the panel builds one."""
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs.ai)
    for name, plugin in plugins:
        manager.register(plugin, name=name)
    return ProviderRegistry(manager, settings or {"data_dir": "/tmp"}, {"gpu": gpu})


def gpu_status(registry):
    return next(p for p in registry.status() if p["kind"] == "gpu")


def test_auto_takes_the_first_provider_whose_probe_passes():
    host = registry(
        ("vendor", Plugin(provider("down", fails=ProviderUnavailable("no driver", "install it")), provider("up")))
    )
    status = gpu_status(host)
    assert (status["provider"], status["usable"], status["setting"]) == ("up", True, "auto")
    assert [(c["name"], c["usable"]) for c in status["candidates"]] == [("down", False), ("up", True)]
    assert status["candidates"][0]["reason"] == "no driver"


def test_an_installed_plugin_wins_over_a_trylast_builtin():
    host = registry(
        ("builtin", Plugin(provider("builtin-gpu"), trylast=True)), ("installed", Plugin(provider("vendor-gpu")))
    )
    status = gpu_status(host)
    assert status["provider"] == "vendor-gpu"
    assert [c["plugin"] for c in status["candidates"]] == ["installed", "builtin"]


def test_settings_choose_a_provider_by_name():
    host = registry(
        ("builtin", Plugin(provider("builtin-gpu"), trylast=True)),
        ("installed", Plugin(provider("vendor-gpu"))),
        gpu="builtin-gpu",
    )
    assert gpu_status(host)["provider"] == "builtin-gpu"


def test_a_named_provider_that_is_missing_says_what_is_installed():
    status = gpu_status(registry(("installed", Plugin(provider("vendor-gpu"))), gpu="rocm"))
    assert not status["usable"]
    assert "'rocm' is not installed" in status["reason"] and "vendor-gpu" in status["reason"]
    assert "OPEN1PANEL_AI_GPU_PROVIDER" in status["fix"]


def test_a_named_provider_that_fails_its_probe_reports_why():
    status = gpu_status(
        registry(
            ("p", Plugin(provider("down", fails=ProviderUnavailable("driver too old", "upgrade")), provider("up"))),
            gpu="down",
        )
    )
    assert (status["usable"], status["reason"], status["fix"]) == (False, "driver too old", "upgrade")


def test_none_turns_a_feature_off():
    status = gpu_status(registry(("p", Plugin(provider("up"))), gpu="none"))
    assert not status["usable"] and "turned off" in status["reason"]


def test_a_probe_that_crashes_is_reported_not_raised():
    status = gpu_status(registry(("p", Plugin(provider("buggy", fails=KeyError("index"))))))
    assert not status["usable"]
    assert "KeyError" in status["candidates"][0]["reason"]


def test_a_plugin_whose_hook_raises_is_listed_and_the_others_still_count():
    status = gpu_status(registry(("broken", Broken()), ("good", Plugin(provider("up")))))
    assert status["provider"] == "up"
    assert status["errors"] == [{"plugin": "broken", "error": "ImportError: libsomething.so not found"}]


def test_with_no_provider_the_kind_says_so():
    status = gpu_status(registry())
    assert (status["usable"], status["provider"]) == (False, None)
    assert "No GPU provider is installed" in status["reason"]


def test_providers_are_built_with_the_panels_settings(make_host, panel_env, data_dir):
    panel_env.setenv("OPEN1PANEL_AI_SOMETHING", "value")
    made = []

    class Recording(provider("recording")):
        def __init__(self, settings):
            made.append(settings)

    class Domain:
        @hookimpl
        def ai_domain_providers(self):
            return [Recording]

    make_host(("p", Domain())).app.extensions["open1panel_ai"].providers.choose("domain", refresh=True)
    assert made and made[-1]["something"] == "value" and made[-1]["data_dir"] == str(data_dir)


def test_get_raises_a_503_error_when_nothing_is_usable():
    with pytest.raises(UpstreamUnavailable) as caught:
        registry().get("gpu")
    assert caught.value.status == 503 and caught.value.details["kind"] == "gpu"


class EveryKind:
    """One plugin offering a provider for each kind, through each registration hook."""

    @hookimpl
    def ai_ollama_providers(self):
        return [provider("stand-in-ollama")]

    @hookimpl
    def ai_mcp_providers(self):
        return [provider("stand-in-mcp")]

    @hookimpl
    def ai_gpu_providers(self):
        return [provider("stand-in-gpu")]

    @hookimpl
    def ai_domain_providers(self):
        return [provider("stand-in-domain", fails=ProviderUnavailable("no proxy found"))]


def test_each_kind_has_its_own_registration_hook():
    chosen = {p["kind"]: (p["provider"], p["usable"]) for p in registry(("every", EveryKind())).status()}
    assert chosen == {
        "ollama": ("stand-in-ollama", True),
        "mcp": ("stand-in-mcp", True),
        "gpu": ("stand-in-gpu", True),
        "domain": (None, False),
    }


def test_a_refresh_probes_the_provider_in_use_and_builds_none_to_throw_away():
    built, probed = [], []

    class Counted(provider("counted")):
        def __init__(self, settings):
            built.append(self)

        def probe(self):
            probed.append(self)

    chosen = registry(("p", Plugin(Counted)))
    in_use = chosen.get("gpu")
    for _ in range(3):
        assert gpu_status(chosen)["provider"] == "counted"
    assert built == [in_use] and probed == [in_use] * 4
    assert chosen.get("gpu") is in_use


def test_a_refresh_switches_to_a_first_choice_that_became_usable():
    ready = []

    class Preferred(provider("preferred")):
        def probe(self):
            if not ready:
                raise ProviderUnavailable("not yet")

    fallback = provider("fallback")
    chosen = registry(("first", Plugin(Preferred)), ("last", Plugin(fallback, trylast=True)))
    assert isinstance(chosen.get("gpu"), fallback)
    ready.append(True)
    assert gpu_status(chosen)["provider"] == "preferred"
    assert isinstance(chosen.get("gpu"), Preferred)


def test_a_kind_found_unusable_is_probed_again_by_a_later_call(monkeypatch):
    back = []

    class Proxy(provider("proxy")):
        def probe(self):
            if not back:
                raise ProviderUnavailable("proxy is not running")

    chosen = registry(("p", Plugin(Proxy)))
    with pytest.raises(UpstreamUnavailable, match="not running"):
        chosen.get("gpu")
    back.append(True)
    with pytest.raises(UpstreamUnavailable):  # within the re-check interval: the cached answer
        chosen.get("gpu")
    monkeypatch.setattr("open1panel_ai.providers.RECHECK_SECONDS", 0)
    assert isinstance(chosen.get("gpu"), Proxy)
