"""The REST fallback's published health: a thread-safe board and the pure rule judging it.

The health probe must not misjudge a busy-but-working REST fallback. Asking the actor for
its health (:class:`~actors.messages.HealthRequest`) waits behind the host's requests in its
inbox, and a probe deadline shorter than that queue reads a working fallback as failing.
So the fallback *publishes* its health on a :class:`RestHealthBoard` (the tree shares one
across restarts) as each request begins and ends, and the probe reads a
:class:`RestHealthSnapshot` from it without queuing anywhere.

:func:`judge` is the rule (pure, on plain numbers)::

    a request in flight for >= stall seconds       FAILING  (no answer in time: the host's
                                                             calls have given up on it)
    an outcome (success or failure) within          OK if the last outcome was a success,
      the last ``recent`` seconds                   FAILING if it was a failure
    a request in flight, younger than ``stall``     UNKNOWN  (busy, not failing: no verdict)
    nothing recent, nothing in flight               CHECK    (idle: the caller makes one
                                                             real REST call of its own)

A probe raises :class:`RestFailing` (an :class:`~actors.errors.ActorError`) for a FAILING
verdict. ``InvalidRequest`` (the caller's mistake) ends a request without an outcome. Times are
monotonic seconds on one clock (the fallback's, which is the limiter's by default).
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, replace

from actors.errors import ActorError

__all__ = ["RestFailing", "RestHealthBoard", "RestHealthSnapshot", "Verdict", "judge"]


class RestFailing(ActorError):
    """The REST fallback's published health says it is failing (the verdict's reason)."""


class Verdict(enum.Enum):
    """What a probe makes of a :class:`RestHealthSnapshot`."""

    OK = "ok"
    FAILING = "failing"
    UNKNOWN = "unknown"
    CHECK = "check"


@dataclass(frozen=True, slots=True)
class RestHealthSnapshot:
    """The REST fallback's requests as last published (see the module docstring)."""

    last_success_at: float | None = None
    last_failure_at: float | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    oldest_in_flight_since: float | None = None
    """When the oldest request still running began (``None``: none is running)."""
    in_flight: int = 0


class RestHealthBoard:
    """Where the REST fallback publishes its requests; any thread may read it.

    ``begin(now)`` when a request is sent; ``succeeded``, ``failed`` or ``ended`` (no
    outcome) when it is over. Calls may overlap: ``oldest_in_flight_since`` is when the
    fallback last went from idle to busy, and stays until none is in flight.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot = RestHealthSnapshot()

    def begin(self, now: float) -> None:
        with self._lock:
            snap = self._snapshot
            since = now if snap.oldest_in_flight_since is None else snap.oldest_in_flight_since
            self._snapshot = replace(snap, in_flight=snap.in_flight + 1,
                                     oldest_in_flight_since=since)

    def succeeded(self, now: float) -> None:
        with self._lock:
            self._snapshot = _done(replace(self._snapshot, last_success_at=now,
                                           consecutive_failures=0))

    def failed(self, now: float, error: str) -> None:
        with self._lock:
            snap = self._snapshot
            self._snapshot = _done(replace(snap, last_failure_at=now, last_error=error,
                                           consecutive_failures=snap.consecutive_failures + 1))

    def ended(self) -> None:
        """A request ended without telling anything of REST (``InvalidRequest``, a crash)."""
        with self._lock:
            self._snapshot = _done(self._snapshot)

    def snapshot(self) -> RestHealthSnapshot:
        """The latest snapshot (replaced whole under the lock: one consistent version)."""
        return self._snapshot


def _done(snap: RestHealthSnapshot) -> RestHealthSnapshot:
    left = max(0, snap.in_flight - 1)
    return replace(snap, in_flight=left,
                   oldest_in_flight_since=snap.oldest_in_flight_since if left else None)


def judge(snap: RestHealthSnapshot, now: float, *, recent: float, stall: float
          ) -> tuple[Verdict, str]:
    """The verdict on ``snap`` at ``now`` and why (module docstring)."""
    since = snap.oldest_in_flight_since
    if since is not None and now - since >= stall:
        return Verdict.FAILING, f"a request has had no answer for {now - since:g} s"
    last_ok, last_bad = snap.last_success_at, snap.last_failure_at
    outcomes = [at for at in (last_ok, last_bad) if at is not None]
    if outcomes and now - max(outcomes) < recent:
        if snap.consecutive_failures == 0:
            return Verdict.OK, "answering"
        return Verdict.FAILING, (f"{snap.consecutive_failures} requests failed in a row: "
                                 f"{snap.last_error}")
    if since is not None:
        return Verdict.UNKNOWN, f"busy: a request running for {now - since:g} s"
    return Verdict.CHECK, "idle: no recent request"
