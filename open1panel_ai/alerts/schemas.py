"""Marshmallow schemas of the alerts API: alerts, rules, channels and their deliveries."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from open1panel_ai.alerts import channels, delivery, rules
from open1panel_ai.i18n import LANGUAGES
from open1panel_ai.schemas import JSONBoolean, Pattern, TranslatableSchema

ALERT_ID = r"^[0-9a-f]{12}$"
CHANNEL_ID = r"^[0-9a-f]{12}$"
RULE_ID = r"^[a-z_]{1,40}$"
URL = r"^https?://\S+$"
NAME = r"^[^\x00-\x1f\x7f]+$"
STATUSES = ("firing", "resolved")


def _seconds(description: str) -> fields.Float:
    return fields.Float(validate=validate.Range(min=0, max=30 * 86400), metadata={"description": description})


# -- alerts -----------------------------------------------------------------------------------


class AlertSchema(Schema):
    """One alert: a rule's condition held for a subject. It stays ``firing`` while the
    condition holds and becomes ``resolved`` when it clears."""

    id = fields.String(required=True)
    rule = fields.String(required=True, validate=validate.OneOf(list(rules.BY_ID)))
    subject_key = fields.String(
        required=True,
        metadata={
            "description": "What the rule watches, as the panel names it: a GPU's UUID, an MCP "
            "server's id, an Ollama endpoint, a folder, a task id, a binding id."
        },
    )
    subject = fields.String(required=True, metadata={"description": "The same, as a person reads it."})
    severity = fields.String(required=True, validate=validate.OneOf(rules.SEVERITIES))
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    summary = fields.String(required=True, metadata={"description": "What is wrong, in English."})
    summary_i18n = fields.Nested(
        TranslatableSchema,
        allow_none=True,
        metadata={"description": "The summary's key and values, for pages that show it in their language."},
    )
    value = fields.Float(
        allow_none=True, metadata={"description": "The measured value: °C, %, bytes free; null where there is none."}
    )
    started_at = fields.String(required=True, metadata={"description": "When the condition began (RFC 3339, UTC)."})
    fired_at = fields.String(required=True, metadata={"description": "When the alert was raised."})
    resolved_at = fields.String(allow_none=True)
    acknowledged_at = fields.String(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)


class AlertCountsSchema(Schema):
    unread = fields.Integer(required=True, metadata={"description": "Alerts nobody acknowledged yet."})
    firing = fields.Integer(required=True, metadata={"description": "Alerts whose condition still holds."})


class AlertListSchema(AlertCountsSchema):
    alerts = fields.List(fields.Nested(AlertSchema), required=True)


class AlertQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class AcknowledgedSchema(Schema):
    acknowledged = fields.Integer(required=True, metadata={"description": "How many were acknowledged now."})


# -- rules ------------------------------------------------------------------------------------


class RuleParamsSchema(Schema):
    """The thresholds of a rule; each rule takes only its own (see docs/alerts.md)."""

    threshold = fields.Float(
        validate=validate.Range(min=0, max=1000),
        metadata={"description": "°C for gpu_temperature; % for gpu_memory and gpu_utilization."},
    )
    min_free_percent = fields.Float(
        validate=validate.Range(min=0, max=100),
        metadata={"description": "disk_low: alert below this share free, in %; 0 turns this limit off."},
    )
    min_free_gib = fields.Float(
        validate=validate.Range(min=0, max=1_000_000),
        metadata={"description": "disk_low: alert below this much free, in GiB; 0 turns this limit off."},
    )


class RuleSettingsSchema(Schema):
    enabled = JSONBoolean(required=True)
    severity = fields.String(required=True, validate=validate.OneOf(rules.SEVERITIES))
    for_seconds = _seconds("How long the condition must hold before an alert is raised.")
    quiet_seconds = _seconds(
        "After an alert, how long no new alert of the same rule and subject "
        "is raised, so that a condition that comes and goes is told once."
    )
    notify_resolved = JSONBoolean(
        required=True, metadata={"description": "Send a resolved notice when the condition clears."}
    )
    params = fields.Nested(RuleParamsSchema, required=True)


class RuleSchema(RuleSettingsSchema):
    """A built-in rule, its settings, and how many of its subjects are in trouble now."""

    id = fields.String(required=True, validate=validate.OneOf(list(rules.BY_ID)))
    defaults = fields.Nested(RuleSettingsSchema, required=True)
    firing = fields.Integer(required=True, metadata={"description": "Subjects with an open alert."})
    pending = fields.Integer(
        required=True,
        metadata={
            "description": "Subjects whose condition holds but not yet for for_seconds (or within the quiet period)."
        },
    )


class RuleListSchema(Schema):
    rules = fields.List(fields.Nested(RuleSchema), required=True)


class RuleUpdateSchema(Schema):
    """Fields left out keep their value; ``params`` changes only the thresholds it names."""

    enabled = JSONBoolean()
    severity = fields.String(validate=validate.OneOf(rules.SEVERITIES))
    for_seconds = _seconds("How long the condition must hold before an alert is raised.")
    quiet_seconds = _seconds("The quiet period after an alert.")
    notify_resolved = JSONBoolean()
    params = fields.Nested(RuleParamsSchema)


# -- channels ---------------------------------------------------------------------------------


class EmailInSchema(Schema):
    """An SMTP server and the addresses. Given whole on an update, except ``password``, which
    is write-only: leave it out to keep the stored one, send null to remove it."""

    host = fields.String(required=True, validate=[validate.Length(min=1, max=253), Pattern(r"^[^\s/]+$")])
    port = fields.Integer(strict=True, load_default=587, validate=validate.Range(min=1, max=65535))
    security = fields.String(
        load_default="starttls",
        validate=validate.OneOf(["starttls", "tls"]),
        metadata={
            "description": "starttls: connect in the clear and upgrade with STARTTLS (a server "
            "without it is refused); tls: TLS from the first byte (port 465)."
        },
    )
    verify_tls = JSONBoolean(
        load_default=True,
        metadata={
            "description": "Check the server's certificate and name; turn off only for a server "
            "with a self-signed certificate on a network you trust."
        },
    )
    username = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=320))
    password = fields.String(
        allow_none=True, load_only=True, validate=validate.Length(max=1024), metadata={"description": "Write-only."}
    )
    from_address = fields.String(required=True, validate=validate.Length(min=3, max=320))
    to = fields.List(
        fields.String(validate=validate.Length(min=3, max=320)), required=True, validate=validate.Length(min=1, max=50)
    )


class EmailSchema(Schema):
    host = fields.String(required=True)
    port = fields.Integer(required=True)
    security = fields.String(required=True)
    verify_tls = fields.Boolean(required=True)
    username = fields.String(allow_none=True)
    from_address = fields.String(required=True)
    to = fields.List(fields.String(), required=True)
    has_password = fields.Boolean(required=True)


class ChannelInSchema(Schema):
    """A channel as sent on create. ``url`` (webhook kinds) and ``email`` (the email kind)
    go with the kind; ``secret`` is for webhook, feishu and dingtalk."""

    name = fields.String(required=True, validate=[validate.Length(min=1, max=80), Pattern(NAME)])
    kind = fields.String(required=True, validate=validate.OneOf(channels.KINDS))
    enabled = JSONBoolean(load_default=True)
    language = fields.String(
        load_default="en",
        validate=validate.OneOf(list(LANGUAGES)),
        metadata={"description": "The language of the messages."},
    )
    min_severity = fields.String(
        load_default="info",
        validate=validate.OneOf(rules.SEVERITIES),
        metadata={"description": "Alerts below this severity do not go to this channel."},
    )
    send_resolved = JSONBoolean(
        load_default=True, metadata={"description": "Send resolved notices here (when the rule sends them)."}
    )
    url = fields.String(
        allow_none=True,
        validate=[validate.Length(max=2000), Pattern(URL)],
        metadata={
            "description": "The webhook URL. Write-only: answers show its origin only, as the "
            "services put their tokens in the rest. Leave it out on an update to keep it."
        },
    )
    secret = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=512),
        metadata={
            "description": "The signing secret. Write-only; leave it out on an update to keep it, "
            "send null to remove it."
        },
    )
    email = fields.Nested(EmailInSchema, allow_none=True)


class ChannelUpdateSchema(ChannelInSchema):
    """Fields left out keep their value; the kind cannot change."""

    name = fields.String(validate=[validate.Length(min=1, max=80), Pattern(NAME)])
    kind = fields.String(validate=validate.OneOf(channels.KINDS))
    enabled = JSONBoolean()
    language = fields.String(validate=validate.OneOf(list(LANGUAGES)))
    min_severity = fields.String(validate=validate.OneOf(rules.SEVERITIES))
    send_resolved = JSONBoolean()


class ChannelDeliveryStateSchema(Schema):
    """How the channel's messages fare: what waits, what was given up, the last error."""

    waiting = fields.Integer(required=True, metadata={"description": "Messages not sent yet (being retried included)."})
    failed = fields.Integer(required=True, metadata={"description": "Messages given up after every retry."})
    next_attempt_at = fields.String(allow_none=True, metadata={"description": "When the next retry is due."})
    last_attempt_at = fields.String(allow_none=True)
    last_success_at = fields.String(allow_none=True)
    last_error = fields.String(
        allow_none=True, metadata={"description": "Why the last send failed, in English; null after a success."}
    )
    last_error_i18n = fields.Nested(TranslatableSchema, allow_none=True)


