"""The alert routes and page: each view parses with a schema and calls the service."""

from __future__ import annotations

from typing import Any

from flask import Response, g, render_template
from flask.typing import ResponseReturnValue

from open1panel_ai.alerts import channels, rules, schemas
from open1panel_ai.alerts.service import AlertService
from open1panel_ai.web import API_PREFIX, blueprint, current_ai, operation

PREFIX = API_PREFIX + "/alerts"
TAG = "alerts"
ALERT_PATH = {"alert_id": schemas.ALERT_ID}
CHANNEL_PATH = {"channel_id": schemas.CHANNEL_ID}
RULE_PATH = {"rule_id": schemas.RULE_ID}


def _service() -> AlertService:
    return current_ai().service("alerts")


def _who() -> str | None:
    user = getattr(g, "ai_user", None) or {}
    return user.get("name")


@blueprint.get("/ai/alerts/")
def alerts_page() -> ResponseReturnValue:
    """AlertsPage: the alert history with acknowledge, the rules, and the channels."""
    return render_template("ai/alerts/index.html", kinds=channels.KINDS, severities=rules.SEVERITIES)


# -- alerts -----------------------------------------------------------------------------------


@blueprint.get(PREFIX)
@operation(
    summary="Alerts, newest first, with the unread and firing counts",
    tag=TAG,
    query=schemas.AlertQuerySchema(),
    response=schemas.AlertListSchema(),
)
def alerts_list(query: dict[str, Any]) -> ResponseReturnValue:
    """Changes are pushed live on the Socket.IO topic ``alerts`` (event ``alerts``)."""
    service = _service()
    return {"alerts": service.alerts(query.get("status"), query["limit"]), **service.counts()}


@blueprint.get(PREFIX + "/counts")
@operation(
    summary="How many alerts are unread and how many still fire (the bell)",
    tag=TAG,
    response=schemas.AlertCountsSchema(),
)
def alerts_counts() -> ResponseReturnValue:
    return _service().counts()


@blueprint.post(PREFIX + "/<alert_id>/acknowledge")
@operation(
    path=ALERT_PATH,
    summary="Acknowledge an alert (it no longer counts as unread)",
    tag=TAG,
    response=schemas.AlertSchema(),
    errors_=(404,),
)
def alerts_acknowledge(alert_id: str) -> ResponseReturnValue:
    return _service().acknowledge(alert_id, _who())


@blueprint.post(PREFIX + "/acknowledge")
@operation(summary="Acknowledge every alert", tag=TAG, response=schemas.AcknowledgedSchema())
def alerts_acknowledge_all() -> ResponseReturnValue:
    return {"acknowledged": _service().acknowledge_all(_who())}


# -- rules ------------------------------------------------------------------------------------


@blueprint.get(PREFIX + "/rules")
@operation(summary="The built-in alert rules with their settings", tag=TAG, response=schemas.RuleListSchema())
def alerts_rules() -> ResponseReturnValue:
    return {"rules": _service().rules()}


@blueprint.put(PREFIX + "/rules/<rule_id>")
@operation(
    path=RULE_PATH,
    summary="Change a rule's settings",
    tag=TAG,
    body=schemas.RuleUpdateSchema(),
    response=schemas.RuleSchema(),
    errors_=(404,),
)
def alerts_update_rule(rule_id: str, body: dict[str, Any]) -> ResponseReturnValue:
    """The rules are evaluated again at once with the new settings. A rule turned off
    resolves its open alerts without a notice."""
    return _service().update_rule(rule_id, body)


# -- channels ---------------------------------------------------------------------------------


@blueprint.get(PREFIX + "/channels")
@operation(summary="Alert channels with how their messages fare", tag=TAG, response=schemas.ChannelListSchema())
def alerts_channels() -> ResponseReturnValue:
    """Each channel's delivery state is pushed on the topic ``alerts`` (event ``alert_channel``)
    after every send."""
    return {"channels": _service().channels()}


@blueprint.post(PREFIX + "/channels")
@operation(
    summary="Add an alert channel: a webhook (generic, Slack, Feishu, DingTalk, WeCom) or email",
    tag=TAG,
    status=201,
    body=schemas.ChannelInSchema(),
    response=schemas.ChannelSchema(),
    errors_=(409,),
)
def alerts_create_channel(body: dict[str, Any]) -> ResponseReturnValue:
    """Secrets (the webhook URL, the signing secret, the SMTP password) are write-only."""
    return _service().create_channel(body)


@blueprint.get(PREFIX + "/channels/<channel_id>")
@operation(path=CHANNEL_PATH, summary="One alert channel", tag=TAG, response=schemas.ChannelSchema(), errors_=(404,))
def alerts_get_channel(channel_id: str) -> ResponseReturnValue:
    return _service().channel(channel_id)


@blueprint.put(PREFIX + "/channels/<channel_id>")
@operation(
    path=CHANNEL_PATH,
    summary="Change an alert channel",
    tag=TAG,
    body=schemas.ChannelUpdateSchema(),
    response=schemas.ChannelSchema(),
    errors_=(404, 409),
)
def alerts_update_channel(channel_id: str, body: dict[str, Any]) -> ResponseReturnValue:
    """Fields left out keep their value, secrets included; a secret sent as null is removed."""
    return _service().update_channel(channel_id, body)


@blueprint.delete(PREFIX + "/channels/<channel_id>")
@operation(
    path=CHANNEL_PATH,
    summary="Remove an alert channel and the messages waiting for it",
    tag=TAG,
    status=204,
    errors_=(404,),
)
def alerts_delete_channel(channel_id: str) -> ResponseReturnValue:
    _service().delete_channel(channel_id)
    return Response(status=204)


@blueprint.post(PREFIX + "/channels/<channel_id>/test")
@operation(
    path=CHANNEL_PATH,
    summary="Send a test message through a channel now",
    tag=TAG,
    response=schemas.ChannelTestSchema(),
    errors_=(404, 502),
)
def alerts_test_channel(channel_id: str) -> ResponseReturnValue:
    """502 ``channel_test_failed`` with the reason when the channel does not take it."""
    return _service().test_channel(channel_id)


@blueprint.post(PREFIX + "/channels/<channel_id>/retry")
@operation(
    path=CHANNEL_PATH,
    summary="Send again the messages a channel gave up on",
    tag=TAG,
    response=schemas.ChannelSchema(),
    errors_=(404,),
)
def alerts_retry_channel(channel_id: str) -> ResponseReturnValue:
    return _service().retry_channel(channel_id)


@blueprint.get(PREFIX + "/channels/<channel_id>/deliveries")
@operation(
    path=CHANNEL_PATH,
    summary="A channel's latest messages and how each fared",
    tag=TAG,
    query=schemas.DeliveryQuerySchema(),
    response=schemas.DeliveryListSchema(),
    errors_=(404,),
)
def alerts_channel_deliveries(channel_id: str, query: dict[str, Any]) -> ResponseReturnValue:
    return {"deliveries": _service().deliveries(channel_id, query["limit"])}
