"""GET /openapi.json is generated from the routes and their marshmallow schemas."""

import json
import re

from open1panel_ai.web import API_PREFIX


def test_the_document_covers_every_api_route_and_method(host, api):
    status, spec = api("get", "/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routed = set()
    for rule in host.app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIX + "/"):
            path = re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule[len(API_PREFIX) :])
            routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed and documented == routed


def test_schemas_come_from_marshmallow(api):
    _, spec = api("get", "/openapi.json")
    task = spec["components"]["schemas"]["Task"]
    assert task["properties"]["status"]["enum"] == [
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "interrupted",
    ]
    listing = spec["paths"]["/tasks"]["get"]
    assert {p["name"] for p in listing["parameters"] if p["in"] == "query"} == {"status", "kind", "limit"}
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TaskList"
    }


def test_every_operation_needs_the_bearer_token_and_documents_its_errors(api):
    _, spec = api("get", "/openapi.json")
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["security"] == [{"bearer": []}], (path, method)
            assert {"401", "500"} <= set(operation["responses"]), (path, method)
            error = operation["responses"]["401"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}
    assert set(spec["paths"]["/tasks/{task_id}/cancel"]["post"]["responses"]) >= {"200", "404", "409"}


def test_the_document_is_served_as_the_status_route_says(api):
    status, body = api("get", "/status")
    assert status == 200 and [p["kind"] for p in body["providers"]] == ["ollama", "mcp", "gpu", "domain"]


def test_path_arguments_carry_the_pattern_of_their_ids(api):
    _, spec = api("get", "/openapi.json")

    def pattern(path, method, name):
        parameters = spec["paths"][path][method]["parameters"]
        return next(p for p in parameters if p["in"] == "path" and p["name"] == name)["schema"]["pattern"]

    assert pattern("/tasks/{task_id}", "get", "task_id") == "^[0-9a-f]{32}$"
    assert pattern("/mcp/servers/{server_id}/start", "post", "server_id") == "^[0-9a-f]{12}$"
    assert pattern("/domains/{binding_id}", "put", "binding_id") == "^[0-9a-f]{12}$"
    assert re.fullmatch(pattern("/ollama/models/{name}", "get", "name"), "hf.co/user/repo:Q4_K_M")
    assert not re.fullmatch(pattern("/ollama/models/{name}", "get", "name"), "two words")
    assert re.fullmatch(pattern("/ollama/endpoints/{name}", "delete", "name"), "gpu-box-2")


def test_bodies_and_answers_that_are_not_plain_json_are_described(api):
    _, spec = api("get", "/openapi.json")
    imports = spec["paths"]["/ollama/imports"]["post"]
    assert set(imports["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    assert {p["name"] for p in imports["parameters"] if p["in"] == "query"} >= {"name", "filename"}
    assert not any(p.get("required") for p in imports["parameters"])
    assert "400" in imports["responses"]
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert [media_type.split(";")[0] for media_type in metrics] == ["text/plain"]
    show = spec["paths"]["/ollama/models/{name}"]["get"]["responses"]["200"]["content"]
    assert show["application/json"]["schema"]["type"] == "object"


def test_patterns_in_the_document_are_plain_json_schema_patterns(api):
    """Every pattern is ECMA-262 as well as Python: no (?P<name>…) groups and no \\Z."""
    _, spec = api("get", "/openapi.json")
    patterns = re.findall(r'"pattern": ("(?:[^"\\]|\\.)*")', json.dumps(spec))
    assert patterns
    for pattern in map(json.loads, patterns):
        assert "(?P<" not in pattern and "\\Z" not in pattern, pattern


def test_mcp_routes_that_ask_the_runtime_document_its_absence(api):
    """Logs and tools come from the MCP provider; without one they answer 503."""
    _, spec = api("get", "/openapi.json")
    for path in ("/mcp/servers/{server_id}/logs", "/mcp/servers/{server_id}/tools"):
        assert "503" in spec["paths"][path]["get"]["responses"], path
