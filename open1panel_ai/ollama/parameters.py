"""Ollama's model parameters: the documented names and the type of each.

The same names serve as a chat's ``options`` and as a model's ``parameters`` in ``create``
(Ollama's ``api.Options`` and its runner options; see Ollama's ``docs/modelfile.md`` and
``api/types.go``). Values are checked here before anything is sent, so a typo such as
``temprature`` or a text where a number belongs is a 400 that names the field, instead of a
request Ollama refuses or, worse, silently ignores.

Show answers parameters as text, one ``name value`` pair per line (one line per stop word);
:func:`parse_show_text` reads that back into the same typed form.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from open1panel_ai import errors
from open1panel_ai.i18n import Message

INT, FLOAT, BOOL, TEXTS = "integer", "number", "boolean", "list of text"

#: Every parameter Ollama documents, with its type. ``stop`` takes one or several texts.
PARAMETERS: dict[str, str] = {
    # sampling and prediction (api.Options)
    "num_keep": INT,
    "seed": INT,
    "num_predict": INT,
    "top_k": INT,
    "top_p": FLOAT,
    "min_p": FLOAT,
    "typical_p": FLOAT,
    "repeat_last_n": INT,
    "temperature": FLOAT,
    "repeat_penalty": FLOAT,
    "presence_penalty": FLOAT,
    "frequency_penalty": FLOAT,
    "stop": TEXTS,
    # the runner (api.Runner)
    "num_ctx": INT,
    "num_batch": INT,
    "num_gpu": INT,
    "main_gpu": INT,
    "use_mmap": BOOL,
    "num_thread": INT,
}
#: The longest stop word, and the most of them, that are accepted.
STOP_LENGTH = 200
STOP_COUNT = 16


def check(values: Any, field: str) -> dict[str, Any]:
    """``values`` (a JSON object) as parameters, each of its documented type: integers may
    not be written as ``1.5`` nor as text, numbers must be finite, ``stop`` is a text or a
    list of texts (returned as a list).

    :raise errors.BadRequest: with ``details.fields[field][name]`` saying what is wrong for
        each bad entry (an unknown name lists the known ones).
    """
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        message = Message("ollama.parameters.not_object")
        raise errors.BadRequest(message, code="validation_error", details={"fields": {field: [message]}})
    checked, problems = {}, {}
    for name, value in values.items():
        kind = PARAMETERS.get(name)
        if kind is None:
            problems[name] = [
                Message("ollama.parameters.unknown", name=str(name)[:40], known=", ".join(sorted(PARAMETERS)))
            ]
            continue
        try:
            checked[name] = _typed(kind, value)
        except ValueError:
            problems[name] = [Message("ollama.parameters.wrong_type", name=name, type=kind)]
    if problems:
        raise errors.BadRequest(
            Message("ollama.parameters.invalid", names=", ".join(problems)),
            code="validation_error",
            details={"fields": {field: problems}},
        )
    return checked


def _typed(kind: str, value: Any) -> Any:
    if kind == BOOL:
        if isinstance(value, bool):
            return value
        raise ValueError
    if isinstance(value, bool):
        raise ValueError  # True is an int to Python, never a number to Ollama
    if kind == INT:
        if isinstance(value, int) and abs(value) < 2**31:
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**31:
            return int(value)
        raise ValueError
    if kind == FLOAT:
        if isinstance(value, (int, float)) and math.isfinite(value):
            return value
        raise ValueError
    # stop: a text or a list of texts, each on one line
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list)
        or not 0 < len(items) <= STOP_COUNT
        or not all(
            isinstance(item, str) and 0 < len(item) <= STOP_LENGTH and not any(ch in item for ch in "\r\n\x00")
            for item in items
        )
    ):
        raise ValueError
    return list(items)


def parse_show_text(text: str | None) -> dict[str, Any]:
    """The parameters of a show answer (``stop "<|eot_id|>"`` lines) as typed values. What
    Ollama wrote is untrusted: lines of unknown names or of values that do not read as their
    type are left out rather than guessed at."""
    parsed: dict[str, Any] = {}
    for line in (text or "").splitlines():
        name, _, raw = line.strip().partition(" ")
        kind = PARAMETERS.get(name)
        raw = raw.strip()
        if kind is None or not raw:
            continue
        try:
            value = json.loads(raw) if raw[0] in '"-0123456789tf' else raw
        except ValueError:
            value = raw
        if kind == TEXTS:
            if isinstance(value, str):
                parsed.setdefault(name, []).append(value)
            continue
        try:
            parsed[name] = _typed(kind, value)
        except ValueError:
            continue
    if "stop" in parsed:
        try:
            parsed["stop"] = _typed(TEXTS, parsed["stop"])
        except ValueError:
            del parsed["stop"]
    return parsed
