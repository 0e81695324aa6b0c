"""docs/api.md is generated from the OpenAPI document and kept up to date."""

from pathlib import Path

from open1panel_ai import apidocs

API_MD = Path(__file__).parent.parent / "docs" / "api.md"


def test_docs_api_md_is_the_generated_reference():
    generated = apidocs.render(apidocs.spec_of_this_plugin())
    assert generated == API_MD.read_text(), f"docs/api.md is stale: run `{apidocs.COMMAND}` to update docs/api.md"


def test_every_operation_and_schema_has_a_section(api):
    _, spec = api("get", "/openapi.json")
    text = apidocs.render(spec)
    for path, operations in spec["paths"].items():
        for method in operations:
            heading = f"### `{method.upper()} {path}`"
            assert heading in text and f"(#{apidocs.anchor(heading[4:])})" in text, heading
    for name in spec["components"]["schemas"]:
        assert f"### {name} object" in text, name
    assert text == apidocs.render(spec)  # the same document renders the same text


def test_a_request_body_lists_its_fields_with_their_constraints(api):
    _, spec = api("get", "/openapi.json")
    text = apidocs.render(spec)
    pull = text[text.index("### `POST /ollama/pulls`") :]
    pull = pull[: pull.index("\n### ")]
    assert "Request body, `application/json`: [PullBody](#pullbody-object)" in pull
    assert "| `name` | string | yes | 1–600 characters." in pull
    assert "| `endpoint` | string | no | 1–32 characters; default `local` |" in pull
    assert "| 202 | [PullStarted](#pullstarted-object) |" in pull and "| 507 | Not enough disk space. |" in pull
    tasks = text[text.index("### `GET /tasks`") :]
    assert "| `status` | query | string | no | one of `queued`, `running`, `succeeded`" in tasks
    assert "| `limit` | query | integer | no | 1–1000; default `100` |" in tasks


def section(text, heading):
    start = text.index(heading)
    return text[start : text.index("\n### ", start)]


def test_alternatives_and_answers_that_are_not_json_are_shown_as_they_are(api):
    _, spec = api("get", "/openapi.json")
    text = apidocs.render(spec)
    server = section(text, "### MCPServerIn object")
    assert "| `command` | string or array of string | no | argv list" in server
    assert "| `keep_alive` | number or string | no |" in section(text, "### LoadBody object")
    assert "| `error` | [TaskError](#taskerror-object) or null | no |" in section(text, "### Task object")
    metrics = section(text, "### `GET /metrics`")
    assert "| 200 | `text/plain; version=1.0.0; charset=utf-8` (string) |" in metrics
    assert "| 204 | no body |" in section(text, "### `DELETE /ollama/models/{name}`")


def test_every_json_body_may_be_refused_as_too_large(api):
    _, spec = api("get", "/openapi.json")
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            takes_json = "application/json" in operation.get("requestBody", {}).get("content", {})
            assert ("413" in operation["responses"]) == takes_json, (method, path)
    text = apidocs.render(spec)
    assert "| 413 | The JSON body is larger than 1 MiB. |" in section(text, "### `POST /ollama/pulls`")
    assert "| 413 | a JSON or form body larger than 1 MiB" in text
