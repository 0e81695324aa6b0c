"""Issue 19, finding 5: uploads cannot fill the disk, and two uploads of one name make no leftover.

An upload sent in chunks (no ``Content-Length``) cannot be checked before it is read, and one
such upload filled a disk to 100 % and ended in a 500. The uploads folder here is a real tmpfs
of 16 MiB mounted for the test (it needs root, as the panel usually runs), so every byte is
really written and the disk really fills: an upload is stopped while streaming when the disk
would keep less than ``OPEN1PANEL_AI_OLLAMA_UPLOAD_MARGIN`` free beside what the other uploads
under way reserve, answered 507, and its partial file is removed.

Two uploads of the same name at the same time became one task, and the second file stayed in
the uploads folder for good: the second is now refused with 409 before its body is read.
"""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

from tests.conftest import TOKEN
from tests.helpers import wait_for
from tests.ollama.conftest import ollama, ollama_env, wait_task  # noqa: F401 (fixtures)

MiB = 1 << 20
DISK = 16 * MiB
MARGIN = 2 * MiB
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/octet-stream"}


class Body:
    """An upload's body as the server reads it: ``size`` bytes in chunks of 256 KiB. It notes
    the free space of ``disk`` each time it is read (so after each chunk the panel wrote),
    and may stop for ``gate`` once ``pause_at`` bytes were read."""

    def __init__(self, size: int, disk=None, pause_at: int | None = None) -> None:
        self.size, self.disk, self.pause_at = size, disk, pause_at
        self.sent = 0
        self.least_free: int | None = None
        self.gate = threading.Event()
        self.paused = threading.Event()

    def read(self, limit: int = -1) -> bytes:
        if self.disk is not None:
            free = shutil.disk_usage(self.disk).free
            self.least_free = free if self.least_free is None else min(self.least_free, free)
        if self.pause_at is not None and self.sent >= self.pause_at and not self.gate.is_set():
            self.paused.set()
            assert self.gate.wait(30), "the test never let the upload go on"
        size = min(256 << 10, self.size - self.sent, limit if limit >= 0 else self.size)
        self.sent += size
        return (b"GGUF" + bytes(size))[:size] if size else b""


def post_upload(app, name: str, body: Body, chunked: bool, answers: dict, key: str) -> None:
    """Send ``body`` as an upload: in chunks (``Transfer-Encoding: chunked``, no length) or
    with its ``Content-Length``; the answer lands in ``answers[key]``."""
    headers, environ = dict(HEADERS), {"wsgi.input": body}
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
        environ["wsgi.input_terminated"] = True  # as Werkzeug's server marks a chunked body
    else:
        environ["CONTENT_LENGTH"] = str(body.size)
    response = app.test_client().post(
        f"/api/v2/ai/ollama/imports?name={name}", headers=headers, environ_overrides=environ
    )
    answers[key] = (response.status_code, response.get_json())


@pytest.fixture
def small_disk(data_dir, ollama_env):  # noqa: F811
    """The panel's uploads folder on a tmpfs of :data:`DISK` bytes, keeping :data:`MARGIN` free."""
    folder = data_dir / "ollama-uploads"
    folder.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here (needs root): {mounted.stderr.strip()}")
    ollama_env.setenv("OPEN1PANEL_AI_OLLAMA_UPLOAD_MARGIN", str(MARGIN))
    yield folder
    subprocess.run(["umount", "--lazy", str(folder)], check=False)


def test_a_chunked_upload_is_stopped_at_the_margin_with_507_and_its_partial_file_removed(
    small_disk,
    host,
    ollama,  # noqa: F811
    wait_task,  # noqa: F811
):
    body = Body(3 * DISK, disk=small_disk)
    answers = {}
    post_upload(host.app, "huge", body, True, answers, "huge")

    status, answer = answers["huge"]
    assert status == 507, answer
    assert answer["error"]["code"] == "insufficient_storage"
    assert answer["error"]["details"]["margin"] == MARGIN
    assert body.sent < DISK  # stopped while streaming, long before the end of the body
    assert body.least_free >= MARGIN  # the disk never kept less than the margin free
    assert list(small_disk.iterdir()) == []  # the partial file is gone, and its space free
    assert shutil.disk_usage(small_disk).free == DISK
    assert not [r for r in ollama.requests if r[1].startswith("/api/blobs/")]

    # The disk was never full: an upload that fits goes through, and becomes a model.
    answers = {}
    post_upload(host.app, "small", Body(4 * MiB), True, answers, "small")
    status, task = answers["small"]
    assert status == 202, task
    assert wait_task(task["id"])["status"] == "succeeded"
    assert "small:latest" in {m["name"] for m in ollama.tags()["models"]}


def test_a_chunked_upload_cannot_take_the_space_an_upload_under_way_has_reserved(small_disk, host, ollama, wait_task):  # noqa: F811
    """Upload A gives its length (9 MiB) and is under way; upload B, sent in chunks, may use
    what is left beside A's reservation and the margin (16 - 2 - 9 = 5 MiB) and no more. Both
    written at once, they would fill the disk and both fail."""
    first = Body(9 * MiB, disk=small_disk, pause_at=2 * MiB)
    answers = {}
    sender = threading.Thread(target=post_upload, args=(host.app, "first", first, False, answers, "first"))
    sender.start()
    assert first.paused.wait(10)
    second = Body(8 * MiB, disk=small_disk)
    post_upload(host.app, "second", second, True, answers, "second")
    first.gate.set()
    sender.join(30)

    status, answer = answers["second"]
    assert status == 507, answer
    assert answer["error"]["details"]["reserved"] > 0  # what A still had to send
    assert 4 * MiB <= second.sent <= 6 * MiB
    status, task = answers["first"]
    assert status == 202, task
    assert wait_task(task["id"])["status"] == "succeeded"
    assert min(first.least_free, second.least_free) >= MARGIN
    wait_for(lambda: list(small_disk.iterdir()) == [], 5, what="the imported upload deleted")


def test_a_second_upload_of_the_same_name_while_the_first_is_received_is_refused_with_409(
    ollama_env,  # noqa: F811
    host,
    ollama,  # noqa: F811
    wait_task,  # noqa: F811
    data_dir,
):
    first = Body(3 * MiB, pause_at=1 * MiB)
    answers = {}
    sender = threading.Thread(target=post_upload, args=(host.app, "twin", first, False, answers, "first"))
    sender.start()
    assert first.paused.wait(10)
    second = Body(3 * MiB)
    post_upload(host.app, "TWIN", second, True, answers, "second")  # the same model, as Ollama compares
    first.gate.set()
    sender.join(30)

    status, answer = answers["second"]
    assert status == 409, answer
    assert answer["error"]["code"] == "import_in_progress"
    assert second.sent == 0  # refused before its body was read
    status, task = answers["first"]
    assert status == 202, task
    assert wait_task(task["id"])["status"] == "succeeded"
    tasks = host.app.test_client().get("/api/v2/ai/tasks?kind=ollama.import", headers=HEADERS).get_json()["tasks"]
    assert [t["id"] for t in tasks] == [task["id"]]
    wait_for(lambda: list((data_dir / "ollama-uploads").iterdir()) == [], 5, what="no upload left over")
