"""An Ollama stand-in: a real HTTP server on loopback that follows reference/ollama-api.md.

Its ``state_dir`` is laid out like Ollama's models folder (``manifests/<host>/<namespace>/
<model>/<tag>`` and ``blobs/sha256-<hex>``), with blobs written as sparse files of their real
size, so the panel's disk views read it exactly as they would read ``OLLAMA_MODELS``. Partial
downloads are as Ollama leaves them: ``blobs/sha256-<hex>-partial``, sized in full at once and
filled as bytes arrive, plus one ``-partial-<n>`` JSON file per part that records the bytes
done of its part only when the part ends or the download is cut. So a pull continues where it
stopped across the stand-in's own restarts, and a download under way shows on disk before its
part files say so.

Quirks kept on purpose: zero fields omitted from pull lines, the last line of a blob never
reaching its total, an unknown model answered 200 plus an error line (500 without streaming),
empty-bodied delete/copy, a copy that replaces its destination without a word, the three 404
texts with their quote styles, single-object load/unload, plain-text 404/405 for unknown routes and methods.

Chat and embed: ``/api/chat`` streams one line per word of :attr:`OllamaStandIn.reply`, paced
by ``token_delay``, then a last line with Ollama's statistics fields (durations from
``load_seconds``, ``prompt_rate`` and ``eval_rate``, so figures are exact); it honours
``options.stop`` and ``num_predict``, loads the model for ``keep_alive``, and records in
``chat_log`` whether the client closed the stream early. Models of family ``bert`` or
``nomic-bert`` are embedding models: ``/api/embed`` answers vectors for them and chat is a
400, as Ollama answers. Create keeps ``system``, ``template``, ``parameters``, ``license`` and
``adapters`` (a model made ``from`` another inherits its recipe) and show answers them.

    with OllamaStandIn(tmp_path / "ollama") as ollama:
        ollama.publish("llama3.2", [2_000_000])   # in its pretend registry
        ollama.seed("qwen2:0.5b", [352_000_000])  # already local
        ollama.pull_speed = 5_000_000             # bytes per second per blob
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self

DEFAULT_HOST, DEFAULT_NAMESPACE, DEFAULT_TAG = "registry.ollama.ai", "library", "latest"
TICK = 0.06  # Ollama reports download progress about every 60 ms
PARTS = 16  # Ollama downloads a blob in at most 16 parts

_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"
_NAME = re.compile(
    rf"^(?:(?P<host>[A-Za-z0-9_][A-Za-z0-9_.:-]{{0,349}})/)??(?:(?P<namespace>[A-Za-z0-9_][A-Za-z0-9_-]{{0,79}})/)?"
    rf"(?P<model>{_PART})(?::(?P<tag>{_PART}))?$"
)
_DURATION = re.compile(r"^(-?)((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def full_name(text: str) -> tuple[str, str, str, str] | None:
    """``(host, namespace, model, tag)`` of a model name, or None when it is not valid."""
    match = _NAME.match(text or "")
    if not match:
        return None
    parts = match.groupdict()
    host, namespace = parts["host"], parts["namespace"]
    return (
        (host or DEFAULT_HOST).lower(),
        (namespace or DEFAULT_NAMESPACE).lower(),
        parts["model"].lower(),
        (parts["tag"] or DEFAULT_TAG).lower(),
    )


def short_name(parts: tuple[str, str, str, str]) -> str:
    host, namespace, model, tag = parts
    prefix = "" if host == DEFAULT_HOST else f"{host}/"
    if prefix or namespace != DEFAULT_NAMESPACE:
        prefix += f"{namespace}/"
    return f"{prefix}{model}:{tag}"


def _timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 with nanoseconds in the server's zone, as Go writes it."""
    moment = (moment or datetime.now()).astimezone()
    text = moment.isoformat(timespec="microseconds")
    return text[:26] + "123" + text[26:]  # nine fractional digits


def _digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def write_whole(path: Path, data: bytes) -> None:
    """Write a manifest the way a reader never sees half of it: elsewhere, then renamed over it
    (a listing running at the same time reads the old manifest or the new one). The temporary
    file is in the manifests folder itself (``<manifests>/host/namespace/model/tag``), where
    the listing, which looks four levels down, does not see it."""
    temporary = path.parents[3] / f".{threading.get_ident()}.manifest.tmp"
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


