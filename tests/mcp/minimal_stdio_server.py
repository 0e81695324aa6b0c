"""The smallest stdio MCP server, for the system's own ``python3`` (no SDK): it answers
``initialize``, ``ping`` and ``tools/list`` (one tool, ``whoami``) and ``tools/call``.

The sandbox tests run it where the test's own Python cannot be reached (as another user,
without bubblewrap's view of the test's virtual environment)."""

import json
import os
import sys

TOOL = {
    "name": "whoami",
    "description": "The uid and environment keys of this process.",
    "inputSchema": {"type": "object", "properties": {}},
}


def answer(request):
    method = request.get("method")
    if method == "initialize":
        return {
            "protocolVersion": request["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "minimal", "version": "1"},
        }
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": [TOOL]}
    if method == "tools/call":
        text = json.dumps({"uid": os.getuid(), "env_keys": sorted(os.environ)})
        return {"content": [{"type": "text", "text": text}], "isError": False}
    return None


for line in sys.stdin:
    request = json.loads(line)
    if "id" not in request:
        continue  # a notification
    result = answer(request)
    reply = {"jsonrpc": "2.0", "id": request["id"]}
    if result is None:
        reply["error"] = {"code": -32601, "message": "method not found"}
    else:
        reply["result"] = result
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
