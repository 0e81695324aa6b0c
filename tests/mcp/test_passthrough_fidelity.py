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

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from mcp.client.streamable_http import streamable_http_client

from tests.mcp.test_passthrough_bridge import (
    ACCEPT,
    HANDSHAKE_VERSIONS,
    connect,
    modern_headers,
    modern_rpc,
    raw_session,
    rpc,
    script,
)

SIMULATED = ("-level message", "level-message")  # what the logging toggle sends
RESOURCES_CHANGED = "notifications/resources/list_changed"


def gzip_arguments() -> dict:
    """``gzip-file-as-resource`` adding a resource of its own (a fresh name each time): the
    server then says its resource list changed."""
    return {
        "name": f"changed-{os.urandom(4).hex()}.txt.gz",
        "data": "data:text/plain,changed",
        "outputType": "resourceLink",
    }


#: The client warns that logging, roots and subscriptions leave the protocol in 2026-07-28;
#: these tests speak the revisions that have them.
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


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
        return types.CreateMessageResult(
            role="assistant", model="stand-in", content=types.TextContent(type="text", text="sampled answer")
        )

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
        elif isinstance(
            message,
            (
                types.ToolListChangedNotification,
                types.ResourceListChangedNotification,
                types.PromptListChangedNotification,
            ),
        ):
            self.changed.append(message.method)

    def callbacks(self) -> dict:
        return {
            "sampling_callback": self.sampling,
            "elicitation_callback": self.elicitation,
            "list_roots_callback": self.list_roots,
            "logging_callback": self.logging,
            "message_handler": self.messages,
        }


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

        result = await session.call_tool(
            "trigger-long-running-operation", {"duration": 0.4, "steps": 4}, progress_callback=on_progress
        )
        seen["progress"] = (progress, _text(result))
        result = await session.call_tool("trigger-sampling-request", {"prompt": "hello", "maxTokens": 5})
        seen["sampling"] = (client.sampled, "sampled answer" in _text(result))
        if not full:
            return seen
        prompts = await session.list_prompts()
        seen["prompts"] = sorted(p.name for p in prompts.prompts)
        prompt = await session.get_prompt("completable-prompt", {"department": "Sales", "name": "Eve"})
        seen["prompt"] = prompt.messages[0].content.text
        completion = await session.complete(
            types.PromptReference(type="ref/prompt", name="completable-prompt"), {"name": "department", "value": "S"}
        )
        seen["completion"] = completion.completion.values
        resources = await session.list_resources()
        seen["resources"] = sorted(r.uri for r in resources.resources)
        templates = await session.list_resource_templates()
        seen["templates"] = sorted(t.uri_template for t in templates.resource_templates)
        read = await session.read_resource(resources.resources[0].uri)
        seen["resource"] = read.contents[0].model_dump(exclude_none=True)
        seen["echo"] = _text(await session.call_tool("echo", {"message": "through"}))
        await session.call_tool("gzip-file-as-resource", gzip_arguments())
        await _until(lambda: RESOURCES_CHANGED in client.changed, "the resource list to change")
        seen["list_changed"] = True

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
            await session.call_tool(
                "trigger-long-running-operation", {"duration": 3, "steps": 6}, progress_callback=cancelled_on_progress
            )
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


#: What a client observes the same at 2026-07-28 as in the handshake era (logging and
#: subscriptions there ride requests and ``subscriptions/listen``, not a session).
ERA_INDEPENDENT = (
    "tools",
    "progress",
    "sampling",
    "prompts",
    "prompt",
    "completion",
    "resources",
    "templates",
    "resource",
    "echo",
    "elicitation",
    "roots",
    "list_changed",
    "updates",
)


