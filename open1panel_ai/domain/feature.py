"""The domain feature as the AI module loads it (see :mod:`open1panel_ai.features`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from open1panel_ai import i18n
from open1panel_ai.domain import builtin, views
from open1panel_ai.domain.service import DomainService
from open1panel_ai.features import Event, Feature, Topic
from open1panel_ai.interfaces import DomainBindings

if TYPE_CHECKING:
    from open1panel_ai.context import AIContext

BUILTIN_PROVIDERS = [builtin]


def menu_item() -> dict[str, Any]:
    return {"id": "ai-domain", "title": i18n.titles("domain.menu"), "url": "/ai/domains/", "icon": "globe"}


def start(context: AIContext) -> DomainService:
    service = DomainService(context)
    service.start()
    return service


def stop(service: DomainService) -> None:
    """Bindings live in the proxy, not in the panel: nothing runs that needs stopping."""


FEATURE = Feature(
    name="domain",
    order=40,
    kind="domain",
    start=start,
    stop=stop,
    builtin_providers=tuple(BUILTIN_PROVIDERS),
    menu=menu_item,
    topics=(
        Topic(
            "domain",
            "domain",
            (
                Event(
                    "domain",
                    '`{"type": "changed", "id"}` when a domain binding is created, changed or its state changes;'
                    ' `{"type": "removed", "id"}` when removed (read it with `GET /domains/<id>`)',
                ),
            ),
        ),
    ),
    views=views,
    api_tag="domains",
    api_title="Domain bindings",
    guide="domains.md",
    overview=lambda service: service.summary(),
    offers=(DomainBindings,),
)
