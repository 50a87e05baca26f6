"""One way to say "this value is wrong": range checks for settings, raising ``InvalidValue``.

Every frozen settings dataclass checks its fields with :func:`check` in ``__post_init__``::

    check("read_timeout", self.read_timeout, above=0)          # "read_timeout must be > 0"
    check("pool_size", self.pool_size, at_least=1, integer=True)

The error names the field and the value given (``InvalidValue.field``, ``.value``), so the
config loader can report the full key path (``upbit.rest.read_timeout``). NaN and the
infinities are refused unless ``finite=False``; booleans are never numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from quotation.errors import InvalidValue

__all__ = ["check", "check_all"]


def check(
    field: str,
    value: object,
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    integer: bool = False,
    finite: bool = True,
) -> None:
    """Raise :class:`InvalidValue` naming ``field`` unless ``value`` is a number in range.

    ``above``: strictly greater; ``at_least``/``at_most``: inclusive bounds; ``integer``:
    an ``int`` is required; ``finite``: NaN and ±inf are refused (NaN always is).
    """
    if integer:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValue(f"{field} must be an integer, got {value!r}",
                               field=field, value=value)
    elif isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidValue(f"{field} must be a number, got {value!r}", field=field, value=value)
    number = float(value)
    if finite and math.isinf(number):
        raise InvalidValue(f"{field} must be finite, got {value!r}", field=field, value=value)
    for bound, holds, sign in (
        (above, above is None or number > above, ">"),
        (at_least, at_least is None or number >= at_least, ">="),
        (at_most, at_most is None or number <= at_most, "<="),
    ):
        if not holds and bound is not None:
            raise InvalidValue(f"{field} must be {sign} {_show(bound)}, got {value!r}",
                               field=field, value=value)


def check_all(
    owner: object,
    fields: Iterable[str],
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    integer: bool = False,
    finite: bool = True,
) -> None:
    """:func:`check` each attribute of ``owner`` named in ``fields`` with the same bounds."""
    for name in fields:
        check(name, getattr(owner, name), above=above, at_least=at_least, at_most=at_most,
              integer=integer, finite=finite)


def _show(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)