async def observe_modern(bridge, updates: bool = True) -> dict:
    """What the official client pinned to 2026-07-28 sees of server-everything through the
    bridge: sampling, elicitation and roots reach it as ``input_required`` results, and
    ``list_changed`` and resource updates on a ``subscriptions/listen`` stream the bridge
    serves (``updates``: whether the server that gets the updates toggle is the one holding
    the subscription, as with a shared child)."""
    from mcp.client.client import Client as ModernClient
    from mcp.client.subscriptions import ResourcesListChanged, ResourceUpdated

    client = Client()
    seen: dict = {}
    async with (
        httpx2.AsyncClient(headers=bridge.headers, timeout=30) as http,
        ModernClient(
            streamable_http_client(bridge.url(), http_client=http),
            mode="2026-07-28",
            sampling_callback=client.sampling,
            elicitation_callback=client.elicitation,
            list_roots_callback=client.list_roots,
        ) as modern,
    ):
        seen["version"] = modern.session.protocol_version
        tools = await modern.list_tools()
        seen["tools"] = sorted((t.name, json.dumps(t.input_schema, sort_keys=True)) for t in tools.tools)
        progress: list[tuple[float, float | None]] = []

        async def on_progress(value, total, message):
            progress.append((value, total))

        result = await modern.call_tool(
            "trigger-long-running-operation", {"duration": 0.4, "steps": 4}, progress_callback=on_progress
        )
        seen["progress"] = (progress, _text(result))
        result = await modern.call_tool("trigger-sampling-request", {"prompt": "hello", "maxTokens": 5})
        seen["sampling"] = (client.sampled, "sampled answer" in _text(result))
        prompts = await modern.list_prompts()
        seen["prompts"] = sorted(p.name for p in prompts.prompts)
        prompt = await modern.get_prompt("completable-prompt", {"department": "Sales", "name": "Eve"})
        seen["prompt"] = prompt.messages[0].content.text
        completion = await modern.complete(
            types.PromptReference(type="ref/prompt", name="completable-prompt"), {"name": "department", "value": "S"}
        )
        seen["completion"] = completion.completion.values
        resources = await modern.list_resources()
        seen["resources"] = sorted(r.uri for r in resources.resources)
        templates = await modern.list_resource_templates()
        seen["templates"] = sorted(t.uri_template for t in templates.resource_templates)
        read = await modern.read_resource(resources.resources[0].uri)
        seen["resource"] = read.contents[0].model_dump(exclude_none=True)
        seen["echo"] = _text(await modern.call_tool("echo", {"message": "through"}))
        result = await modern.call_tool("trigger-elicitation-request", {})
        seen["elicitation"] = (client.elicited, "Ada" in _text(result))
        seen["roots"] = _text(await modern.call_tool("get-roots-list", {}))

        uri = resources.resources[0].uri
        events: list = []
        async with (
            modern.listen(
                tools_list_changed=True,
                prompts_list_changed=True,
                resources_list_changed=True,
                resource_subscriptions=[uri],
            ) as subscription,
            anyio.create_task_group() as tasks,
        ):
            seen["honored"] = subscription.honored.model_dump(by_alias=True, exclude_none=True)

            async def collect() -> None:
                async for event in subscription:
                    events.append(event)

            tasks.start_soon(collect)
            await modern.call_tool("gzip-file-as-resource", gzip_arguments())
            await _until(lambda: ResourcesListChanged() in events, "the resource list to change")
            seen["list_changed"] = True
            if updates:
                await modern.call_tool("toggle-subscriber-updates", {})
                await _until(lambda: ResourceUpdated(uri=uri) in events, "a resource update")
                await modern.call_tool("toggle-subscriber-updates", {})
            tasks.cancel_scope.cancel()
        seen["updates"] = sorted({event.uri for event in events if isinstance(event, ResourceUpdated)})
    return seen


@pytest.mark.parametrize("sessions", ["shared", "per_client"])
def test_a_2026_07_28_client_observes_the_same_as_directly_over_stdio(everything, passthrough, sessions):
    """The 2025-era child's sampling, elicitation and roots requests reach the stateless
    client as ``input_required`` results, and its answers go back to the child."""
    direct = anyio.run(observe, "stdio", None, everything)
    assert direct["progress"][0] == [(1, 4), (2, 4), (3, 4), (4, 4)]  # so a loss below is the bridge's
    # server-everything asks for the roots 350 ms after ``initialized``: that request often lands
    # in the long-running call, which then takes two rounds, and progress sent between them must
    # still reach the client (see ``…waits_for_input_reaches_its_retry``).
    # With per_client every request has a server of its own: the one the updates toggle
    # reaches holds no subscription, so only the list changes are compared there.
    shared = sessions == "shared"
    modern = anyio.run(observe_modern, passthrough(everything, sessions=sessions), shared)
    assert modern["version"] == "2026-07-28"
    compared = ERA_INDEPENDENT if shared else ERA_INDEPENDENT[:-1]
    assert {key: modern[key] for key in compared} == {key: direct[key] for key in compared}
    assert modern["honored"] == {
        "toolsListChanged": True,
        "promptsListChanged": True,
        "resourcesListChanged": True,
        "resourceSubscriptions": [direct["updates"][0]],
    }


def test_a_cancelled_request_reaches_the_server_and_its_result_is_never_delivered(everything, passthrough):
    bridge = passthrough(everything)
    call = rpc(
        "tools/call",
        {
            "name": "trigger-long-running-operation",
            "arguments": {"duration": 1, "steps": 2},
            "_meta": {"progressToken": "mine"},
        },
        request_id=41,
    )
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
    call = rpc(
        "tools/call",
        {
            "name": "trigger-long-running-operation",
            "arguments": {"duration": 0.8, "steps": 4},
            "_meta": {"progressToken": 5},
        },
        request_id=9,
    )
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
        async with (
            connect("http", bridge, **first.callbacks()) as one,
            connect("sse", bridge, **second.callbacks()) as two,
        ):
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
    assert (
        "no client session connected to the bridge can answer sampling/createMessage: "
        "none declared the 'sampling' capability"
    ) in _text(result)


