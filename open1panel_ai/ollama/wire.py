"""Fitting Ollama's untrusted JSON to the contract's types (:mod:`hookspecs.ollama`).

What a server answers is checked against the TypedDict the provider declares, and passed on
as it came where it fits: keys the type does not declare stay as they are (servers add their
own), in their order. A declared key whose value has another type is left out; a value that
lacks a required key, or has it of another type, does not fit at all (None). Nothing is
converted, so what a well-behaved server sends reaches the API unchanged.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, NotRequired, Required, TypeVar, Union, cast, get_args, get_origin, get_type_hints

T = TypeVar("T")

#: Marks a value that does not fit.
_MISFIT = object()


@functools.cache
def _hints(shape: type) -> dict[str, Any]:
    return get_type_hints(shape)


def _fit(value: Any, expected: Any) -> Any:
    """``value`` fitted to ``expected`` (a TypedDict with only its fitting declared keys), or
    :data:`_MISFIT`."""
    origin = get_origin(expected)
    if expected is Any:
        return value
    if expected is None or expected is type(None):
        return value if value is None else _MISFIT
    if origin in (Required, NotRequired):
        return _fit(value, get_args(expected)[0])
    if origin in (Union, types.UnionType):
        for option in get_args(expected):
            fitted = _fit(value, option)
            if fitted is not _MISFIT:
                return fitted
        return _MISFIT
    if typing.is_typeddict(expected):
        return _fit_dict(value, expected)
    if origin is list:
        if not isinstance(value, list):
            return _MISFIT
        (item,) = get_args(expected) or (Any,)
        items = [_fit(entry, item) for entry in value]
        return _MISFIT if any(entry is _MISFIT for entry in items) else items
    if origin is dict:
        if not isinstance(value, dict):
            return _MISFIT
        key_type, value_type = get_args(expected) or (Any, Any)
        fits = all(
            _fit(key, key_type) is not _MISFIT and _fit(entry, value_type) is not _MISFIT
            for key, entry in value.items()
        )
        return value if fits else _MISFIT
    if expected is float:
        return value if isinstance(value, int | float) and not isinstance(value, bool) else _MISFIT
    if expected is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISFIT
    if isinstance(expected, type):
        return value if isinstance(value, expected) else _MISFIT
    raise TypeError(f"cannot fit a value to {expected!r}")


def _fit_dict(value: Any, shape: type) -> Any:
    if not isinstance(value, Mapping):
        return _MISFIT
    hints = _hints(shape)
    required: frozenset[str] = getattr(shape, "__required_keys__", frozenset())
    out: dict[str, Any] = {}
    for key, entry in value.items():
        if key not in hints:
            out[key] = entry
            continue
        fitted = _fit(entry, hints[key])
        if fitted is not _MISFIT:
            out[key] = fitted
        elif key in required:
            return _MISFIT
    if any(key not in out for key in required):
        return _MISFIT
    return out


def fit(value: Any, shape: type[T]) -> T | None:
    """``value`` as a ``shape`` (a TypedDict), or None when it cannot be one."""
    fitted = _fit_dict(value, shape)
    return None if fitted is _MISFIT else cast(T, fitted)


def fit_all(values: Any, shape: type[T]) -> list[T]:
    """The entries of the list ``values`` that fit ``shape``, each fitted; nothing when
    ``values`` is not a list."""
    if not isinstance(values, list):
        return []
    fitted = [fit(value, shape) for value in values]
    return [entry for entry in fitted if entry is not None]
