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
    pull = text[text.index("### `POST /ollama/pulls`"):]
    pull = pull[:pull.index("\n### ")]
    assert "Request body, `application/json`: [PullBody](#pullbody-object)" in pull
    assert "| `name` | string | yes | 1–600 characters." in pull
    assert "| `endpoint` | string | no | 1–32 characters; default `local` |" in pull
    assert "| 202 | [PullStarted](#pullstarted-object) |" in pull and "| 507 | Not enough disk space. |" in pull
    tasks = text[text.index("### `GET /tasks`"):]
    assert "| `status` | query | string | no | one of `queued`, `running`, `succeeded`" in tasks
    assert "| `limit` | query | integer | no | 1–1000; default `100` |" in tasks