class _Server(ThreadingHTTPServer):
    """Queues connections as Ollama's Go listener does, up to the system's backlog rather than
    Python's default of 5, so a burst of requests waits instead of timing out on connect."""

    request_queue_size = socket.SOMAXCONN
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that closes its keep-alive connection while it is read from is no error of
        the server's (Ollama says nothing of it); anything else is printed as before."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class OllamaStandIn:
    """A loopback Ollama server whose models, blobs and partial pulls live in ``state_dir``.

    :param version: what ``/api/version`` answers; below 0.5.5 ``create`` takes ``modelfile``.
    :param pull_speed: bytes per second a blob downloads at (change it any time).
    :param vram: bytes of pretend GPU memory; a load that does not fit spills to the CPU.
    """

    def __init__(
        self, state_dir: Path | str, *, version: str = "0.12.6", pull_speed: float = 50_000_000, vram: int = 8 << 30
    ) -> None:
        self.state_dir = Path(state_dir)
        self.blobs = self.state_dir / "blobs"
        self.manifests = self.state_dir / "manifests"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests.mkdir(parents=True, exist_ok=True)
        self.version = version
        self.pull_speed = pull_speed
        self.vram = vram
        #: Seconds a pull waits after ``pulling manifest`` (Ollama asking the registry).
        self.manifest_delay = 0.0
        #: Seconds a streamed create waits after its first line (a large model to convert).
        self.create_delay = 0.0
        #: The pretend registry: full name → layer sizes, or an error text to fail the pull with.
        self.registry: dict[tuple, list[int] | str] = {}
        #: Every pull request, with the ``completed`` of each blob's first line (resume proof).
        self.pull_log: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        #: The body of every create request.
        self.create_log: list[dict[str, Any]] = []
        #: Seconds between two streamed chat tokens (change it any time; 0: as fast as it can).
        self.token_delay = 0.0
        #: Seconds a chat or embed request really waits before answering (a model loading).
        self.load_delay = 0.0
        #: What the statistics fields report: seconds a load takes, prompt tokens per second
        #: and generated tokens per second. They are reported, not waited for, so tests can
        #: check the figures computed from them exactly.
        self.load_seconds = 1.5
        self.prompt_rate = 400.0
        self.eval_rate = 40.0
        #: The words a chat answers with, one token each (a leading space as a tokenizer gives).
        self.reply = "The quick brown fox jumps over the lazy dog beside the quiet river"
        #: Every chat request: its body, the tokens sent, whether the stream ran to its end, and
        #: ``cut`` once the client closed the connection first (the generation then stops).
        self.chat_log: list[dict[str, Any]] = []
        #: Every embed request's body.
        self.embed_log: list[dict[str, Any]] = []
        #: The length of the vectors an embedding model (family bert or nomic-bert) returns.
        self.embedding_length = 384
        #: Entries ``/api/tags`` and ``/api/ps`` list as they are, after the real ones: what a
        #: server that only pretends to be Ollama could answer (see :meth:`list_as_is`).
        self.listed_as_is: dict[str, list[dict[str, Any]]] = {"tags": [], "ps": []}
        self._loaded: dict[str, dict[str, Any]] = {}  # weights digest → runner
        self._blob_locks: dict[str, threading.Lock] = {}
        #: The least bytes per part of a blob's download (a blob has at most 16 parts). Ollama's
        #: parts are 100 MB to 1 GB; these are small so that a test blob of a few MB has
        #: several, and a part ends now and then. Raise it to keep a blob in one part.
        self.part_size = 256_000
        self._downloads = threading.Condition()
        self._active_downloads = 0
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.url = ""

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, port: int = 0) -> OllamaStandIn:
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = _Server(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop as a crash would: open streams are cut, partial downloads stay on disk. It
        returns once every cut download has recorded its progress in its part files, as
        Ollama does when its client goes away."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for connection in list(self._connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._connections.clear()
        with self._downloads:
            self._downloads.wait_for(lambda: self._active_downloads == 0, timeout=5)
        self._server = None

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- seeding -------------------------------------------------------------------------

    def publish(self, name: str, layer_sizes: list[int] | str) -> None:
        """Offer ``name`` in the pretend registry with these layer sizes (the first is the
        weights), or make pulling it end with the error text ``layer_sizes``."""
        parts = full_name(name)
        assert parts, name
        self.registry[parts] = layer_sizes

    def seed(
        self,
        name: str,
        layer_sizes: list[int],
        *,
        family: str = "llama",
        parameter_size: str = "3.2B",
        quantization_level: str = "Q4_K_M",
        modified_at: datetime | None = None,
        layers: list[str] | None = None,
    ) -> str:
        """Make ``name`` a local model at once; returns its manifest digest (bare hex).
        ``layers`` gives the blob digests to use (to share blobs between models)."""
        parts = full_name(name)
        assert parts, name
        digests = layers or [_digest(f"{short_name(parts)}#{i}#{size}") for i, size in enumerate(layer_sizes)]
        for digest, size in zip(digests, layer_sizes, strict=True):
            self._write_blob(digest, size)
        config = {
            "model_format": "gguf",
            "model_family": family,
            "model_families": [family],
            "model_type": parameter_size,
            "file_type": quantization_level,
        }
        return self._write_manifest(parts, list(zip(digests, layer_sizes, strict=True)), config, modified_at)

    def list_as_is(self, name: str, *, running: bool = False, size: int = 4096) -> dict[str, Any]:
        """List a model called ``name`` in ``/api/tags`` (and ``/api/ps`` when ``running``)
        exactly as given, unchecked: Ollama itself never lists a name outside its grammar, but
        a hostile server at an endpoint may (``../../mcp/servers/<id>``). Nothing of it is on
        disk, so Ollama's other routes answer for it as for any unknown model."""
        entry = {
            "name": name,
            "model": name,
            "modified_at": _timestamp(),
            "size": size,
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "llama",
                "families": None,
                "parameter_size": "1B",
                "quantization_level": "Q4_K_M",
            },
        }
        self.listed_as_is["tags"].append(entry)
        if running:
            expires = _timestamp(datetime.now() + timedelta(minutes=5))
            self.listed_as_is["ps"].append({**entry, "size_vram": 0, "expires_at": expires, "context_length": 4096})
        return entry

    # -- disk ----------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.replace(":", "-")

    def _write_blob(self, digest: str, size: int) -> None:
        path = self.blob_path(digest)
        if not path.exists():
            with open(path, "wb") as f:
                f.truncate(size)

    def _manifest_path(self, parts: tuple) -> Path:
        return self.manifests.joinpath(*parts)

    def _write_manifest(self, parts, layers, config, modified_at=None, config_blob=None) -> str:
        if config_blob is None:
            config_bytes = json.dumps(config, sort_keys=True).encode()
            config_blob = ("sha256:" + hashlib.sha256(config_bytes).hexdigest(), len(config_bytes))
        config_digest, config_size = config_blob
        self._write_blob(config_digest, config_size)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": config_digest,
                "size": config_size,
                **config,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.ollama.image.model"
                    if i == 0
                    else "application/vnd.ollama.image.params",
                    "digest": d,
                    "size": s,
                }
                for i, (d, s) in enumerate(layers)
            ],
        }
        data = json.dumps(manifest).encode()
        path = self._manifest_path(parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, data)
        if modified_at is not None:
            os.utime(path, (modified_at.timestamp(), modified_at.timestamp()))
        return hashlib.sha256(data).hexdigest()

    def _local(self) -> dict[tuple, dict[str, Any]]:
        models = {}
        for path in self.manifests.glob("*/*/*/*"):
            parts = tuple(path.relative_to(self.manifests).parts)
            try:
                # Read and stat through one open file: a manifest deleted once it is open still
                # reads whole, and one deleted since the glob is simply not listed (as Ollama).
                with path.open("rb") as handle:
                    data, mtime = handle.read(), os.fstat(handle.fileno()).st_mtime
            except FileNotFoundError:
                continue
            manifest = json.loads(data)
            models[parts] = {
                "manifest": manifest,
                "digest": hashlib.sha256(data).hexdigest(),
                "mtime": datetime.fromtimestamp(mtime),
            }
        return models

    def _details(self, manifest) -> dict[str, Any]:
        config = manifest["config"]
        return {
            "parent_model": "",
            "format": config.get("model_format", "gguf"),
            "family": config.get("model_family", ""),
            "families": config.get("model_families"),
            "parameter_size": config.get("model_type", ""),
            "quantization_level": config.get("file_type", ""),
        }

    def _size(self, manifest) -> int:
        return sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]

    # -- the API --------------------------------------------------------------------------

    def tags(self) -> dict:
        local = sorted(self._local().items(), key=lambda item: item[1]["mtime"], reverse=True)
        return {
            "models": [
                {
                    "name": short_name(parts),
                    "model": short_name(parts),
                    "modified_at": _timestamp(info["mtime"]),
                    "size": self._size(info["manifest"]),
                    "digest": info["digest"],
                    "details": self._details(info["manifest"]),
                }
                for parts, info in local
            ]
            + list(self.listed_as_is["tags"])
        }

    def ps(self) -> dict:
        with self._lock:
            now = datetime.now().astimezone()
            for weights in [w for w, r in self._loaded.items() if r["expires"] <= now]:
                del self._loaded[weights]
            return {
                "models": [
                    {
                        "name": r["name"],
                        "model": r["name"],
                        "size": r["size"],
                        "size_vram": r["size_vram"],
                        "digest": r["digest"],
                        "details": r["details"],
                        "expires_at": _timestamp(r["expires"]),
                        "context_length": 4096,
                    }
                    for r in self._loaded.values()
                ]
                + list(self.listed_as_is["ps"])
            }


