"""How alerts plug into the AI module (see :mod:`open1panel_ai.features`).

Alerts have no provider of their own: the rules read the other features through the
interfaces their services offer (started before this one, as alerts come last), and the
channels are plain HTTP and SMTP.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from open1panel_ai import i18n
from open1panel_ai.alerts import views
from open1panel_ai.alerts.service import AlertService
from open1panel_ai.features import Event, Feature, Topic
from open1panel_ai.interfaces import MetricsSource

if TYPE_CHECKING:
    from open1panel_ai.context import AIContext

BUILTIN_PROVIDERS: list[ModuleType] = []


def menu_item() -> dict[str, Any]:
    return {"id": "alerts", "title": i18n.titles("alerts.menu"), "url": "/ai/alerts/", "icon": "alerts"}


def start(context: AIContext) -> AlertService:
    service = AlertService(context)
    service.start()
    return service


def stop(service: AlertService) -> None:
    service.stop()


FEATURE = Feature(
    name="alerts",
    order=90,
    start=start,
    stop=stop,
    menu=menu_item,
    topics=(
        Topic(
            "alerts",
            "alerts",
            (
                Event(
                    "alerts",
                    '`{"unread", "firing", "alert"}`: the counts, and the alert raised, resolved or acknowledged'
                    " (null when several were)",
                ),
                Event("alert_channel", "an alert channel (as `GET /alerts/channels`) when its delivery state changes"),
            ),
        ),
    ),
    views=views,
    api_tag="alerts",
    api_title="Alerts",
    guide="alerts.md",
    offers=(MetricsSource,),
)
