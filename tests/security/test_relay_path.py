"""Finding: a panel process that relays the API to the owner re-encoded the decoded path, and
the HTTP client then resolved ``..`` segments: ``DELETE /ollama/models/..%2F..%2Fmcp%2Fservers%2F<id>``
sent to a relaying process deleted an MCP server at the owner. The path now reaches the owner
segment by segment, dot segments encoded, so the owner routes what the relaying process checked.
"""

from __future__ import annotations

import httpx

from open1panel_ai.relay import relayed_path
from tests.multiprocess.conftest import redis_url  # noqa: F401 (fixtures)
from tests.multiprocess.test_ownership import shared_dir_env  # noqa: F401

CLIMBING = "/api/v2/ai/ollama/models/../../mcp/servers/0123456789ab"


def test_dot_segments_survive_the_http_client():
    sent = httpx.Request("DELETE", "http://owner" + relayed_path(CLIMBING))
    assert sent.url.raw_path == b"/api/v2/ai/ollama/models/%2E%2E/%2E%2E/mcp/servers/0123456789ab"
    assert relayed_path("/api/v2/ai/ollama/models/library/a b:1") == "/api/v2/ai/ollama/models/library/a%20b:1"


def test_a_climbing_path_sent_to_a_relaying_process_stays_on_its_route(
    shared_dir_env,  # noqa: F811
    make_host,
    auth_headers,
):
    owner, relaying = make_host(), make_host()
    assert not relaying.app.extensions["open1panel_ai"].is_owner
    made = owner.app.test_client().post(
        "/api/v2/ai/mcp/servers", headers=auth_headers, json={"name": "kept", "command": ["mcp-server-time"]}
    )
    assert made.status_code == 201, made.get_json()
    server_id = made.get_json()["id"]
    answer = relaying.app.test_client().delete(
        f"/api/v2/ai/ollama/models/..%2F..%2Fmcp%2Fservers%2F{server_id}", headers=auth_headers
    )
    assert answer.status_code in (400, 404), answer.get_json()  # the Ollama route's answer
    still = owner.app.test_client().get(f"/api/v2/ai/mcp/servers/{server_id}", headers=auth_headers)
    assert still.status_code == 200
