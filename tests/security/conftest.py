"""Fixtures of the security regression tests."""

from __future__ import annotations

import pytest

from tests.multiprocess.redis_server import RedisServer

#: The ``requirepass`` of the tests' Redis.
REDIS_PASSWORD = "redis-pass-0123456789"


@pytest.fixture(scope="module")
def secure_redis(tmp_path_factory):
    """A real ``redis-server`` as docs/scaling.md advises: a password, and a unix socket of mode
    0600 beside the loopback port."""
    workdir = tmp_path_factory.mktemp("redis")
    server = RedisServer(workdir, password=REDIS_PASSWORD, unix_socket=workdir / "redis.sock")
    yield server
    server.stop()


@pytest.fixture
def multiprocess_env(panel_env, secure_redis, data_dir):
    """The environment of panels that may share ``data_dir`` with other processes, through the
    password-protected Redis."""
    panel_env.setenv("OPEN1PANEL_AI_REDIS_URL", secure_redis.url)
    panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "cpu")
    data_dir.mkdir(parents=True)
    return panel_env
