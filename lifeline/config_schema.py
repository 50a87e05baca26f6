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
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from quotation.redact import redact_url

__all__ = ["MAX_SHOWN", "ConfigError", "Problem", "count_line", "from_mapping", "shown"]

T = TypeVar("T")


_NO_VALUE: Any = object()
"""``ConfigError``'s value when none was given (a file that cannot be read has none)."""


class Problem(NamedTuple):
    """One thing wrong in a config: ``path`` the dotted key path (``""``: the file as a
    whole), ``message`` what is wrong there (the value shown in it), ``value`` what was given."""

    path: str
    message: str
    value: object = None

    def line(self, file: str | None = None) -> str:
        """``[file: ]path: message`` on one line (whitespace collapsed)."""
        text = f"{self.path}: {self.message}" if self.path else self.message
        text = " ".join(text.split())
        return f"{file}: {text}" if file else text


class ConfigError(ValueError):
    """A config is wrong: ``problems`` lists everything found wrong in it, in file order
    (unknown keys, wrong types, impossible values and combinations); ``path``, ``value``
    are the first problem's dotted key path and the value given there; ``file`` the file it
    was read from (if any; it leads every line). ``str()`` is one line per problem, then a
    count line when there are several.

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
        self.problems: tuple[Problem, ...] = (Problem(path, text, self.value),)

    @classmethod
    def of(cls, problems: Sequence[Problem], *, file: str | None = None) -> ConfigError:
        """One error carrying every problem in ``problems`` (at least one)."""
        if not problems:
            raise ValueError("ConfigError.of needs at least one problem")
        first = problems[0]
        error = cls(first.path, first.message, file=file)
        error.value = first.value
        error.problems = tuple(problems)
        return error

    def lines(self) -> list[str]:
        """One line per problem, each led by the file; a count line after several."""
        lines = [problem.line(self.file) for problem in self.problems]
        if len(lines) > 1:
            lines.append(count_line(len(lines), self.file))
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


def count_line(count: int, file: str | None = None) -> str:
    """``[file: ]N error(s)``: the line after a config's problems."""
    text = f"{count} error{'' if count == 1 else 's'}"
    return f"{file}: {text}" if file else text


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
    problems: list[Problem]
    """Every problem found so far, in the order found (file order, section by section)."""


class _Failed(Exception):
    """A section (or list) could not be built; its problems are already in ``_Rules.problems``."""


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
    One ``ConfigError`` carries every problem found (``ConfigError.problems``): the loader
    goes on past a bad key or section, building the rest with its defaults.
    """
    rules = _Rules(errors, fixed or {}, [])
    try:
        result = _from_mapping(cls, data, path, rules)
    except ConfigError as exc:  # ``data`` is not a mapping at all
        rules.problems.extend(exc.problems)
    except _Failed:
        pass
    if rules.problems:
        raise ConfigError.of(rules.problems)
    return result


def _from_mapping(cls: type[T], data: object, path: str, rules: _Rules, base: Any = None) -> T:
    """``cls`` built from ``data``; problems go to ``rules.problems`` and end in ``_Failed``.

    A key that is wrong is left out (its default is used) and recorded, and the others are
    still read, so one pass finds every unknown key and wrong type. The dataclass is then
    built; when it refuses a field (its ``__post_init__``), that field is recorded and left
    out too, and it is built again, until it accepts what is left: so every impossible value
    of a section is found, not only the first. A refusal that depends on a key already found
    wrong is not recorded: it would be about the default standing in for that key (the
    dependency is the exception's ``depends_on`` key paths, or a wrong key the message
    names). A section with any problem ends in ``_Failed``, so the rules of the sections
    around it that depend on it are skipped the same way.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(path, "expected a mapping of keys", data)
    fixed = rules.fixed.get(cls, ())
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in fixed}
    unknown = sorted(set(data) - set(fields), key=str)
    for key in unknown:
        what = ("fixed in the code, not a config key" if key in fixed
                else f"unknown key (known keys: {', '.join(sorted(fields))})")
        rules.problems.extend(ConfigError(_join(path, str(key)), what, data[key]).problems)
    kwargs, failed = _read_keys(cls, fields, data, path=path, rules=rules, base=base)
    built = _build(cls, fields, data, path=path, rules=rules, base=base, kwargs=kwargs,
                   failed=failed)
    if failed or unknown:
        raise _Failed
    return built


