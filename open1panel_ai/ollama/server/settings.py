"""The Ollama server settings the panel changes: an allowlist, each with its meaning, its default
and its validation.

Only these environment variables of ``ollama serve`` are ever written, and every value is
rebuilt from its parsed form (an address from its parts, a path normalised, a number as a
number), so nothing but a setting's own kind of value reaches a systemd drop-in or a process's
environment. No value holds a quote, a backslash, a ``%`` (a systemd specifier), a control
character or a line break.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from open1panel_ai.i18n import Message
from open1panel_ai.ollama import address

#: The longest value any setting takes.
MAX_VALUE = 4096
#: Characters no value may hold, whatever its kind.
_FORBIDDEN = re.compile(r'["\\%\x00-\x1f\x7f]')
_DURATION = re.compile(r"^-?(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
_INTEGER = re.compile(r"^-?\d{1,12}$")
_ORIGIN = re.compile(
    r"^(?:\*|[a-z][a-z0-9+.-]{0,31}://(?:\*|[A-Za-z0-9*_.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::(?:\d{1,5}|\*))?)$"
)
_GPU_UUID = re.compile(r"^(?:GPU|MIG)-[0-9A-Za-z/-]{8,80}$")
_TRUE = {"1", "t", "true"}
_FALSE = {"0", "f", "false"}


class InvalidValue(ValueError):
    """A value a setting does not take; its text is a Message saying what it takes."""


@dataclass(frozen=True)
class Setting:
    """One documented ``ollama serve`` setting.

    :param name: the environment variable.
    :param kind: what it holds, for the page: ``address``, ``path``, ``origins``, ``duration``,
        ``integer``, ``boolean``, ``choice`` or ``gpus``.
    :param default: Ollama's own default, as the page shows it.
    :param parse: the value rebuilt from its parsed form, or :class:`InvalidValue`.
    """

    name: str
    kind: str
    default: str
    parse: Callable[[str, Iterable[str]], str]
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def meaning(self) -> Message:
        return Message(f"ollama.server.setting.{self.name}")

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "meaning": self.meaning,
            "choices": list(self.choices),
            "minimum": self.minimum,
            "maximum": self.maximum,
        }


def _host(text: str, _devices: Iterable[str]) -> str:
    """``host:port`` as ``ollama serve`` listens on it; a scheme other than http is refused."""
    if "://" in text and not text.startswith("http://"):
        raise InvalidValue(Message("ollama.server.validation.host"))
    try:
        url = address.normalise(text)
    except address.InvalidAddress:
        raise InvalidValue(Message("ollama.server.validation.host")) from None
    return url.split("://", 1)[1]


def _path(text: str, _devices: Iterable[str]) -> str:
    """An absolute folder path, normalised, without ``..``."""
    if not text.startswith("/") or "/../" in f"{text}/" or not text.isprintable():
        raise InvalidValue(Message("ollama.server.validation.path"))
    return posixpath.normpath(text) if text != "/" else text


def _origins(text: str, _devices: Iterable[str]) -> str:
    """A comma-separated list of origins (``*`` allowed in the host and as the port)."""
    origins = [part.strip() for part in text.split(",") if part.strip()]
    if not origins or len(origins) > 64 or not all(_ORIGIN.match(origin) for origin in origins):
        raise InvalidValue(Message("ollama.server.validation.origins"))
    return ",".join(origins)


def _duration(text: str, _devices: Iterable[str]) -> str:
    """A Go duration (``5m``, ``24h``, ``-1m``) or whole seconds (``-1``: keep forever)."""
    if not (_DURATION.match(text) or _INTEGER.match(text)):
        raise InvalidValue(Message("ollama.server.validation.duration"))
    return text


def _integer(minimum: int, maximum: int) -> Callable[[str, Iterable[str]], str]:
    def parse(text: str, _devices: Iterable[str]) -> str:
        if not _INTEGER.match(text) or not minimum <= int(text) <= maximum:
            raise InvalidValue(Message("ollama.server.validation.integer", minimum=minimum, maximum=maximum))
        return str(int(text))

    return parse


def _boolean(text: str, _devices: Iterable[str]) -> str:
    lowered = text.lower()
    if lowered in _TRUE:
        return "1"
    if lowered in _FALSE:
        return "0"
    raise InvalidValue(Message("ollama.server.validation.boolean"))


def _choice(*choices: str) -> Callable[[str, Iterable[str]], str]:
    def parse(text: str, _devices: Iterable[str]) -> str:
        if text not in choices:
            raise InvalidValue(Message("ollama.server.validation.choice", choices=", ".join(choices)))
        return text

    return parse


def _gpus(text: str, devices: Iterable[str]) -> str:
    """GPU UUIDs among the GPU provider's devices, comma-separated; ``-1`` for none (CPU only)."""
    if text.strip() == "-1":
        return "-1"
    known = set(devices)
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    if not chosen or not all(_GPU_UUID.match(uuid) for uuid in chosen):
        raise InvalidValue(Message("ollama.server.validation.gpus"))
    unknown = [uuid for uuid in chosen if uuid not in known]
    if unknown:
        raise InvalidValue(Message("ollama.server.validation.unknown_gpu", uuid=unknown[0][:90]))
    return ",".join(dict.fromkeys(chosen))


