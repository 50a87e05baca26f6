"""Strict mapping → frozen dataclass conversion for ``config.yaml``.

Config is parsed once, into frozen dataclasses, and never silently: an unknown
key, a wrong type or an impossible value raises :class:`ConfigError` naming the
key path (``upbit.rest.read_timeout``) and the value that was given.

Supported field types: ``bool``, ``int``, ``float`` (an int is accepted),
``str``, ``Enum`` subclasses (by value), ``X | None``, ``tuple[X, ...]``,
``frozenset[X]`` and nested dataclasses. A field without a default is required.
A nested section given in part changes only its keys in the default it replaces (the
parent's default for that field): ``upbit.websocket.backoff: {cap: 5}`` keeps the rest
of the WebSocket client's reconnect backoff, its jitter too.
Dataclasses validate their own invariants in ``__post_init__`` by raising one of the
exception types passed as ``errors``; the exception names the bad field in a ``field``
attribute (``quotation.errors.InvalidValue``, ``supervisors.errors.SpecError``) or a
``parameter`` attribute (``quotation.errors.InvalidRequest``, for request parameters
such as subscriptions given in the file). The field joins onto the section's path, dotted
or indexed as the component wrote it (``liveness.ping_interval`` under ``upbit.websocket``
is ``upbit.websocket.liveness.ping_interval``), and the value shown is the one given at
that key. Only an exception that names no key of the section is reported at the section.

``fixed`` lists, per dataclass, fields that are not config keys: they keep the
component's default and giving one is an error (e.g. an exchange's hard limits).
"""

from __future__ import annotations

import dataclasses
import enum
import re
import reprlib
import types
import typing
from collections.abc import Collection, Mapping
from typing import Any, NamedTuple, TypeVar

from quotation.redact import redact_url

__all__ = ["MAX_SHOWN", "ConfigError", "from_mapping", "shown"]

T = TypeVar("T")


_NO_VALUE: Any = object()
"""``ConfigError``'s value when none was given (a file that cannot be read has none)."""


class ConfigError(ValueError):
    """A config value is wrong: ``path`` is the dotted key path, ``value`` what was given,
    ``file`` the file it was read from (if any; it leads the message).

    The message shows the value by :func:`shown`: short, and a URL's credentials hidden.
    """

    def __init__(
        self, path: str, message: str, value: object = _NO_VALUE, *, file: str | None = None
    ) -> None:
        message = _truncated(message, MAX_MESSAGE)
        got = "" if value is _NO_VALUE else f"got {shown(value)}"
        text = message if not got or got in message else f"{message} ({got})"  # value once
        super().__init__(f"{path}: {text}" if path else text)
        self.path = path
        self.value = None if value is _NO_VALUE else value
        self.file = file

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.file}: {text}" if self.file else text


MAX_SHOWN = 200
"""Most characters of a value a ``ConfigError`` shows (a longer one is cut, with ``...``)."""
MAX_MESSAGE = 500
"""Most characters of the message a ``ConfigError`` is given (a longer one is cut)."""

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel = 3
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = MAX_SHOWN
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = _SHOWN.maxfrozenset = 6


def shown(value: object) -> str:
    """``value`` as a ``ConfigError`` shows it: a ``repr`` of at most :data:`MAX_SHOWN`
    characters, built without ever writing out a big value in full, a URL's credentials
    redacted (:func:`quotation.redact.redact_url`)."""
    if isinstance(value, str | bytes):
        value = redact_url(value[: MAX_SHOWN * 2]) if isinstance(value, str) else value[:MAX_SHOWN]
    try:
        text = _SHOWN.repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        text = f"<{type(value).__name__}>"
    return _truncated(text, MAX_SHOWN)


def _truncated(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


class _Rules(NamedTuple):
    errors: tuple[type[Exception], ...]
    fixed: Mapping[type, Collection[str]]


def from_mapping(
    cls: type[T],
    data: object,
    path: str = "",
    *,
    errors: tuple[type[Exception], ...] = (ValueError, TypeError),
    fixed: Mapping[type, Collection[str]] | None = None,
) -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types.

    ``errors``: the exception types a dataclass raises for an impossible value
    (reported as ``ConfigError``). ``fixed``: per dataclass, fields that are not keys.
    """
    return _from_mapping(cls, data, path, _Rules(errors, fixed or {}))


def _from_mapping(cls: type[T], data: object, path: str, rules: _Rules, base: Any = None) -> T:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(path, "expected a mapping of keys", data)
    hints = typing.get_type_hints(cls)
    fixed = rules.fixed.get(cls, ())
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in fixed}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        key = unknown[0]
        if key in fixed:
            raise ConfigError(_join(path, str(key)), "fixed in the code, not a config key",
                              data[key])
        known = ", ".join(sorted(fields))
        raise ConfigError(_join(path, str(key)), f"unknown key (known keys: {known})", data[key])
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key_path = _join(path, name)
        hint = hints[name]
        if name in data and isinstance(data[name], Mapping | None) and _is_dataclass_type(hint):
            # A section given in part: its other keys keep the default it replaces.
            default = _default(field, base)
            kwargs[name] = _from_mapping(hint, data[name], key_path, rules,
                                         default if isinstance(default, hint) else None)
        elif name in data:
            kwargs[name] = _convert(hint, data[name], key_path, rules)
        elif base is None and (field.default is dataclasses.MISSING
                               and field.default_factory is dataclasses.MISSING):
            raise ConfigError(key_path, "required key is missing", None)
    try:
        return cls(**kwargs) if base is None else dataclasses.replace(base, **kwargs)
    except rules.errors as exc:
        named = getattr(exc, "field", None) or getattr(exc, "parameter", None)
        if isinstance(named, str) and re.split(r"[.\[]", named)[0] in fields:
            # The component named the bad field: report that key, and what was given there.
            value = _value_at(data, named, getattr(exc, "value", None))
            raise ConfigError(_join(path, named), str(exc), value) from exc
        raise ConfigError(path or cls.__name__, str(exc)) from exc


def _value_at(data: Mapping[Any, Any], field: str, default: object) -> object:
    """What ``data`` holds at the dotted ``field``; ``default`` if that is not a key path."""
    node: object = data
    for key in field.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def _is_dataclass_type(hint: object) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _default(field: dataclasses.Field[Any], base: object) -> object:
    """The value ``field`` takes when its key is missing: ``base``'s, else its own default."""
    if base is not None:
        return getattr(base, field.name)
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(hint: Any, value: object, path: str, rules: _Rules) -> object:  # noqa: PLR0911, PLR0912
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:
            try:
                return _convert(option, value, path, rules)
            except ConfigError:
                continue
        raise ConfigError(path, f"expected {_describe(hint)}", value)
    if origin in (tuple, frozenset):
        if not isinstance(value, list | tuple):
            raise ConfigError(path, f"expected a list for {_describe(hint)}", value)
        item = args[0]
        items = [_convert(item, v, f"{path}[{i}]", rules) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else frozenset(items)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _from_mapping(hint, value, path, rules)
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
