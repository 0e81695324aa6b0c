"""Build a model from a base: the preview, the checks before sending, the build task through
/api/create, "Edit as new model" from show, and the official client's create against the
stand-in."""

import ollama as ollama_client
import pytest


def build_body(**extra):
    return {
        "name": "pirate",
        "from": "llama3.2",
        "system": "You are a pirate.",
        "template": "{{ .System }} {{ .Prompt }}",
        "parameters": {"temperature": 0.4, "num_ctx": 4096, "stop": ["<|end|>", "Arr"]},
        "license": "MIT",
        **extra,
    }


def test_a_build_previews_its_request_then_creates_the_model_as_a_task(ollama, ollama_api, wait_task):
    ollama.seed("llama3.2", [3000])
    status, preview = ollama_api("post", "/ollama/builds/preview", json=build_body())
    assert status == 200
    assert preview["method"] == "POST" and preview["url"] == ollama.url + "/api/create"
    assert preview["body"] == {
        "model": "pirate:latest",
        "from": "llama3.2:latest",
        "system": "You are a pirate.",
        "template": "{{ .System }} {{ .Prompt }}",
        "license": "MIT",
        "stream": True,
        "parameters": {"temperature": 0.4, "num_ctx": 4096, "stop": ["<|end|>", "Arr"]},
    }
    assert ollama.create_log == []  # a preview sends nothing

    status, task = ollama_api("post", "/ollama/builds", json=build_body())
    assert status == 202 and task["kind"] == "ollama.build"
    done = wait_task(task["id"])
    assert done["status"] == "succeeded", done
    assert done["percent"] == 100
    sent = ollama.create_log[-1]
    assert {k: v for k, v in sent.items() if k != "stream"} == {
        k: v for k, v in preview["body"].items() if k not in ("stream", "model")
    } | {"model": "pirate:latest"}

    # "Edit as new model": the form comes back filled from show, parameters typed.
    status, recipe = ollama_api("get", "/ollama/models/pirate/recipe")
    assert status == 200
    assert recipe == {
        "endpoint": "local",
        "from": "pirate:latest",
        "system": "You are a pirate.",
        "template": "{{ .System }} {{ .Prompt }}",
        "license": "MIT",
        "parameters": {"temperature": 0.4, "num_ctx": 4096, "stop": ["<|end|>", "Arr"]},
    }
    # The name is taken now: refused unless overwrite says so.
    status, error = ollama_api("post", "/ollama/builds", json=build_body())
    assert status == 409 and error["error"]["code"] == "model_exists"
    status, task = ollama_api("post", "/ollama/builds", json=build_body(system="Ahoy.", overwrite=True))
    assert status == 202 and wait_task(task["id"])["status"] == "succeeded"
    assert ollama_api("get", "/ollama/models/pirate")[1]["system"] == "Ahoy."


def test_parameters_and_names_are_checked_before_anything_is_sent(ollama, ollama_api):
    ollama.seed("llama3.2", [3000])
    status, error = ollama_api(
        "post",
        "/ollama/builds",
        json=build_body(parameters={"temprature": 1, "top_k": 2.5, "use_mmap": "yes", "stop": []}),
    )
    assert status == 400
    fields = error["error"]["details"]["fields"]["parameters"]
    assert set(fields) == {"temprature", "top_k", "use_mmap", "stop"}
    assert "temperature" in fields["temprature"][0]  # the known names are listed
    for body in (
        build_body(name="bad name"),
        build_body(**{"from": "llama3.2", "name": "llama3.2"}),
        build_body(adapter="lora.gguf"),
        {"name": "x"},
        build_body(parameters=[1]),
    ):
        status, error = ollama_api("post", "/ollama/builds/preview", json=body)
        assert status == 400, (body, error)
    status, error = ollama_api("post", "/ollama/builds", json=build_body(**{"from": "missing"}))
    assert status == 404 and "fields" in error["error"]["details"]
    assert ollama.create_log == []


def test_a_build_can_take_an_adapter_from_the_import_folder(ollama, ollama_env, tmp_path, request):
    folder = tmp_path / "imports"
    folder.mkdir()
    (folder / "lora.gguf").write_bytes(b"GGUF adapter bytes")
    ollama_env.setenv("OPEN1PANEL_AI_OLLAMA_IMPORT_DIR", str(folder))
    ollama.seed("llama3.2", [3000])
    api, wait_task = request.getfixturevalue("ollama_api"), request.getfixturevalue("wait_task")
    status, task = api("post", "/ollama/builds", json=build_body(adapter="lora.gguf"))
    assert status == 202, task
    assert wait_task(task["id"])["status"] == "succeeded"
    [(filename, digest)] = ollama.create_log[-1]["adapters"].items()
    assert filename == "lora.gguf" and ollama.blob_path(digest).read_bytes() == b"GGUF adapter bytes"
    assert api("post", "/ollama/builds/preview", json=build_body(adapter="../etc/passwd"))[0] == 400


def test_the_official_client_creates_and_shows_through_the_standin(ollama):
    ollama.seed("llama3.2", [3000])
    client = ollama_client.Client(host=ollama.url)
    steps = [
        p.status
        for p in client.create(
            model="mine",
            from_="llama3.2",
            system="Be brief.",
            template="{{ .Prompt }}!",
            stream=True,
            parameters={"temperature": 0.3, "stop": ["END"]},
            license="MIT",
        )
    ]
    assert steps[-1] == "success" and "writing manifest" in steps
    shown = client.show("mine")
    assert shown.template == "{{ .Prompt }}!" and shown.license == "MIT"
    assert shown.parameters.splitlines() == [f"{'temperature':<30} 0.3", f'{"stop":<30} "END"']
    assert 'SYSTEM """Be brief."""' in shown.modelfile
    assert shown.capabilities == ["completion"]
    with pytest.raises(ollama_client.ResponseError) as refused:
        client.create(model="other", from_="missing")
    assert refused.value.status_code == 404
