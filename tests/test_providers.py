"""Choosing providers: by name, or ``auto`` by probe, with installed plugins first and failures
shown on the status page instead of stopping the panel."""

import pytest

from hookspecs import hookimpl
from hookspecs.ai import ProviderUnavailable


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


def gpu_status(host):
    client = host.app.test_client()
    body = client.get("/api/v2/ai/status", headers={"Authorization": "Bearer test-admin-token-0123456789"}).get_json()
    return next(p for p in body["providers"] if p["kind"] == "gpu")


def test_auto_takes_the_first_provider_whose_probe_passes(make_host):
    host = make_host(("vendor", Plugin(provider("down", fails=ProviderUnavailable("no driver", "install it")),
                                       provider("up"))))
    status = gpu_status(host)
    assert (status["provider"], status["usable"], status["setting"]) == ("up", True, "auto")
    assert [(c["name"], c["usable"]) for c in status["candidates"]] == [("down", False), ("up", True)]
    assert status["candidates"][0]["reason"] == "no driver"


def test_an_installed_plugin_wins_over_a_trylast_builtin(make_host):
    host = make_host(("builtin", Plugin(provider("builtin-gpu"), trylast=True)),
                     ("installed", Plugin(provider("vendor-gpu"))))
    status = gpu_status(host)
    assert status["provider"] == "vendor-gpu"
    assert [c["plugin"] for c in status["candidates"]] == ["installed", "builtin"]


def test_settings_choose_a_provider_by_name(make_host, panel_env):
    panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "builtin-gpu")
    host = make_host(("builtin", Plugin(provider("builtin-gpu"), trylast=True)),
                     ("installed", Plugin(provider("vendor-gpu"))))
    assert gpu_status(host)["provider"] == "builtin-gpu"


def test_a_named_provider_that_is_missing_says_what_is_installed(make_host, panel_env):
    panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "rocm")
    status = gpu_status(make_host(("installed", Plugin(provider("vendor-gpu")))))
    assert not status["usable"]
    assert "'rocm' is not installed" in status["reason"] and "vendor-gpu" in status["reason"]
    assert "OPEN1PANEL_AI_GPU_PROVIDER" in status["fix"]


def test_a_named_provider_that_fails_its_probe_reports_why(make_host, panel_env):
    panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "down")
    status = gpu_status(make_host(("p", Plugin(provider("down", fails=ProviderUnavailable("driver too old", "upgrade")),
                                               provider("up")))))
    assert (status["usable"], status["reason"], status["fix"]) == (False, "driver too old", "upgrade")


def test_none_turns_a_feature_off(make_host, panel_env):
    panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "none")
    status = gpu_status(make_host(("p", Plugin(provider("up")))))
    assert not status["usable"] and "turned off" in status["reason"]


def test_a_probe_that_crashes_is_reported_not_raised(make_host):
    status = gpu_status(make_host(("p", Plugin(provider("buggy", fails=KeyError("index"))))))
    assert not status["usable"]
    assert "KeyError" in status["candidates"][0]["reason"]


def test_a_plugin_whose_hook_raises_is_listed_and_the_others_still_count(make_host):
    status = gpu_status(make_host(("broken", Broken()), ("good", Plugin(provider("up")))))
    assert status["provider"] == "up"
    assert status["errors"] == [{"plugin": "broken", "error": "ImportError: libsomething.so not found"}]


def test_with_no_provider_the_kind_says_so(host):
    status = gpu_status(host)
    assert (status["usable"], status["provider"]) == (False, None)
    assert "No GPU provider is installed" in status["reason"]


def test_providers_are_built_with_the_settings_mapping(make_host, panel_env, data_dir):
    panel_env.setenv("OPEN1PANEL_AI_SOMETHING", "value")
    made = []

    class Recording(provider("recording")):
        def __init__(self, settings):
            made.append(settings)

    host = make_host(("p", Plugin(Recording)))
    gpu_status(host)
    assert made and made[0]["something"] == "value" and made[0]["data_dir"] == str(data_dir)


def test_get_raises_a_503_error_when_nothing_is_usable(host):
    from open1panel_ai.errors import UpstreamUnavailable

    with pytest.raises(UpstreamUnavailable) as caught:
        host.app.extensions["open1panel_ai"].providers.get("gpu")
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


def test_each_kind_has_its_own_registration_hook(make_host):
    host = make_host(("every", EveryKind()))
    body = host.app.test_client().get(
        "/api/v2/ai/status", headers={"Authorization": "Bearer test-admin-token-0123456789"}).get_json()
    chosen = {p["kind"]: (p["provider"], p["usable"]) for p in body["providers"]}
    assert chosen == {"ollama": ("stand-in-ollama", True), "mcp": ("stand-in-mcp", True),
                      "gpu": ("stand-in-gpu", True), "domain": (None, False)}
