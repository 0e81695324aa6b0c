"""Page weight: each page's own CSS and JavaScript, gzipped, against a budget of 100 KB.

Every menu page of the plugin is rendered by a standalone host in this process (signed in with
the admin token), and each stylesheet, script and the icon sprite it loads is fetched as the
browser would and gzipped (level 6, what a proxy typically uses). ``ai.js`` also loads
``alerts-bell.js`` on every page where the alerts feature is installed, so it is counted too.
The vendored chart library (uPlot) and Socket.IO client are left out of the budget and shown
apart. Fails (non-zero) when a page goes over.
"""

from __future__ import annotations

import gzip
import os
import re
import tempfile
from pathlib import Path

BUDGET = 100 * 1024
PAGES = ("/ai/", "/ai/ollama/", "/ai/mcp/", "/ai/gpu/", "/ai/domains/", "/ai/alerts/")
#: Vendored libraries the budget leaves out.
EXCLUDED = ("/vendor/uplot/", "/vendor/socket.io/")
ASSET = re.compile(r'<(?:link[^>]+href|script[^>]+src)="(/ai/static/[^"?]+)')
SPRITE = "/ai/static/vendor/tabler-icons/sprite.svg"


def assets_of(html: str) -> list[str]:
    found = list(dict.fromkeys(ASSET.findall(html)))
    if "/ai/static/ai.js" in found:
        found += ["/ai/static/alerts-bell.js", SPRITE]  # loaded by ai.js on every page
    return list(dict.fromkeys(found))


def main() -> int:
    with tempfile.TemporaryDirectory() as temp:
        token = "bench-pages-token-0123456789abcdefghijklmnop"
        os.environ.update(
            {
                "OPEN1PANEL_AI_DATA_DIR": str(Path(temp) / "data"),
                "OPEN1PANEL_AI_TOKEN": token,
                "OPEN1PANEL_AI_MCP_HOMES": str(Path(temp) / "mcp-homes"),
                "OPEN1PANEL_AI_DISABLED_PLUGINS": "drm,amd",
                "OLLAMA_HOST": "http://127.0.0.1:9",
            }
        )
        from open1panel_ai.config import Settings
        from open1panel_ai.standalone.host import create_host

        host = create_host(Settings.from_environ(), [])
        try:
            client = host.app.test_client()
            headers = {"Authorization": f"Bearer {token}"}
            over = False
            print(f"{'page':<14} {'own, gzipped':>13} {'vendored (excluded)':>20}  files")
            for path in PAGES:
                page = client.get(path, headers=headers)
                if page.status_code != 200:
                    print(f"{path:<14} not served ({page.status_code})")
                    over = True
                    continue
                own = vendored = 0
                names = []
                for asset in assets_of(page.get_data(as_text=True)):
                    body = client.get(asset, headers=headers).get_data()
                    size = len(gzip.compress(body, 6))
                    if any(part in asset for part in EXCLUDED):
                        vendored += size
                    else:
                        own += size
                        names.append(asset.rsplit("/", 1)[-1])
                verdict = "ok" if own <= BUDGET else "OVER BUDGET"
                over |= own > BUDGET
                print(f"{path:<14} {own / 1024:>10.1f} KB {vendored / 1024:>17.1f} KB  {', '.join(names)}  [{verdict}]")
            print(f"budget: {BUDGET // 1024} KB gzipped per page")
            return 1 if over else 0
        finally:
            host.shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
