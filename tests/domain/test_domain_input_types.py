"""Domain binding input takes the JSON types the OpenAPI document states, nothing looser."""


def test_force_https_must_be_a_json_boolean(api):
    body = {"domains": ["ollama.example.test"], "target": {"kind": "ollama", "name": "local"},
            "tls": {"mode": "none", "force_https": "yes"}}
    status, error = api("post", "/domains/preview", json=body)
    assert status == 400 and "force_https" in error["error"]["details"]["fields"]["tls"]
