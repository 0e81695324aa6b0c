"""Importing a GGUF: a streamed upload or a file in the import folder becomes a model."""

import hashlib
import json
from urllib.parse import urlencode

import pytest

from tests.ollama_standin import OllamaStandIn


@pytest.fixture
def import_dir(tmp_path, ollama_env):
    folder = tmp_path / "imports"
    folder.mkdir()
    ollama_env.setenv("OPEN1PANEL_AI_OLLAMA_IMPORT_DIR", str(folder))
    return folder


def gguf(size=3 << 20):
    return b"GGUF" + bytes(range(256)) * (size // 256)


def test_an_upload_is_streamed_uploaded_as_a_blob_and_created_with_files(
    ollama, import_dir, client, auth_headers, ollama_api, wait_task, data_dir
):
    data = gguf()
    response = client.post(
        "/api/v2/ai/ollama/imports?name=my-model&filename=tiny.gguf&system=Be%20brief",
        data=data,
        headers={**auth_headers, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 202, response.get_json()
    task = wait_task(response.get_json()["id"])
    assert task["status"] == "succeeded" and task["percent"] == 100.0
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert ("HEAD", f"/api/blobs/{digest}") in ollama.requests
    assert ollama.blob_path(digest).read_bytes() == data
    assert "my-model:latest" in {m["name"] for m in ollama_api("get", "/ollama/models")[1]["models"]}
    assert not list((data_dir / "ollama-uploads").iterdir())  # the upload is not kept


def test_a_file_in_the_import_folder_is_hashed_and_a_blob_already_there_is_not_sent(
    ollama, import_dir, ollama_api, wait_task
):
    data = gguf(1 << 20)
    (import_dir / "sub").mkdir()
    (import_dir / "sub" / "m.gguf").write_bytes(data)
    task = ollama_api("post", "/ollama/imports", json={"name": "first", "path": "sub/m.gguf"})[1]
    assert wait_task(task["id"])["status"] == "succeeded"
    task = ollama_api("post", "/ollama/imports", json={"name": "second", "path": "sub/m.gguf", "quantize": "q4_K_M"})[1]
    assert wait_task(task["id"])["status"] == "succeeded"
    posts = [r for r in ollama.requests if r[0] == "POST" and r[1].startswith("/api/blobs/")]
    assert len(posts) == 1
    assert {"first:latest", "second:latest"} <= {m["name"] for m in ollama_api("get", "/ollama/models")[1]["models"]}


def test_paths_outside_the_import_folder_are_refused(ollama, import_dir, ollama_api, tmp_path):
    (tmp_path / "secret.gguf").write_bytes(b"x")
    (import_dir / "link.gguf").symlink_to(tmp_path / "secret.gguf")
    for path in ("../secret.gguf", "sub/../../secret.gguf", str(tmp_path / "secret.gguf"), "link.gguf"):
        status, error = ollama_api("post", "/ollama/imports", json={"name": "x", "path": path})
        assert status == 400 and error["error"]["code"] == "path_outside_import_folder", path
    status, error = ollama_api("post", "/ollama/imports", json={"name": "x", "path": "missing.gguf"})
    assert status == 404
    assert ollama_api("get", "/tasks")[1]["tasks"] == []


@pytest.fixture
def old_ollama(tmp_path, panel_env):
    """An Ollama older than 0.5.5 (its create takes a Modelfile) as the panel's ``local``, with
    ``m.gguf`` in the import folder."""
    with OllamaStandIn(tmp_path / "old", version="0.5.1") as old:
        panel_env.setenv("OLLAMA_HOST", old.url)
        folder = tmp_path / "imports"
        folder.mkdir()
        (folder / "m.gguf").write_bytes(gguf(1 << 16))
        panel_env.setenv("OPEN1PANEL_AI_OLLAMA_IMPORT_DIR", str(folder))
        yield old


def test_an_old_server_gets_the_modelfile_form(old_ollama, api, wait_task):
    status, task = api("post", "/ollama/imports", json={"name": "legacy", "path": "m.gguf"})
    assert status == 202, task
    task = wait_task(task["id"])
    assert task["status"] == "succeeded", task
    assert "legacy:latest" in {m["name"] for m in old_ollama.tags()["models"]}


def test_an_upload_larger_than_the_free_space_is_refused_before_it_is_read(
    ollama, import_dir, client, auth_headers, data_dir
):
    response = client.post(
        "/api/v2/ai/ollama/imports?name=big",
        data=b"GGUF",
        headers={**auth_headers, "Content-Type": "application/octet-stream"},
        environ_overrides={"CONTENT_LENGTH": str(1 << 62)},
    )
    assert response.status_code == 507, response.get_json()
    assert response.get_json()["error"]["details"]["needed"] == 1 << 62
    assert not list((data_dir / "ollama-uploads").iterdir())


def test_upload_parameters_nested_too_deeply_to_parse_are_a_400(ollama, client, auth_headers):
    response = client.post(
        "/api/v2/ai/ollama/imports?name=x&parameters=" + "[" * 3000,
        data=b"GGUF",
        headers={**auth_headers, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 400, response.get_json()
    assert "parameters" in response.get_json()["error"]["details"]["fields"]


def test_a_json_import_with_fields_in_the_query_string_is_refused(ollama, import_dir, ollama_api):
    """The query string carries the fields of an upload only; with a JSON body it would be
    ignored, so it is refused instead."""
    (import_dir / "m.gguf").write_bytes(gguf(1 << 16))
    status, error = ollama_api("post", "/ollama/imports?quantize=q4_K_M", json={"name": "x", "path": "m.gguf"})
    assert status == 400 and error["error"]["code"] == "unexpected_query"
    assert error["error"]["details"]["fields"] == {"quantize": ["Unknown field."]}
    assert ollama_api("get", "/tasks")[1]["tasks"] == []


def test_text_that_would_add_modelfile_directives_is_refused_and_nothing_starts(ollama, import_dir, ollama_api):
    (import_dir / "m.gguf").write_bytes(gguf(1 << 16))
    bad = [
        {"template": '{{ .Prompt }}"""\nFROM /etc/passwd\nTEMPLATE """x'},
        {"system": 'Be brief."""\nADAPTER /tmp/evil'},
        {"system": 'ends with a quote"'},
        {"parameters": {"stop": "a\nFROM /etc/passwd"}},
        {"parameters": {"stop": 'a" \nPARAMETER x'}},
        {"parameters": {"temperature": {"nested": 1}}},
        {"parameters": {"stop": [["nested"]]}},
        {"parameters": {"temperature": None}},
    ]
    for extra in bad:
        status, error = ollama_api("post", "/ollama/imports", json={"name": "x", "path": "m.gguf", **extra})
        assert status == 400, (extra, error)
        assert error["error"]["code"] == "validation_error" or error["error"]["details"], extra
    assert ollama_api("get", "/tasks")[1]["tasks"] == []
    assert ollama.create_log == []


def test_an_old_server_gets_template_system_and_parameters_as_one_directive_each(old_ollama, api, wait_task):
    status, task = api(
        "post",
        "/ollama/imports",
        json={
            "name": "legacy",
            "path": "m.gguf",
            "template": "{{ .System }}\n{{ .Prompt }}",
            "system": 'Say "hi" first.',
            "parameters": {"temperature": 0.5, "stop": ["<|end|>", "User:"], "penalize_newline": True},
        },
    )
    assert status == 202, task
    task = wait_task(task["id"])
    assert task["status"] == "succeeded", task
    modelfile = old_ollama.create_log[-1]["modelfile"]
    assert modelfile.splitlines()[1:] == [
        'TEMPLATE """{{ .System }}',
        '{{ .Prompt }}"""',
        'SYSTEM """Say "hi" first."""',
        "PARAMETER penalize_newline true",
        'PARAMETER stop "<|end|>"',
        'PARAMETER stop "User:"',
        "PARAMETER temperature 0.5",
    ]
    assert "parameters" not in old_ollama.create_log[-1] and "template" not in old_ollama.create_log[-1]


def upload(client, auth_headers, data, query="name=my-model"):
    return client.post(
        f"/api/v2/ai/ollama/imports?{query}",
        data=data,
        headers={**auth_headers, "Content-Type": "application/octet-stream"},
    )


def test_an_import_cut_off_by_ollama_is_interrupted_keeps_its_upload_and_retry_finishes_it(
    ollama, import_dir, client, auth_headers, ollama_api, wait_task, data_dir
):
    port = ollama.port
    ollama.stop()
    response = upload(client, auth_headers, gguf(1 << 18))
    assert response.status_code == 202, response.get_json()
    task = wait_task(response.get_json()["id"])
    assert task["status"] == "interrupted" and ollama.url in task["error"]["message"], task
    assert len(list((data_dir / "ollama-uploads").iterdir())) == 1  # kept for Retry
    ollama.start(port)
    assert ollama_api("post", f"/tasks/{task['id']}/retry")[0] == 200
    assert wait_task(task["id"])["status"] == "succeeded"
    assert not list((data_dir / "ollama-uploads").iterdir())


def test_a_cancelled_import_deletes_its_upload(
    ollama, import_dir, client, auth_headers, ollama_api, wait_task, data_dir
):
    ollama.create_delay = 60.0
    response = upload(client, auth_headers, gguf(1 << 18))
    task_id = response.get_json()["id"]
    wait_task(task_id, lambda t: (t["message_i18n"] or {}).get("key") == "ollama.import.status.parsing")
    # A second upload of the same model joins the running import without storing its file.
    assert upload(client, auth_headers, gguf(1 << 16)).get_json()["id"] == task_id
    assert len(list((data_dir / "ollama-uploads").iterdir())) == 1
    assert ollama_api("post", f"/tasks/{task_id}/cancel")[0] == 200
    assert wait_task(task_id, timeout=10)["status"] == "cancelled"
    assert not list((data_dir / "ollama-uploads").iterdir())


def test_uploads_no_import_can_use_are_removed_at_start(ollama_env, make_host, data_dir):
    uploads = data_dir / "ollama-uploads"
    uploads.mkdir(parents=True)
    (uploads / "upload-cut-off.gguf").write_bytes(b"GGUF partial")
    make_host()
    assert not list(uploads.iterdir())


def test_an_upload_takes_its_template_and_parameters_from_the_query_string(
    ollama, import_dir, client, auth_headers, wait_task
):
    query = urlencode(
        {
            "name": "tuned",
            "template": "{{ .Prompt }}",
            "parameters": json.dumps({"temperature": 0.5, "stop": ["<|end|>"]}),
        }
    )
    response = upload(client, auth_headers, gguf(1 << 16), query)
    assert response.status_code == 202, response.get_json()
    assert wait_task(response.get_json()["id"])["status"] == "succeeded"
    sent = ollama.create_log[-1]
    assert sent["template"] == "{{ .Prompt }}"
    assert sent["parameters"] == {"temperature": 0.5, "stop": ["<|end|>"]}
    for bad in ("temperature=0.5", '{"temperature": {"x": 1}}', '{"Bad Name": 1}'):
        response = upload(client, auth_headers, gguf(1 << 16), urlencode({"name": "x", "parameters": bad}))
        assert response.status_code == 400, bad
    assert len(ollama.create_log) == 1


def test_an_import_onto_a_name_in_use_is_refused_before_anything_is_read(
    ollama, import_dir, client, auth_headers, ollama_api, wait_task, data_dir
):
    ollama.seed("my-model", [7_000])
    before = {m["name"]: (m["digest"], m["size"]) for m in ollama.tags()["models"]}
    (import_dir / "m.gguf").write_bytes(gguf(1 << 16))
    status, error = ollama_api("post", "/ollama/imports", json={"name": "My-Model", "path": "m.gguf"})
    assert status == 409 and error["error"]["code"] == "model_exists"
    assert error["error"]["details"]["name"] == "my-model:latest" and "name" in error["error"]["details"]["fields"]
    response = upload(client, auth_headers, gguf(1 << 16))
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "model_exists"
    assert ollama_api("get", "/tasks")[1]["tasks"] == []
    assert not (data_dir / "ollama-uploads").exists() or not list((data_dir / "ollama-uploads").iterdir())
    assert {m["name"]: (m["digest"], m["size"]) for m in ollama.tags()["models"]} == before

    response = upload(client, auth_headers, gguf(1 << 16), "name=my-model&overwrite=true")
    assert response.status_code == 202, response.get_json()
    assert wait_task(response.get_json()["id"])["status"] == "succeeded"
    assert {m["name"]: m["digest"] for m in ollama.tags()["models"]}["my-model:latest"] != before["my-model:latest"][0]


def test_an_import_started_while_ollama_was_away_asks_before_it_creates(ollama, import_dir, ollama_api, wait_task):
    """With Ollama away the name cannot be checked at the start; the import asks again right
    before it creates the model, so a name taken meanwhile is not replaced either."""
    (import_dir / "m.gguf").write_bytes(gguf(1 << 16))
    port = ollama.port
    ollama.stop()
    status, task = ollama_api("post", "/ollama/imports", json={"name": "late", "path": "m.gguf"})
    assert status == 202
    assert wait_task(task["id"])["status"] == "interrupted"
    ollama.seed("late", [5_000])
    before = {m["name"]: m["digest"] for m in ollama.tags()["models"]}
    ollama.start(port)
    assert ollama_api("post", f"/tasks/{task['id']}/retry")[0] == 200
    task = wait_task(task["id"])
    assert task["status"] == "failed" and task["error"]["details"]["code"] == "model_exists"
    assert task["error"]["i18n"]["key"] == "ollama.error.model_exists"
    assert {m["name"]: m["digest"] for m in ollama.tags()["models"]} == before
    assert not [body for body in ollama.create_log if body.get("model") == "late:latest"]


def test_an_empty_import_names_every_missing_field(ollama, import_dir, ollama_api):
    status, error = ollama_api("post", "/ollama/imports", json={"name": "", "path": ""})
    assert status == 400 and error["error"]["code"] == "validation_error"
    assert set(error["error"]["details"]["fields"]) == {"name", "path"}
    assert "name" in error["error"]["message"] and "path" in error["error"]["message"]
    status, error = ollama_api("post", "/ollama/imports", json={})
    assert status == 400 and set(error["error"]["details"]["fields"]) == {"name", "path"}
