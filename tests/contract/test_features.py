"""One feature registry: every feature declares itself once (its ``Feature``), and the plugin's
menu, the accepted Socket.IO topics, the landing page's cards and the typed interfaces between
features all come from it."""

from __future__ import annotations

import inspect
import pkgutil

import open1panel_ai
from hookspecs.ai import PROVIDER_KINDS
from open1panel_ai import features, interfaces, plugin
from open1panel_ai.realtime import Realtime

FEATURES = features.load()


def test_every_feature_package_is_in_the_registry_in_order():
    packages = {m.name for m in pkgutil.iter_modules(open1panel_ai.__path__) if m.ispkg} - {"standalone", "testing"}
    assert set(FEATURES) == packages
    assert list(FEATURES) == sorted(FEATURES, key=lambda name: FEATURES[name].order)
    assert all(f.kind in PROVIDER_KINDS or f.kind is None for f in FEATURES.values())


def test_the_plugin_menu_is_the_registrys():
    items = plugin.panel_menu_items()
    assert [item["id"] for item in items[1:]] == [f.menu_item()["id"] for f in FEATURES.values() if f.menu]


def test_socketio_accepts_the_declared_topics_and_no_other():
    realtime = Realtime(None, [topic for f in FEATURES.values() for topic in f.topics])
    for topic in (
        "tasks",
        "task:abc",
        "gpu",
        "mcp",
        "mcp:srv1:logs",
        "alerts",
        "ollama",
        "ollama:server",
        "ollama:server:logs",
        "domain",
    ):
        assert realtime.accepts(topic), topic
    for topic in ("domains", "mcp:../x:logs", "gpus", "ollama:server:log", ""):
        assert not realtime.accepts(topic), topic


def test_the_api_reference_lists_every_event_of_every_declared_topic():
    """The reference's Socket.IO table is rendered from the declarations, so a topic declared
    without its events would be missing from it."""
    from open1panel_ai.apidocs import topic_rows
    from open1panel_ai.realtime import CORE_TOPICS

    topics = [*CORE_TOPICS, *(topic for f in FEATURES.values() for topic in f.topics)]
    assert all(topic.events for topic in topics), [t.shown for t in topics if not t.events]
    rows = topic_rows().splitlines()
    assert len(rows) == sum(len(topic.events) for topic in topics)
    for topic in topics:
        for event in topic.events:
            assert f"| `{topic.shown}` | `{event.name}` | {event.payload} |" in rows


def test_each_route_is_named_after_the_feature_whose_views_hold_it(host):
    """``ai.mcp_list_servers`` lives in ``open1panel_ai.mcp``'s views; the core's routes (the
    landing page, status, tasks) carry no feature's name."""
    seen = set()
    for endpoint, function in host.app.view_functions.items():
        if not endpoint.startswith("ai.") or endpoint == "ai.static":
            continue
        name = endpoint.removeprefix("ai.")
        package = function.__module__.split(".")[1]
        if package in FEATURES:
            assert name.startswith(f"{package}_"), endpoint
            seen.add(package)
        else:
            assert function.__module__ == "open1panel_ai.views", endpoint
            assert not any(name.startswith(f"{feature}_") for feature in FEATURES), endpoint
    assert seen == {name for name, feature in FEATURES.items() if feature.views is not None}


def test_each_feature_offers_what_its_service_implements(host):
    context = host.app.extensions["open1panel_ai"]
    for interface in (
        interfaces.OllamaEndpoints,
        interfaces.LoadedModels,
        interfaces.MCPServers,
        interfaces.GPUReadings,
        interfaces.DomainBindings,
        interfaces.MetricsSource,
    ):
        service = context.find(interface)
        assert service is not None, interface.__name__
        members = [name for name, _ in inspect.getmembers(interface, inspect.isfunction) if not name.startswith("_")]
        assert all(callable(getattr(service, name, None)) for name in members), interface.__name__


def test_the_landing_page_shows_a_card_per_feature_kind(client, auth_headers):
    page = client.get("/ai/", headers=auth_headers).get_data(as_text=True)
    kinds = [f.kind for f in FEATURES.values() if f.kind]
    assert [k for k in kinds if f'data-kind="{k}"' in page] == kinds
