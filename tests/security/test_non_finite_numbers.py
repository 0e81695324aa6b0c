"""Finding: numbers JSON cannot hold (``NaN``, ``Infinity``) or a float cannot (``1e400``)
reached the services and ended in a 500. Every JSON body now refuses them with a 400."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
@pytest.mark.parametrize("path", ["/ollama/models/llama3.2:1b/load", "/ollama/pulls", "/mcp/servers"])
def test_non_finite_numbers_are_a_400_naming_the_value(client, auth_headers, path, number):
    body = {
        "/ollama/models/llama3.2:1b/load": '{"keep_alive": %s}',
        "/ollama/pulls": '{"name": "llama3.2:1b", "timeout": %s}',
        "/mcp/servers": '{"name": "n", "command": ["x"], "restart_limit": %s}',
    }[path] % number
    response = client.post("/api/v2/ai" + path, data=body, headers={**auth_headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_json"
    assert number.lstrip("-") in error["message"]


def test_large_finite_numbers_still_parse(api):
    status, body = api("post", "/ollama/models/llama3.2:1b/load", json={"keep_alive": 1e300})
    assert status != 500 and (status >= 400 or body)
