"""Ollama model names: ``[host/][namespace/]model[:tag]``, as Ollama validates them.

People paste what they typed in a terminal (``ollama run llama3.2``), so that prefix is
stripped. Names compare case-insensitively; the short form drops the default host and
namespace, as ``/api/tags`` shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard

from open1panel_ai.i18n import Message

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_MODEL = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"
_NAME = re.compile(
    r"^(?:(?P<host>[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349})/)??"
    r"(?:(?P<namespace>[A-Za-z0-9_][A-Za-z0-9_-]{0,79})/)?"
    rf"(?P<model>{_MODEL})(?::(?P<tag>{_MODEL}))?$"
)
_COMMAND = re.compile(r"^\s*ollama\s+(?:run|pull)\s+", re.IGNORECASE)


class InvalidModelName(ValueError):
    """The text is not a model name Ollama would accept."""


@dataclass(frozen=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def short(self) -> str:
        """The display form: ``llama3.2:latest``, ``hf.co/user/repo:Q4_K_M``."""
        prefix = "" if self.host.lower() == DEFAULT_HOST else f"{self.host}/"
        if prefix or self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix += f"{self.namespace}/"
        return f"{prefix}{self.model}:{self.tag}"

    @property
    def key(self) -> str:
        """The case-insensitive identity of the model, readable as its display form
        (``llama3.2:latest``): the short form drops only defaults, so it stays unique."""
        return self.short.lower()


def is_valid(text: object) -> TypeGuard[str]:
    """Whether ``text``, as it came back from a server, is a model name exactly as the grammar
    has it: nothing stripped or cleaned first. What Ollama lists is untrusted (a server at an
    endpoint may be hostile), and no part of a valid name can be ``.`` or ``..``, so a valid
    name cannot climb out of a URL path it is put in."""
    return isinstance(text, str) and _NAME.fullmatch(text) is not None


def parse(text: str) -> ModelName:
    """Parse a model name a person typed or pasted; raise :class:`InvalidModelName`."""
    cleaned = _COMMAND.sub("", (text or "").strip()).strip()
    match = _NAME.match(cleaned)
    if not match:
        raise InvalidModelName(Message("ollama.error.invalid_model_name", text=(text or "").strip()))
    parts = match.groupdict()
    return ModelName(
        parts["host"] or DEFAULT_HOST,
        parts["namespace"] or DEFAULT_NAMESPACE,
        parts["model"],
        parts["tag"] or DEFAULT_TAG,
    )
