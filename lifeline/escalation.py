"""Log escalation: on entering Level 2 or 3, the ``lifeline``, ``actors`` and ``quotation``
loggers log at DEBUG for ``window`` seconds, then go back to what they were.

The levels these loggers had *of their own* (``logger.level``, ``NOTSET`` included: then
they inherit again) are saved when an escalation starts and restored when it ends. A
further change to Level 2 or 3 inside the window extends it to ``window`` seconds from that
change. The end is a timer on the injected clock (``schedule(at, action)``: the level
keeper's :meth:`~lifeline.keeper.LevelKeeper.call_at`); :meth:`LogEscalation.restore` ends
it at once (the system calls it on ``stop()``). A logger whose level someone else changed
during the window (no longer DEBUG) keeps that choice. The raise and the restore are logged
at WARNING and INFO on ``lifeline.escalation``.

Only the three loggers' own levels change: no handler is added or touched (the library
never configures logging), so a host whose handlers filter at INFO sees no more than before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from lifeline.levels import Level, LevelChange
from quotation.clock import Clock
from quotation.values import check

__all__ = ["DEBUG_WINDOW", "ESCALATED_LOGGERS", "LogEscalation"]

logger = logging.getLogger(__name__)

DEBUG_WINDOW = 300.0
"""Seconds the loggers stay at DEBUG after the last change to Level 2 or 3."""
ESCALATED_LOGGERS = ("lifeline", "actors", "quotation")


class LogEscalation:
    """See the module docstring. ``level_changed`` is a level-change callback."""

    def __init__(self, clock: Clock, *, schedule: Callable[[float, Callable[[], None]], None],
                 window: float = DEBUG_WINDOW,
                 loggers: tuple[str, ...] = ESCALATED_LOGGERS) -> None:
        check("window", window, above=0)
        self._clock = clock
        self._schedule = schedule
        self._window = window
        self._names = loggers
        self._lock = threading.Lock()
        self._saved: dict[str, int] | None = None
        self._until = float("-inf")

    @property
    def active_until(self) -> float | None:
        """When the loggers go back (monotonic), ``None`` when not escalated."""
        with self._lock:
            return self._until if self._saved is not None else None

    def level_changed(self, change: LevelChange) -> None:
        if change.new >= Level.FALLBACK:
            self.escalate(f"level {int(change.new)}: {change.reason}")

    def escalate(self, why: str) -> None:
        """Raise the loggers to DEBUG (or extend the window) from now."""
        with self._lock:
            until = self._clock.monotonic() + self._window
            first = self._saved is None
            if first:
                self._saved = {name: logging.getLogger(name).level for name in self._names}
                for name in self._names:
                    logging.getLogger(name).setLevel(logging.DEBUG)
            self._until = until
        self._schedule(until, self._expire)
        logger.warning("log escalation: %s at DEBUG for %g s (%s): %s", ", ".join(self._names),
                       self._window, "raised" if first else "extended", why)

    def restore(self) -> None:
        """End the escalation now (nothing if none)."""
        with self._lock:
            saved = self._put_back()
        self._log_restored(saved)

    def _expire(self) -> None:
        """The timer: restore unless the window was extended past now."""
        with self._lock:
            if self._clock.monotonic() < self._until:
                return
            saved = self._put_back()
        self._log_restored(saved)

    def _put_back(self) -> dict[str, int] | None:
        """(Under the lock.) The saved levels back on the loggers; what they were."""
        saved, self._saved = self._saved, None
        for name, level in (saved or {}).items():
            target = logging.getLogger(name)
            if target.level == logging.DEBUG:  # else someone chose another level meanwhile
                target.setLevel(level)
        return saved

    def _log_restored(self, saved: dict[str, int] | None) -> None:
        if saved is not None:
            logger.info("log escalation over: %s back to %s", ", ".join(saved),
                        ", ".join(logging.getLevelName(level) for level in saved.values()))
