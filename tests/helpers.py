"""Small helpers shared by test modules that drive real processes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from open1panel_ai.mcp.supervisor import BRIDGE_MODULES

#: argv of the real ``mcp-server-time`` from the test environment, answering in UTC.
TIME_SERVER = [str(Path(sys.executable).parent / "mcp-server-time"), "--local-timezone", "UTC"]


def wait_for(check, timeout: float = 30, interval: float = 0.05, what: str = "the condition"):
    """Poll ``check()`` until it returns something true and return that; fail the test with
    ``what`` in the message when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout} s")
        time.sleep(interval)


def bridge_pids(config_part: str) -> list[int]:
    """Live MCP bridge processes (whoever started them) whose command line has an argument
    containing ``config_part``: a server's ``<id>.json`` or a data dir."""
    wanted = config_part.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if (
            state != "Z"
            and any(module.encode() in argv for module in BRIDGE_MODULES)
            and any(wanted in a for a in argv)
        ):
            found.append(int(entry))
    return found