class _Handler(BaseHTTPRequestHandler):
    owner: OllamaStandIn
    protocol_version = "HTTP/1.1"
    server_version = "ollama-standin"

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Small replies go out at once, as Go's net/http sends them; without this a client
        # that keeps the connection alive (a proxy) waits ~40 ms on each (Nagle + delayed ACK).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.owner._lock:
            self.owner._connections.add(self.connection)

    def finish(self) -> None:
        with self.owner._lock:
            self.owner._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    # -- plumbing -----------------------------------------------------------------------

    ROUTES: ClassVar[dict[str, tuple[str, ...]]] = {
        "/": ("GET", "HEAD"),
        "/api/version": ("GET",),
        "/api/tags": ("GET",),
        "/api/ps": ("GET",),
        "/api/pull": ("POST",),
        "/api/delete": ("DELETE",),
        "/api/show": ("POST",),
        "/api/copy": ("POST",),
        "/api/create": ("POST",),
        "/api/generate": ("POST",),
        "/api/chat": ("POST",),
        "/api/embed": ("POST",),
    }

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        self.owner.requests.append((self.command, path))
        if path.startswith("/api/blobs/"):
            allowed = ("HEAD", "POST")
            handler = "blob"
        elif path in self.ROUTES:
            allowed = self.ROUTES[path]
            handler = path.strip("/").replace("api/", "") or "root"
        else:
            return self._text(404, "404 page not found")
        if self.command not in allowed:
            return self._text(405, "405 method not allowed")
        getattr(self, f"_{handler}")(path)

    do_GET = do_HEAD = do_POST = do_DELETE = do_PUT = _dispatch

    def _text(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _empty(self, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _error(self, status: int, text: str) -> None:
        self._json(status, {"error": text})

    def _body(self) -> dict | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            self._error(400, "missing request body")
            return None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            self._error(400, str(exc))
            return None
        if not isinstance(data, dict):
            self._error(400, "invalid request body")
            return None
        return data

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _line(self, payload: dict) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _model_of(self, body: dict) -> str:
        return body.get("model") or body.get("name") or ""

    # -- routes ---------------------------------------------------------------------------

    def _root(self, path: str) -> None:
        self._text(200, "Ollama is running")

    def _version(self, path: str) -> None:
        self._json(200, {"version": self.owner.version})

    def _tags(self, path: str) -> None:
        self._json(200, self.owner.tags())

    def _ps(self, path: str) -> None:
        self._json(200, self.owner.ps())

    def _pull(self, path: str) -> None:
        body = self._body()
        if body is None:
            return
        parts = full_name(self._model_of(body))
        if parts is None:
            return self._error(400, "invalid model name")
        stream = body.get("stream", True)
        owner = self.owner
        entry = owner.registry.get(parts)
        record: dict[str, Any] = {"name": short_name(parts), "first_completed": {}}
        owner.pull_log.append(record)
        if entry is None or isinstance(entry, str):
            text = entry or "pull model manifest: file does not exist"
            if not stream:
                return self._error(500, text)
            self._start_stream()
            self._line({"status": "pulling manifest"})
            self._line({"error": text})
            return self._end_stream()
        if not stream:
            for digest, size in self._layers(parts, entry):
                self._download(digest, size, record, emit=False)
            self._finish_pull(parts, entry)
            return self._json(200, {"status": "success"})
        self._start_stream()
        try:
            self._line({"status": "pulling manifest"})
            time.sleep(owner.manifest_delay)
            for digest, size in self._layers(parts, entry):
                self._download(digest, size, record, emit=True)
            self._line({"status": "verifying sha256 digest"})
            self._line({"status": "writing manifest"})
            self._finish_pull(parts, entry)
            self._line({"status": "success"})
            self._end_stream()
        except OSError:
            self.close_connection = True  # the client went away: its progress stays on disk

    def _layers(self, parts, sizes):
        config_size = 512
        layers = [(_digest(f"registry:{short_name(parts)}#{i}#{s}"), s) for i, s in enumerate(sizes)]
        return layers + [(_digest(f"registry:{short_name(parts)}#config"), config_size)]

    def _download(self, digest: str, size: int, record: dict, emit: bool) -> None:
        owner = self.owner
        status = f"pulling {digest[7:19]}"
        final = owner.blob_path(digest)
        if final.exists():
            record["first_completed"][digest] = size
            if emit:
                self._line({"status": status, "digest": digest, "total": size, "completed": size})
            return
        with owner._lock:
            blob_lock = owner._blob_locks.setdefault(digest, threading.Lock())
        with blob_lock:  # two pulls of one blob share one download
            self._download_blob(digest, size, record, emit, status, final)

    def _download_blob(self, digest, size, record, emit, status, final) -> None:
        """Download one blob as Ollama does: the partial blob is sized in full at once, the
        bytes land in it part after part, and each part's JSON file says how much of that part
        is saved only when the part ends or the download stops (a cut stream); while a part is
        being written its file still says what it said before."""
        owner = self.owner
        if final.exists():
            record["first_completed"][digest] = size
            if emit:
                self._line({"status": status, "digest": digest, "total": size, "completed": size})
            return
        partial = final.with_name(final.name + "-partial")
        parts = self._parts(final, size)
        done = sum(part["Completed"] for part in parts)
        record["first_completed"][digest] = done
        with owner._downloads:
            owner._active_downloads += 1
        writing = out = None
        try:
            for part in parts:
                writing = part
                while part["Completed"] < part["Size"]:
                    if emit:
                        line = {"status": status, "digest": digest, "total": size}
                        if done:
                            line["completed"] = done
                        self._line(line)  # raises OSError when the client has gone
                    if out is None:
                        if not partial.exists():
                            with open(partial, "wb") as new:
                                new.truncate(size)  # sparse: no byte of it is on disk yet
                        out = open(partial, "r+b")  # noqa: SIM115 (closed below)
                    time.sleep(TICK if emit else 0)
                    step = min(part["Size"] - part["Completed"], max(1, int(owner.pull_speed * TICK)))
                    out.seek(part["Offset"] + part["Completed"])
                    out.write(b"\xa5" * step)
                    out.flush()
                    part["Completed"] += step
                    done += step
                self._write_part(final, part)
                writing = None
        finally:
            if out is not None:
                out.close()
            if writing is not None:
                self._write_part(final, writing)  # a cut download keeps what it wrote
            with owner._downloads:
                owner._active_downloads -= 1
                owner._downloads.notify_all()
        partial.rename(final)
        for part in parts:
            final.with_name(f"{final.name}-partial-{part['N']}").unlink()

    def _parts(self, final: Path, size: int) -> list[dict[str, int]]:
        """The parts of a blob's download: read back from their files when a download of it
        was cut, else laid out (each of ``part_size`` bytes) and written with nothing done."""
        found = sorted(final.parent.glob(final.name + "-partial-*"))
        parts = [json.loads(path.read_text()) for path in found if path.name.rsplit("-", 1)[1].isdigit()]
        if parts:
            return sorted(parts, key=lambda part: part["N"])
        step = max(1, self.owner.part_size, -(-size // PARTS))  # at most PARTS parts, as Ollama
        parts = [
            {"N": n, "Offset": offset, "Size": min(step, size - offset), "Completed": 0}
            for n, offset in enumerate(range(0, size, step))
        ]
        for part in parts:
            self._write_part(final, part)
        return parts

    @staticmethod
    def _write_part(final: Path, part: dict[str, int]) -> None:
        path = final.with_name(f"{final.name}-partial-{part['N']}")
        temp = path.with_name(path.name + ".tmp")
        # Ollama's part file: its Go struct's field names, capitalised.
        temp.write_text(json.dumps({key: part[key] for key in ("N", "Offset", "Size", "Completed")}))
        temp.replace(path)  # readers never see a half-written part file

    def _finish_pull(self, parts, sizes) -> None:
        layers = self._layers(parts, sizes)
        config = {
            "model_format": "gguf",
            "model_family": parts[2].split(".")[0].rstrip("0123456789") or "llama",
            "model_families": None,
            "model_type": "1B",
            "file_type": "Q4_K_M",
        }
        self.owner._write_manifest(parts, layers[:-1], config, config_blob=layers[-1])

    def _find(self, name: str):
        parts = full_name(name)
        if parts is None:
            return None, None
        return parts, self.owner._local().get(parts)

    def _delete(self, path: str) -> None:
        body = self._body()
        if body is None:
            return
        name = self._model_of(body)
        parts, info = self._find(name)
        if info is None:
            return self._error(404, f"model '{name}' not found")
        self.owner._manifest_path(parts).unlink()
        used = {
            layer["digest"]
            for other in self.owner._local().values()
            for layer in other["manifest"]["layers"] + [other["manifest"]["config"]]
        }
        for layer in info["manifest"]["layers"] + [info["manifest"]["config"]]:
            if layer["digest"] not in used:
                self.owner.blob_path(layer["digest"]).unlink(missing_ok=True)
        self._empty()

    def _show(self, path: str) -> None:
        body = self._body()
        if body is None:
            return
        name = self._model_of(body)
        parts, info = self._find(name)
        if info is None:
            shown = short_name(parts) if parts else name
            return self._error(404, f"model '{shown}' not found")
        manifest = info["manifest"]
        details = self.owner._details(manifest)
        weights = manifest["layers"][0]["digest"] if manifest["layers"] else ""
        recipe = _recipe(manifest)
        modelfile = f'# Modelfile generated by "ollama show"\nFROM {self.owner.blob_path(weights)}\n'
        if recipe.get("template"):
            modelfile += f'TEMPLATE """{recipe["template"]}"""\n'
        if recipe.get("system"):
            modelfile += f'SYSTEM """{recipe["system"]}"""\n'
        for name, value in _parameter_lines(recipe.get("parameters") or {}):
            modelfile += f"PARAMETER {name} {value}\n"
        for license_text in recipe.get("license") or []:
            modelfile += f'LICENSE """{license_text}"""\n'
        reply = {"modelfile": modelfile}
        # Ollama leaves out what is empty.
        parameters = "\n".join(
            f"{name:<30} {value}" for name, value in _parameter_lines(recipe.get("parameters") or {})
        )
        if parameters:
            reply["parameters"] = parameters
        for key in ("template", "system"):
            if recipe.get(key):
                reply[key] = recipe[key]
        if recipe.get("license"):
            reply["license"] = "\n".join(recipe["license"])
        embedding = details["family"] in EMBEDDING_FAMILIES
        model_info = {"general.architecture": details["family"], "general.parameter_count": 3212749888}
        if embedding:
            model_info[f"{details['family']}.embedding_length"] = self.owner.embedding_length
        self._json(
            200,
            {
                **reply,
                "details": details,
                "model_info": model_info,
                "capabilities": ["embedding"] if embedding else ["completion"],
                "modified_at": _timestamp(info["mtime"]),
            },
        )

    def _copy(self, path: str) -> None:
        body = self._body()
        if body is None:
            return
        source, destination = body.get("source", ""), body.get("destination", "")
        parts, info = self._find(source)
        if info is None:
            return self._error(404, f'model "{source}" not found')
        target = full_name(destination)
        if target is None:
            return self._error(400, "invalid model name")
        path_to = self.owner._manifest_path(target)
        path_to.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path_to, self.owner._manifest_path(parts).read_bytes())
        self._empty()

    def _blob(self, path: str) -> None:
        digest = path[len("/api/blobs/") :]
        if not re.fullmatch(r"sha256[:-][0-9a-f]{64}", digest):
            return self._error(400, "invalid digest format")
        digest = digest.replace("-", ":", 1)
        final = self.owner.blob_path(digest)
        if self.command == "HEAD":
            return self._empty(200 if final.exists() else 404)
        if final.exists():
            self.close_connection = True  # the body is not read
            return self._empty(200)
        length = int(self.headers.get("Content-Length") or 0)
        hasher = hashlib.sha256()
        temp = final.with_name(final.name + "-upload")
        with open(temp, "wb") as out:
            remaining = length
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                hasher.update(chunk)
                out.write(chunk)
                remaining -= len(chunk)
        got = "sha256:" + hasher.hexdigest()
        if got != digest:
            temp.unlink()
            return self._error(400, f"digest mismatch, expected {digest}, got {got}")
        temp.rename(final)
        self._empty(201)

    def _create(self, path: str) -> None:
        body = self._body()
        if body is None:
            return
        self.owner.create_log.append(body)
        parts = full_name(self._model_of(body))
        if parts is None:
            return self._error(400, "invalid model name")
        owner = self.owner
        old_server = _version_tuple(owner.version) < (0, 5, 5)
        files, base = body.get("files"), body.get("from")
        if old_server:
            match = re.search(r"^FROM @(sha256:[0-9a-f]{64})\s*$", body.get("modelfile") or "", re.MULTILINE)
            files = {"model.gguf": match.group(1)} if match else None
            base = None
        if not files and not base:
            return self._error(400, "neither 'from' or 'files' was specified")
        if body.get("quantize") and body["quantize"].lower() not in ("q4_k_m", "q4_k_s", "q8_0"):
            return self._error(400, f"unsupported quantization type {body['quantize']}")
        layers = []
        recipe: dict[str, Any] = {}
        family = "llama"
        if files:
            for digest in files.values():
                path_ = owner.blob_path(str(digest))
                if not path_.exists():
                    return self._error(400, f"blob {digest} not found")
                layers.append((str(digest), path_.stat().st_size))
        else:
            _, info = self._find(base)
            if info is None:
                return self._error(404, f"model '{base}' not found")
            layers = [(layer["digest"], layer["size"]) for layer in info["manifest"]["layers"]]
            recipe = dict(_recipe(info["manifest"]))  # a model made from another inherits its recipe
            family = info["manifest"]["config"].get("model_family") or family
        for digest in (body.get("adapters") or {}).values():
            path_ = owner.blob_path(str(digest))
            if not path_.exists():
                return self._error(400, f"blob {digest} not found")
            layers.append((str(digest), path_.stat().st_size))
        for key in ("template", "system", "parameters"):
            if body.get(key):
                recipe[key] = body[key]
        if body.get("license"):
            recipe["license"] = [body["license"]] if isinstance(body["license"], str) else list(body["license"])
        config = {
            "model_format": "gguf",
            "model_family": family,
            "model_families": [family],
            "model_type": "1B",
            "file_type": (body.get("quantize") or "F16").upper(),
            "recipe": recipe,
        }
        if not body.get("stream", True):
            owner._write_manifest(parts, layers, config)
            return self._json(200, {"status": "success"})
        try:
            self._start_stream()
            if files:
                self._line({"status": "parsing GGUF"})
            time.sleep(owner.create_delay)
            for digest, _ in layers:
                self._line({"status": f"using existing layer {digest}"})
            for key in ("template", "system", "parameters"):
                if body.get(key):
                    text = json.dumps(body[key]) if key == "parameters" else body[key]
                    self._line({"status": f"creating new layer {_digest(key + text)}"})
            owner._write_manifest(parts, layers, config)
            self._line({"status": "writing manifest"})
            self._line({"status": "success"})
            self._end_stream()
        except OSError:
            self.close_connection = True  # the client went away

    def _generate(self, path: str) -> None:
        body = self._body()
        if body is None:
            return
        name = self._model_of(body)
        parts, info = self._find(name)
        if info is None:
            return self._error(404, f"model '{name}' not found")
        keep_alive = body.get("keep_alive", "5m")
        seconds = _keep_alive_seconds(keep_alive)
        if seconds is None:
            return self._error(400, f'time: missing unit in duration "{keep_alive}"')
        reply = {"model": name, "created_at": _timestamp(), "response": "", "done": True}
        if seconds == 0:
            with self.owner._lock:
                self.owner._loaded.pop(info["manifest"]["layers"][0]["digest"], None)
            return self._json(200, {**reply, "done_reason": "unload"})
        self._load(parts, info, seconds, body.get("options") or {})
        self._json(200, {**reply, "done_reason": "load"})

    def _load(self, parts, info, seconds: float, options: dict) -> bool:
        """Load a model (or extend its stay) for ``seconds`` (negative: forever); True when it
        was not loaded before, so the request reports a load time."""
        owner = self.owner
        manifest = info["manifest"]
        weights = manifest["layers"][0]["digest"]
        with owner._lock:
            owner.ps()  # drops the expired ones
            fresh = weights not in owner._loaded
            expires = (
                datetime.now().astimezone() + timedelta(days=365 * 292)
                if seconds < 0
                else datetime.now().astimezone() + timedelta(seconds=seconds)
            )
            memory = int(owner._size(manifest) * 1.2)
            num_gpu = options.get("num_gpu")
            in_vram = 0 if num_gpu == 0 else min(memory, owner.vram)
            owner._loaded[weights] = {
                "name": short_name(parts),
                "size": memory,
                "size_vram": in_vram,
                "digest": info["digest"],
                "details": owner._details(manifest),
                "expires": expires,
            }
        if fresh:
            time.sleep(owner.load_delay)
        return fresh

    def _model_for(self, body: dict, capability: str):
        """The model a chat or embed request names, loaded for its keep_alive; None (with the
        error sent) when it is unknown, lacks ``capability`` or the keep_alive is not valid."""
        name = self._model_of(body)
        parts, info = self._find(name)
        if info is None:
            shown = short_name(parts) if parts else name
            self._error(404, f"model '{shown}' not found")
            return None
        embedding = info["manifest"]["config"].get("model_family") in EMBEDDING_FAMILIES
        if capability == "chat" and embedding:
            self._error(400, f'"{short_name(parts)}" does not support chat')
            return None
        if capability == "embed" and not embedding:
            self._error(400, "this model does not support embeddings")
            return None
        keep_alive = body.get("keep_alive", "5m")
        seconds = _keep_alive_seconds(keep_alive)
        if seconds is None:
            self._error(400, f'time: missing unit in duration "{keep_alive}"')
            return None
        return parts, info, seconds

    def _chat(self, path: str) -> None:
        """Ollama's chat: one line per token, then a last line with the statistics fields
        (durations in nanoseconds, counts in tokens). ``options.stop`` ends the answer before a
        stop word (``done_reason`` stop) and ``options.num_predict`` after that many tokens
        (``length``). No messages only loads the model, as Ollama does."""
        body = self._body()
        if body is None:
            return
        owner = self.owner
        messages = body.get("messages") or []
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return self._error(400, "invalid message format")
        found = self._model_for(body, "chat")
        if found is None:
            return
        parts, info, seconds = found
        name = short_name(parts)
        if seconds == 0 and not messages:
            with owner._lock:
                owner._loaded.pop(info["manifest"]["layers"][0]["digest"], None)
            return self._json(
                200,
                {
                    "model": name,
                    "created_at": _timestamp(),
                    "message": {"role": "assistant", "content": ""},
                    "done_reason": "unload",
                    "done": True,
                },
            )
        options = body.get("options") or {}
        fresh = self._load(parts, info, seconds, options)
        if not messages:
            return self._json(
                200,
                {
                    "model": name,
                    "created_at": _timestamp(),
                    "message": {"role": "assistant", "content": ""},
                    "done_reason": "load",
                    "done": True,
                },
            )
        record: dict[str, Any] = {"body": body, "tokens": [], "finished": False}
        owner.chat_log.append(record)
        words = owner.reply.split()
        stops = options.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        limit = options.get("num_predict")
        tokens, reason = [], "stop"
        for index, word in enumerate(words):
            if any(stop.strip() and stop.strip() in word for stop in stops):
                break
            if isinstance(limit, int) and 0 <= limit <= len(tokens):
                reason = "length"
                break
            tokens.append(word if index == 0 else " " + word)
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in messages) + 4
        nanos = 1_000_000_000
        load = int(owner.load_seconds * nanos) if fresh else 3_000_000
        prompt_ns = int(prompt_tokens / owner.prompt_rate * nanos)
        eval_ns = int(len(tokens) / owner.eval_rate * nanos)
        final = {
            "model": name,
            "created_at": _timestamp(),
            "message": {"role": "assistant", "content": ""},
            "done_reason": reason,
            "done": True,
            "total_duration": load + prompt_ns + eval_ns + 1_000_000,
            "load_duration": load,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": prompt_ns,
            "eval_count": len(tokens),
            "eval_duration": eval_ns,
        }
        if not body.get("stream", True):
            record["tokens"] = tokens
            record["finished"] = True
            return self._json(200, {**final, "message": {"role": "assistant", "content": "".join(tokens)}})
        try:
            self._start_stream()
            for token in tokens:
                time.sleep(owner.token_delay)
                self._line(
                    {
                        "model": name,
                        "created_at": _timestamp(),
                        "message": {"role": "assistant", "content": token},
                        "done": False,
                    }
                )
                record["tokens"].append(token)
            self._line(final)
            self._end_stream()
            record["finished"] = True
        except OSError:
            record["cut"] = True
            self.close_connection = True  # the client went away: generation stops

    def _embed(self, path: str) -> None:
        """Ollama's embed: one vector per input, of the model's embedding length or the
        ``dimensions`` asked for, with the statistics fields of the request."""
        body = self._body()
        if body is None:
            return
        owner = self.owner
        texts = body.get("input", "")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return self._error(400, "invalid input type")
        found = self._model_for(body, "embed")
        if found is None:
            return
        parts, info, seconds = found
        owner.embed_log.append(body)
        fresh = self._load(parts, info, seconds, body.get("options") or {})
        size = body.get("dimensions") or owner.embedding_length
        vectors = []
        for text in texts:
            seed = hashlib.sha256(text.encode()).digest()
            vectors.append([round((seed[i % 32] - 128) / 128, 6) for i in range(size)])
        load = int(owner.load_seconds * 1_000_000_000) if fresh else 2_000_000
        self._json(
            200,
            {
                "model": short_name(parts),
                "embeddings": vectors,
                "total_duration": load + 5_000_000,
                "load_duration": load,
                "prompt_eval_count": sum(len(t.split()) for t in texts),
            },
        )


#: Families whose models embed instead of chat.
EMBEDDING_FAMILIES = ("bert", "nomic-bert")
#: What a model seeded without a recipe shows: a plain template and one stop word.
DEFAULT_RECIPE = {"template": "{{ .Prompt }}", "parameters": {"stop": ["<|eot_id|>"]}}


def _recipe(manifest: dict) -> dict[str, Any]:
    """The template, system prompt, parameters and license a model was made with (Ollama keeps
    them as layers of their own; the stand-in keeps them in the config)."""
    return manifest["config"].get("recipe", DEFAULT_RECIPE)


def _parameter_lines(parameters: dict[str, Any]) -> list[tuple[str, str]]:
    """``(name, value)`` pairs as Ollama's show writes parameters: one line per value (so one
    per stop word), text in double quotes."""
    lines = []
    for name, value in parameters.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                text = "true" if item else "false"
            elif isinstance(item, str):
                text = json.dumps(item)
            else:
                text = str(item)
            lines.append((name, text))
    return lines


def _keep_alive_seconds(value: Any) -> float | None:
    """Seconds from a keep_alive value (negative: forever), or None when it is not valid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value.strip())
    if not match:
        return None
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(match.group(2)))
    return -seconds if match.group(1) else seconds
