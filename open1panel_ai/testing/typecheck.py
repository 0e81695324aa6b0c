"""Checking a value against a type of the contract at run time: the kit's "declared types" rule.

Only what the contract's types use is understood: ``None``, ``str``, ``int``, ``float`` (an
``int`` is a ``float``; a ``bool`` is neither), ``bool``, ``Any``, ``Literal``, unions,
``list``, ``tuple``, ``dict`` and ``Mapping``, TypedDicts (keys a TypedDict does not declare are
allowed: servers add their own) and dataclasses.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin, get_type_hints


def problems(value: Any, expected: Any, where: str = "result") -> list[str]:
    """Every way ``value`` differs from ``expected``, each naming the path to the bad part;
    empty when it conforms."""
    origin = get_origin(expected)
    if expected is Any:
        return []
    if expected is None or expected is type(None):
        return [] if value is None else [f"{where} is {value!r}, not None"]
    if origin in (Union, types.UnionType):
        options = [problems(value, option, where) for option in get_args(expected)]
        if any(not found for found in options):
            return []
        return [f"{where} is {_short(value)}, not {_name(expected)}"]
    if origin is Literal:
        return [] if value in get_args(expected) else [f"{where} is {value!r}, not one of {get_args(expected)}"]
    if origin in (Required, NotRequired):
        return problems(value, get_args(expected)[0], where)
    if typing.is_typeddict(expected):
        return _typeddict(value, expected, where)
    if dataclasses.is_dataclass(expected) and isinstance(expected, type):
        if not isinstance(value, expected):
            return [f"{where} is {_short(value)}, not a {expected.__name__}"]
        hints = get_type_hints(expected)
        return [
            p
            for f in dataclasses.fields(expected)
            for p in problems(getattr(value, f.name), hints[f.name], f"{where}.{f.name}")
        ]
    if origin in (list, tuple):
        if not isinstance(value, origin):
            return [f"{where} is {_short(value)}, not a {origin.__name__}"]
        args = get_args(expected)
        item = args[0] if args else Any
        return [p for i, entry in enumerate(value) for p in problems(entry, item, f"{where}[{i}]")]
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            return [f"{where} is {_short(value)}, not a mapping"]
        key_type, value_type = get_args(expected) or (Any, Any)
        return [
            p
            for key, entry in value.items()
            for p in problems(key, key_type, f"{where} key {key!r}") + problems(entry, value_type, f"{where}[{key!r}]")
        ]
    if expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where} is {_short(value)}, not a number"]
    if expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where} is {_short(value)}, not an int"]
    if isinstance(expected, type):
        return [] if isinstance(value, expected) else [f"{where} is {_short(value)}, not a {expected.__name__}"]
    raise TypeError(f"the kit cannot check {expected!r}")


def _typeddict(value: Any, expected: Any, where: str) -> list[str]:
    if not isinstance(value, Mapping):
        return [f"{where} is {_short(value)}, not a {expected.__name__} (a dict)"]
    hints = get_type_hints(expected)
    found = [
        f"{where} has no {key!r} ({expected.__name__} requires it)"
        for key in sorted(expected.__required_keys__)
        if key not in value
    ]
    for key, hint in hints.items():
        if key in value:
            found += problems(value[key], hint, f"{where}[{key!r}]")
    return found


def _name(expected: Any) -> str:
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")


def _short(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '…' if len(text) > 60 else text}"
