"""Domain binding input takes the JSON types and patterns the OpenAPI document states,
nothing looser."""

BINDING = {"domains": ["ollama.example.test"], "target": {"kind": "ollama", "name": "local"}}


def test_force_https_must_be_a_json_boolean(api):
    body = {**BINDING, "tls": {"mode": "none", "force_https": "yes"}}
    status, error = api("post", "/domains/preview", json=body)
    assert status == 400 and "force_https" in error["error"]["details"]["fields"]["tls"]


def test_a_target_name_with_a_final_line_break_is_refused(api):
    body = {**BINDING, "target": {"kind": "ollama", "name": "local\n"}}
    status, error = api("post", "/domains/preview", json=body)
    assert status == 400 and "name" in error["error"]["details"]["fields"]["target"]
