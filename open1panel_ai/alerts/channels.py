"""Where alerts go: the message format of each channel kind, and sending it.

A :class:`Notice` (an alert's firing or resolution, or a channel test) is rendered in the
channel's language and sent as the receiving service expects it:

- ``webhook``: the panel's own JSON (see docs/alerts.md), signed with HMAC-SHA256 when the
  channel has a secret;
- ``slack``: a Slack incoming-webhook message (``{"text": ...}``), which Mattermost,
  Rocket.Chat and others take too;
- ``feishu``: a Feishu (Lark) custom bot text message, signed when the bot has a secret;
- ``dingtalk``: a DingTalk robot markdown message, signed with the robot's secret;
- ``wecom``: a WeCom (企业微信) group robot markdown message;
- ``email``: a plain-text mail over SMTP, encrypted with STARTTLS (or implicit TLS).

Every send raises :class:`SendError` with a sentence a person can act on when the service did
not take the message. Secrets (webhook URLs carry tokens, signing secrets, the SMTP password)
never appear in those sentences.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import quote_plus, urlsplit

import httpx

from open1panel_ai import __version__
from open1panel_ai.i18n import Message
from open1panel_ai.store import timestamp

KINDS = ("webhook", "slack", "feishu", "dingtalk", "wecom", "email")
WEBHOOK_KINDS = ("webhook", "slack", "feishu", "dingtalk", "wecom")
#: Kinds that take a signing secret.
SIGNED_KINDS = ("webhook", "feishu", "dingtalk")
EVENTS = ("firing", "resolved", "test")
#: The version of the generic JSON payload; it changes only when a field changes meaning.
PAYLOAD_VERSION = 1
USER_AGENT = f"open1panel-ai/{__version__}"
#: At most this much of a refusing service's answer goes into the error.
ANSWER_EXCERPT = 200


class SendError(Exception):
    """The channel did not take the message; ``message`` says why (a Message)."""

    def __init__(self, message: Message) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Notice:
    """One message to send: an alert (its public form) and what happened to it."""

    delivery_id: str
    event: str
    alert: dict[str, Any]
    hostname: str
    panel_url: str | None = None

    def title(self, language: str) -> str:
        alert = self.alert
        if self.event == "test":
            return Message("alerts.notice.test_title", hostname=self.hostname).render(language)
        rule, severity = alert["rule"], alert["severity"]
        key = "alerts.notice.resolved" if self.event == "resolved" else "alerts.notice.firing"
        return Message(
            key,
            severity=Message(f"alerts.severity.{severity}"),
            rule=Message(f"alerts.rule.{rule}"),
            subject=alert["subject"],
        ).render(language)

    def summary(self, language: str) -> str:
        i18n = self.alert.get("summary_i18n")
        if i18n:
            return Message(i18n["key"], **i18n["params"]).render(language)
        return self.alert.get("summary") or ""

    def lines(self, language: str) -> list[str]:
        """The body, line by line: what is wrong, since when, where to look."""
        if self.event == "test":
            lines = [Message("alerts.notice.test_text").render(language)]
        else:
            lines = [self.summary(language)]
            if self.event == "resolved":
                lines.append(
                    Message(
                        "alerts.notice.resolved_at",
                        time=self.alert["resolved_at"] or "",
                        started=self.alert["started_at"],
                    ).render(language)
                )
            else:
                lines.append(Message("alerts.notice.since", time=self.alert["started_at"]).render(language))
        lines.append(Message("alerts.notice.host", hostname=self.hostname).render(language))
        if self.panel_url:
            lines.append(self.panel_url.rstrip("/") + "/ai/alerts/")
        return lines


# -- payloads ---------------------------------------------------------------------------------


def generic_payload(notice: Notice, language: str) -> dict[str, Any]:
    """The panel's own JSON: stable field names a receiver can rely on (docs/alerts.md)."""
    alert = notice.alert
    i18n = alert.get("summary_i18n") or {}
    return {
        "version": PAYLOAD_VERSION,
        "delivery_id": notice.delivery_id,
        "event": notice.event,
        "sent_at": timestamp(),
        "panel": {"hostname": notice.hostname, "url": notice.panel_url},
        "title": notice.title(language),
        "text": "\n".join(notice.lines(language)),
        "language": language,
        "alert": {
            "id": alert["id"],
            "rule": alert["rule"],
            "severity": alert["severity"],
            "status": alert["status"],
            "subject_key": alert["subject_key"],
            "subject": alert["subject"],
            "summary": notice.summary(language),
            "summary_key": i18n.get("key"),
            "summary_params": i18n.get("params") or {},
            "value": alert.get("value"),
            "started_at": alert["started_at"],
            "fired_at": alert["fired_at"],
            "resolved_at": alert.get("resolved_at"),
        },
    }