def _read_keys(
    cls: type, fields: Mapping[str, dataclasses.Field[Any]], data: Mapping[Any, Any], *,
    path: str, rules: _Rules, base: Any,
) -> tuple[dict[str, Any], set[str]]:
    """The keyword arguments ``data`` gives for ``fields``, and the fields found wrong."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    failed: set[str] = set()
    for name, field in fields.items():
        key_path = _join(path, name)
        hint = hints[name]
        try:
            if name in data and isinstance(data[name], Mapping | None) and (
                    _is_dataclass_type(hint)):
                # A section given in part: its other keys keep the default it replaces.
                default = _default(field, base)
                kwargs[name] = _from_mapping(hint, data[name], key_path, rules,
                                             default if isinstance(default, hint) else None)
            elif name in data:
                kwargs[name] = _convert(hint, data[name], key_path, rules)
            elif base is None and _required(field):
                rules.problems.extend(
                    ConfigError(key_path, "required key is missing", None).problems)
                failed.add(name)
        except ConfigError as exc:
            rules.problems.extend(exc.problems)
            failed.add(name)
        except _Failed:
            failed.add(name)
    return kwargs, failed


def _build(
    cls: type[T], fields: Mapping[str, dataclasses.Field[Any]], data: Mapping[Any, Any], *,
    path: str, rules: _Rules, base: Any, kwargs: dict[str, Any], failed: set[str],
) -> T:
    """``cls`` built from ``kwargs``, each field it refuses recorded, left out and ``failed``."""
    if base is None and any(_required(fields[name]) for name in failed):
        raise _Failed  # cannot be built without it
    for _attempt in range(len(fields) + 1):
        try:
            built: T = cls(**kwargs) if base is None else dataclasses.replace(base, **kwargs)
        except rules.errors as exc:
            named = getattr(exc, "field", None) or getattr(exc, "parameter", None)
            if not isinstance(named, str) or (root := re.split(r"[.\[]", named)[0]) not in fields:
                if not failed:  # else it may be about a default standing in for a wrong key
                    rules.problems.extend(ConfigError(path or cls.__name__, str(exc)).problems)
                raise _Failed from None
            if root not in failed and not _depends_on_failed(exc, failed):
                # The component named the bad field: report that key, and what was given there.
                value = _value_at(data, named, getattr(exc, "value", None))
                rules.problems.extend(ConfigError(_join(path, named), str(exc), value).problems)
            failed.add(root)
            if root not in kwargs or _required(fields[root]):
                raise _Failed from None  # leaving it out cannot help
            del kwargs[root]
        else:
            return built
    raise _Failed


def _required(field: dataclasses.Field[Any]) -> bool:
    return (field.default is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING)


def _depends_on_failed(exc: Exception, failed: Collection[str]) -> bool:
    """Whether the refusal ``exc`` depends on a key in ``failed`` (the section's keys found
    wrong): one of its ``depends_on`` key paths starts there, or its message names it."""
    depends_on = getattr(exc, "depends_on", ())
    roots = {re.split(r"[.\[]", key)[0] for key in depends_on if isinstance(key, str)}
    if roots & set(failed):
        return True
    text = str(exc)
    return any(re.search(rf"(?<![\w.]){re.escape(name)}\b", text) for name in failed)


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
        return _convert_union(hint, [a for a in args if a is not type(None)], value, path,
                              rules)
    if origin in (tuple, frozenset):
        items = _convert_items(hint, args[0], value, path, rules)
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


def _convert_union(hint: Any, options: list[Any], value: object, path: str,
                   rules: _Rules) -> object:
    tried: list[Problem] = []
    for option in options:
        scratch = rules._replace(problems=[])  # an option that fails reports nothing
        try:
            return _convert(option, value, path, scratch)
        except ConfigError as exc:
            tried.extend(exc.problems)
        except _Failed:
            tried.extend(scratch.problems)
    if len(options) == 1 and tried:  # X | None: what was wrong with it as an X
        rules.problems.extend(tried)
        raise _Failed
    raise ConfigError(path, f"expected {_describe(hint)}", value)


def _convert_items(hint: Any, item: Any, value: object, path: str, rules: _Rules) -> list[object]:
    """The items of the list ``value``, each converted; every bad item is reported."""
    if not isinstance(value, list | tuple):
        raise ConfigError(path, f"expected a list for {_describe(hint)}", value)
    items: list[object] = []
    bad = False
    for i, v in enumerate(value):
        try:
            items.append(_convert(item, v, f"{path}[{i}]", rules))
        except ConfigError as exc:
            rules.problems.extend(exc.problems)
            bad = True
        except _Failed:
            bad = True
    if bad:
        raise _Failed
    return items
