"""The ``open1panel-ai`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from open1panel_ai import __version__, features, private
from open1panel_ai.config import ENV_PREFIX, Settings
from open1panel_ai.terminal import InertFormatter, inert

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="open1panel-ai", description=__doc__)
    parser.add_argument("--version", action="version", version=f"open1panel-ai {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the standalone panel")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8788)")
    serve.add_argument("--data-dir", help="where the database, logs and tokens live")
    serve.set_defaults(run=_serve)
    # A feature may add commands: its Feature's add_commands(subparsers) adds parsers whose
    # defaults set run=<function taking the parsed arguments and returning an exit code>.
    features.add_commands(commands, features.load())
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Log lines quote what came from elsewhere (MCP server names, Ollama's errors): inert.
    handler = logging.StreamHandler()
    handler.setFormatter(InertFormatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # httpx logs each request at INFO: two lines a second for every Ollama server a page
    # watches (its watcher's polls), which would fill the log of a panel up for months.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return args.run(args)


def _serve(args: argparse.Namespace) -> int:
    # The command line only sets the environment, so the server's worker sees the same settings.
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name)
        if value is not None:
            os.environ[ENV_PREFIX + name.upper()] = str(value)
    from open1panel_ai.standalone import auth
    from open1panel_ai.standalone.server import check_settings, run_without_thread_caches, serve

    settings = Settings.from_environ()
    try:
        private.repair(settings.data_dir)
        check_settings(settings)
        token, created = auth.load_or_create_token(settings.data_dir)
        # Made here, before any worker starts, so that every worker reads the same secret.
        auth.load_or_create_session_secret(settings.data_dir)
    except ValueError as exc:
        print(f"open1panel-ai: {inert(exc, lines=True)}", file=sys.stderr)
        return 2
    if created:
        print(f"Admin token (shown once; also stored in {settings.data_dir / auth.TOKEN_FILE}):\n  {token}", flush=True)
    # It may run this command again, now that everything it checks and makes is in place (a
    # second run finds the token made and says nothing of it), and only when about to serve.
    run_without_thread_caches()
    host = settings.get("host")
    print(
        f"open1panel-ai {__version__} on http://{host}:{settings.get('port')}/ (data in {settings.data_dir})",
        flush=True,
    )
    # What the panel creates from here on (its data, configs, an MCP server's files) is its
    # own to read.
    os.umask(private.UMASK)
    serve(settings)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
