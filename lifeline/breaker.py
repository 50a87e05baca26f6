"""The router circuit breaker: when the smart router keeps failing requests, route around it.

A routing rule, not a level rule (levels stay the health probe's job, :mod:`lifeline.levels`):
at Level 0/1 a router that failed the last ``trip_after`` requests would cost every further
request a futile hop (its failed ask, then the REST fallback's), and a trading host expects
the next request not to pay it. So::

    closed     every request asks the router first (the usual router_timeout hedge);
               a router failure on a request (it raised, crashed / was unavailable, or did
               not answer within router_timeout; never an InvalidRequest) adds one to the
               failures in a row, a router success sets them to 0;
               trip_after failures in a row -> open
    open       requests skip the router and go straight to the REST fallback, until
               open_until = the time it opened + backoff.delay(openings in a row)
    half_open  (now >= open_until) the next request is the one trial: it asks the router
               with the usual hedge; other requests meanwhile still skip it.
               trial succeeds -> closed (failures and openings back to 0)
               trial fails    -> open again, for the next, longer delay
               trial neither (InvalidRequest) -> still half_open, the next request tries

Results of requests admitted while closed that come back once the breaker has opened do not
count (the breaker already acted on failures; the trial decides); a success always closes.

Defaults, stated once here and derived from :class:`~lifeline.settings.FallbackSettings`
(no config keys of its own: issue 9 fixes the ``fallback:`` keys):
``trip_after`` :data:`TRIP_AFTER` (2); the first cooldown = ``probe_interval`` (the router is
retried at least as often as the probe tests it), doubling per failed trial up to
:data:`CAP_INTERVALS` (8) probe intervals (:class:`quotation.backoff.Backoff`, no jitter).

Pure: ``now`` is an argument (the facade passes its clock's ``monotonic()``), no clock, no
I/O; the state is guarded by a lock because the facade calls it from every host thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import Enum, StrEnum

from lifeline.settings import FallbackSettings
from quotation.backoff import Backoff, Jitter
from quotation.values import check

__all__ = ["CAP_INTERVALS", "TRIP_AFTER", "BreakerState", "BreakerView", "Route",
           "RouterBreaker"]

TRIP_AFTER = 2
"""Router failures on requests in a row that open the breaker."""
CAP_INTERVALS = 8.0
"""The longest open period, in probe intervals (the first is one probe interval)."""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Route(Enum):
    """What :meth:`RouterBreaker.route` tells one request to do."""

    ROUTER = "router"
    """Closed: ask the router (with the hedge)."""
    TRIAL = "trial"
    """Half-open: this request is the one trial of the router (with the hedge); report its
    outcome with ``trial=True``."""
    REST = "rest"
    """Open, or a trial is in flight: straight to the REST fallback."""


@dataclass(frozen=True, slots=True)
class BreakerView:
    """The breaker at ``now`` (``to_dict()`` is JSON-able)."""

    state: BreakerState
    failures: int
    """Router failures on requests in a row."""
    open_until: float | None
    """When (the facade's monotonic clock) the router is tried again; None when closed."""

    def to_dict(self) -> dict[str, object]:
        return {"state": self.state.value, "failures": self.failures,
                "open_until": self.open_until}


class RouterBreaker:
    """The rule in the module docstring; one per facade."""

    __slots__ = ("_backoff", "_failures", "_lock", "_open_until", "_openings", "_state",
                 "_trial_out", "trip_after")

    def __init__(self, *, backoff: Backoff, trip_after: int = TRIP_AFTER) -> None:
        check("trip_after", trip_after, at_least=1, integer=True)
        self.trip_after = trip_after
        self._backoff = backoff
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._openings = 0
        self._open_until: float | None = None
        self._trial_out = False

    @classmethod
    def from_settings(cls, fallback: FallbackSettings) -> RouterBreaker:
        """The defaults: trip after :data:`TRIP_AFTER`, open for ``probe_interval`` doubling
        to :data:`CAP_INTERVALS` x ``probe_interval``."""
        interval = fallback.probe_interval
        return cls(backoff=Backoff(initial=interval, multiplier=2.0,
                                   cap=CAP_INTERVALS * interval, jitter=Jitter.NONE))

    def route(self, now: float) -> Route:
        """Where one request goes at ``now``; a :attr:`Route.TRIAL` must be reported."""
        state = self._state
        if state is BreakerState.CLOSED:  # the common case: one read, no lock
            return Route.ROUTER
        if state is BreakerState.OPEN:  # open and not yet due: no lock either
            until = self._open_until  # read after the state: a stale one is only earlier
            if until is not None and now < until:
                return Route.REST
        return self._route_locked(now)

    def _route_locked(self, now: float) -> Route:
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return Route.ROUTER
            if self._state is BreakerState.OPEN:
                if self._open_until is not None and now < self._open_until:
                    return Route.REST
                self._state = BreakerState.HALF_OPEN
            if self._trial_out:
                return Route.REST
            self._trial_out = True
            return Route.TRIAL

    def success(self, now: float, *, trial: bool = False) -> None:
        """The router answered a request well within ``router_timeout``: closed."""
        if self._state is BreakerState.CLOSED and self._failures == 0:
            return  # the common case: nothing to change, no lock
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._openings = 0
            self._open_until = None
            self._trial_out = False

    def failure(self, now: float, *, trial: bool = False) -> None:
        """The router failed a request (raised, crashed, unavailable, or no answer within
        ``router_timeout``); never an ``InvalidRequest``."""
        with self._lock:
            if trial:
                if self._state is not BreakerState.HALF_OPEN or not self._trial_out:
                    return  # a success closed it meanwhile
                self._failures += 1
                self._open(now)
            elif self._state is BreakerState.CLOSED:
                self._failures += 1
                if self._failures >= self.trip_after:
                    self._open(now)

    def neutral(self, now: float, *, trial: bool = False) -> None:
        """The request told nothing of the router (an ``InvalidRequest``): a trial is given
        back, so the next request tries."""
        if trial:
            with self._lock:
                self._trial_out = False

    def reset(self) -> None:
        """Closed, as new (the router was trusted again by the level rules)."""
        self.success(0.0)

    def view(self, now: float) -> BreakerView:
        with self._lock:
            state = self._state
            if (state is BreakerState.OPEN and self._open_until is not None
                    and now >= self._open_until):
                state = BreakerState.HALF_OPEN  # the next request is the trial
            return BreakerView(state, self._failures, self._open_until)

    def _open(self, now: float) -> None:
        self._openings += 1
        self._state = BreakerState.OPEN
        self._open_until = now + self._backoff.delay(self._openings)
        self._trial_out = False
