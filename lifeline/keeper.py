"""The LevelKeeper: holds the level state, feeds it observations and time, carries out effects.

Inputs arrive from other threads and are only queued there (never waited on): health probe
reports (:meth:`LevelKeeper.report`, on the probe's thread) and supervision events
(:meth:`LevelKeeper.on_event`, on a supervisor's thread). One daemon thread of the keeper's
takes them in order, translates them into :mod:`lifeline.health` observations, applies
:func:`lifeline.levels.step`, and :func:`~lifeline.levels.tick` whenever
:func:`~lifeline.levels.next_tick_at` is due on the injected clock (re-read every
:data:`POLL_SECONDS` of real time). On every level change it

* logs the change with its reason (logger ``lifeline.keeper``: WARNING going up, INFO down);
* carries out the effects: entering level 2 or 3 → ``Activate(symbols)`` to the WebSocket
  fallback; back to 0/1 → ``Deactivate()`` (through ``effects``, bounded asks);
* calls the system's own callbacks (:meth:`LevelKeeper.add_callback`: the breaker reset, the
  alerter, the log escalation), each guarded: a failing callback is logged, never breaks the
  keeper;
* queues the change for the host's callbacks (:meth:`LevelKeeper.add_host_callback`, the
  facade's ``on_level_change``): they run on a delivery thread of their own
  (:class:`HostCallbacks`), never on the keeper's, so a slow or hanging host callback delays
  no level detection and no effect. Each change reaches every host callback in order, each
  call guarded. The queue keeps the latest :data:`HOST_CHANGES_QUEUED` changes: while a
  callback hangs, older undelivered changes are dropped and counted
  (:attr:`HostCallbacks.dropped`, in ``status()``), the keeper never waits. Stopping waits at
  most :data:`HOST_STOP_SECONDS` for a callback still running, then leaves the (daemon)
  thread behind with a warning; changes still queued then are not delivered.

A degraded channel: on each probe report whose router probe succeeded, trusted or not, the
keeper first asks ``websocket_degraded()`` (the facade asks the router for its
``RouterStatus``, bounded by ``router_timeout``) and feeds the answer to the rules as
``ChannelDegraded(at, Channel.WEBSOCKET, degraded)``, then the report itself: level 1 while
the router's WebSocket is down and it answers from REST only, back to 0 once it is live
again. Asked before the report and while the router is out, so the probe that makes it
trusted again lands on 1 when its WebSocket is still down (3 -> 1 -> 0, not 3 -> 0 -> 1 ->
0). ``None`` (the router did not say in time) observes nothing.

Translation::

    ProbeReport.router_ok True/False          ProbeResult(router)   (None: probe failed itself)
    ProbeReport.fallbacks (rest/ws known)      FallbackHealth (unknown half: None, unjudged)
    ProbeReport.rss_mb                         MemorySample
    websocket_degraded() after a good probe    ChannelDegraded(WEBSOCKET)
    router_sup ChildRestarted(smart_router)    RouterRestarted
    router_sup ChildExited START_FAILED/HUNG   RouterStartFailed / RouterHung
    router_sup Escalated                       RouterGaveUp
    root ChildRestarted(router_sup)            a recovery attempt started (recovery_started)
    root gave up                               RouterGaveUp + both fallbacks down (confirmed)
    recovery_attempt(at) (the tree rebuilt)    a recovery attempt started (recovery_started)

**Recovery attempts.** Whenever :func:`~lifeline.levels.recovery_due` says so (an attempt
is due by :func:`~lifeline.levels.next_recovery_at`, and router_sup did not give up: then
root's restart of router_sup is the attempt), the keeper calls ``recover()`` on its thread:
the facade asks router_sup whether the smart router runs and, if it does, tells it to
restart (a fresh instance frees what a leaking one held; one that fails its probes starts
from scratch). ``True``: the attempt started (:func:`~lifeline.levels.recovery_started` with
``restart=True``; counted in :attr:`LevelKeeper.recovery_attempts`, logged at WARNING with
why the router is out); ``False``: the router is not running (its supervisor is restarting
it), so the attempt is :func:`~lifeline.levels.recovery_postponed` (logged at INFO); a
raising ``recover`` is logged and postponed too. The next attempt after a failed one waits
``recovery_interval`` doubling up to :data:`lifeline.tree.RECOVERY_CAP_FACTOR` ×; trust
regained starts the backoff again.

**Probing with backoff at Level 3** (:meth:`LevelKeeper.probe_pace`): the keeper counts the
probe reports in a row taken at Level 3 that found neither the router nor the REST fallback
answering (:attr:`LevelKeeper.quiet_probes`; any good router probe or REST check, and any
level change, resets it) and answers :func:`lifeline.levels.probe_backoff` of it: the factor
the health probe stretches its interval by (``probe_interval`` × 1, 2, 4, capped at
:data:`lifeline.levels.PROBE_BACKOFF_CAP`). The probe asks it at every ``probe_interval``, so
a reset takes effect within one interval.

Timed actions (:meth:`LevelKeeper.call_at`) run on the keeper's thread when the injected
clock reaches their time (the system's rebuild of a tree whose root gave up); dropped when
the keeper stops.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from actors.messages import ProbeReport
from actors.routing import Channel
from lifeline.health import (
    ChannelDegraded,
    FallbackHealth,
    MemorySample,
    Observation,
    ProbeResult,
    RouterGaveUp,
    RouterHung,
    RouterRestarted,
    RouterStartFailed,
)
from lifeline.levels import (
    Level,
    LevelChange,
    LevelRules,
    LevelState,
    next_recovery_at,
    next_tick_at,
    probe_backoff,
    recovery_due,
    recovery_postponed,
    recovery_started,
    root_restart_delay,
    step,
    tick,
)
from lifeline.tree import ROOT, ROUTER_SUP, SMART_ROUTER
from quotation.clock import Clock
from quotation.values import check
from supervisors import (
    ChildExited,
    ChildRestarted,
    Escalated,
    ExitKind,
    SupervisionEvent,
)

__all__ = ["CHANGES_KEPT", "HOST_CHANGES_QUEUED", "HOST_STOP_SECONDS", "POLL_SECONDS",
           "HostCallbacks", "LevelKeeper"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.02
"""Real seconds between the keeper's readings of the injected clock while it waits."""
CHANGES_KEPT = 1000
"""Level changes :attr:`LevelKeeper.changes` keeps (the latest; older ones are dropped, and
:attr:`LevelKeeper.change_count` counts them all)."""
HOST_CHANGES_QUEUED = 256
"""Level changes waiting for the host's callbacks at most; past it the oldest undelivered one
is dropped (and counted) for each new one: a hung callback costs memory no more than this."""
HOST_STOP_SECONDS = 1.0
"""Real seconds stopping waits for a host callback still running before it leaves it."""