#: A server that asks for the roots in the middle of a tool call and, in the same write, reports
#: progress and logs: both reach the bridge after the call's round was answered with
#: ``input_required`` and before the client's retry (as server-everything's roots request,
#: 350 ms after ``initialized``, lands in a long-running call).
ASKING_SERVER = """
    import json, sys
    def send(*messages):
        sys.stdout.write("".join(json.dumps(m) + "\\n" for m in messages)); sys.stdout.flush()
    def progress(token, value):
        return {"jsonrpc": "2.0", "method": "notifications/progress",
                "params": {"progressToken": token, "progress": value, "total": 2}}
    call = token = None
    for line in sys.stdin:
        message = json.loads(line)
        method, ident = message.get("method"), message.get("id")
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": ident, "result": {"protocolVersion": "2025-11-25",
                  "capabilities": {"tools": {}, "logging": {}}, "serverInfo": {"name": "asking", "version": "1"}}})
        elif method == "tools/call":
            call, token = ident, message["params"]["_meta"]["progressToken"]
            flood = [progress(token, 0.5)] * message["params"]["arguments"].get("flood", 0)
            send({"jsonrpc": "2.0", "id": "roots-1", "method": "roots/list"}, progress(token, 1),
                 {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "asked"}},
                 *flood)
        elif ident == "roots-1" and method is None:
            roots = [root["uri"] for root in message["result"]["roots"]]
            send(progress(token, 2), {"jsonrpc": "2.0", "id": call, "result": {
                "content": [{"type": "text", "text": " ".join(roots)}]}})
        elif method is not None and ident is not None:
            send({"jsonrpc": "2.0", "id": ident, "result": {}})
"""


def _events(response: httpx.Response) -> list[dict]:
    return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]


@pytest.mark.parametrize("sessions", ["shared", "per_client"])
def test_what_the_server_sends_while_a_2026_07_28_request_waits_for_input_reaches_its_retry(
    passthrough, tmp_path, sessions
):
    """Between the ``input_required`` answer and the client's retry the request has no response
    stream; progress and log messages the server sends then are held and come first on the
    retry's stream, the progress under the retry's token, in the order the server sent them."""
    bridge = passthrough(script(tmp_path, "asking", ASKING_SERVER), sessions=sessions)
    meta = {"io.modelcontextprotocol/clientCapabilities": {"roots": {}}, "io.modelcontextprotocol/logLevel": "info"}
    headers = modern_headers(bridge, "tools/call", "anything")
    with httpx.Client(timeout=20) as client:
        first = client.post(
            bridge.url(),
            headers=headers,
            json=modern_rpc("tools/call", {"name": "anything", "arguments": {}}, 1, {**meta, "progressToken": "first"}),
        )
        asked = first.json()["result"]
        assert asked["resultType"] == "input_required"
        assert asked["inputRequests"] == {"input-1": {"method": "roots/list", "params": {}}}
        retry = modern_rpc(
            "tools/call",
            {
                "name": "anything",
                "arguments": {},
                "requestState": asked["requestState"],
                "inputResponses": {"input-1": {"roots": [{"uri": "file:///srv"}]}},
            },
            2,
            {**meta, "progressToken": "second"},
        )
        with client.stream("POST", bridge.url(), json=retry, headers=headers) as stream:
            assert stream.headers["content-type"] == "text/event-stream"
            events = _events(stream)
    assert events == [
        {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": "second", "progress": 1, "total": 2},
        },
        {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "asked"}},
        {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": "second", "progress": 2, "total": 2},
        },
        {
            "jsonrpc": "2.0",
            "id": 2,
            "result": {"resultType": "complete", "content": [{"type": "text", "text": "file:///srv"}]},
        },
    ]


def test_a_2026_07_28_request_that_would_hold_too_much_while_waiting_is_dropped_and_says_why(passthrough, tmp_path):
    """What is held for the retry is bounded by ``max_unsent_bytes``: past it the request ends
    (its retry is refused, the server's call is cancelled) and the log says why."""
    bridge = passthrough(script(tmp_path, "asking", ASKING_SERVER), max_unsent_bytes=4096)
    meta = {"io.modelcontextprotocol/clientCapabilities": {"roots": {}}, "progressToken": "first"}
    headers = modern_headers(bridge, "tools/call", "anything")
    with httpx.Client(timeout=20) as client:
        first = client.post(
            bridge.url(),
            headers=headers,
            json=modern_rpc("tools/call", {"name": "anything", "arguments": {"flood": 100}}, 1, meta),
        )
        asked = first.json()["result"]
        assert asked["resultType"] == "input_required"
        retry = modern_rpc(
            "tools/call",
            {
                "name": "anything",
                "arguments": {"flood": 100},
                "requestState": asked["requestState"],
                "inputResponses": {"input-1": {"roots": []}},
            },
            2,
            meta,
        )
        refused = client.post(bridge.url(), json=retry, headers=headers)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == -32602
    assert "while it waited for its client's input (the limit is 4096)" in bridge.log()
