"""How alerts plug into the AI module (see :mod:`open1panel_ai.features`).

Alerts have no provider of their own: the rules read the other features through their
services (started before this one), and the channels are plain HTTP and SMTP.
"""

from __future__ import annotations

from open1panel_ai import i18n
from open1panel_ai.alerts import views  # noqa: F401  (attaches the routes)
from open1panel_ai.alerts.service import AlertService

BUILTIN_PROVIDERS: list = []


def menu_item() -> dict:
    return {"id": "alerts", "title": i18n.titles("alerts.menu"), "url": "/ai/alerts/", "icon": "alerts"}


def start(context) -> AlertService:
    service = AlertService(context)
    service.start()
    return service


def stop(service: AlertService) -> None:
    service.stop()