def slack_payload(notice: Notice, language: str) -> dict[str, Any]:
    return {"text": f"*{notice.title(language)}*\n" + "\n".join(notice.lines(language))}


def feishu_payload(notice: Notice, language: str, secret: str | None, now: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "msg_type": "text",
        "content": {"text": notice.title(language) + "\n" + "\n".join(notice.lines(language))},
    }
    if secret:
        timestamp = str(int(now))
        body.update(timestamp=timestamp, sign=feishu_sign(secret, timestamp))
    return body


def dingtalk_payload(notice: Notice, language: str) -> dict[str, Any]:
    title = notice.title(language)
    return {
        "msgtype": "markdown",
        "markdown": {"title": title, "text": f"### {title}\n\n" + "\n\n".join(notice.lines(language))},
    }


def wecom_payload(notice: Notice, language: str) -> dict[str, Any]:
    return {
        "msgtype": "markdown",
        "markdown": {
            "content": f"**{notice.title(language)}**\n" + "\n".join(f"> {line}" for line in notice.lines(language))
        },
    }


def feishu_sign(secret: str, timestamp: str) -> str:
    """Feishu's signature: HMAC-SHA256 keyed with ``timestamp + "\\n" + secret`` over nothing,
    in base64."""
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    """DingTalk's signature: HMAC-SHA256 keyed with the secret over ``timestamp + "\\n" +
    secret``, in base64 (URL-encoded into the query by the caller)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The generic webhook's ``X-Open1Panel-Signature``: ``sha256=`` and the hex HMAC-SHA256,
    keyed with the secret, of ``timestamp + "." + body``."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


# -- sending ----------------------------------------------------------------------------------


def send(channel: dict[str, Any], notice: Notice, timeout: float) -> str:
    """Send ``notice`` through ``channel`` (its stored form, secrets included); return a short
    note of what the service answered. :raises SendError: it did not take the message."""
    language = channel["language"]
    config = channel["config"]
    if channel["kind"] == "email":
        return _send_mail(config, notice, language, timeout)
    now = time.time()
    url = config["url"]
    headers = {
        "User-Agent": USER_AGENT,
        "X-Open1Panel-Delivery": notice.delivery_id,
        "X-Open1Panel-Event": notice.event,
    }
    kind = channel["kind"]
    if kind == "webhook":
        payload = generic_payload(notice, language)
    elif kind == "slack":
        payload = slack_payload(notice, language)
    elif kind == "feishu":
        payload = feishu_payload(notice, language, config.get("secret"), now)
    elif kind == "dingtalk":
        payload = dingtalk_payload(notice, language)
        if config.get("secret"):
            stamp = str(int(now * 1000))
            url += (
                "&" if urlsplit(url).query else "?"
            ) + f"timestamp={stamp}&sign={quote_plus(dingtalk_sign(config['secret'], stamp))}"
    else:
        payload = wecom_payload(notice, language)
    body = json.dumps(payload, ensure_ascii=False).encode()
    if kind == "webhook" and config.get("secret"):
        stamp = str(int(now))
        headers["X-Open1Panel-Timestamp"] = stamp
        headers["X-Open1Panel-Signature"] = webhook_signature(config["secret"], stamp, body)
    headers["Content-Type"] = "application/json; charset=utf-8"
    return _post(url, body, headers, kind, timeout)


def _post(url: str, body: bytes, headers: dict[str, str], kind: str, timeout: float) -> str:
    where = masked_url(url)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        raise SendError(Message("alerts.send.timeout", url=where, seconds=f"{timeout:g}")) from None
    except httpx.HTTPError as exc:
        raise SendError(Message("alerts.send.unreachable", url=where, error=_words(exc))) from None
    excerpt = response.text[:ANSWER_EXCERPT].strip()
    if not 200 <= response.status_code < 300:
        raise SendError(
            Message("alerts.send.http_status", url=where, status=response.status_code, answer=excerpt or "-")
        )
    if kind in ("feishu", "dingtalk", "wecom"):
        _check_bot_answer(response, kind, excerpt)
    return f"HTTP {response.status_code}"


def _check_bot_answer(response: httpx.Response, kind: str, excerpt: str) -> None:
    """Feishu, DingTalk and WeCom answer HTTP 200 even when they refuse a message (a bad
    signature, a wrong keyword); the JSON's code says whether they took it."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise SendError(Message("alerts.send.not_json", service=Message(f"alerts.kind.{kind}"), answer=excerpt or "-"))
    if kind == "feishu":
        code = answer.get("code", answer.get("StatusCode", 0))
        words = answer.get("msg") or answer.get("StatusMessage") or ""
    else:
        code = answer.get("errcode", 0)
        words = answer.get("errmsg") or ""
    if code not in (0, "0"):
        raise SendError(
            Message(
                "alerts.send.refused",
                service=Message(f"alerts.kind.{kind}"),
                code=str(code),
                error=str(words)[:ANSWER_EXCERPT],
            )
        )