class HostCallbacks:
    """The host's level-change callbacks, called in order on a daemon thread of their own.

    :meth:`put` never blocks (a bounded deque: past :data:`HOST_CHANGES_QUEUED` waiting, the
    oldest is dropped and counted in :attr:`dropped`). Each callback is guarded: one that
    raises is logged and the others still get the change.
    """

    def __init__(self, name: str = "lifeline-level-callbacks",
                 limit: int = HOST_CHANGES_QUEUED) -> None:
        check("limit", limit, at_least=1, integer=True)
        self._callbacks: list[Callable[[LevelChange], None]] = []
        self._queue: deque[LevelChange] = deque(maxlen=limit)
        self._cond = threading.Condition()
        self._dropped = 0
        self._delivered = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def dropped(self) -> int:
        """Changes dropped undelivered because :data:`HOST_CHANGES_QUEUED` were waiting."""
        return self._dropped

    @property
    def delivered(self) -> int:
        """Changes handed to every callback so far."""
        return self._delivered

    @property
    def queued(self) -> int:
        """Changes waiting now."""
        with self._cond:
            return len(self._queue)

    def add(self, callback: Callable[[LevelChange], None]) -> None:
        with self._cond:
            self._callbacks.append(callback)

    def start(self) -> None:
        self._thread.start()

    def put(self, change: LevelChange) -> None:
        """Queue ``change`` for every callback; never waits."""
        with self._cond:
            if self._stopped or not self._callbacks:
                return
            if len(self._queue) == self._queue.maxlen:
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 100 == 0:
                    logger.warning("level callbacks: a host callback is not keeping up; "
                                   "%d level changes dropped undelivered so far",
                                   self._dropped)
            self._queue.append(change)  # the deque drops the oldest itself
            self._cond.notify()

    def stop(self, timeout: float = HOST_STOP_SECONDS) -> None:
        """No more calls; wait up to ``timeout`` for the one running (changes still queued
        are not delivered)."""
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()
        thread = self._thread
        if thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("level callbacks: a host callback still runs after %g s; "
                               "its thread is left behind (daemon)", timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                change = self._queue.popleft()
                callbacks = list(self._callbacks)
            for callback in callbacks:
                try:
                    callback(change)
                except Exception:
                    logger.exception("level keeper: a level-change callback failed")
            self._delivered += 1


@dataclass(frozen=True, slots=True)
class _RecoveryStarted:
    at: float
    what: str = "root restarted the router supervisor"


@dataclass(frozen=True, slots=True)
class _RootGaveUp:
    at: float


@dataclass(frozen=True, slots=True)
class _Settled:
    done: threading.Event


@dataclass(frozen=True, slots=True)
class _Timer:
    at: float
    action: Callable[[], None]


_Item = ProbeReport | Observation | _RecoveryStarted | _RootGaveUp | _Settled | _Timer | None


class LevelKeeper:
    """See the module docstring. ``effects(change)`` runs on the keeper's thread first."""

    def __init__(self, rules: LevelRules, clock: Clock, *,
                 effects: Callable[[LevelChange], None] | None = None,
                 websocket_degraded: Callable[[], bool | None] | None = None,
                 recover: Callable[[], bool] | None = None,
                 name: str = "lifeline-keeper") -> None:
        self._rules = rules
        self._clock = clock
        self._effects = effects
        self._websocket_degraded = websocket_degraded
        self._recover = recover
        self._recovery_attempts = 0
        self._state = LevelState.starting(clock.monotonic())
        self._callbacks: list[Callable[[LevelChange], None]] = []
        self._host = HostCallbacks(name=f"{name}-callbacks")
        self._quiet_probes = 0
        self._changes: deque[LevelChange] = deque(maxlen=CHANGES_KEPT)
        self._change_count = 0
        self._pairs: dict[tuple[Level, Level], int] = {}
        self._changes_lock = threading.Lock()  # a copy never sees the deque mid-append
        self._inbox: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._timers: list[_Timer] = []  # touched only on the keeper's thread

    # -- reading (any thread) ------------------------------------------------------------

    @property
    def state(self) -> LevelState:
        return self._state

    @property
    def level(self) -> Level:
        return self._state.level

    @property
    def changes(self) -> tuple[LevelChange, ...]:
        """The latest :data:`CHANGES_KEPT` level changes, oldest first."""
        with self._changes_lock:
            return tuple(self._changes)

    @property
    def change_count(self) -> int:
        """Level changes since start, including those no longer in :attr:`changes`."""
        return self._change_count

    @property
    def change_pairs(self) -> dict[tuple[Level, Level], int]:
        """``(old, new)`` → level changes since start (a copy; never dropped, unlike
        :attr:`changes`)."""
        with self._changes_lock:
            return dict(self._pairs)

    @property
    def recovery_attempts(self) -> int:
        """Recovery attempts the keeper carried out since start (restarts it asked for)."""
        return self._recovery_attempts

    @property
    def host_callbacks(self) -> HostCallbacks:
        """The host's callbacks and their delivery thread (``dropped``, ``queued``)."""
        return self._host

    @property
    def quiet_probes(self) -> int:
        """Probe reports in a row at Level 3 that found neither the router nor the REST
        fallback answering (0 at any other level, after a good one, after a level change)."""
        return self._quiet_probes

    def probe_pace(self) -> float:
        """The factor the health probe stretches ``probe_interval`` by now
        (:func:`lifeline.levels.probe_backoff`; asked on the probe's ticker thread)."""
        return probe_backoff(self._state.level, self._quiet_probes)

    def root_restart_delay(self) -> float:
        """The wait before root restarts a router_sup that has just given up
        (:func:`lifeline.levels.root_restart_delay`; called on root's thread)."""
        return root_restart_delay(self._state, self._rules)

    def next_recovery_at(self) -> float | None:
        """When the level rules expect the next recovery attempt (monotonic), if any."""
        return next_recovery_at(self._state, self._clock.monotonic(), self._rules)

    # -- inputs (any thread; only queued) ------------------------------------------------

    def add_callback(self, callback: Callable[[LevelChange], None]) -> None:
        """Call ``callback(change)`` on the keeper's thread, after the effects: only for the
        system's own prompt, non-blocking reactions (the host's go to
        :meth:`add_host_callback`)."""
        self._callbacks.append(callback)

    def add_host_callback(self, callback: Callable[[LevelChange], None]) -> None:
        """Call ``callback(change)`` for every level change, in order, on the delivery
        thread (:class:`HostCallbacks`): it may be slow without holding up the keeper."""
        self._host.add(callback)

    def report(self, report: ProbeReport) -> None:
        """A health probe report (the probe's ``report`` callable)."""
        self._inbox.put(report)

    def observe(self, observation: Observation) -> None:
        self._inbox.put(observation)

    def call_at(self, at: float, action: Callable[[], None]) -> None:
        """Run ``action()`` on the keeper's thread once the injected clock reaches ``at``
        (monotonic; re-read every :data:`POLL_SECONDS`); never once the keeper is stopped.
        A raising action is logged."""
        self._inbox.put(_Timer(at, action))

    def recovery_attempt(self, at: float) -> None:
        """A recovery attempt started at ``at`` other than root restarting router_sup (the
        system rebuilt the whole tree): the new router must prove itself from zero."""
        self._inbox.put(_RecoveryStarted(at, "the system rebuilt the tree"))

    def settle(self, timeout: float) -> bool:
        """Wait until everything queued before this call is taken in (False: timed out)."""
        done = threading.Event()
        self._inbox.put(_Settled(done))
        return done.wait(timeout)

    def on_event(self, event: SupervisionEvent) -> None:
        """A supervision event of the tree (a root listener): translated, queued."""
        item: _Item = None
        match event:
            case ChildRestarted(supervisor=s, child_id=c) if s == ROUTER_SUP and c == SMART_ROUTER:
                item = RouterRestarted(event.at)
            case ChildExited(supervisor=s, child_id=c) if s == ROUTER_SUP and c == SMART_ROUTER:
                if event.reason.kind is ExitKind.START_FAILED:
                    item = RouterStartFailed(event.at)
                elif event.reason.kind is ExitKind.HUNG:
                    item = RouterHung(event.at)
            case Escalated(supervisor=s) if s == ROUTER_SUP:
                item = RouterGaveUp(event.at)
            case Escalated(supervisor=s) if s == ROOT:
                item = _RootGaveUp(event.at)
            case ChildRestarted(supervisor=s, child_id=c) if s == ROOT and c == ROUTER_SUP:
                item = _RecoveryStarted(event.at)
        if item is not None:
            self._inbox.put(item)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._host.start()
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop the keeper's thread (waits up to ``timeout``) and the host callbacks' (up to
        :data:`HOST_STOP_SECONDS` more, never longer than ``timeout``)."""
        self._stopped.set()
        self._inbox.put(None)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._host.stop(min(timeout, HOST_STOP_SECONDS))

    # -- the keeper's thread ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                item = self._inbox.get(timeout=POLL_SECONDS)
            except queue.Empty:
                item = None
            if self._stopped.is_set():
                return
            try:
                if item is not None:
                    self._take(item)
                due = next_tick_at(self._state, self._rules)
                if due is not None and self._clock.monotonic() >= due:
                    self._apply(*tick(self._state, self._clock.monotonic(), self._rules))
                self._attempt_if_due()
            except Exception:  # a bug here must not stop level keeping
                logger.exception("level keeper: failed on %r", item)
            self._run_timers()

    def _attempt_if_due(self) -> None:
        """Carry out a due recovery attempt: restart the router through ``recover``."""
        if self._recover is None or self._stopped.is_set():
            return
        if not recovery_due(self._state, self._clock.monotonic(), self._rules):
            return
        why = self._state.out_reason
        try:
            started = self._recover()
        except Exception:
            logger.exception("recovery attempt: restarting the router failed; postponed")
            started = False
        now = self._clock.monotonic()
        if started:
            self._recovery_attempts += 1
            logger.warning("recovery attempt %d: restarting the router (out: %s)",
                           self._state.attempts + 1, why,
                           extra={"recovery_attempt": self._state.attempts + 1})
            self._state = recovery_started(self._state, now, restart=True)
        else:
            logger.info("recovery attempt postponed: the router is not running (its "
                        "supervisor is restarting it); out: %s", why)
            self._state = recovery_postponed(self._state, now)

    def _run_timers(self) -> None:
        if not self._timers:
            return
        now = self._clock.monotonic()
        due = [timer for timer in self._timers if timer.at <= now]
        self._timers = [timer for timer in self._timers if timer.at > now]
        for timer in due:
            if self._stopped.is_set():
                return
            try:
                timer.action()
            except Exception:
                logger.exception("level keeper: the timed action %r failed", timer.action)

    def _take(self, item: ProbeReport | Observation | _RecoveryStarted | _RootGaveUp | _Settled
              | _Timer) -> None:
        match item:
            case _Settled(done):
                done.set()
            case _Timer():
                self._timers.append(item)
            case ProbeReport():
                before = self._change_count
                self._check_channel(item)  # first: trust regained lands on 1 if degraded
                for observation in self._translate(item):
                    self._apply(*step(self._state, observation, self._rules))
                self._count_quiet(item, changed=self._change_count != before)
            case _RecoveryStarted(at, what):
                logger.info("recovery attempt: %s", what)
                self._state = recovery_started(self._state, at)
            case _RootGaveUp(at):
                self._apply(*step(self._state, RouterGaveUp(at), self._rules))
                self._apply(*step(self._state, FallbackHealth(at, False, None, False,
                                                              confirmed=True), self._rules))
            case _:
                self._apply(*step(self._state, item, self._rules))

    def _count_quiet(self, report: ProbeReport, *, changed: bool) -> None:
        """Probing with backoff: count the reports in a row at Level 3 with no good news."""
        good = report.router_ok is True or report.fallbacks.rest_ok is True
        if changed or good or self._state.level is not Level.LAST_RESORT:
            self._quiet_probes = 0
        else:
            self._quiet_probes += 1

    def _check_channel(self, report: ProbeReport) -> None:
        ask = self._websocket_degraded
        if ask is None or report.router_ok is not True:
            return
        degraded = ask()
        if degraded is not None:
            observation = ChannelDegraded(report.at, Channel.WEBSOCKET, degraded)
            self._apply(*step(self._state, observation, self._rules))

    def _translate(self, report: ProbeReport) -> list[Observation]:
        found: list[Observation] = []
        if report.router_ok is not None:
            found.append(ProbeResult(report.at, report.router_ok))
        fallbacks = report.fallbacks
        if (fallbacks.rest_ok is not None or fallbacks.ws_ok is not None
                or fallbacks.rest_banned_until is not None):
            found.append(FallbackHealth(report.at, fallbacks.rest_ok,
                                        fallbacks.rest_banned_until, fallbacks.ws_ok))
        if report.rss_mb is not None:
            found.append(MemorySample(report.at, report.rss_mb))
        return found

    def _apply(self, state: LevelState, change: LevelChange | None) -> None:
        self._state = state
        if change is None:
            return
        self._quiet_probes = 0  # a level change starts probing at the interval again
        with self._changes_lock:
            self._changes.append(change)
            self._change_count += 1
            pair = (change.old, change.new)
            self._pairs[pair] = self._pairs.get(pair, 0) + 1
        log = logger.warning if change.new > change.old else logger.info
        log("level %d -> %d: %s", change.old, change.new, change.reason,
            extra={"level_old": int(change.old), "level_new": int(change.new),
                   "cause": None if change.cause is None else change.cause.value})
        if self._effects is not None:
            try:
                self._effects(change)
            except Exception:
                logger.exception("level keeper: the effects of %r failed", change)
        for callback in list(self._callbacks):
            try:
                callback(change)
            except Exception:
                logger.exception("level keeper: a level-change callback failed")
        self._host.put(change)  # the host's: on their own thread, never waited for
