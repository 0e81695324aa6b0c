"""The bridge: one process per running MCP server, serving it over HTTP with a bearer token.

``python -m open1panel_ai.mcp.bridge CONFIG`` reads a JSON file written by the supervisor
(``{"id", "name", "command", "env", "cwd", "url", "headers", "gateway", "bind_host", "port",
"token", "transports", "allowed_hosts", "log_file", "log_max_bytes", "log_backups"}``). It
starts the upstream (a stdio child in this process's own process group, a remote Streamable
HTTP server, or a ``gateway`` such as supergateway that it starts on an internal port),
connects to it with the official ``mcp`` client, and serves every client that connects
through one low-level ``mcp`` server that forwards each request upstream:

- ``/mcp``: Streamable HTTP; ``/sse`` with ``/messages/``: the legacy HTTP+SSE transport;
- ``/healthz``: no token needed, answers ``{"ok": true}`` and nothing else.

Everything else needs ``Authorization: Bearer <token>``. On SIGHUP the bridge reads the config
again and takes its new ``allowed_hosts`` (the Host names of bound domains) without a restart.
The child's stderr and the bridge's own log go to one rotating log file, bounded in bytes,
whose lines are cut at 8 KiB whatever the child writes (see :mod:`open1panel_ai.mcp.logfile`).
The bridge exits when its upstream goes away, so the supervisor sees the crash and restarts
it, and when the panel that started it is gone, so a killed panel leaves no bridge behind.
"""

from __future__ import annotations

import contextlib
import hmac
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
import uvicorn
from mcp import ClientSession
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from open1panel_ai.mcp import logfile
from open1panel_ai.mcp.urls import MaskedURL, host_patterns
from open1panel_ai.providers import describe_error

if TYPE_CHECKING:
    from anyio.abc import ByteReceiveStream, Process
    from mcp.client._transport import ReadStream, WriteStream
    from pydantic import BaseModel

    #: What an upstream yields: the streams the client session reads and writes, and the
    #: process it started (None for a remote server).
    Upstream = tuple[ReadStream[SessionMessage | Exception], WriteStream[SessionMessage], Process | None]

log = logging.getLogger("open1panel_ai.mcp.bridge")

#: Exit status when the upstream ended (crashed, exited, or the remote went away).
EXIT_UPSTREAM_GONE = 3

#: Forwarded methods: the ``Server`` handler, the request and result types, and the upstream
#: capability that must be present for the bridge to offer it.
_FORWARDED = (
    ("on_list_tools", types.ListToolsRequest, types.ListToolsResult, "tools"),
    ("on_call_tool", types.CallToolRequest, types.CallToolResult, "tools"),
    ("on_list_resources", types.ListResourcesRequest, types.ListResourcesResult, "resources"),
    ("on_list_resource_templates", types.ListResourceTemplatesRequest, types.ListResourceTemplatesResult, "resources"),
    ("on_read_resource", types.ReadResourceRequest, types.ReadResourceResult, "resources"),
    ("on_list_prompts", types.ListPromptsRequest, types.ListPromptsResult, "prompts"),
    ("on_get_prompt", types.GetPromptRequest, types.GetPromptResult, "prompts"),
    ("on_completion", types.CompleteRequest, types.CompleteResult, "completions"),
)


class UpstreamFailed(Exception):
    """The MCP server could not be started or reached; the text says why."""


def _origins(hosts: list[str]) -> list[str]:
    return [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]


