"""The ``open1panel-ai`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from open1panel_ai import __version__
from open1panel_ai.config import ENV_PREFIX, Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="open1panel-ai", description=__doc__)
    parser.add_argument("--version", action="version", version=f"open1panel-ai {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the standalone panel")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8788)")
    serve.add_argument("--data-dir", help="where the database, logs and tokens live")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        return _serve(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _serve(args: argparse.Namespace) -> int:
    # The command line only sets the environment, so the server's worker sees the same settings.
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name)
        if value is not None:
            os.environ[ENV_PREFIX + name.upper()] = str(value)
    settings = Settings.from_environ()
    try:
        settings.get_int("port")
    except ValueError as exc:
        print(f"open1panel-ai: {exc}", file=sys.stderr)
        return 2

    from open1panel_ai.standalone import auth
    from open1panel_ai.standalone.server import serve

    token, created = auth.load_or_create_token(settings.data_dir)
    if created:
        print(f"Admin token (shown once; also stored in {settings.data_dir / auth.TOKEN_FILE}):\n"
              f"  {token}", flush=True)
    host = settings.get("host")
    print(f"open1panel-ai {__version__} on http://{host}:{settings.get('port')}/ "
          f"(data in {settings.data_dir})", flush=True)
    serve(settings)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
