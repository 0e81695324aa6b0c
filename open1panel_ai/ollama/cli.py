"""``open1panel-ai models list | pull NAME | rm NAME | show NAME``: a running panel's models.

The commands speak to the panel's API, so they work on the same machine or from anywhere the
panel is reachable. The address and token come from ``--url`` / ``--token`` or from
``OPEN1PANEL_AI_URL`` / ``OPEN1PANEL_AI_TOKEN``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any
from urllib.parse import quote

import httpx

from open1panel_ai.terminal import inert

DEFAULT_URL = "http://127.0.0.1:8788"
POLL_SECONDS = 0.5
BAR_WIDTH = 30


def add_commands(subparsers: Any) -> None:
    models = subparsers.add_parser("models", help="list, pull, remove and show Ollama models")
    models.add_argument(
        "--url",
        default=os.environ.get("OPEN1PANEL_AI_URL", DEFAULT_URL),
        help="the panel's address (OPEN1PANEL_AI_URL)",
    )
    models.add_argument(
        "--token", default=os.environ.get("OPEN1PANEL_AI_TOKEN"), help="the admin token (OPEN1PANEL_AI_TOKEN)"
    )
    models.add_argument("--endpoint", default="local", help="which Ollama server (default local)")
    actions = models.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list the models").set_defaults(run=_list)
    for action, run, text in (
        ("pull", _pull, "download a model, with a progress bar"),
        ("rm", _remove, "delete a model"),
        ("show", _show, "show a model's details"),
    ):
        parser = actions.add_parser(action, help=text)
        parser.add_argument("name")
        parser.set_defaults(run=run)


class _Panel:
    def __init__(self, args: argparse.Namespace) -> None:
        if not args.token:
            raise SystemExit("open1panel-ai: give --token or set OPEN1PANEL_AI_TOKEN")
        self._client = httpx.Client(
            base_url=args.url.rstrip("/") + "/api/v2/ai", timeout=60, headers={"Authorization": f"Bearer {args.token}"}
        )
        self.endpoint = args.endpoint

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise SystemExit(f"open1panel-ai: cannot reach the panel: {inert(exc)}") from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                text = error["message"]
                fix = error.get("details", {}).get("fix")
            except (ValueError, KeyError, TypeError):
                text, fix = response.text, None
            # The panel's messages may quote Ollama's, and the panel may not be the one expected.
            raise SystemExit(
                f"open1panel-ai: {inert(text, lines=True)}" + (f"\n  {inert(fix, lines=True)}" if fix else "")
            )
        return response.json() if response.content else None


def _size(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return ""


def _list(args: argparse.Namespace) -> int:
    panel = _Panel(args)
    models = panel.call("GET", "/ollama/models", params={"endpoint": panel.endpoint})["models"]
    rows = [("NAME", "SIZE", "QUANT", "LOADED")]
    for m in models:
        rows.append(
            (
                inert(m["name"]),
                _size(m.get("size")),
                inert((m.get("details") or {}).get("quantization_level", "")),
                "yes" if m.get("loaded") else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _show(args: argparse.Namespace) -> int:
    panel = _Panel(args)
    print(
        inert(
            json.dumps(
                panel.call("GET", f"/ollama/models/{quote(args.name)}", params={"endpoint": panel.endpoint}), indent=2
            ),
            lines=True,
        )
    )
    return 0


def _remove(args: argparse.Namespace) -> int:
    panel = _Panel(args)
    panel.call("DELETE", f"/ollama/models/{quote(args.name)}", params={"endpoint": panel.endpoint})
    print(f"deleted {inert(args.name)}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    panel = _Panel(args)
    task = panel.call("POST", "/ollama/pulls", json={"name": args.name, "endpoint": panel.endpoint})
    for warning in task.get("warnings") or []:
        print(f"warning: {inert(warning)}", file=sys.stderr)
    while task["status"] in ("queued", "running"):
        _draw(task)
        time.sleep(POLL_SECONDS)
        task = panel.call("GET", f"/tasks/{task['id']}")
    _draw(task)
    print()
    if task["status"] != "succeeded":
        error = task.get("error") or {}
        print(f"open1panel-ai: pull {inert(task['status'])}: {inert(error.get('message', ''))}", file=sys.stderr)
        return 1
    return 0


def _draw(task: dict[str, Any]) -> None:
    percent = task.get("percent") or 0.0
    filled = int(BAR_WIDTH * percent / 100)
    speed = task.get("bytes_per_second")
    eta = task.get("eta_seconds")
    line = (
        f"\r{inert(task['target'])} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:5.1f}% "
        f"{_size(speed) + '/s' if speed else ''} {f'ETA {eta:.0f}s' if eta else ''} "
        f"{inert(task.get('message') or '')}"
    )
    sys.stdout.write(line[:120].ljust(120) if sys.stdout.isatty() else line.lstrip("\r") + "\n")
    sys.stdout.flush()
