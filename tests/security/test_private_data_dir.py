"""The data dir holds every secret of the panel: nobody but the panel's user may read it.

Finding: the data dir was 0755 and the SQLite files 0644, so any local user could read the
bridge tokens, secret env values and domain credentials in the store.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from open1panel_ai.config import Settings
from open1panel_ai.standalone.host import create_host

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="reading as another user needs root")


@pytest.fixture
def open_parent():
    """A folder every user may walk through, as /var/lib is: only the data dir's own modes
    keep others out of it."""
    parent = Path(tempfile.mkdtemp(prefix="open1panel-private-"))
    parent.chmod(0o755)
    yield parent
    shutil.rmtree(parent)


def start_panel(panel_env, data_dir: Path):
    panel_env.setenv("OPEN1PANEL_AI_DATA_DIR", str(data_dir))
    host = create_host(Settings.from_environ(), [])
    host.app.test_client().get("/healthz")
    return host


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read_as_nobody(path: Path) -> subprocess.CompletedProcess:
    nobody = pwd.getpwnam("nobody")
    return subprocess.run(
        ["cat", str(path)],
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
    )


@needs_root
def test_a_new_data_dir_is_private_and_nobody_reads_the_store(panel_env, open_parent):
    data_dir = open_parent / "data"
    host = start_panel(panel_env, data_dir)
    try:
        assert mode(data_dir) == 0o700
        files = [p for p in data_dir.iterdir() if p.is_file()]
        assert {p.name for p in files} >= {"open1panel-ai.sqlite3", "session-secret"}
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        for name in ("open1panel-ai.sqlite3", "session-secret"):
            refused = read_as_nobody(data_dir / name)
            assert refused.returncode != 0 and "Permission denied" in refused.stderr
    finally:
        host.shutdown()


@needs_root
def test_an_older_install_with_open_modes_is_repaired_at_start(panel_env, open_parent):
    data_dir = open_parent / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    database = data_dir / "open1panel-ai.sqlite3"
    with sqlite3.connect(database) as db:  # as an earlier version left it, WAL files included
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE left_behind (secret TEXT)")
    for path in data_dir.iterdir():
        path.chmod(0o644)
    assert read_as_nobody(database).returncode == 0  # the hole this closes
    host = start_panel(panel_env, data_dir)
    try:
        assert mode(data_dir) == 0o700
        assert all(mode(p) == 0o600 for p in data_dir.iterdir() if p.is_file())
        refused = read_as_nobody(database)
        assert refused.returncode != 0 and "Permission denied" in refused.stderr
    finally:
        host.shutdown()


def test_a_link_in_the_data_dir_is_not_followed_when_modes_are_repaired(panel_env, open_parent):
    outside = open_parent / "outside.txt"
    outside.write_text("not the panel's")
    outside.chmod(0o644)
    data_dir = open_parent / "data"
    data_dir.mkdir()
    (data_dir / "link").symlink_to(outside)
    host = start_panel(panel_env, data_dir)
    host.shutdown()
    assert mode(outside) == 0o644