def _send_mail(config: dict[str, Any], notice: Notice, language: str, timeout: float) -> str:
    host, port = config["host"], config["port"]
    mail = EmailMessage()
    mail["Subject"] = notice.title(language)
    mail["From"] = config["from_address"]
    mail["To"] = ", ".join(config["to"])
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{notice.delivery_id}@open1panel-ai>"
    mail["X-Open1Panel-Delivery"] = notice.delivery_id
    mail["X-Open1Panel-Event"] = notice.event
    mail.set_content("\n".join(notice.lines(language)) + "\n")
    context = ssl.create_default_context()
    if not config.get("verify_tls", True):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        smtp: smtplib.SMTP
        if config.get("security") == "tls":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if config.get("security") != "tls":
                if not smtp.has_extn("starttls"):
                    raise SendError(Message("alerts.send.no_starttls", host=host, port=port))
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.get("username"):
                smtp.login(config["username"], config.get("password") or "")
            refused = smtp.send_message(mail)
    except SendError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise SendError(
            Message("alerts.send.smtp_certificate", host=host, port=port, error=exc.verify_message or str(exc))
        ) from None
    except smtplib.SMTPAuthenticationError:
        raise SendError(Message("alerts.send.smtp_login", host=host, port=port)) from None
    except smtplib.SMTPResponseException as exc:
        raise SendError(
            Message("alerts.send.smtp", host=host, port=port, error=f"{exc.smtp_code} {_decode(exc.smtp_error)}")
        ) from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise SendError(Message("alerts.send.smtp", host=host, port=port, error=_words(exc))) from None
    if refused:
        raise SendError(
            Message("alerts.send.smtp_refused", host=host, port=port, recipients=", ".join(sorted(refused)))
        )
    return f"SMTP {host}:{port}"


# -- helpers ----------------------------------------------------------------------------------


def masked_url(url: str | None) -> str | None:
    """A webhook URL as answers and errors show it: its origin, and ``/…`` in place of the
    path and query, where the services put their tokens."""
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    origin = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    rest = parts.path.strip("/") or parts.query
    return origin + ("/…" if rest else "")


def _words(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _decode(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
