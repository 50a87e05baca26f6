"""Strict mapping → frozen dataclass conversion for ``config.yaml``.

Config is parsed once, into frozen dataclasses, and never silently: an unknown
key, a wrong type or an impossible value raises :class:`ConfigError` naming the
key path (``upbit.rest.read_timeout``) and the value that was given.

Supported field types: ``bool``, ``int``, ``float`` (an int is accepted),
``str``, ``Enum`` subclasses (by value), ``X | None``, ``tuple[X, ...]``,
``frozenset[X]`` and nested dataclasses. A field without a default is required.
Dataclasses may validate their own invariants in ``__post_init__`` by raising
``ValueError``; the message is reported with the key path.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["ConfigError", "from_mapping"]

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value is wrong: ``path`` is the dotted key path, ``value`` what was given."""

    def __init__(self, path: str, message: str, value: object = None) -> None:
        super().__init__(f"{path}: {message} (got {value!r})" if path else message)
        self.path = path
        self.value = value


def from_mapping(cls: type[T], data: object, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(path, "expected a mapping of keys", data)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(_join(path, str(unknown[0])), f"unknown key (known keys: {known})",
                          data[unknown[0]])
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key_path = _join(path, name)
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], key_path)
        elif (field.default is dataclasses.MISSING
              and field.default_factory is dataclasses.MISSING):
            raise ConfigError(key_path, "required key is missing", None)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(path or cls.__name__, str(exc), dict(data)) from exc


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(hint: Any, value: object, path: str) -> object:  # noqa: PLR0911, PLR0912
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:
            try:
                return _convert(option, value, path)
            except ConfigError:
                continue
        raise ConfigError(path, f"expected {_describe(hint)}", value)
    if origin in (tuple, frozenset):
        if not isinstance(value, list | tuple):
            raise ConfigError(path, f"expected a list for {_describe(hint)}", value)
        item = args[0]
        items = [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else frozenset(items)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, path)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in hint)
            raise ConfigError(path, f"expected one of {choices}", value) from None
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, "expected true or false", value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(path, "expected an integer", value)
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(path, "expected a number", value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, "expected a string", value)
    raise TypeError(f"{path}: unsupported config field type {hint!r}")


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
