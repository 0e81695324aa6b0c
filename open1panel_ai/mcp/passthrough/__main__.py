"""``python -m open1panel_ai.mcp.passthrough CONFIG.json``: run bridge v2 for one MCP server."""

import json
import sys


def _stdio(argv: list[str]) -> bool:
    """Whether the config names a stdio child (not a remote URL or a gateway): only then is
    no TLS ever spoken by this process."""
    try:
        with open(argv[0], encoding="utf-8") as file:
            config = json.load(file)
    except (IndexError, OSError, ValueError):
        return True  # main() says what is wrong
    return not (config.get("url") or config.get("gateway"))


if _stdio(sys.argv[1:]):
    # The bridge speaks plain HTTP (TLS ends at the reverse proxy): asyncio without the ssl
    # module leaves OpenSSL unloaded, about 5 MiB less to hold for every served server.
    # (None in sys.modules makes an import fail, as the import system documents; typeshed
    # types the mapping as holding modules only.)
    sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]

from open1panel_ai.mcp.passthrough.app import main  # noqa: E402

sys.exit(main())