class BearerAuth:
    """ASGI middleware: every path but ``/healthz`` needs the bridge's bearer token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                response = JSONResponse(
                    {"error": {"code": "unauthorized", "message": "Send 'Authorization: Bearer <server token>'."}},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="mcp"'},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Routes:
    """The bridge's ASGI app: ``/healthz``, ``/mcp``, ``/sse`` and ``/messages/``."""

    def __init__(self, server: Server, security: TransportSecuritySettings, transports: list[str]) -> None:
        self.server = server
        self.transports = transports
        self.manager = StreamableHTTPSessionManager(app=server, security_settings=security, json_response=True)
        self.sse = SseServerTransport("/messages/", security_settings=security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/healthz":
            await JSONResponse({"ok": True})(scope, receive, send)
        elif "streamable-http" in self.transports and path in ("/mcp", "/mcp/"):
            await self.manager.handle_request(scope, receive, send)
        elif "sse" in self.transports and path == "/sse":
            async with self.sse.connect_sse(scope, receive, send) as (read, write):
                await self.server.run(read, write, self.server.create_initialization_options())
        elif "sse" in self.transports and path.startswith("/messages"):
            await self.sse.handle_post_message(scope, receive, send)
        else:
            await Response("Not found\n", status_code=404)(scope, receive, send)


def forwarding_server(name: str, upstream: ClientSession, capabilities: types.ServerCapabilities) -> Server:
    """A low-level server whose handlers pass each request to ``upstream`` unchanged."""

    def forward(
        request_type: Callable[..., types.Request[Any, Any]], result_type: type[BaseModel]
    ) -> Callable[[Any, Any], Awaitable[BaseModel]]:
        async def handler(ctx: Any, params: Any) -> BaseModel:
            return await upstream.send_request(request_type(params=params), result_type)

        return handler

    # Keyword arguments of ``Server``, each handler typed for its own request by the SDK.
    handlers: dict[str, Any] = {}
    for handler_name, request_type, result_type, capability in _FORWARDED:
        if getattr(capabilities, capability, None) is not None:
            handlers[handler_name] = forward(request_type, result_type)
    return Server(name, **handlers)


@contextlib.asynccontextmanager
async def stdio_upstream(config: Mapping[str, Any]) -> AsyncIterator[Upstream]:
    """Start the stdio child in this process group and yield its message streams.

    A sandboxed child (``env_exact``) gets exactly the env of its config; any other gets PATH
    and HOME from the bridge's environment plus the server's own env. Its stdout carries
    JSON-RPC lines, its stderr goes line by line into the log.
    """
    if config.get("env_exact"):
        env = dict(config.get("env") or {})  # a sandboxed child's whole environment
    else:
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
        env.update(config.get("env") or {})
    argv = config["command"]
    try:
        process = await anyio.open_process(argv, env=env, cwd=config.get("cwd") or None)
    except FileNotFoundError:
        raise UpstreamFailed(
            f"cannot run {argv[0]!r}: no such program on PATH ({env.get('PATH', '')}) or working folder"
        ) from None
    except PermissionError:
        raise UpstreamFailed(f"cannot run {argv[0]!r}: permission denied") from None
    log.info("started %s (pid %d)", argv[0], process.pid)
    # Opened with pipes (anyio's default) on all three.
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    stdin, stdout = process.stdin, process.stdout
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    child_log = logging.getLogger("child")

    async def read_stdout() -> None:
        async with read_writer:
            # Each byte is looked at once however long a message is: only the part not yet
            # scanned is searched for a newline, and only whole lines are taken off the front.
            buffer = bytearray()
            async for chunk in stdout:
                scanned = len(buffer)
                buffer += chunk
                lines: list[bytes] = []
                start = 0
                while (end := buffer.find(b"\n", scanned)) >= 0:
                    lines.append(bytes(buffer[start:end]))
                    start = scanned = end + 1
                del buffer[:start]
                for line in lines:
                    if not line.strip():
                        continue
                    try:
                        message = types.jsonrpc_message_adapter.validate_json(line)
                    except ValidationError as exc:  # a stray print on stdout is logged, not fatal
                        child_log.warning("not JSON-RPC on stdout: %s (%s)", line[:200], exc)
                        continue
                    await read_writer.send(SessionMessage(message))

    async def write_stdin() -> None:
        async with write_reader:
            async for message in write_reader:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                await stdin.send(data.encode() + b"\n")

    async with anyio.create_task_group() as group:
        group.start_soon(read_stdout)
        group.start_soon(_log_lines, process.stderr, child_log)
        group.start_soon(write_stdin)
        try:
            yield read_stream, write_stream, process
        finally:
            group.cancel_scope.cancel()
            with contextlib.suppress(ProcessLookupError):
                process.terminate()


@contextlib.asynccontextmanager
async def gateway_upstream(config: Mapping[str, Any]) -> AsyncIterator[Upstream]:
    """Start another gateway (supergateway) on its internal loopback port, in this process
    group, and connect to it as a remote Streamable HTTP server.

    ``config["gateway"]`` is ``{"argv", "port"}``. The gateway runs the stdio server itself; it
    gets PATH and HOME plus the server's env, and the server's working folder. Its output goes
    into the log; when it exits, the bridge ends like it does for a stdio child.
    """
    gateway = config["gateway"]
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    env.update(config.get("env") or {})
    try:
        process = await anyio.open_process(
            gateway["argv"], env=env, cwd=config.get("cwd") or None, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise UpstreamFailed(f"cannot run {gateway['argv'][0]!r}: {exc.strerror}") from None
    log.info("started the gateway %s (pid %d) on internal port %s", gateway["argv"][0], process.pid, gateway["port"])
    assert process.stdout is not None  # a pipe, as opened above (stderr goes with it)
    async with anyio.create_task_group() as group:
        group.start_soon(_log_lines, process.stdout, logging.getLogger("gateway"))
        try:
            await _wait_for_port("127.0.0.1", int(gateway["port"]), process)
            remote = {"url": f"http://127.0.0.1:{gateway['port']}/mcp", "headers": {}}
            async with remote_upstream(remote) as (read, write, _):
                yield read, write, process
        finally:
            group.cancel_scope.cancel()
            with contextlib.suppress(ProcessLookupError):
                process.terminate()


async def _log_lines(stream: ByteReceiveStream, logger: logging.Logger) -> None:
    """Log each line a child writes to ``stream``, the last one even without its newline.

    Lines are split in linear time and each is cut at :data:`logfile.LINE_LIMIT` bytes and
    marked (see :class:`logfile.LineSplitter`): one endless line costs no more than its size,
    and puts 8 KiB into the log."""
    splitter = logfile.LineSplitter()
    async for chunk in stream:
        for line in splitter.feed(chunk):
            logger.info("%s", line.rstrip())
    for line in splitter.end():
        logger.info("%s", line.rstrip())


async def _wait_for_port(host: str, port: int, process: Process) -> None:
    """Return once ``host:port`` accepts connections; fail if ``process`` exits first."""
    while process.returncode is None:
        try:
            stream = await anyio.connect_tcp(host, port)
        except OSError:
            await anyio.sleep(0.2)
            continue
        await stream.aclose()
        return
    raise UpstreamFailed(f"the gateway exited with status {process.returncode} before it listened")


@contextlib.asynccontextmanager
async def remote_upstream(config: Mapping[str, Any]) -> AsyncIterator[Upstream]:
    """Connect to a remote Streamable HTTP server with the configured headers."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async def log_refusal(response: httpx2.Response) -> None:
        # The SDK's error says only that the server refused; the status says why.
        if response.status_code >= 400:
            log.error(
                "the remote server answered %d to %s %s",
                response.status_code,
                response.request.method,
                response.request.url,
            )

    http = httpx2.AsyncClient(
        headers=config.get("headers") or {},
        timeout=httpx2.Timeout(30, read=300),
        event_hooks={"response": [log_refusal]},
    )
    async with http, streamable_http_client(config["url"], http_client=http) as streams:
        yield (*streams, None)


def setup_logging(config: Mapping[str, Any]) -> None:
    handler = logfile.Handler(
        config["log_file"],
        int(config.get("log_max_bytes", logfile.MAX_BYTES)),
        int(config.get("log_backups", logfile.BACKUPS)),
    )
    if config.get("url"):
        handler.addFilter(MaskedURL(config["url"]))
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # The SDK and uvicorn log every request at INFO; the hot path stays quiet.
    for noisy in ("mcp", "uvicorn", "uvicorn.access", "httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def serve(config_path: str, config: Mapping[str, Any]) -> int:
    # The panel names itself: one killed before this line ran is no longer the parent here.
    panel_pid = int(config.get("panel_pid") or os.getppid())
    if config.get("gateway"):
        upstream_cm = gateway_upstream(config)
    elif config.get("url"):
        upstream_cm = remote_upstream(config)
    else:
        upstream_cm = stdio_upstream(config)
    async with upstream_cm as (read, write, process), ClientSession(read, write) as upstream:
        initialized = await upstream.initialize()
        log.info("upstream %s %s ready", initialized.server_info.name, initialized.server_info.version)
        security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=host_patterns(config))
        security.allowed_origins = _origins(security.allowed_hosts)
        server = forwarding_server(config["name"], upstream, initialized.capabilities)
        routes = Routes(server, security, config.get("transports") or ["streamable-http", "sse"])
        uv = uvicorn.Server(
            uvicorn.Config(
                BearerAuth(routes, config["token"]),
                host=config["bind_host"],
                port=int(config["port"]),
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=2,
            )
        )

        def reload_hosts() -> None:
            with open(config_path, encoding="utf-8") as file:
                fresh = json.load(file)
            # The SDK reads these lists on every request, so changing them in place is enough.
            security.allowed_hosts[:] = host_patterns(fresh)
            security.allowed_origins[:] = _origins(security.allowed_hosts)
            log.info("allowed hosts now: %s", ", ".join(fresh.get("allowed_hosts", [])) or "loopback only")

        async with routes.manager.run(), anyio.create_task_group() as group:
            exit_code = 0

            async def watch_upstream() -> None:
                nonlocal exit_code
                if process is not None:
                    status = await process.wait()
                    log.error("the server process exited with status %s", status)
                else:
                    while True:
                        await anyio.sleep(10)
                        await upstream.send_ping()
                exit_code = EXIT_UPSTREAM_GONE
                uv.should_exit = True

            async def watch_hangup() -> None:
                with anyio.open_signal_receiver(signal.SIGHUP) as signals:
                    async for _ in signals:
                        try:
                            reload_hosts()
                        except (OSError, ValueError) as exc:
                            log.error("could not reload the config: %s", exc)

            async def watch_panel() -> None:
                # A panel killed outright cannot stop its bridges: they notice and go too.
                while os.getppid() == panel_pid:
                    await anyio.sleep(1)
                log.error("the panel that started this bridge is gone; stopping")
                uv.should_exit = True

            group.start_soon(watch_upstream)
            group.start_soon(watch_hangup)
            group.start_soon(watch_panel)
            log.info("serving on %s:%s", config["bind_host"], config["port"])
            await uv.serve()
            group.cancel_scope.cancel()
        if not uv.started and exit_code == 0:
            return 2
        return exit_code


def main(argv: list[str] | None = None) -> int:
    # A SIGHUP before the reload handler is installed must not end the bridge.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m open1panel_ai.mcp.bridge CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as file:
        config = json.load(file)
    setup_logging(config)
    try:
        # uvloop (and httptools, which uvicorn picks up by itself) cut the bridge's own cost.
        fast_loop = importlib.util.find_spec("uvloop") is not None
        return anyio.run(serve, argv[0], config, backend_options={"use_uvloop": fast_loop})
    except Exception as exc:  # noqa: BLE001 - whatever stopped it goes to the server's log
        log.error("the bridge stopped: %s", describe_error(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
