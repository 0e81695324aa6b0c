"""The Ollama stand-in, driven by the official ``ollama`` client and by raw HTTP, follows the
checklist of reference/ollama-api.md, quirks included."""

import hashlib
import json
import socket

import httpx
import ollama
import pytest

from tests.ollama_standin import OllamaStandIn


@pytest.fixture
def standin(tmp_path):
    with OllamaStandIn(tmp_path / "ollama", pull_speed=2_000_000) as server:
        yield server


def test_the_official_client_lists_pulls_shows_copies_loads_and_deletes(standin):
    client = ollama.Client(host=standin.url)
    assert client.list().models == []
    standin.publish("llama3.2", [300_000, 1_000])
    lines = list(client.pull("llama3.2", stream=True))
    assert lines[0].status == "pulling manifest"
    assert lines[-1].status == "success"
    listed = client.list().models
    assert [m.model for m in listed] == ["llama3.2:latest"]
    assert listed[0].size == 300_000 + 1_000 + 512
    assert listed[0].details.format == "gguf"
    shown = client.show("llama3.2")
    assert shown.modelinfo is not None and "completion" in shown.capabilities
    client.copy("llama3.2", "mine:v1")
    assert {m.model for m in client.list().models} == {"llama3.2:latest", "mine:v1"}
    loaded = client.generate(model="mine:v1", keep_alive=-1)
    assert loaded.done_reason == "load"
    running = client.ps().models
    assert [m.model for m in running] == ["mine:v1"] and running[0].size_vram > 0
    assert running[0].expires_at.year > 2200
    assert client.generate(model="mine:v1", keep_alive=0).done_reason == "unload"
    assert client.ps().models == []
    client.delete("mine:v1")
    assert [m.model for m in client.list().models] == ["llama3.2:latest"]
    with pytest.raises(ollama.ResponseError) as missing:
        client.delete("mine:v1")
    assert missing.value.status_code == 404 and missing.value.error == "model 'mine:v1' not found"


def test_the_official_client_imports_a_gguf_through_a_blob(standin, tmp_path):
    client = ollama.Client(host=standin.url)
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(4096))
    digest = client.create_blob(gguf)
    assert digest == "sha256:" + hashlib.sha256(gguf.read_bytes()).hexdigest()
    statuses = [p.status for p in client.create(model="tiny", files={"tiny.gguf": digest}, stream=True)]
    assert statuses[0] == "parsing GGUF" and statuses[-2:] == ["writing manifest", "success"]
    assert [m.model for m in client.list().models] == ["tiny:latest"]


def test_pull_lines_omit_zero_fields_and_an_unknown_model_is_a_200_error_line(standin):
    standin.publish("small", [200_000])
    with httpx.stream("POST", standin.url + "/api/pull", json={"model": "small"}) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.iter_lines()]
    blob_lines = [line for line in lines if "digest" in line]
    assert "completed" not in blob_lines[0]
    first_blob = blob_lines[0]["digest"]
    assert all(line["completed"] < line["total"] for line in blob_lines[1:] if line["digest"] == first_blob)
    assert [line["status"] for line in lines[-3:]] == ["verifying sha256 digest", "writing manifest", "success"]

    again = [
        json.loads(line) for line in httpx.post(standin.url + "/api/pull", json={"model": "small"}).text.splitlines()
    ]
    cached = [line for line in again if "digest" in line]
    assert all(line["completed"] == line["total"] for line in cached) and len(cached) == 2

    unknown = httpx.post(standin.url + "/api/pull", json={"model": "nope"})
    assert unknown.status_code == 200
    assert [json.loads(line) for line in unknown.text.splitlines()] == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]
    no_stream = httpx.post(standin.url + "/api/pull", json={"model": "nope", "stream": False})
    assert no_stream.status_code == 500
    bad = httpx.post(standin.url + "/api/pull", json={"model": "bad name!"})
    assert bad.status_code == 400 and bad.json() == {"error": "invalid model name"}


def test_not_found_texts_empty_bodies_and_plain_text_routes(standin):
    standin.seed("a", [10])
    url = standin.url
    assert httpx.post(url + "/api/show", json={"model": "x"}).json() == {"error": "model 'x:latest' not found"}
    assert httpx.post(url + "/api/copy", json={"source": "x", "destination": "y"}).json() == {
        "error": 'model "x" not found'
    }
    copy = httpx.post(url + "/api/copy", json={"source": "a", "destination": "b"})
    assert copy.status_code == 200 and copy.content == b""
    delete = httpx.request("DELETE", url + "/api/delete", json={"model": "b"})
    assert delete.status_code == 200 and delete.content == b""
    assert httpx.post(url + "/api/show", content=b"").json() == {"error": "missing request body"}
    assert httpx.get(url + "/nope").text == "404 page not found"
    assert httpx.get(url + "/api/pull").status_code == 405
    assert httpx.get(url + "/").text == "Ollama is running"
    assert httpx.post(url + "/api/generate", json={"model": "a", "keep_alive": "-1"}).status_code == 400


def test_blob_upload_answers_201_then_200_and_400_on_a_bad_hash(standin):
    data = b"some weights"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    url = f"{standin.url}/api/blobs/{digest}"
    assert httpx.head(url).status_code == 404
    assert httpx.post(url, content=data).status_code == 201
    assert httpx.head(url).status_code == 200
    assert httpx.post(url, content=data).status_code == 200
    wrong = httpx.post(f"{standin.url}/api/blobs/sha256:{'0' * 64}", content=data)
    assert wrong.status_code == 400 and wrong.json()["error"].startswith("digest mismatch")


