"""The domain feature as the AI module loads it (see :mod:`open1panel_ai.features`)."""

from __future__ import annotations

from open1panel_ai import i18n
from open1panel_ai.domain import builtin, views  # noqa: F401  (views attaches the routes)
from open1panel_ai.domain.service import DomainService

BUILTIN_PROVIDERS = [builtin]


def menu_item() -> dict:
    return {"id": "ai-domain", "title": i18n.titles("domain.menu"), "url": "/ai/domains/",
            "icon": "globe"}


def start(context) -> DomainService:
    service = DomainService(context)
    service.start()
    return service


def stop(service: DomainService) -> None:
    """Bindings live in the proxy, not in the panel: nothing runs that needs stopping."""
