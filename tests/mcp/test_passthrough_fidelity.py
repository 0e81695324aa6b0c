"""Bridge v2 relays everything: the official client observes the same through it as over stdio.

``@modelcontextprotocol/server-everything`` (npm) exercises every feature of the protocol. The
official ``mcp`` client drives it directly over stdio, then through the bridge over Streamable
HTTP and over legacy SSE, with ``sessions: shared`` and ``per_client``, and what it observes is
compared: tools, prompts, resources, templates, completions, a long-running tool's progress,
logging after the server's logging toggle, sampling and elicitation callbacks, the roots it
asks for (and asks again for after ``roots/list_changed``), resource subscription updates, and
cancellation. Every difference is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import anyio
import httpx
import mcp_types as types
import pytest

from tests.mcp.test_passthrough_bridge import (
    ACCEPT,
    HANDSHAKE_VERSIONS,
    connect,
    passthrough,
    raw_session,
    rpc,
)

EVERYTHING_VERSION = "2026.8.31"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "open1panel-ai-tests" / "npm"
SIMULATED = ("-level message", "level-message")  # what the logging toggle sends
#: The client warns that logging, roots and subscriptions leave the protocol in 2026-07-28;
#: these tests speak the revisions that have them.
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


@pytest.fixture(scope="session")
def everything() -> list[str]:
    """The argv of server-everything, installed once into a cache folder (the first run
    downloads it from npm; without the registry the tests are skipped, not failed)."""
    entry = CACHE / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed")
    if not entry.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE),
                            f"@modelcontextprotocol/server-everything@{EVERYTHING_VERSION}"],
                           check=True, capture_output=True, timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output = getattr(exc, "stderr", b"") or b""
            if any(word in output for word in (b"ENOTFOUND", b"EAI_AGAIN", b"ECONNREFUSED", b"ETIMEDOUT",
                                               b"network")) or isinstance(exc, subprocess.TimeoutExpired):
                pytest.skip(f"the npm registry cannot be reached: {output[-300:]!r}")
            raise
    return [node, str(entry), "stdio"]


class Client:
    """The client's side of the callbacks, recording what the server asked of it."""

    def __init__(self) -> None:
        self.sampled: list[str] = []
        self.elicited: list[str] = []
        self.roots_asked = 0
        self.roots = [types.Root(uri="file:///srv/data", name="data")]
        self.logs: list[types.LoggingMessageNotificationParams] = []
        self.updated: list[str] = []
        self.changed: list[str] = []

    async def sampling(self, context, params: types.CreateMessageRequestParams):
        self.sampled.append(params.messages[0].content.text)
        return types.CreateMessageResult(role="assistant", model="stand-in",
                                         content=types.TextContent(type="text", text="sampled answer"))

    async def elicitation(self, context, params):
        self.elicited.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada", "check": True})

    async def list_roots(self, context):
        self.roots_asked += 1
        return types.ListRootsResult(roots=self.roots)

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)

    async def messages(self, message) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self.updated.append(message.params.uri)
        elif isinstance(message, (types.ToolListChangedNotification, types.ResourceListChangedNotification,
                                  types.PromptListChangedNotification)):
            self.changed.append(message.method)

    def callbacks(self) -> dict:
        return {"sampling_callback": self.sampling, "elicitation_callback": self.elicitation,
                "list_roots_callback": self.list_roots, "logging_callback": self.logging,
                "message_handler": self.messages}


