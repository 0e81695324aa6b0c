"""Rebuild sprite.svg from an unpacked ``@tabler/icons`` npm package (MIT): only the icons the
pages use, each as ``<symbol id="ti-NAME">``. Run by hand when the icon list changes; the
pages load the finished sprite, so nothing is built at run time.

    npm pack @tabler/icons@3.52.0 && tar xzf tabler-icons-3.52.0.tgz
    python build_sprite.py package
"""

import re
import sys
from pathlib import Path

#: The icons the pages use (static/ai.js AI.icon, data-icon attributes in the templates).
ICONS = (
    "plus upload download trash pencil player-play player-stop refresh copy check x alert-triangle "
    "info-circle circle-check circle-x sun moon file-text tool settings world server cpu bell key "
    "external-link search eye loader-2 code plug list-details"
).split()

STROKE = 'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"'


def main(package: str) -> None:
    outline = Path(package) / "icons" / "outline"
    symbols = []
    for name in ICONS:
        svg = (outline / f"{name}.svg").read_text()
        found = re.search(r"<svg[^>]*>(.*)</svg>", svg, re.S)
        if found is None:
            raise SystemExit(f"{outline / name}.svg holds no <svg> element")
        body = found.group(1)
        body = re.sub(r'<path stroke="none" d="M0 0h24v24H0z" fill="none"\s*/>', "", body)
        body = " ".join(body.split())
        symbols.append(f'<symbol id="ti-{name}" viewBox="0 0 24 24" {STROKE}>{body}</symbol>')
    sprite = '<svg xmlns="http://www.w3.org/2000/svg">\n' + "\n".join(symbols) + "\n</svg>\n"
    (Path(__file__).parent / "sprite.svg").write_text(sprite)


if __name__ == "__main__":
    main(sys.argv[1])
