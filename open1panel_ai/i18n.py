"""The one translation catalog for every UI string: English and Simplified Chinese.

Templates call ``_("key")``; scripts call ``t("key")`` on the same catalog, which the page embeds.
The catalog of a language is ``translations/<lang>.json`` joined with each feature's
``<feature>/translations/<lang>.json``; a key may be defined only once.
The reader's language comes from the ``lang`` cookie (the switch in the header), else the
browser's ``Accept-Language``, else English.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

CATALOG_DIR = Path(__file__).parent / "translations"
DEFAULT_LANGUAGE = "en"
#: Language tag → the language's own name, shown in the switch.
LANGUAGES = {"en": "English", "zh-CN": "简体中文"}
LANGUAGE_COOKIE = "lang"


@functools.cache
def catalog(language: str) -> dict[str, str]:
    """All strings of ``language`` (a tag from :data:`LANGUAGES`)."""
    if language not in LANGUAGES:
        raise KeyError(language)
    merged: dict[str, str] = {}
    for path in [CATALOG_DIR / f"{language}.json",
                 *sorted(CATALOG_DIR.parent.glob(f"*/translations/{language}.json"))]:
        part = json.loads(path.read_text(encoding="utf-8"))
        twice = merged.keys() & part.keys()
        if twice:
            raise ValueError(f"{path} defines keys defined elsewhere already: {sorted(twice)}")
        merged.update(part)
    return merged


def negotiate(cookie: str | None, accept_language: str | None, chosen: str | None = None) -> str:
    """Pick the reader's language: one just ``chosen`` with the switch (``?lang=``), else the
    cookie the switch left, else the best match of the ``Accept-Language`` header (``zh``,
    ``zh-CN`` and ``zh-Hans`` all mean Simplified Chinese)."""
    for explicit in (chosen, cookie):
        if explicit in LANGUAGES:
            return explicit
    ranked = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag:
            ranked.append((-quality, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh") and tag not in ("zh-tw", "zh-hk", "zh-hant"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE


def translate(key: str, language: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text of ``key`` in ``language`` (English when missing there), with ``{name}``
    placeholders filled from ``params``."""
    text = catalog(language).get(key) or catalog(DEFAULT_LANGUAGE).get(key)
    if text is None:
        raise KeyError(f"no UI string {key!r} in the catalog")
    return text.format(**params) if params else text


def titles(key: str) -> dict[str, str]:
    """``key`` in every language, for places that pick the language later (menu items)."""
    return {language: translate(key, language) for language in LANGUAGES}
