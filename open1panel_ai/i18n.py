"""The one translation catalog for every UI string: English and Simplified Chinese.

Templates call ``_("key")``; scripts call ``t("key")`` on the same catalog, which the page embeds.
The catalog of a language is ``translations/<lang>.json`` joined with each feature's
``<feature>/translations/<lang>.json``; a key may be defined only once.
The reader's language comes from the ``lang`` cookie (the switch in the header), else the
browser's ``Accept-Language``, else English.

Text that the server composes for a person (an API error, a provider's reason, a task's
message) is a :class:`Message`: a ``str`` holding the English text, which also remembers its
key and values, so that whoever shows it renders it again in the reader's language.
A key with plural forms is written as ``key.one`` and ``key.other`` and used as ``key`` with a
``count``.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

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
    for path in [CATALOG_DIR / f"{language}.json", *sorted(CATALOG_DIR.parent.glob(f"*/translations/{language}.json"))]:
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


def translate(key: str, language: str = DEFAULT_LANGUAGE, /, **params: object) -> str:
    """The text of ``key`` in ``language`` (English when missing there), with ``{name}``
    placeholders filled from ``params``. A key with plural forms picks the one for ``count``."""
    text = _lookup(key, language, params.get("count"))
    if text is None:
        raise KeyError(f"no UI string {key!r} in the catalog")
    return text.format(**params) if params else text


def plural_category(language: str, count: object) -> str:
    """``"one"`` or ``"other"``: the plural form of ``count`` (Chinese has only ``other``)."""
    return "one" if language == "en" and count == 1 else "other"


def _lookup(key: str, language: str, count: object) -> str | None:
    for lang in (language, DEFAULT_LANGUAGE):
        strings = catalog(lang)
        if key in strings:
            return strings[key]
        if isinstance(count, int | float) and not isinstance(count, bool):
            form = strings.get(f"{key}.{plural_category(lang, count)}") or strings.get(f"{key}.other")
            if form is not None:
                return form
    return None


def has(key: str) -> bool:
    """Whether ``key`` (or its plural forms) is in the English catalog."""
    english = catalog(DEFAULT_LANGUAGE)
    return key in english or f"{key}.other" in english


class Message(str):
    """Text for a person, composed on the server: the English text of ``key`` with ``params``
    filled in, that can be rendered again in another language with :meth:`render`.

    Being a ``str``, a Message goes wherever a message string goes (exceptions, logs, the
    store); the places that show it to someone (the API's error envelope, the status page,
    task records) keep the key and values and render them in the reader's language."""

    key: str
    params: dict[str, object]

    def __new__(cls, key: str, /, **params: object) -> Message:
        text = super().__new__(cls, _render_message(key, params, DEFAULT_LANGUAGE))
        text.key = key
        text.params = dict(params)
        return text

    def render(self, language: str) -> str:
        """This message in ``language``; values that are Messages (or lists of them, joined
        with "; ") are rendered in it too."""
        return _render_message(self.key, self.params, language)

    def public(self) -> dict[str, object]:
        """Key and values, for a page that renders the message itself: ``{"key", "params"}``.
        Values are sent as text, except numbers (which choose plural forms)."""
        return {
            "key": self.key,
            "params": {
                name: value
                if isinstance(value, int | float) and not isinstance(value, bool)
                else str(_render_value(value, DEFAULT_LANGUAGE))
                for name, value in self.params.items()
            },
        }

    def __reduce__(self) -> tuple[Callable[[str, dict[str, object]], Message], tuple[str, dict[str, object]]]:
        # A Message survives pickling (and copying) as itself.
        return (_rebuild, (self.key, self.params))


def _render_value(value: object, language: str) -> object:
    if isinstance(value, Message):
        return value.render(language)
    if isinstance(value, list | tuple):  # sentences joined into one: "a; b"
        return "; ".join(str(_render_value(item, language)).rstrip(".。") for item in value)
    return value


def _render_message(key: str, params: dict[str, object], language: str) -> str:
    values = {name: _render_value(value, language) for name, value in params.items()}
    try:
        return translate(key, language, **values)
    except (KeyError, IndexError, ValueError):
        # A key missing from the catalog (tests/test_i18n.py keeps that from shipping) must
        # not turn an error into a crash: show the key and its values.
        log.error("UI string %r is missing or does not take %s", key, sorted(values))
        return " ".join([key, *(f"{name}={value}" for name, value in values.items())])


def _rebuild(key: str, params: dict[str, object]) -> Message:
    return Message(key, **params)


def render(text: object, language: str) -> object:
    """``text`` in ``language`` when it is a :class:`Message`; anything else as it is."""
    return text.render(language) if isinstance(text, Message) else text


def public(text: object) -> dict[str, object] | None:
    """The ``{"key", "params"}`` of a :class:`Message`, else None."""
    return text.public() if isinstance(text, Message) else None


def human_bytes(count: int) -> str:
    """``count`` bytes as a person reads them (``4.4 GiB``), for sentences the server writes;
    the units read the same in every language of the panel."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def titles(key: str) -> dict[str, str]:
    """``key`` in every language, for places that pick the language later (menu items)."""
    return {language: translate(key, language) for language in LANGUAGES}
