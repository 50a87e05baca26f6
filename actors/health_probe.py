"""The health probe: probes the router and the fallbacks on an interval and reports.

:class:`HealthProbe` knows no actor: it is given callables (the application binds them to
the supervised children by id) and a ``report`` callable where every :class:`ProbeReport`
goes. On each :class:`~actors.messages.Probe` it

1. consults its fault point (``probe``);
2. calls ``probe_router`` (the seed's probe: a ticker of ``probe_market``), ``probe_rest``
   and ``check_ws`` at once, each on a short-lived thread of its own, and waits for all of
   them until ``deadline`` seconds on the injected clock have passed;
3. counts router failures in a row and the time since the last router success;
4. samples process memory and CPU (``sampler``) and the shared limiter's headroom;
5. hands the report to ``report`` (and answers it, when the probe was asked).

Outcomes of one call::

    returned within the deadline           ok (check_ws: ok only if it returned True)
    returned a NoVerdict (probe_rest)      not judged: the report's ``rest_ok`` is None and
                                           ``rest_error`` the reason (e.g. the REST fallback
                                           is busy with a request still in time)
    raised                                 failed, the error named (a Banned error's
                                           ``until`` is the REST ban's end)
    returned after the deadline            failed ("answered after ... s")
    not returned by the deadline           failed ("no answer within ... s"); the call goes
                                           on on its thread, and until it returns that
                                           target is not called again: the next probe fails
                                           it at once ("the previous probe has not
                                           returned"), so a hung target costs one thread
    ``deadline`` is exact: an answer that took exactly ``deadline`` seconds is late.

A fault injected at ``probe`` (:mod:`actors.faults`) strikes the probe, not the router:

    raise          the report says the probe itself failed (``probe_error``, ``router_ok``
                   None: nothing is known of the router, so it is not blamed); the
                   failures in a row are left as they were and the time since the last
                   success keeps growing; nothing is called
    crash          the actor dies (``on_failure``): escapes a told Probe; an asked one
                   tells itself CrashNow (the crash contract) and the asker sees the crash;
                   a CrashNow this instance did not tell itself (a predecessor's, moved to
                   it by a supervisor) is ignored: one crash, one death
    hang           the actor's thread blocks until the injection ends: it answers nothing,
                   so its supervisor's liveness ping finds it hung
    delay          the probe starts ``seconds`` later on the clock
    memory_growth  the board holds memory; the report's ``rss_mb`` shows it
    fail_start     (at ``start``) on_start fails before anything is opened

Timing. With an ``interval``, a :class:`Ticker` thread started in ``on_start`` tells
``Probe()`` whenever the clock reaches the next multiple of ``interval`` after the start
(``clock.sleep`` between: a blocking fake clock makes each tick a test's ``advance``); it
keeps at most one tick waiting in the inbox, so a slow or hung probe never piles them up.
``interval=None`` makes no ticker: probes happen only when told or asked.

Backoff. An optional ``pace`` callable (the level keeper's, bound by the application) answers
the factor (>= 1) the interval is stretched by now; the ticker asks it at every multiple of
``interval`` and tells a probe only once ``pace() × interval`` has passed since the last
tick (within :data:`PACE_TOLERANCE` of an interval), so the ticks stay on the same grid and a
factor that falls back to 1 takes effect within one ``interval``. A ``pace`` that raises or
answers less than 1 (or not a number) counts as 1 (logged once). The wait for the
calls reads the injected clock every :data:`DEADLINE_POLL_SECONDS` of real time, and the
actor's thread is busy for up to ``deadline`` per probe: a supervisor's liveness deadline
must be longer. ``deadline`` defaults to ``interval`` and may not exceed it.

``report`` runs on the actor's thread after every probe: it must only hand the report on
(a ``tell``, a queue put), never wait on an actor; if it raises, the probe actor fails (a
told probe) or the asker gets the error: a broken glue is seen, not hidden.

Threads: ``on_stop`` and ``on_failure`` stop the ticker (it ends when its current sleep
does, without telling) and leave the call threads to end when their calls return (the
application's callables are bounded by their own ask timeouts). The counters live in the
actor: a restarted probe starts from zero and measures "since the last success" from its
start, as the level rules do before their first success.

Logging (logger ``actors.health_probe``): DEBUG per report, INFO when the router probe
turns failing or succeeds again, WARNING when a call is still running at the next probe.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.faults import ActorName, CrashNow, FaultBoard, FaultPoint, InjectedCrash, InjectedFault
from actors.messages import FallbackReport, Probe, ProbeReport
from quotation.clock import Clock, SystemClock
from quotation.errors import Banned, InvalidValue
from quotation.rest.ratelimit import RateLimiter
from quotation.values import check

__all__ = [
    "DEADLINE_POLL_SECONDS",
    "PACE_TOLERANCE",
    "HealthProbe",
    "NoVerdict",
    "Pace",
    "ProcessSample",
    "Sampler",
    "Ticker",
    "sample_process",
]

logger = logging.getLogger(__name__)

DEADLINE_POLL_SECONDS = 0.02
"""How often (real seconds) a probe waiting for its calls re-reads the injected clock."""

PACE_TOLERANCE = 1e-6
"""The share of an interval by which a paced tick may come early (float sums on the grid)."""

_MIB = float(1 << 20)

Pace = Callable[[], float]
"""The factor (>= 1) the probe interval is stretched by now (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class NoVerdict:
    """What ``probe_rest`` returns when it cannot judge the REST fallback this time (it is
    busy with a request still in time): neither a success nor a failure."""

    reason: str


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """The process's resident memory (bytes; ``None`` where unknown) and CPU time so far."""

    rss_bytes: int | None
    cpu_seconds: float


Sampler = Callable[[], ProcessSample]
"""Where memory and CPU readings come from (:func:`sample_process` by default)."""


def sample_process() -> ProcessSample:
    """This process now: RSS from ``/proc/self/statm`` × the page size (``None`` where that
    file does not exist), CPU from ``time.process_time()`` (user + system, all threads)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        rss: int | None = resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss = None
    return ProcessSample(rss, time.process_time())


class Ticker:
    """Tells ``Probe()`` to ``ref`` each time ``clock`` reaches the next multiple of
    ``interval`` after ``start`` (and, with ``pace``, ``pace() × interval`` has passed since
    the last tick), from a daemon thread, keeping at most one tick unhandled."""

    def __init__(
        self, clock: Clock, interval: float, ref: pykka.ActorRef[Any], *, start: float,
        name: str = "health_probe-ticker", pace: Pace | None = None,
    ) -> None:
        self._clock = clock
        self._interval = interval
        self._ref = ref
        self._pace = pace
        self._pace_failed = False
        self._next_at = start + interval
        self._last_at = start
        self._stopped = threading.Event()
        self._pending = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """No more ticks; the thread ends when its current sleep does."""
        self._stopped.set()

    def taken(self) -> None:
        """The actor took a tick up: the next one may be told."""
        self._pending.clear()

    def factor(self) -> float:
        """What ``pace`` says now, as a factor >= 1 (1 without one, or when it fails)."""
        if self._pace is None:
            return 1.0
        try:
            factor = float(self._pace())
        except Exception:  # noqa: BLE001 - a broken pace must not stop the probing
            factor = float("nan")
        if not factor >= 1.0 or factor == float("inf"):  # NaN, < 1, inf
            if not self._pace_failed:
                self._pace_failed = True
                logger.warning("health probe: the pace gave no factor >= 1; probing every "
                               "%g s", self._interval)
            return 1.0
        return factor

    def _run(self) -> None:
        while not self._stopped.is_set():
            while (left := self._next_at - self._clock.monotonic()) > 0:
                self._clock.sleep(left)
                if self._stopped.is_set():
                    return
            now = self._clock.monotonic()
            missed = int((now - self._next_at) // self._interval)  # behind: skip, never burst
            at = self._next_at + missed * self._interval  # the grid point just reached
            self._next_at = at + self._interval
            wait = self.factor() * self._interval
            if at - self._last_at < wait - PACE_TOLERANCE * self._interval:
                continue  # backing off: not yet
            if self._pending.is_set():
                continue  # the last tick is still waiting: one is enough
            self._last_at = at
            self._pending.set()
            try:
                self._ref.tell(Probe())
            except pykka.ActorDeadError:
                return


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one call came to: ``latency`` and ``answered_at`` only if it returned or raised."""

    ok: bool | None
    """``None``: not judged (a :class:`NoVerdict`)."""
    error: str | None = None
    latency: float | None = None
    answered_at: float | None = None
    banned_until: float | None = None


class _Call:
    """One target's call on a thread of its own; at most one in flight per target."""

    def __init__(self, name: str, fn: Callable[[], object], clock: Clock) -> None:
        self.name = name
        self._fn = fn
        self._clock = clock
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._result: object = None
        self._error: BaseException | None = None
        self._started = 0.0
        self._finished = 0.0

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def busy(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    def start(self, started: float) -> None:
        self._done = threading.Event()
        self._result, self._error, self._started = None, None, started
        self._thread = threading.Thread(
            target=self._run, args=(self._done,), name=f"health_probe-{self.name}", daemon=True)
        self._thread.start()

    def _run(self, done: threading.Event) -> None:
        try:
            self._result = self._fn()
        except Exception as error:  # noqa: BLE001 - any error is this target failing
            self._error = error
        self._finished = self._clock.monotonic()
        done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float) -> None:
        self._done.wait(timeout)

    def outcome(self, deadline: float, *, want: object = None) -> _Outcome:
        """What the call came to, read once the wait is over (``want``: the only good result)."""
        if not self._done.is_set():
            return _Outcome(ok=False, error=f"no answer within {deadline:g} s")
        latency, at = self._finished - self._started, self._finished
        if self._error is not None:
            until = self._error.until if isinstance(self._error, Banned) else None
            return _Outcome(False, _describe(self._error), latency, at, until)
        if latency >= deadline:
            return _Outcome(False, f"answered after {latency:g} s, past the {deadline:g} s "
                                   "deadline", latency, at)
        if want is not None and self._result is not want:
            return _Outcome(False, f"answered {self._result!r}", latency, at)
        if isinstance(self._result, NoVerdict):
            return _Outcome(None, self._result.reason, latency, at)
        return _Outcome(True, None, latency, at)


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class HealthProbe(pykka.ThreadingActor):
    """Probes the router and the fallbacks and reports; see the module docstring.

    ``probe_router``, ``probe_rest``: raise on failure, return anything on success.
    ``check_ws``: whether the WebSocket fallback is as it should be (``True``); a raise or
    anything else is not. ``None`` for a fallback: not checked (its report field is None).
    ``limiter``: the process's one REST limiter, whose status gives the headroom and the
    ban. ``interval``, ``deadline``: seconds on ``clock``; ``deadline`` defaults to
    ``interval``, ``interval=None`` (no ticker) needs one. ``probe_market`` is what the
    bound ``probe_router`` asks for, shown in the log. ``pace``: the backoff factor of the
    ticker's interval (module docstring), none by default.
    """

    def __init__(
        self,
        *,
        probe_router: Callable[[], object],
        report: Callable[[ProbeReport], None],
        interval: float | None,
        deadline: float | None = None,
        probe_rest: Callable[[], object] | None = None,
        check_ws: Callable[[], bool] | None = None,
        limiter: RateLimiter | None = None,
        probe_market: str = "KRW-BTC",
        faults: FaultBoard | None = None,
        clock: Clock | None = None,
        sampler: Sampler = sample_process,
        pace: Pace | None = None,
    ) -> None:
        super().__init__()
        if interval is not None:
            check("interval", interval, above=0)
        if deadline is None:
            if interval is None:
                raise InvalidValue("deadline: a probe without an interval needs a deadline",
                                   field="deadline", value=None)
            deadline = interval
        check("deadline", deadline, above=0, at_most=interval)
        self._interval = interval
        self._deadline = deadline
        self._report = report
        self._limiter = limiter
        self._probe_market = probe_market
        self._faults = faults if faults is not None else FaultBoard()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._sampler = sampler
        self._pace = pace
        self._router = _Call("router", probe_router, self._clock)
        self._rest = None if probe_rest is None else _Call("rest", probe_rest, self._clock)
        self._ws = None if check_ws is None else _Call("ws", check_ws, self._clock)
        self._ticker: Ticker | None = None
        self._crash_told: CrashNow | None = None
        self._failures = 0
        self._started_at = 0.0
        self._last_success_at: float | None = None
        self._last_sample: tuple[float, ProcessSample] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def on_start(self) -> None:
        self._faults.at(ActorName.HEALTH_PROBE, FaultPoint.START)
        self._started_at = self._clock.monotonic()
        self._last_sample = (self._started_at, self._sampler())
        if self._interval is not None:
            self._ticker = Ticker(self._clock, self._interval, self.actor_ref,
                                  start=self._started_at, pace=self._pace)
            self._ticker.start()  # last: nothing after it can fail and leak it

    def on_stop(self) -> None:
        self._close()

    def on_failure(self, *_: object) -> None:
        self._close()

    def _close(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()

    # -- messages --------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case Probe():
                return self._probe()
            case CrashNow():
                if message is not self._crash_told:
                    # Told by a predecessor that already died of its told Probe; its supervisor
                    # moved the message to this instance, which did not crash.
                    return None
                raise message.error()
        raise TypeError(f"health_probe: unknown message {type(message).__name__}: {message!r}")

    # -- one probe -------------------------------------------------------------------------

    def _probe(self) -> ProbeReport:
        if self._ticker is not None:
            self._ticker.taken()
        try:
            self._faults.at(ActorName.HEALTH_PROBE, FaultPoint.PROBE)
        except InjectedCrash as crash:
            self._crash_told = CrashNow.of(crash)
            self.actor_ref.tell(self._crash_told)  # dies on it if this probe was asked
            raise
        except InjectedFault as fault:
            return self._finish(router=None, probe_error=str(fault), fallbacks=FallbackReport())
        router, rest, ws = self._call_all()
        self._count(router)
        banned_until = rest.banned_until if rest is not None else None
        if banned_until is None and self._limiter is not None:
            banned_until = self._limiter.banned_until()
        fallbacks = FallbackReport(
            rest_ok=None if rest is None else rest.ok,
            rest_error=None if rest is None else rest.error,
            rest_banned_until=banned_until,
            ws_ok=None if ws is None else ws.ok,
            ws_error=None if ws is None else ws.error,
        )
        return self._finish(router=router, probe_error=None, fallbacks=fallbacks)

    def _call_all(self) -> tuple[_Outcome, _Outcome | None, _Outcome | None]:
        started = self._clock.monotonic()
        calls = [c for c in (self._router, self._rest, self._ws) if c is not None]
        called: list[_Call] = []
        for call in calls:
            if call.busy():
                logger.warning("health probe: the %s probe started earlier has not returned",
                               call.name)
            else:
                call.start(started)
                called.append(call)
        until = started + self._deadline
        while self._clock.monotonic() < until:
            waiting = [call for call in called if not call.done()]
            if not waiting:
                break
            waiting[0].wait(DEADLINE_POLL_SECONDS)

        def outcome(call: _Call, want: object = None) -> _Outcome:
            if call not in called:
                return _Outcome(False, "the previous probe has not returned")
            return call.outcome(self._deadline, want=want)

        return (outcome(self._router),
                None if self._rest is None else outcome(self._rest),
                None if self._ws is None else outcome(self._ws, want=True))

    def _count(self, router: _Outcome) -> None:
        if router.ok is None:
            return  # not judged: counts neither way
        if router.ok:
            if self._failures:
                logger.info("health probe: the router answers again after %d failed probes",
                            self._failures)
            self._failures = 0
            self._last_success_at = router.answered_at
        else:
            if not self._failures:
                logger.info("health probe: the router probe (%s) failed: %s",
                            self._probe_market, router.error)
            self._failures += 1

    def _finish(
        self, *, router: _Outcome | None, probe_error: str | None, fallbacks: FallbackReport
    ) -> ProbeReport:
        now = self._clock.monotonic()
        sample = self._sampler()
        cpu_percent = None
        if self._last_sample is not None:
            then, before = self._last_sample
            if now > then:
                cpu_percent = 100.0 * (sample.cpu_seconds - before.cpu_seconds) / (now - then)
        self._last_sample = (now, sample)
        since = now - (self._last_success_at if self._last_success_at is not None
                       else self._started_at)
        report = ProbeReport(
            at=now,
            router_ok=None if router is None else router.ok,
            router_error=None if router is None else router.error,
            probe_error=probe_error,
            latency=None if router is None else router.latency,
            consecutive_failures=self._failures,
            since_last_success=since,
            last_success_at=self._last_success_at,
            fallbacks=fallbacks,
            rss_mb=None if sample.rss_bytes is None else sample.rss_bytes / _MIB,
            cpu_percent=cpu_percent,
            headroom=() if self._limiter is None else tuple(
                self._limiter.status().groups.values()),
        )
        logger.debug("health probe: %r", report)
        self._report(report)
        return report

