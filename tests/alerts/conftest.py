"""Alert test fixtures: quick evaluation and retry timings, a real local HTTP receiver for the
webhooks, a real SMTP server (aiosmtpd) speaking STARTTLS, and the fake NVML machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.gpu.fake_pynvml import three_gpus
from tests.helpers import wait_for

#: Rules evaluated ten times a second, retries after 0.2 s, 0.4 s, then given up.
FAST = {
    "OPEN1PANEL_AI_ALERTS_INTERVAL": "0.1",
    "OPEN1PANEL_AI_ALERTS_RETRY_BASE": "0.2",
    "OPEN1PANEL_AI_ALERTS_RETRY_MAX": "0.4",
    "OPEN1PANEL_AI_ALERTS_ATTEMPTS": "3",
    "OPEN1PANEL_AI_ALERTS_SEND_TIMEOUT": "5",
}


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self):
        return json.loads(self.body)


class Receiver:
    """A real HTTP server on loopback that records every POST and answers as told.

    ``answers`` maps a path to a list of ``(status, body)`` answers given in turn (the last one
    repeats); a path not in it gets 200 and ``{"ok": true}`` (``{"code": 0}`` and
    ``{"errcode": 0}`` for the bot paths, as Feishu, DingTalk and WeCom answer). A path in
    ``hold`` is not answered until :meth:`release` (or the client goes away)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: dict[str, list[tuple[int, str]]] = {}
        self.hold: set[str] = set()
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(
                    Received(
                        parts.path,
                        {k: v[0] for k, v in parse_qs(parts.query).items()},
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                if parts.path in receiver.hold:
                    receiver.released.wait(60)
                status, text = receiver._answer(parts.path)
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the sender went away (killed) while held

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _answer(self, path: str) -> tuple[int, str]:
        answers = self.answers.get(path)
        if answers:
            return answers.pop(0) if len(answers) > 1 else answers[0]
        bot = {
            "/feishu": '{"code": 0, "msg": "success"}',
            "/dingtalk": '{"errcode": 0, "errmsg": "ok"}',
            "/wecom": '{"errcode": 0, "errmsg": "ok"}',
        }
        return 200, bot.get(path, '{"ok": true}')

    def release(self) -> None:
        self.released.set()

    def at(self, path: str) -> list[Received]:
        return [r for r in list(self.requests) if r.path == path]

    def wait(self, path: str, count: int = 1, timeout: float = 15) -> list[Received]:
        return wait_for(
            lambda: self.at(path) if len(self.at(path)) >= count else None,
            timeout,
            what=f"{count} request(s) on {path}",
        )

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 that no authority signed, from openssl."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def alerts_env(panel_env):
    for key, value in FAST.items():
        panel_env.setenv(key, value)
    return panel_env


@pytest.fixture
def machine(monkeypatch):
    """The fake three-GPU machine of tests/gpu, in place of ``pynvml``."""
    fake = three_gpus(os.getpid())
    monkeypatch.setitem(sys.modules, "pynvml", fake.module())
    return fake


@pytest.fixture
def only(api):
    """``only("gpu_temperature", for_seconds=0.3, ...)``: turn every other rule off and set
    these settings on the rules named."""

    def keep(*rule_ids, **settings):
        _, listing = api("get", "/alerts/rules")
        for rule in listing["rules"]:
            body = {"enabled": rule["id"] in rule_ids}
            if rule["id"] in rule_ids:
                body.update({"for_seconds": 0, "quiet_seconds": 0, **settings})
            status, answer = api("put", f"/alerts/rules/{rule['id']}", json=body)
            assert status == 200, answer

    return keep


def alerts_of(api, rule=None, status=None):
    _, listing = api("get", "/alerts?limit=1000" + (f"&status={status}" if status else ""))
    return [a for a in listing["alerts"] if rule is None or a["rule"] == rule]


def wait_alerts(api, rule, count=1, status=None, timeout=15):
    return wait_for(
        lambda: (found := alerts_of(api, rule, status)) and len(found) >= count and found,
        timeout,
        what=f"{count} {status or ''} alert(s) of {rule}",
    )


def channel(api, receiver, kind="webhook", path=None, **fields):
    body = {"name": fields.pop("name", kind), "kind": kind, "url": receiver.url + (path or "/" + kind), **fields}
    status, created = api("post", "/alerts/channels", json=body)
    assert status == 201, created
    return created
