"""``ollama serve`` played by the tests' Ollama stand-in, configured as Ollama is: through its
environment.

``OLLAMA_HOST`` (``host:port``, Ollama's default ``127.0.0.1:11434``) is where it listens (on
loopback whatever the host), ``OLLAMA_MODELS`` its models folder (created, as Ollama does, and
a start fails like Ollama's when it cannot be). Like Ollama it logs its ``server config`` with
every ``OLLAMA_*`` and ``CUDA_VISIBLE_DEVICES`` value it reads, then ``Listening on ...``, and
a port in use ends it with Ollama's own words. ``OLLAMA_STANDIN_VERSION`` sets what
``/api/version`` answers. :func:`install` writes it as an ``ollama`` program.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _log(level: str, source: str, message: str, extra: str = "") -> None:
    stamp = datetime.now().astimezone().isoformat(timespec="milliseconds")
    print(f'time={stamp} level={level} source={source} msg="{message}"{extra}', flush=True)


def _host_port(value: str) -> tuple[str, int]:
    text = (value or "").strip()
    text = text.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = text.rpartition(":")
    if not host:
        host, port = text or "127.0.0.1", "11434"
    return host or "127.0.0.1", int(port)


def main(argv: list[str]) -> int:
    if argv[1:] != ["serve"]:
        print(f'Error: unknown command {" ".join(argv[1:])!r} for "ollama"', file=sys.stderr, flush=True)
        return 1
    sys.path.insert(0, str(ROOT))
    from tests.ollama_standin import OllamaStandIn

    environ = os.environ
    seen = {
        name: value
        for name, value in sorted(environ.items())
        if name.startswith("OLLAMA_") or name == "CUDA_VISIBLE_DEVICES"
    }
    _log(
        "INFO",
        "routes.go:1331",
        "server config",
        ' env="map[' + " ".join(f"{name}:{value}" for name, value in seen.items()) + ']"',
    )
    host, port = _host_port(environ.get("OLLAMA_HOST", ""))
    models = Path(environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models")
    try:
        standin = OllamaStandIn(models, version=environ.get("OLLAMA_STANDIN_VERSION", "0.12.6"))
    except OSError as exc:
        print(f"Error: mkdir {models}: {exc.strerror.lower() if exc.strerror else exc}", flush=True)
        return 1
    try:
        standin.start(port=port)
    except OSError:
        print(f"Error: listen tcp {host}:{port}: bind: address already in use", flush=True)
        return 1
    _log("INFO", "routes.go:1384", f"Listening on {host}:{port} (version {standin.version})")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    standin.stop()
    return 0


def install(folder: Path) -> Path:
    """Write ``folder/ollama``, a program that runs this module with this Python."""
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / "ollama"
    program.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.ollama_server.standin_serve import main\n"
        "sys.exit(main(sys.argv))\n"
    )
    program.chmod(0o755)
    return program


if __name__ == "__main__":
    sys.exit(main(sys.argv))
