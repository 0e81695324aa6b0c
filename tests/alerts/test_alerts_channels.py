"""Channels against real receivers: a local HTTP server checks each webhook kind's format and
signature, aiosmtpd checks mail over STARTTLS, and a receiver that fails checks the retries,
their backoff and what the channel's row shows. Secrets are write-only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import time
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from open1panel_ai.alerts import channels as formats
from tests.alerts.conftest import channel, wait_alerts
from tests.conftest import free_port
from tests.helpers import wait_for

SECRET = "SECa1b2c3d4e5f6-signing-secret"


@pytest.fixture
def host(alerts_env, machine, make_host):
    alerts_env.setenv("OPEN1PANEL_AI_GPU_INTERVAL", "0.5")
    return make_host()


def test_each_webhook_kind_sends_its_own_format_and_signature(api, receiver):
    made = {
        "webhook": channel(api, receiver, "webhook", secret=SECRET),
        "slack": channel(api, receiver, "slack"),
        "feishu": channel(api, receiver, "feishu", secret=SECRET),
        "dingtalk": channel(api, receiver, "dingtalk", path="/dingtalk?access_token=tok-123", secret=SECRET),
        "wecom": channel(api, receiver, "wecom", path="/wecom?key=key-456", language="zh-CN"),
    }
    for kind, created in made.items():
        status, answer = api("post", f"/alerts/channels/{created['id']}/test")
        assert status == 200 and answer["ok"] and answer["answer"] == "HTTP 200", (kind, answer)

    [generic] = receiver.at("/webhook")
    body = generic.json
    assert body["version"] == 1 and body["event"] == "test" and len(body["delivery_id"]) == 32
    assert generic.headers["x-open1panel-delivery"] == body["delivery_id"]
    assert generic.headers["content-type"] == "application/json; charset=utf-8"
    assert set(body) == {"version", "delivery_id", "event", "sent_at", "panel", "title", "text", "language", "alert"}
    assert body["title"].startswith("Test message from open1panel-ai on ")
    stamp = generic.headers["x-open1panel-timestamp"]
    assert abs(int(stamp) - time.time()) < 30
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + generic.body, hashlib.sha256).hexdigest()
    assert generic.headers["x-open1panel-signature"] == "sha256=" + expected

    [slack] = receiver.at("/slack")
    assert list(slack.json) == ["text"] and slack.json["text"].startswith("*Test message from open1panel-ai")

    [feishu] = receiver.at("/feishu")
    assert feishu.json["msg_type"] == "text" and "This channel works" in feishu.json["content"]["text"]
    key = f"{feishu.json['timestamp']}\n{SECRET}".encode()
    assert feishu.json["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()

    [ding] = receiver.at("/dingtalk")
    assert ding.query["access_token"] == "tok-123"
    signed = f"{ding.query['timestamp']}\n{SECRET}".encode()
    assert ding.query["sign"] == base64.b64encode(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest()).decode()
    assert abs(int(ding.query["timestamp"]) / 1000 - time.time()) < 30  # milliseconds, as DingTalk wants
    assert ding.json["msgtype"] == "markdown" and ding.json["markdown"]["text"].startswith("### Test message")

    [wecom] = receiver.at("/wecom")
    assert wecom.query["key"] == "key-456" and wecom.json["msgtype"] == "markdown"
    assert "此渠道可用" in wecom.json["markdown"]["content"]  # the channel's language


def test_an_alert_in_the_generic_json_and_in_chinese(api, only, machine, receiver):
    channel(api, receiver, "webhook")
    channel(api, receiver, "dingtalk", name="ding-zh", language="zh-CN")
    only("gpu_temperature", params={"threshold": 80})
    machine.gpus[0].temperature = 88
    [alert] = wait_alerts(api, "gpu_temperature")
    [generic] = receiver.wait("/webhook")
    body = generic.json
    assert body["alert"] == {
        "id": alert["id"],
        "rule": "gpu_temperature",
        "severity": "critical",
        "status": "firing",
        "subject_key": "GPU-00000000-0000-0000-0000-000000000000",
        "subject": "GPU 0 (NVIDIA A100-SXM4-80GB)",
        "summary": "GPU 0 (NVIDIA A100-SXM4-80GB) is at 88 °C, above the limit of 80 °C.",
        "summary_key": "alerts.summary.gpu_temperature",
        "summary_params": {"gpu": "GPU 0 (NVIDIA A100-SXM4-80GB)", "value": "88", "threshold": "80"},
        "value": 88.0,
        "started_at": alert["started_at"],
        "fired_at": alert["fired_at"],
        "resolved_at": None,
    }
    assert body["title"] == "[critical] GPU temperature: GPU 0 (NVIDIA A100-SXM4-80GB)"
    assert "x-open1panel-signature" not in generic.headers  # no secret, no signature
    [ding] = receiver.wait("/dingtalk")
    assert ding.json["markdown"]["title"] == "【严重】GPU 温度：GPU 0 (NVIDIA A100-SXM4-80GB)"
    assert "温度为 88 °C，超过上限 80 °C" in ding.json["markdown"]["text"]


@pytest.mark.parametrize(
    "kind, answer, words",
    [
        (
            "feishu",
            '{"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}',
            "Feishu refused the message (code 19021): sign match fail",
        ),
        (
            "dingtalk",
            '{"errcode": 310000, "errmsg": "keywords not in content"}',
            "DingTalk refused the message (code 310000): keywords not in content",
        ),
        ("slack", "invalid_token", "answered HTTP 403: invalid_token"),
    ],
)
def test_a_service_that_refuses_fails_the_test_with_its_words(api, receiver, kind, answer, words):
    created = channel(api, receiver, kind)
    receiver.answers["/" + kind] = [(403 if kind == "slack" else 200, answer)]
    status, error = api("post", f"/alerts/channels/{created['id']}/test")
    assert status == 502 and error["error"]["code"] == "channel_test_failed"
    assert words in error["error"]["message"] and error["error"]["message"].startswith("The test message was not sent")


def test_secrets_are_write_only(api, receiver):
    created = channel(api, receiver, "dingtalk", path="/dingtalk?access_token=tok-secret-789", secret=SECRET)
    host = receiver.url.split("//")[1]
    assert created["url"] == f"http://{host}/…" and created["has_secret"] is True
    listed = api("get", "/alerts/channels")[1]
    shown = json.dumps([listed, api("get", f"/alerts/channels/{created['id']}")[1]])
    assert "tok-secret-789" not in shown and SECRET not in shown
    # Left out on an update, both are kept: the test still reaches the URL, signed.
    status, updated = api("put", f"/alerts/channels/{created['id']}", json={"name": "renamed"})
    assert status == 200 and updated["name"] == "renamed" and updated["has_secret"]
    assert api("post", f"/alerts/channels/{created['id']}/test")[0] == 200
    [sent] = receiver.at("/dingtalk")
    assert sent.query["access_token"] == "tok-secret-789" and "sign" in sent.query
    # Null removes the secret; the URL stays.
    assert api("put", f"/alerts/channels/{created['id']}", json={"secret": None})[1]["has_secret"] is False
    assert api("post", f"/alerts/channels/{created['id']}/test")[0] == 200
    assert "sign" not in receiver.at("/dingtalk")[1].query


def test_channel_input_is_checked(api, receiver):
    bad = [
        ({"name": "x", "kind": "slack", "url": "ftp://example.com/hook"}, "url"),
        ({"name": "x", "kind": "wecom"}, "url"),
        ({"name": "x", "kind": "slack", "url": "https://hooks.example.com/x", "secret": "s"}, "secret"),
        ({"name": "x", "kind": "email"}, "email"),
        (
            {
                "name": "x",
                "kind": "email",
                "email": {"host": "mail.example.com", "from_address": "panel", "to": ["ops@example.com"]},
            },
            "email",
        ),
        (
            {
                "name": "x",
                "kind": "webhook",
                "url": "https://example.com/h",
                "email": {"host": "h", "from_address": "a@b.c", "to": ["d@e.f"]},
            },
            "email",
        ),
        ({"name": "x", "kind": "pager", "url": "https://example.com/h"}, "kind"),
    ]
    for body, field in bad:
        status, error = api("post", "/alerts/channels", json=body)
        assert status == 400 and field in error["error"]["details"]["fields"], (body, error)
    first = channel(api, receiver, "slack", name="ops")
    status, error = api("post", "/alerts/channels", json={"name": "ops", "kind": "slack", "url": receiver.url})
    assert status == 409 and error["error"]["code"] == "channel_exists"
    status, error = api("put", f"/alerts/channels/{first['id']}", json={"kind": "wecom"})
    assert status == 400 and "kind" in error["error"]["details"]["fields"]
    assert api("get", "/alerts/channels/0123456789ab")[0] == 404
    assert [c["name"] for c in api("get", "/alerts/channels")[1]["channels"]] == ["ops"]


# -- email ------------------------------------------------------------------------------------


class Mailbox:
    """What the SMTP server got: each mail, whether it came over TLS, and who logged in."""

    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login if session.authenticated else None
        self.mails.append(
            {
                "tls": session.ssl is not None,
                "login": login,
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "message": message_from_bytes(envelope.content, policy=policy.default),
            }
        )
        return "250 OK"


def smtp_server(mailbox, certificate=None, port=None):
    kwargs = {}
    if certificate is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
        kwargs = {
            "tls_context": context,
            "require_starttls": True,
            "auth_require_tls": True,
            "authenticator": _authenticator,
        }
    controller = Controller(mailbox, hostname="127.0.0.1", port=port or free_port(), **kwargs)
    controller.start()
    return controller


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"panel", b"pa55")
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def mail_channel(api, port, **email):
    body = {
        "name": "mail",
        "kind": "email",
        "email": {
            "host": "127.0.0.1",
            "port": port,
            "security": "starttls",
            "verify_tls": False,
            "username": "panel",
            "password": "pa55",
            "from_address": "panel@example.test",
            "to": ["ops@example.test", "oncall@example.test"],
            **email,
        },
    }
    status, created = api("post", "/alerts/channels", json=body)
    assert status == 201, created
    return created


def test_mail_goes_over_starttls_with_a_login(api, only, machine, certificate):
    mailbox = Mailbox()
    server = smtp_server(mailbox, certificate)
    try:
        created = mail_channel(api, server.port)
        assert created["email"]["has_password"] and "pa55" not in json.dumps(created)
        assert created["email"]["to"] == ["ops@example.test", "oncall@example.test"]
        status, answer = api("post", f"/alerts/channels/{created['id']}/test")
        assert status == 200 and answer["answer"] == f"SMTP 127.0.0.1:{server.port}", answer
        [mail] = mailbox.mails
        assert mail["tls"] and mail["login"] == b"panel"
        assert mail["to"] == ["ops@example.test", "oncall@example.test"] and mail["from"] == "panel@example.test"
        assert mail["message"]["Message-ID"] == f"<{answer['delivery_id']}@open1panel-ai>"
        assert mail["message"]["Subject"].startswith("Test message from open1panel-ai")

        only("gpu_lost")
        machine.gpus[1].lost = True
        wait_alerts(api, "gpu_lost")
        wait_for(lambda: len(mailbox.mails) == 2, 10, what="the alert's mail")
        alert_mail = mailbox.mails[1]["message"]
        assert alert_mail["Subject"] == "[critical] GPU lost: GPU 1 (NVIDIA GeForce RTX 4090)"
        assert alert_mail["X-Open1Panel-Event"] == "firing"
        assert "GPU 1 (NVIDIA GeForce RTX 4090) stopped answering." in alert_mail.get_content()

        # The certificate is checked unless the channel says not to: this one no authority signed.
        assert (
            api(
                "put",
                f"/alerts/channels/{created['id']}",
                json={
                    "email": {
                        "host": "127.0.0.1",
                        "port": server.port,
                        "verify_tls": True,
                        "username": "panel",
                        "from_address": "panel@example.test",
                        "to": ["ops@example.test"],
                    }
                },
            )[0]
            == 200
        )
        status, error = api("post", f"/alerts/channels/{created['id']}/test")
        assert status == 502 and "cannot be verified" in error["error"]["message"]
        # The password was left out of that update, so it was kept: a wrong one is refused.
        api(
            "put",
            f"/alerts/channels/{created['id']}",
            json={
                "email": {
                    "host": "127.0.0.1",
                    "port": server.port,
                    "verify_tls": False,
                    "username": "panel",
                    "password": "wrong",
                    "from_address": "panel@example.test",
                    "to": ["ops@example.test"],
                }
            },
        )
        status, error = api("post", f"/alerts/channels/{created['id']}/test")
        assert status == 502 and "refused the user name or password" in error["error"]["message"]
    finally:
        server.stop()


def test_a_mail_server_without_starttls_gets_no_mail_in_the_clear(api):
    mailbox = Mailbox()
    server = smtp_server(mailbox)
    try:
        created = mail_channel(api, server.port, username=None, password=None)
        status, error = api("post", f"/alerts/channels/{created['id']}/test")
        assert status == 502 and "does not offer STARTTLS" in error["error"]["message"]
        assert mailbox.mails == []
    finally:
        server.stop()


# -- retries ----------------------------------------------------------------------------------


def test_a_failing_channel_is_retried_with_backoff_and_shows_it_on_its_row(api, only, machine, receiver):
    receiver.answers["/webhook"] = [(500, "busy"), (503, "still busy"), (200, "{}")]
    hook = channel(api, receiver, "webhook")
    only("gpu_lost")
    machine.gpus[1].lost = True
    wait_alerts(api, "gpu_lost")
    first = receiver.wait("/webhook")[0]
    failing = wait_for(
        lambda: (row := api("get", f"/alerts/channels/{hook['id']}")[1])["delivery"]["last_error"] and row,
        5,
        what="the error on the channel's row",
    )
    assert failing["delivery"]["last_error"].endswith("answered HTTP 500: busy")
    assert failing["delivery"]["last_error_i18n"]["key"] == "alerts.send.http_status"
    assert failing["delivery"]["waiting"] == 1
    attempts = receiver.wait("/webhook", 3)
    # The same delivery each time, after 0.2 s, then 0.4 s.
    assert len({a.headers["x-open1panel-delivery"] for a in attempts}) == 1
    gaps = [attempts[1].at - first.at, attempts[2].at - attempts[1].at]
    assert 0.15 <= gaps[0] < gaps[1] and gaps[1] >= 0.35, gaps
    done = wait_for(
        lambda: (row := api("get", f"/alerts/channels/{hook['id']}")[1])["delivery"]["last_success_at"] and row,
        5,
        what="the success on the channel's row",
    )
    assert done["delivery"]["last_error"] is None and done["delivery"]["waiting"] == 0
    [delivery] = api("get", f"/alerts/channels/{hook['id']}/deliveries")[1]["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("sent", 3)


def test_a_delivery_given_up_after_every_try_is_sent_again_on_request(api, only, machine, receiver):
    receiver.answers["/webhook"] = [(500, "down")]
    hook = channel(api, receiver, "webhook")
    only("gpu_lost")
    machine.gpus[0].lost = True
    wait_alerts(api, "gpu_lost")
    receiver.wait("/webhook", 3)
    given_up = wait_for(
        lambda: (row := api("get", f"/alerts/channels/{hook['id']}")[1])["delivery"]["failed"] and row,
        5,
        what="the delivery given up",
    )
    assert given_up["delivery"]["failed"] == 1 and given_up["delivery"]["waiting"] == 0
    time.sleep(0.6)
    assert len(receiver.at("/webhook")) == 3  # given up means no more tries by itself
    receiver.answers["/webhook"] = [(200, "{}")]
    status, row = api("post", f"/alerts/channels/{hook['id']}/retry")
    assert status == 200 and row["delivery"]["failed"] == 0
    receiver.wait("/webhook", 4)
    wait_for(
        lambda: api("get", f"/alerts/channels/{hook['id']}/deliveries")[1]["deliveries"][0]["status"] == "sent",
        5,
        what="the delivery sent",
    )


def test_formats_render_a_resolution():
    """The resolved notice's words, in both languages, straight from the formats."""
    alert = {
        "id": "abc",
        "rule": "mcp_failing",
        "severity": "warning",
        "status": "resolved",
        "subject_key": "s1",
        "subject": "time",
        "summary": "MCP server time is error.",
        "summary_i18n": {
            "key": "alerts.summary.mcp_failing",
            "params": {"name": "time", "status": "error", "error": ""},
        },
        "value": None,
        "started_at": "2026-05-01T10:00:00.000Z",
        "fired_at": "2026-05-01T10:02:00.000Z",
        "resolved_at": "2026-05-01T11:00:00.000Z",
    }
    notice = formats.Notice("d" * 32, "resolved", alert, "box-1", "https://panel.example.com")
    assert formats.slack_payload(notice, "en")["text"].splitlines() == [
        "*[resolved] MCP server failing: time*",
        "MCP server time is error. ",
        "Resolved at 2026-05-01T11:00:00.000Z (UTC); it began at 2026-05-01T10:00:00.000Z.",
        "Panel: box-1",
        "https://panel.example.com/ai/alerts/",
    ]
    assert formats.wecom_payload(notice, "zh-CN")["markdown"]["content"].startswith(
        "**【已恢复】MCP 服务器故障：time**\n> MCP 服务器 time 处于 error 状态。"
    )
