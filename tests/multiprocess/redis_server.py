"""A real ``redis-server`` for tests: Debian's binary on a free loopback port, nothing on disk."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port


class RedisServer:
    """One ``redis-server`` process. ``password`` turns on ``requirepass``; ``unix_socket``
    also listens on that unix socket, mode 0600."""

    def __init__(self, workdir: Path, password: str | None = None, unix_socket: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (apt-get install redis-server; scripts/test does)"
            if os.environ.get("CI"):
                pytest.fail(message)  # a CI run must not pass by skipping these tests
            pytest.skip(message)
        self.port = free_port()
        self.password = password
        self.unix_socket = unix_socket
        argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ]
        if password:
            argv += ["--requirepass", password]
        if unix_socket:
            argv += ["--unixsocket", str(unix_socket), "--unixsocketperm", "600"]
        auth = f":{password}@" if password else ""
        #: The TCP URL, with the password when there is one.
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        #: The unix socket URL, with the password when there is one.
        self.unix_url = f"unix://{auth}{unix_socket}?db=0" if unix_socket else None
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.process.kill()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(10)