async def _until(condition, what: str, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


def _text(result) -> str:
    return "\n".join(part.text for part in result.content if part.type == "text")


async def observe(path: str, bridge=None, command=None, version=None, full: bool = True) -> dict:
    """What the official client sees of server-everything along ``path``."""
    client = Client()
    seen: dict = {}
    async with connect(path, bridge, command, version, **client.callbacks()) as session:
        seen["version"] = session.protocol_version
        seen["server"] = session.server_info.name
        capabilities = session.server_capabilities.model_dump(exclude_none=True)
        seen["capabilities"] = sorted(capabilities)
        tools = await session.list_tools()
        seen["tools"] = sorted((t.name, json.dumps(t.input_schema, sort_keys=True)) for t in tools.tools)
        progress: list[tuple[float, float | None]] = []

        async def on_progress(value, total, message):
            progress.append((value, total))

        result = await session.call_tool("trigger-long-running-operation", {"duration": 0.4, "steps": 4},
                                         progress_callback=on_progress)
        seen["progress"] = (progress, _text(result))
        result = await session.call_tool("trigger-sampling-request", {"prompt": "hello", "maxTokens": 5})
        seen["sampling"] = (client.sampled, "sampled answer" in _text(result))
        if not full:
            return seen
        prompts = await session.list_prompts()
        seen["prompts"] = sorted(p.name for p in prompts.prompts)
        prompt = await session.get_prompt("completable-prompt", {"department": "Sales", "name": "Eve"})
        seen["prompt"] = prompt.messages[0].content.text
        completion = await session.complete(types.PromptReference(type="ref/prompt", name="completable-prompt"),
                                            {"name": "department", "value": "S"})
        seen["completion"] = completion.completion.values
        resources = await session.list_resources()
        seen["resources"] = sorted(r.uri for r in resources.resources)
        templates = await session.list_resource_templates()
        seen["templates"] = sorted(t.uri_template for t in templates.resource_templates)
        read = await session.read_resource(resources.resources[0].uri)
        seen["resource"] = read.contents[0].model_dump(exclude_none=True)
        seen["echo"] = _text(await session.call_tool("echo", {"message": "through"}))

        result = await session.call_tool("trigger-elicitation-request", {})
        seen["elicitation"] = (client.elicited, "Ada" in _text(result))

        seen["roots"] = _text(await session.call_tool("get-roots-list", {}))
        asked = client.roots_asked
        client.roots = [types.Root(uri="file:///srv/other", name="other")]
        await session.send_roots_list_changed()
        await _until(lambda: client.roots_asked > asked, "the server to ask for the roots again")
        seen["roots_again"] = _text(await session.call_tool("get-roots-list", {}))
        seen["roots_asked"] = client.roots_asked >= 1

        await session.set_logging_level("debug")
        await session.call_tool("toggle-simulated-logging", {})
        await _until(lambda: any(any(s in str(p.data) for s in SIMULATED) for p in client.logs), "a log message")
        await session.call_tool("toggle-simulated-logging", {})
        simulated = [p for p in client.logs if any(s in str(p.data) for s in SIMULATED)]
        seen["logging"] = sorted({(p.level in types.LoggingLevel.__args__, type(p.data).__name__) for p in simulated})

        uri = resources.resources[0].uri
        await session.subscribe_resource(uri)
        await session.call_tool("toggle-subscriber-updates", {})
        await _until(lambda: uri in client.updated, "a resource update")
        await session.call_tool("toggle-subscriber-updates", {})
        await session.unsubscribe_resource(uri)
        seen["updates"] = sorted(set(client.updated))

        cancelled_progress: list[float] = []

        async def cancelled_on_progress(value, total, message):
            cancelled_progress.append(value)

        with anyio.move_on_after(0.7) as scope:
            await session.call_tool("trigger-long-running-operation", {"duration": 3, "steps": 6},
                                    progress_callback=cancelled_on_progress)
        seen["cancel"] = (scope.cancelled_caught, 0 < len(cancelled_progress) < 6)
        seen["after_cancel"] = _text(await session.call_tool("echo", {"message": "still here"}))
    return seen


def test_the_official_client_observes_the_same_directly_and_through_every_path(everything, passthrough):
    direct = anyio.run(observe, "stdio", None, everything)
    assert direct["progress"][0] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert direct["sampling"] == (["Resource trigger-sampling-request context: hello"], True)
    assert direct["cancel"] == (True, True)
    for sessions in ("shared", "per_client"):
        for path in ("http", "sse"):
            # A fresh server each time: a shared one keeps what a session before told it (roots).
            through = anyio.run(observe, path, passthrough(everything, sessions=sessions))
            assert through == direct, (sessions, path)


@pytest.mark.parametrize("version", HANDSHAKE_VERSIONS[:-1])
def test_older_revisions_observe_the_same_too(everything, passthrough, version):
    direct = anyio.run(observe, "stdio", None, everything, version, False)
    assert direct["version"] == version
    bridge = passthrough(everything)
    for path in ("http", "sse"):
        assert anyio.run(observe, path, bridge, None, version, False) == direct, path


def test_a_cancelled_request_reaches_the_server_and_its_result_is_never_delivered(everything, passthrough):
    bridge = passthrough(everything)
    call = rpc("tools/call", {"name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 2},
                              "_meta": {"progressToken": "mine"}}, request_id=41)
    with httpx.Client(timeout=10) as client:
        headers = raw_session(bridge, client)
        events = []
        with client.stream("POST", bridge.url(), json=call, headers=headers) as stream:
            assert stream.headers["content-type"] == "text/event-stream"
            for line in stream.iter_lines():
                if line.startswith("data: ") and line != "data: ":
                    events.append(json.loads(line[6:]))
                    if len(events) == 1:  # the first progress: now cancel
                        cancel = rpc("notifications/cancelled", {"requestId": 41, "reason": "enough"}, None)
                        assert client.post(bridge.url(), json=cancel, headers=headers).status_code == 202
        assert events[0]["method"] == "notifications/progress"
        assert events[0]["params"]["progressToken"] == "mine"
        assert events[-1] == {"jsonrpc": "2.0", "id": 41, "error": {"code": -32800, "message": "Request cancelled"}}
        assert not any("result" in event for event in events)
        # The server got the cancel: its late answer (if any) never reaches this session.
        anyio.run(anyio.sleep, 1.2)
        with client.stream("GET", bridge.url(), headers={**headers, **ACCEPT}) as get:
            assert get.status_code == 200
        answer = client.post(bridge.url(), json=rpc("ping", request_id=42), headers=headers)
        assert answer.json() == {"jsonrpc": "2.0", "id": 42, "result": {}}


def test_a_broken_stream_resumes_from_last_event_id(everything, passthrough):
    bridge = passthrough(everything)
    call = rpc("tools/call", {"name": "trigger-long-running-operation", "arguments": {"duration": 0.8, "steps": 4},
                              "_meta": {"progressToken": 5}}, request_id=9)
    with httpx.Client(timeout=10) as client:
        headers = {**raw_session(bridge, client), "MCP-Protocol-Version": "2025-11-25"}
        last_id = None
        with client.stream("POST", bridge.url(), json=call, headers=headers) as stream:
            for line in stream.iter_lines():
                if line.startswith("id: "):
                    last_id = line[4:]
                if line.startswith("data: {"):
                    break  # the client drops the stream after its first message
        assert last_id and last_id.endswith("-1")
        anyio.run(anyio.sleep, 1.0)  # the rest comes while nobody listens
        resumed = []
        with client.stream("GET", bridge.url(), headers={**headers, "Last-Event-ID": last_id}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: {"):
                    resumed.append(json.loads(line[6:]))
        assert [m["params"]["progress"] for m in resumed[:-1]] == [2, 3, 4]
        assert resumed[-1]["id"] == 9 and "Long running operation completed" in json.dumps(resumed[-1])
        gone = client.get(bridge.url(), headers={**headers, "Last-Event-ID": "p99-1"})
        assert gone.status_code == 410


def test_server_requests_go_to_the_session_whose_request_is_in_flight(everything, passthrough):
    """Two sessions on one shared child: the sampling request reaches only the one that asked."""
    bridge = passthrough(everything)

    async def run():
        first, second = Client(), Client()
        async with connect("http", bridge, **first.callbacks()) as one, \
                connect("sse", bridge, **second.callbacks()) as two:
            result = await two.call_tool("trigger-sampling-request", {"prompt": "second", "maxTokens": 5})
            assert "sampled answer" in _text(result)
            result = await one.call_tool("trigger-sampling-request", {"prompt": "first", "maxTokens": 5})
            assert "sampled answer" in _text(result)
        return first.sampled, second.sampled

    first, second = anyio.run(run)
    assert first == ["Resource trigger-sampling-request context: first"]
    assert second == ["Resource trigger-sampling-request context: second"]


def test_a_server_request_no_session_can_answer_gets_an_error_that_says_why(everything, passthrough):
    bridge = passthrough(everything)

    async def run():
        async with connect("http", bridge) as session:  # declares no sampling
            return await session.call_tool("trigger-sampling-request", {"prompt": "x", "maxTokens": 5})

    result = anyio.run(run)
    assert result.is_error
    assert ("no client session connected to the bridge can answer sampling/createMessage: "
            "none declared the 'sampling' capability") in _text(result)
