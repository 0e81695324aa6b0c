"""Issue 19, finding 4: an import reads the file that was checked, never what replaced it.

A path import is checked when the request arrives and read later, when a task worker takes it.
A local user who can write into the import folder can, meanwhile, replace the checked file (or
a folder on its path) with a symbolic link to a file only root may read. The task opens the
path beneath the import folder without following links, checks what it opened (a regular
file), and reads only that: the link is refused and nothing of its target reaches Ollama.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.helpers import wait_for
from tests.ollama.conftest import ollama, wait_task  # noqa: F401 (fixtures)

SECRET = b"root-only: the admin token and the database key " * 4096


@pytest.fixture
def import_dir(tmp_path, panel_env, ollama):  # noqa: F811
    """The import folder of a panel with one task worker, whose ``local`` is the stand-in (its
    models folder unseen, so a pull starts without the disk check)."""
    folder = tmp_path / "imports"
    folder.mkdir()
    panel_env.setenv("OLLAMA_HOST", ollama.url)
    panel_env.setenv("OPEN1PANEL_AI_OLLAMA_IMPORT_DIR", str(folder))
    panel_env.setenv("OPEN1PANEL_AI_TASK_WORKERS", "1")
    return folder


@pytest.fixture
def secret(tmp_path):
    """A file outside the import folder that only root may read."""
    path = tmp_path / "private" / "root-only.bin"
    path.parent.mkdir(mode=0o700)
    path.write_bytes(SECRET)
    path.chmod(0o600)
    return path


def occupy_the_worker(api, ollama):  # noqa: F811
    """A pull that waits on Ollama's registry holds the only task worker; returns its task."""
    ollama.manifest_delay = 60
    ollama.publish("slow", [1000])
    status, pull = api("post", "/ollama/pulls", json={"name": "slow"})
    assert status == 202, pull
    wait_for(
        lambda: api("get", f"/tasks/{pull['id']}")[1]["status"] == "running", 10, what="the pull holding the worker"
    )
    return pull


def swap_file(import_dir, secret):
    """The checked file becomes a link to the secret, in one atomic rename."""
    link = import_dir / "m.gguf.new"
    link.symlink_to(secret)
    os.replace(link, import_dir / "m.gguf")


def swap_folder(import_dir, secret):
    """The folder on the checked path becomes a link to a folder holding the secret."""
    (import_dir / "sub" / "m.gguf").unlink()
    (import_dir / "sub").rmdir()
    (secret.parent / "m.gguf").symlink_to(secret.name)
    (import_dir / "sub").symlink_to(secret.parent)


@pytest.mark.parametrize(
    ("path", "swap"), [("m.gguf", swap_file), ("sub/m.gguf", swap_folder)], ids=["file-swapped", "folder-swapped"]
)
def test_a_file_swapped_for_a_link_while_the_import_waits_is_refused_and_nothing_is_sent(
    ollama,  # noqa: F811
    import_dir,
    secret,
    api,
    wait_task,  # noqa: F811
    path,
    swap,
):
    (import_dir / "sub").mkdir()
    (import_dir / path).write_bytes(b"GGUF" + bytes(1 << 16))
    blocker = occupy_the_worker(api, ollama)

    status, task = api("post", "/ollama/imports", json={"name": "swapped", "path": path})
    assert status == 202, task
    assert task["status"] == "queued"
    swap(import_dir, secret)
    api("post", f"/tasks/{blocker['id']}/cancel")
    task = wait_task(task["id"])

    assert task["status"] == "failed", task
    assert task["error"]["details"]["code"] == "path_outside_import_folder", task
    assert task["error"]["i18n"]["key"] == "ollama.import.error.link"
    digest = "sha256:" + hashlib.sha256(SECRET).hexdigest()
    assert not [r for r in ollama.requests if r[1].startswith("/api/blobs/")]
    assert not ollama.blob_path(digest).exists()
    assert ollama.create_log == []
    assert "swapped:latest" not in {m["name"] for m in ollama.tags()["models"]}


def test_the_file_that_was_checked_is_still_imported_when_nothing_changed(ollama, import_dir, api, wait_task):  # noqa: F811
    """The same wait without a swap imports the file: the refusal above is the swap's doing."""
    data = b"GGUF" + bytes(range(256)) * 256
    (import_dir / "m.gguf").write_bytes(data)
    blocker = occupy_the_worker(api, ollama)
    status, task = api("post", "/ollama/imports", json={"name": "kept", "path": "m.gguf"})
    assert status == 202, task
    api("post", f"/tasks/{blocker['id']}/cancel")
    assert wait_task(task["id"])["status"] == "succeeded"
    assert ollama.blob_path("sha256:" + hashlib.sha256(data).hexdigest()).read_bytes() == data


def test_a_fifo_or_a_link_inside_the_folder_is_refused_at_request_time(ollama, import_dir, api):  # noqa: F811
    """A named pipe would block the reader; a link, even one that stays inside the folder, is
    not followed."""
    os.mkfifo(import_dir / "pipe.gguf")
    (import_dir / "real.gguf").write_bytes(b"GGUF")
    (import_dir / "inside.gguf").symlink_to("real.gguf")
    for path, code in (("pipe.gguf", "not_a_regular_file"), ("inside.gguf", "path_outside_import_folder")):
        status, error = api("post", "/ollama/imports", json={"name": "x", "path": path})
        assert status == 400, (path, error)
        assert error["error"]["code"] == code, (path, error)
    assert api("get", "/tasks")[1]["tasks"] == []
