"""The one exception tree of the ``lifeline`` application (besides the config's own).

::

    LifelineError                 base of the errors the facade raises itself
    ├── MarketDataUnavailable     Level 3 (or every live source failed) and nothing known is
    │                             young enough: names what was asked (``kind``, ``markets``)
    │                             and the age of what we had (``age``, ``None``: nothing)
    └── SystemNotRunning          a read before ``start()`` or after ``stop()``

:class:`~lifeline.config_schema.ConfigError` (a bad ``config.yaml``) stays in the config
modules. ``quotation.errors.InvalidRequest`` (the caller's mistake) reaches the host
unchanged, and ``actors.faults.FaultsDisabled`` is what ``system.faults`` raises while
``faults.enabled`` is false.
"""

from __future__ import annotations

__all__ = ["LifelineError", "MarketDataUnavailable", "SystemNotRunning"]


class LifelineError(Exception):
    """Base class of the errors raised by the lifeline application itself."""


class MarketDataUnavailable(LifelineError):
    """No source could answer and nothing known is fresh enough to serve as stale.

    ``kind`` is the request kind (``ticker``, ``candles``, ``trades``, ``orderbook``),
    ``markets`` the markets asked, ``age`` the age in seconds of the last known good data
    we had (``None``: none at all), ``max_stale_age`` the limit it exceeded.
    """

    def __init__(self, message: str, *, kind: str, markets: tuple[str, ...],
                 age: float | None, max_stale_age: float) -> None:
        super().__init__(message)
        self.kind = kind
        self.markets = markets
        self.age = age
        self.max_stale_age = max_stale_age


class SystemNotRunning(LifelineError):
    """The system is not running: ``start()`` it first (or it was stopped)."""