#: The settings, in the order the page shows them.
SETTINGS: tuple[Setting, ...] = (
    Setting("OLLAMA_MODELS", "path", "~/.ollama/models", _path),
    Setting("OLLAMA_HOST", "address", "127.0.0.1:11434", _host),
    Setting("OLLAMA_ORIGINS", "origins", "localhost, 127.0.0.1, 0.0.0.0 (any port)", _origins),
    Setting("OLLAMA_KEEP_ALIVE", "duration", "5m", _duration),
    Setting("OLLAMA_NUM_PARALLEL", "integer", "1", _integer(1, 256), minimum=1, maximum=256),
    Setting("OLLAMA_MAX_LOADED_MODELS", "integer", "0", _integer(0, 256), minimum=0, maximum=256),
    Setting("OLLAMA_MAX_QUEUE", "integer", "512", _integer(1, 1_000_000), minimum=1, maximum=1_000_000),
    Setting("OLLAMA_FLASH_ATTENTION", "boolean", "0", _boolean),
    Setting("OLLAMA_KV_CACHE_TYPE", "choice", "f16", _choice("f16", "q8_0", "q4_0"), choices=("f16", "q8_0", "q4_0")),
    Setting("OLLAMA_CONTEXT_LENGTH", "integer", "4096", _integer(256, 2_097_152), minimum=256, maximum=2_097_152),
    Setting("CUDA_VISIBLE_DEVICES", "gpus", "", _gpus),
)
BY_NAME: Mapping[str, Setting] = {setting.name: setting for setting in SETTINGS}


def shown_name(name: object) -> str:
    """A refused name as an error repeats it: printable, at most 60 characters."""
    text = repr(name)[1:-1] if isinstance(name, str) else repr(name)
    return text if len(text) <= 60 else text[:60] + "…"


def validated(values: Mapping[Any, Any], devices: Iterable[str] = ()) -> tuple[dict[str, str], dict[str, list]]:
    """The settings of ``values`` rebuilt from their parsed forms, and the errors (name →
    messages) of those refused. A name outside the allowlist is refused, and one holding ``=``
    or a line break is refused as such; None or an empty text means "back to the default"
    and leaves the name out."""
    devices = list(devices)
    clean: dict[str, str] = {}
    problems: dict[str, list] = {}
    for name, value in values.items():
        if not isinstance(name, str) or "=" in name or any(not ch.isprintable() for ch in name):
            problems[shown_name(name)] = [Message("ollama.server.validation.bad_name")]
            continue
        setting = BY_NAME.get(name)
        if setting is None:
            problems[shown_name(name)] = [Message("ollama.server.validation.unknown_setting")]
            continue
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, int):
            value = str(value)
        if not isinstance(value, str):
            problems[name] = [Message("ollama.server.validation.text")]
            continue
        try:
            clean[name] = parse(setting, value, devices)
        except InvalidValue as exc:
            problems[name] = [exc.args[0]]
    return clean, problems


def parse(setting: Setting, value: str, devices: Iterable[str] = ()) -> str:
    """``value`` for ``setting``, rebuilt from its parsed form; :class:`InvalidValue` if refused."""
    value = value.strip()
    if len(value) > MAX_VALUE or _FORBIDDEN.search(value):
        raise InvalidValue(Message("ollama.server.validation.characters"))
    rebuilt = setting.parse(value, devices)
    if len(rebuilt) > MAX_VALUE or _FORBIDDEN.search(rebuilt):  # never: each parser rebuilds
        raise InvalidValue(Message("ollama.server.validation.characters"))
    return rebuilt


# -- the systemd drop-in --------------------------------------------------------------------

DROP_IN_HEADER = (
    "# Written by open1panel-ai: the Ollama server settings chosen in the panel.\n"
    "# Each apply replaces this file whole; settings made by hand belong in another drop-in.\n"
)
_ASSIGNMENT = re.compile(r'^Environment="([A-Z_]{1,64})=([^"\\%\x00-\x1f\x7f]*)"$')


def drop_in(values: Mapping[str, str]) -> str:
    """The drop-in file for ``values``: a ``[Service]`` section of ``Environment=`` lines, one
    per known setting, each value parsed again here (GPU choices by their form alone, the
    device list being checked before), so the file can hold nothing else."""
    lines = [DROP_IN_HEADER + "[Service]"]
    for setting in SETTINGS:
        if setting.name in values:
            value = values[setting.name]
            devices = value.split(",") if setting.kind == "gpus" else ()
            lines.append(f'Environment="{setting.name}={parse(setting, value, devices)}"')
    return "\n".join(lines) + "\n"


def read_drop_in(text: str) -> dict[str, str]:
    """The settings a drop-in written by :func:`drop_in` holds; lines of any other shape, and
    values a setting does not take, are left out."""
    found = {}
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line.strip())
        if match and match.group(1) in BY_NAME:
            setting = BY_NAME[match.group(1)]
            value = match.group(2)
            devices = value.split(",") if setting.kind == "gpus" else ()
            try:
                found[setting.name] = parse(setting, value, devices)
            except InvalidValue:
                continue
    return found


def listen_url(host_setting: str | None, fallback: str) -> str:
    """The URL the panel asks a server listening on ``OLLAMA_HOST=host_setting`` at: a wildcard
    address is reached on loopback. ``fallback`` when the setting is not set."""
    url = address.from_ollama_host(host_setting) if host_setting else fallback
    scheme, rest = url.split("://", 1)
    hostport = rest.split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if host in ("0.0.0.0", "[::]"):
        host = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
    return f"{scheme}://{host}:{port}"