class ChannelSchema(Schema):
    """A channel. Secrets never appear: the URL shows its origin only."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(channels.KINDS))
    enabled = fields.Boolean(required=True)
    language = fields.String(required=True)
    min_severity = fields.String(required=True, validate=validate.OneOf(rules.SEVERITIES))
    send_resolved = fields.Boolean(required=True)
    url = fields.String(allow_none=True, metadata={"description": "The webhook's origin, then /…"})
    has_secret = fields.Boolean(required=True)
    email = fields.Nested(EmailSchema, allow_none=True)
    delivery = fields.Nested(ChannelDeliveryStateSchema, required=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class ChannelListSchema(Schema):
    channels = fields.List(fields.Nested(ChannelSchema), required=True)


class ChannelTestSchema(Schema):
    ok = fields.Boolean(required=True)
    answer = fields.String(required=True, metadata={"description": "What the service answered (HTTP 200, say)."})
    delivery_id = fields.String(required=True)


class DeliverySchema(Schema):
    id = fields.String(required=True)
    alert_id = fields.String(required=True)
    rule = fields.String(required=True)
    subject = fields.String(required=True)
    event = fields.String(required=True, validate=validate.OneOf(["firing", "resolved"]))
    status = fields.String(required=True, validate=validate.OneOf(delivery.STATUSES))
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    error_i18n = fields.Nested(TranslatableSchema, allow_none=True)
    created_at = fields.String(required=True)
    sent_at = fields.String(allow_none=True)


class DeliveryListSchema(Schema):
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)


class DeliveryQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
