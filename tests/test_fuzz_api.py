"""Schemathesis fuzzes every operation of ``/api/v2/ai/openapi.json`` against the in-process app.

The schema is loaded from the standalone host's Flask app (WSGI, no server start) and every
request carries the admin token. Each operation gets schema-valid and schema-invalid requests
(examples, boundary cases and random data), and every answer must hold: no 500, a status the
document lists, the documented content type, a body that matches its documented schema, and a
4xx for input the schema forbids. Each operation is also tried without the token (a 401 is
due) and with a method it does not have (a 405). 502, 503 and 507 are answers, not failures:
they report an upstream's trouble, and the document lists them where they can happen.

Real parts stand behind the API: the Ollama stand-in (two models, one more to pull) as the
``local`` endpoint, a temporary nginx for domain bindings, and the fake ``pynvml`` with three
GPUs. An MCP server, a domain binding and a pull task are created first; every other request
with a valid id is aimed at one of them (or at a seeded model), so answers about resources
that exist are checked as well as 404s. Two things keep the fuzzer from doing harm:

- MCP server definitions hold an argv that ``/start`` would run. The MCP provider is ``none``
  here: definitions are validated and stored as usual, but nothing can start them, so no
  generated command is ever executed (``/start`` and ``/restart`` answer 503 or 404).
- A new Ollama endpoint's URL is pointed at the stand-in before the request is sent, so no
  fuzzed delete or copy can reach a real Ollama on this machine or elsewhere.

Examples are derandomized, so a CI run is repeatable. ``FUZZ_EXAMPLES`` sets the examples per
operation and generation mode (default 15); ``FUZZ_EXAMPLES=500`` makes a deep local run.
"""

from __future__ import annotations

import os
import re
import sys
import zlib

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from open1panel_ai.config import Settings
from open1panel_ai.domain.schemas import BINDING_ID
from open1panel_ai.mcp.schemas import SERVER_ID
from open1panel_ai.ollama.schemas import MODEL_NAME
from open1panel_ai.schemas import TASK_ID
from open1panel_ai.standalone.host import create_host
from tests.conftest import EXAMPLE_PLUGINS, TOKEN
from tests.domain.conftest import NginxServer
from tests.gpu.fake_pynvml import three_gpus
from tests.ollama_standin import OllamaStandIn

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
API = "/api/v2/ai"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Statuses that are answers, not server errors.
ANSWERS = ["1XX", "2XX", "3XX", "4XX", "502", "503", "507"]
#: Statuses that reject invalid input: schemathesis's own list and 413, the answer to a body
#: over the size limit (an array past its maxItems can be that large).
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5XX"]
#: The patterns of the path arguments that name a resource (``name``: a model).
ID_PATTERNS = {"server_id": SERVER_ID, "binding_id": BINDING_ID, "task_id": TASK_ID, "name": MODEL_NAME}
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
    "unsupported_method",
]


@pytest.fixture(scope="module")
def fuzzed_host(tmp_path_factory):
    """A standalone host whose providers reach real parts (see the module docstring)."""
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch, OllamaStandIn(root / "ollama-models", pull_speed=50_000_000) as ollama:
        ollama.seed("llama3.2", [3000], family="llama", quantization_level="Q4_K_M")
        ollama.seed("qwen2:0.5b", [500], family="qwen2", quantization_level="Q8_0")
        ollama.publish("smollm:135m", [2000])
        nginx = NginxServer(root / "nginx").start()
        data_dir = root / "data"
        settings = {
            "data_dir": str(data_dir),
            "token": TOKEN,
            "disabled_plugins": EXAMPLE_PLUGINS,
            "domain_provider": "nginx",
            "gpu_provider": "nvml",
            "mcp_provider": "none",
            **nginx.settings(data_dir),
        }
        for key in list(os.environ):
            if key.startswith("OPEN1PANEL_AI_"):
                patch.delenv(key)
        for key, value in settings.items():
            patch.setenv(f"OPEN1PANEL_AI_{key.upper()}", value)
        patch.setenv("OLLAMA_HOST", ollama.url)
        patch.setenv("OLLAMA_MODELS", str(ollama.state_dir))
        patch.setitem(sys.modules, "pynvml", three_gpus(os.getpid()).module())
        host = create_host(Settings.from_environ(), [])
        try:
            yield host
        finally:
            host.shutdown()
            nginx.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_host):
    config = SchemathesisConfig.from_dict(
        {
            "headers": AUTH,
            "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                "not_a_server_error": {"enabled": True, "expected-statuses": ANSWERS},
                "negative_data_rejection": {"enabled": True, "expected-statuses": REJECTIONS},
            },
        }
    )
    return schemathesis.openapi.from_wsgi(API + "/openapi.json", fuzzed_host.app, config=config, headers=AUTH)


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    """Schemathesis's lazy loader names each operation's subtest through ``Node._nodeid``,
    which pytest 9 no longer has; give it the node id it expects."""
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def resources(fuzzed_host):
    """One real resource of each kind, for path arguments (see :func:`_aim_at_resources`)."""
    client = fuzzed_host.app.test_client()

    def create(path, body):
        response = client.post(API + path, json=body, headers=AUTH)
        assert response.status_code in (201, 202), response.get_json()
        return response.get_json()["id"]

    return {
        "server_id": create("/mcp/servers", {"name": "fuzzed", "command": ["uvx", "mcp-server-time"]}),
        "binding_id": create(
            "/domains", {"domains": ["fuzzed.example.com"], "target": {"kind": "ollama", "name": "local"}}
        ),
        "task_id": create("/ollama/pulls", {"name": "smollm:135m"}),
        "name": "llama3.2",
    }


@schema.parametrize()
def test_every_operation_holds_to_its_schema(case, resources):
    if case.operation.label == "POST /ollama/endpoints":
        _keep_on_the_stand_in(case)
    _aim_at_resources(case, resources)
    case.call_and_validate(headers=AUTH)


def _aim_at_resources(case, resources):
    """Give every other case with a valid id the id of a real resource, so answers about
    resources that exist are checked too, not only 404s. Deletes keep their random ids, so
    the resources last the whole run; an invalid id is left alone, so it stays invalid."""
    if case.operation.method == "delete":
        return
    for name, value in (case.path_parameters or {}).items():
        if (
            name in resources
            and isinstance(value, str)
            and re.fullmatch(ID_PATTERNS[name], value)
            and zlib.crc32(value.encode()) % 2 == 0
        ):
            case.path_parameters[name] = resources[name]


def _keep_on_the_stand_in(case):
    """Point a new endpoint's URL at the Ollama stand-in. Only a URL of a valid length (the
    schema's only rule for it) is replaced, so invalid input stays invalid."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("url"), str) and 1 <= len(body["url"]) <= 300:
        body["url"] = os.environ["OLLAMA_HOST"]