def test_a_cut_pull_resumes_from_its_partial_file_after_a_restart(tmp_path):
    state = tmp_path / "ollama"
    standin = OllamaStandIn(state, pull_speed=500_000).start()
    standin.publish("big", [5_000_000])
    with httpx.stream("POST", standin.url + "/api/pull", json={"model": "big"}) as response:
        for line in response.iter_lines():
            if json.loads(line).get("completed", 0) > 300_000:
                break
    standin.stop()
    (partial,) = (state / "blobs").glob("*-partial")
    assert partial.stat().st_size == 5_000_000  # sized in full before the download, as Ollama does
    parts = [json.loads(path.read_text()) for path in partial.parent.glob(partial.name + "-*")]
    assert len(parts) == 16 and all(set(part) == {"N", "Offset", "Size", "Completed"} for part in parts)
    assert sum(part["Size"] for part in parts) == 5_000_000
    assert 300_000 < sum(part["Completed"] for part in parts) < 5_000_000
    assert partial.stat().st_blocks * 512 >= 300_000  # the bytes written are on disk

    with OllamaStandIn(state, pull_speed=50_000_000) as again:
        again.publish("big", [5_000_000])
        lines = [
            json.loads(x)
            for x in httpx.post(again.url + "/api/pull", json={"model": "big"}, timeout=30).text.splitlines()
        ]
        assert lines[-1] == {"status": "success"}
        assert again.pull_log[-1]["first_completed"] and max(again.pull_log[-1]["first_completed"].values()) > 300_000


def test_create_and_generate_refuse_bad_input_before_streaming(standin):
    url = standin.url
    assert httpx.post(url + "/api/create", json={"model": "x"}).json() == {
        "error": "neither 'from' or 'files' was specified"
    }
    assert httpx.post(url + "/api/create", json={"model": "bad name!", "from": "a"}).status_code == 400
    missing = httpx.post(url + "/api/generate", json={"model": "ghost"})
    assert missing.status_code == 404 and missing.json() == {"error": "model 'ghost' not found"}
    standin.seed("a", [10])
    unload = httpx.post(url + "/api/generate", json={"model": "a", "keep_alive": 0})
    assert unload.headers["content-type"].startswith("application/json")
    assert unload.json()["done_reason"] == "unload"  # even though it was not loaded
    created = httpx.post(url + "/api/create", json={"model": "b", "from": "a"})
    assert created.text.splitlines()[-1] == '{"status":"success"}'


def test_an_old_server_creates_from_a_modelfile(tmp_path):
    with OllamaStandIn(tmp_path / "old", version="0.5.1") as old:
        data = b"GGUF old"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert httpx.post(f"{old.url}/api/blobs/{digest}", content=data).status_code == 201
        ignored = httpx.post(old.url + "/api/create", json={"model": "m", "files": {"m.gguf": digest}})
        assert ignored.status_code == 400  # files are unknown before 0.5.5
        made = httpx.post(old.url + "/api/create", json={"model": "m", "modelfile": f"FROM @{digest}\n"})
        assert made.text.splitlines()[-1] == '{"status":"success"}'


def test_replies_go_out_without_waiting_for_more_data(standin):
    """TCP_NODELAY on the stand-in's sockets, as Go sets it: a kept-alive client (a proxy)
    would otherwise wait for a delayed ACK on each small reply."""
    with httpx.Client() as client:
        assert client.get(standin.url + "/api/version").status_code == 200
        with standin._lock:
            (connection,) = standin._connections
        assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_part_file_says_what_its_part_holds_only_when_the_part_ends(standin):
    """As Ollama's parts (100 MB or more) do: while a part downloads its file still says 0, and
    only the partial blob's blocks on disk show the bytes written."""
    standin.part_size = 100_000_000
    standin.pull_speed = 1_000_000
    standin.publish("big", [3_000_000])
    with httpx.stream("POST", standin.url + "/api/pull", json={"model": "big"}) as response:
        for line in response.iter_lines():
            if json.loads(line).get("completed", 0) > 500_000:
                (partial,) = standin.blobs.glob("*-partial")
                (part,) = standin.blobs.glob("*-partial-0")
                assert json.loads(part.read_text())["Completed"] == 0
                assert partial.stat().st_blocks * 512 >= 500_000
                break
    standin.stop()  # returns once the cut download has recorded its progress
    assert json.loads(part.read_text())["Completed"] > 500_000


def test_a_copy_replaces_its_destination_without_a_word_as_ollamas_does(standin):
    standin.seed("small", [1_000])
    standin.seed("large", [9_000], family="qwen2")
    before = {m["name"]: m["digest"] for m in standin.tags()["models"]}
    assert httpx.post(standin.url + "/api/copy", json={"source": "small", "destination": "large"}).text == ""
    after = {m["name"]: m["digest"] for m in standin.tags()["models"]}
    assert after["large:latest"] == before["small:latest"] != before["large:latest"]


def test_a_model_deleted_while_the_list_is_read_is_left_out_without_an_error(standin):
    """Ollama lists the manifests it finds: one deleted between the listing of the folder and
    the reading of the file is not listed, and the list still answers 200."""
    standin.seed("kept", [1_000])
    standin.seed("going", [2_000])

    class DeletedOnceListed(type(standin.manifests)):
        def glob(self, pattern):
            found = list(super().glob(pattern))
            for path in found:
                if "going" in path.parts:
                    path.unlink()
            return iter(found)

    standin.manifests = DeletedOnceListed(standin.manifests)
    response = httpx.get(standin.url + "/api/tags")
    assert response.status_code == 200
    assert [m["name"] for m in response.json()["models"]] == ["kept:latest"]
