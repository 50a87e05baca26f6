"""The failure levels of the exit strategy: one small immutable state and its pure transitions.

=====  ===============  ===============================  ====================================
level  name             what broke                       what the system does
=====  ===============  ===============================  ====================================
0      ``NORMAL``       nothing                          the smart router serves every request
1      ``DEGRADED``     part of the smart router: it     router_sup restarts the router
                        was restarted within its         (one_for_one) within its intensity;
                        intensity, or routes around a    the router routes around the bad
                        bad channel                      channel and still serves every request
2      ``FALLBACK``     the whole smart router: router_  every request goes to the REST
                        sup gave up, start-up failure,   fallback; the WebSocket fallback
                        hang, memory growth, or the      subscribes the trading symbols;
                        probe saw ``failure_threshold``  recovery attempts on a schedule with
                        failures in a row / no success   backoff; the router is trusted again
                        for ``no_success_timeout``       only after ``recovery_successes``
                                                         healthy probes in a row
3      ``LAST_RESORT``  the router and the fallbacks:    the last known good data with its true
                        the REST fallback failing or     age and ``stale=True`` up to
                        banned (418), e.g. a backbone    ``max_stale_age``, else
                        outage                           ``MarketDataUnavailable``; the host is
                                                         told; probing goes on with backoff
                                                         (:func:`probe_backoff`)
=====  ===============  ===============================  ====================================

Levels climb back down on their own: 3 → 2 when the REST fallback answers again (after
``rest_successes`` good checks in a row) or its ban ends, 2 (or 3)
→ 0 once the router is trusted again, 1 → 0 when the restarts age out of router_sup's
``period`` and every channel has recovered. The system can jump 0 → 3 in one step when the
router goes out while the fallbacks are already failing (a backbone outage).

The rules, each in one place here:

* **failure detection**: ``failure_threshold`` failed router probes in a row, or none
  succeeded for ``no_success_timeout`` seconds (exactly that long counts: the rule fires at
  the deadline), or the router supervisor gave up / the router failed to start / hung, or
  the resident memory grew more than ``memory_limit_mb`` past the first sample taken while
  the router was trusted: the router is *untrusted* (level 2 or 3).
* **recovery hysteresis**: an untrusted router is trusted again only after
  ``recovery_successes`` healthy probes in a row; any router failure resets the count. A
  router out for memory growth earns no trust until a fresh instance runs (a recovery attempt
  restarted it, or its supervisor did): the leak is in the instance, not in its answers.
* **recovery schedule** (:func:`next_recovery_at`): the first attempt ``recovery.delay(1)``
  (``recovery_interval``) after the router went out; after a failed attempt ``n``,
  ``recovery.delay(n + 1)`` after that failure (the project's one :class:`Backoff`); trust
  regained starts it again from 1. :func:`recovery_due` says when the keeper itself carries
  an attempt out (it restarts the router: :func:`recovery_started` with ``restart=True``):
  whenever one is due, except after router_sup gave up (root's restart of router_sup is that
  attempt). An attempt that cannot start (the router is not running: its supervisor is
  restarting it) is :func:`recovery_postponed`: the same wait again. An attempt fails on the
  first router failure after it started, on growth past ``memory_limit_mb`` measured from the
  fresh instance's first sample, or when the restart it asked for has not happened within
  ``recovery.initial`` seconds.
* **level 1**: a router restart counts while it is younger than ``period`` (it ages out at
  exactly ``period``); more than ``intensity`` of them is router_sup giving up
  (:func:`supervisors.rules.add_restart`, the supervisor's own rule).
* **level 3**: the router is untrusted and the REST fallback is failing or banned. The
  WebSocket fallback being down alone is not level 3: REST still answers every request
  with fresh data (it is named in the reason when it is down too).
* **REST fallback hysteresis**: "failing" is entered after ``rest_failures``
  (:data:`REST_FAILURES`, 3) failing checks in a row and left after ``rest_successes``
  (:data:`REST_SUCCESSES`, 2) good ones in a row, so one slow or failed answer under load
  does not flap between levels 2 and 3. A check that judged nothing (``rest_ok=None``: the
  fallback is busy with a request still within ``request_deadline``) counts neither way. A
  ban (418) is certain: it is level 3 at once, until exactly its end; so is root giving up
  (``FallbackHealth(confirmed=True)``: the fallbacks are stopped).

:func:`step` takes one observation (:mod:`lifeline.health`), :func:`tick` only the time
(so "no success for N seconds" and a ban's end fire without a new observation); both return
the new state and the :class:`LevelChange`, if the level changed. :func:`step` first applies
the time up to the observation, so its outcome never depends on whether the keeper ticked
in between. An observation older than the state's ``now`` is taken at ``now`` (the clock
never goes back). The level is a pure function of the state (:func:`classify`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum, IntEnum

from actors.routing import Channel
from lifeline.health import (
    ChannelDegraded,
    FallbackHealth,
    FeedLost,
    MemorySample,
    Observation,
    ProbeResult,
    ProbeTarget,
    RouterGaveUp,
    RouterHung,
    RouterRestarted,
    RouterStartFailed,
)
from quotation.backoff import Backoff
from quotation.errors import InvalidValue
from quotation.values import check
from supervisors.rules import add_restart

__all__ = [
    "PROBE_BACKOFF_CAP",
    "REST_FAILURES",
    "REST_SUCCESSES",
    "SHARED_FEED_LOST",
    "Cause",
    "Level",
    "LevelChange",
    "LevelRules",
    "LevelState",
    "classify",
    "next_recovery_at",
    "next_tick_at",
    "probe_backoff",
    "recovery_due",
    "recovery_postponed",
    "recovery_started",
    "root_restart_delay",
    "step",
    "tick",
]

PROBE_BACKOFF_CAP = 4.0
"""The most the health probe's interval is stretched by at Level 3 (:func:`probe_backoff`):
at most ``4 × probe_interval`` between probes, so recovery is seen at most
``3 × probe_interval`` later than without backoff."""
SHARED_FEED_LOST = "shared feed lost"
"""The reason of the change to Level 1 when ``feed.mode: shared`` loses its Redis."""
REST_FAILURES = 3
"""Failing REST fallback checks in a row before it counts as failing (level 3 if the router
is out); the default of :attr:`LevelRules.rest_failures`."""
REST_SUCCESSES = 2
"""Good REST fallback checks in a row before a failing one counts as answering again; the
default of :attr:`LevelRules.rest_successes`."""


class Level(IntEnum):
    """How much of the market-data path is broken (DESIGN.md's three failure levels)."""

    NORMAL = 0
    """Nothing broke: the smart router serves every request."""
    DEGRADED = 1
    """Part of the router broke (restarted within its intensity, a channel routed around);
    the router still serves every request."""
    FALLBACK = 2
    """The router is out: the REST and WebSocket fallbacks serve; recovery runs."""
    LAST_RESORT = 3
    """The router and the REST fallback are out: last known good data, marked stale."""


class Cause(Enum):
    """What made the level change: the machine-readable twin of the reason."""

    ROUTER_RESTARTED = "router_restarted"
    CHANNEL_DEGRADED = "channel_degraded"
    RESTARTS_SETTLED = "restarts_settled"
    CHANNEL_RECOVERED = "channel_recovered"
    ROUTER_GAVE_UP = "router_gave_up"
    ROUTER_START_FAILED = "router_start_failed"
    ROUTER_HUNG = "router_hung"
    PROBE_FAILURES = "probe_failures"
    NO_SUCCESS = "no_success"
    MEMORY_GROWTH = "memory_growth"
    FALLBACKS_FAILED = "fallbacks_failed"
    FALLBACKS_RECOVERED = "fallbacks_recovered"
    ROUTER_TRUSTED = "router_trusted"
    FEED_LOST = "feed_lost"
    """``feed.mode: shared``: Redis unreachable, the host serves from its own tree."""
    FEED_RECOVERED = "feed_recovered"


@dataclass(frozen=True, slots=True)
class LevelChange:
    """The level went from ``old`` to ``new`` at ``at`` (monotonic seconds) for ``reason``.

    ``cause`` is the same reason as a closed set, for metrics and alerts; it is ``None``
    only for a change not made by these rules.
    """

    old: Level
    new: Level
    reason: str
    at: float
    cause: Cause | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LevelRules:
    """The numbers the level rules use; the config's fallback and router_sup settings.

    An impossible value raises :class:`~quotation.errors.InvalidValue` naming the field.
    """

    failure_threshold: int
    """Failed router probes in a row that put the router out (>= 1)."""
    no_success_timeout: float
    """Seconds without a successful router probe that put the router out (> 0)."""
    recovery_successes: int
    """Healthy router probes in a row before an untrusted router is trusted again (>= 1)."""
    memory_limit_mb: float
    """Growth of resident memory past its baseline, MiB, that puts the router out (> 0)."""
    intensity: int
    """router_sup's restart intensity (>= 0)."""
    period: float
    """router_sup's period, seconds: how long a restart keeps the level at 1 (> 0)."""
    recovery: Backoff
    """Waits between recovery attempts; ``initial`` is the config's ``recovery_interval``."""
    rest_failures: int = REST_FAILURES
    """Failing REST fallback checks in a row that make it failing (>= 1)."""
    rest_successes: int = REST_SUCCESSES
    """Good REST fallback checks in a row that make a failing one answering again (>= 1)."""

    def __post_init__(self) -> None:
        check("failure_threshold", self.failure_threshold, at_least=1, integer=True)
        check("no_success_timeout", self.no_success_timeout, above=0)
        check("recovery_successes", self.recovery_successes, at_least=1, integer=True)
        check("memory_limit_mb", self.memory_limit_mb, above=0)
        check("intensity", self.intensity, at_least=0, integer=True)
        check("period", self.period, above=0)
        check("rest_failures", self.rest_failures, at_least=1, integer=True)
        check("rest_successes", self.rest_successes, at_least=1, integer=True)
        if not isinstance(self.recovery, Backoff):
            raise InvalidValue(f"recovery must be a Backoff, got {self.recovery!r}",
                               field="recovery", value=self.recovery)


@dataclass(frozen=True, slots=True, kw_only=True)
class LevelState:
    """Everything the level rules remember; replaced, never changed. Start with ``starting``."""

    now: float
    """The latest time the rules have seen (monotonic seconds)."""
    failures: int = 0
    """Failed router probes in a row."""
    last_success_at: float
    """The last successful router probe (the start, before the first one)."""
    restarts: tuple[float, ...] = ()
    """Router restarts younger than ``period``, oldest first (only while trusted)."""
    degraded: frozenset[Channel] = frozenset()
    """Channels the router routes around."""
    feed_lost: bool = False
    """``feed.mode: shared`` and the shared feed is lost (Redis unreachable): at least 1."""
    trusted: bool = True
    """Whether the router serves (levels 0 and 1) or is out (levels 2 and 3)."""
    out_cause: Cause | None = None
    """Why the router went out (while untrusted)."""
    out_reason: str = ""
    healthy: int = 0
    """Healthy router probes in a row while untrusted."""
    attempts: int = 0
    """Failed recovery attempts since the router went out."""
    failed_at: float | None = None
    """When the router went out or the last recovery attempt failed (while untrusted)."""
    attempt_at: float | None = None
    """When the running recovery attempt started (None: none running)."""
    awaiting_restart: bool = False
    """The running attempt asked for a restart that has not happened yet: the old instance's
    probes count for nothing meanwhile."""
    needs_restart: bool = False
    """Out for memory growth: no trust before a fresh instance runs."""
    memory_baseline_mb: float | None = None
    """The first memory sample taken while the router was trusted (or since the fresh
    instance of a running recovery attempt started)."""
    rest_ok: bool = True
    """The REST fallback answers (after the hysteresis: see ``rest_streak``)."""
    rest_streak: int = 0
    """REST checks in a row that disagree with ``rest_ok`` (it flips at the threshold)."""
    rest_banned_until: float | None = None
    ws_ok: bool = True
    fallbacks_out: bool = False
    """The REST fallback is failing or banned at ``now``."""

    @classmethod
    def starting(cls, now: float) -> LevelState:
        """The state at start-up: level 0, the start counting as the last success."""
        return cls(now=now, last_success_at=now)

    @property
    def level(self) -> Level:
        """The level this state is at (:func:`classify`)."""
        return classify(self)


def classify(state: LevelState) -> Level:
    """The level, from the state alone."""
    if not state.trusted:
        return Level.LAST_RESORT if state.fallbacks_out else Level.FALLBACK
    if state.restarts or state.degraded or state.feed_lost:
        return Level.DEGRADED
    return Level.NORMAL


def tick(
    state: LevelState, now: float, rules: LevelRules
) -> tuple[LevelState, LevelChange | None]:
    """Let time pass to ``now``: restarts age out, "no success" fires, a ban ends."""
    new = _advance(state, now, rules)
    return new, _change(state, new, rules)


def step(
    state: LevelState, observation: Observation, rules: LevelRules
) -> tuple[LevelState, LevelChange | None]:
    """Take one observation (after letting time pass to its ``at``)."""
    new = _observe(_advance(state, observation.at, rules), observation, rules)
    return new, _change(state, new, rules)


def recovery_started(state: LevelState, now: float, *, restart: bool = False) -> LevelState:
    """A recovery attempt started at ``now``: a fresh router runs (root restarted router_sup,
    or the tree was rebuilt), or, with ``restart``, the keeper asked the router to restart
    (its probes count for nothing until the :class:`RouterRestarted` that follows).

    The new instance must prove itself from zero: the healthy count restarts, and its memory
    is measured from its own first sample. Nothing changes while the router is trusted.
    """
    if state.trusted:
        return state
    at = max(state.now, now)
    return replace(state, now=at, attempt_at=at, healthy=0, awaiting_restart=restart,
                   needs_restart=state.needs_restart and restart, memory_baseline_mb=None)


def recovery_postponed(state: LevelState, now: float) -> LevelState:
    """A due attempt could not start at ``now`` (the router is not running: its supervisor is
    restarting it): the next one waits the same step of the backoff again, from ``now``."""
    if state.trusted or state.attempt_at is not None:
        return state
    at = max(state.now, now)
    return replace(state, now=at, failed_at=at)


def root_restart_delay(state: LevelState, rules: LevelRules, draw: float = 0.5) -> float:
    """The wait before root restarts a router_sup that has just given up: the next step of
    the recovery schedule, counting attempts as these rules do, whether or not the give-up
    has been taken in yet (root asks on its own thread): a router still trusted here is the
    first attempt; an attempt still running here is the one that just failed.

    With it as router_sup's restart backoff in root (:class:`lifeline.tree.RootRecoveryPace`)
    root's waits double per failed attempt like every other recovery attempt, instead of
    counting only root's restarts within ``supervision.root.period``.
    """
    if state.trusted:
        return rules.recovery.delay(1, draw)
    failed = state.attempts + (1 if state.attempt_at is not None else 0)
    return rules.recovery.delay(failed + 1, draw)


def recovery_due(state: LevelState, now: float, rules: LevelRules) -> bool:
    """Whether the keeper should carry a recovery attempt out now (restart the router).

    An attempt is due (:func:`next_recovery_at` has come), unless router_sup gave up: then
    root restarts router_sup after the recovery backoff, and that restart is the attempt.
    """
    due = next_recovery_at(state, now, rules)
    return due is not None and due <= now and state.out_cause is not Cause.ROUTER_GAVE_UP


def next_recovery_at(
    state: LevelState, now: float, rules: LevelRules, draw: float = 0.5
) -> float | None:
    """When the next recovery attempt is due, never before ``now``; ``None``: none is.

    None while the router is trusted, while an attempt runs, or while the router is
    already answering healthy probes (it is earning trust; restarting it would not help; a
    router out for memory growth earns none before a restart, so its attempt stays due).
    ``draw`` is the backoff's jitter draw in [0, 1).
    """
    if state.failed_at is None or state.attempt_at is not None or state.healthy > 0:
        return None  # failed_at is None exactly while the router is trusted
    return max(now, state.failed_at + rules.recovery.delay(state.attempts + 1, draw))


def probe_backoff(level: Level, quiet: int, cap: float = PROBE_BACKOFF_CAP) -> float:
    """The factor the health probe's interval is stretched by ("keep probing with backoff").

    Only at Level 3 (the router and the REST fallback both out), after ``quiet`` probes in a
    row there that found neither answering: ``2 ** quiet`` (1, 2, 4, ...) up to ``cap``, the
    project's one :class:`Backoff` formula (initial 1, doubling, no jitter, attempt
    ``quiet + 1``). Anywhere else, or with ``quiet`` 0 (a good probe or a level change resets
    it), 1: the interval itself. Level 2 never backs off: the REST fallback answers there, and
    every probe counts toward the ``recovery_successes`` that end it.
    """
    if level is not Level.LAST_RESORT or quiet <= 0:
        return 1.0
    return Backoff(initial=1.0, multiplier=2.0, cap=max(1.0, cap)).ceiling(quiet + 1)


def next_tick_at(state: LevelState, rules: LevelRules) -> float | None:
    """The earliest time a :func:`tick` could change the state; ``None``: no time rule waits."""
    deadlines: list[float] = []
    if state.trusted:
        deadlines.append(state.last_success_at + rules.no_success_timeout)
        if state.restarts:
            deadlines.append(state.restarts[0] + rules.period)
    if state.rest_banned_until is not None and state.rest_banned_until > state.now:
        deadlines.append(state.rest_banned_until)
    if state.awaiting_restart and state.attempt_at is not None:
        deadlines.append(state.attempt_at + rules.recovery.initial)
    return min(deadlines) if deadlines else None


# --- the rules -------------------------------------------------------------------------------


def _advance(state: LevelState, now: float, rules: LevelRules) -> LevelState:
    now = max(state.now, now)
    restarts = tuple(at for at in state.restarts if at > now - rules.period)
    new = replace(state, now=now, restarts=restarts,
                  fallbacks_out=_rest_out(state.rest_ok, state.rest_banned_until, now))
    silent = now - state.last_success_at
    if new.trusted and silent >= rules.no_success_timeout:
        return _router_failed(new, Cause.NO_SUCCESS,
                              f"no successful router probe for {_num(silent)} s")
    if (new.awaiting_restart and new.attempt_at is not None
            and now >= new.attempt_at + rules.recovery.initial):
        return _router_failed(new, new.out_cause or Cause.ROUTER_RESTARTED,
                              f"the router did not restart within "
                              f"{_num(rules.recovery.initial)} s of the recovery attempt")
    return new


def _observe(  # noqa: PLR0911 (one case per kind of observation)
    state: LevelState, observation: Observation, rules: LevelRules
) -> LevelState:
    match observation:
        case ProbeResult(target=ProbeTarget.ROUTER):
            return _router_probe(state, observation.ok, rules)
        case ProbeResult(target=ProbeTarget.REST_FALLBACK):
            return _fallbacks(state, observation.ok, state.rest_banned_until, None, rules)
        case ProbeResult(target=ProbeTarget.WS_FALLBACK):
            return _fallbacks(state, None, state.rest_banned_until, observation.ok, rules)
        case FallbackHealth(confirmed=True):
            return _fallbacks(replace(state, rest_streak=0,
                                      rest_ok=(state.rest_ok if observation.rest_ok is None
                                               else observation.rest_ok)),
                              None, observation.rest_banned_until, observation.ws_ok, rules)
        case FallbackHealth():
            return _fallbacks(state, observation.rest_ok, observation.rest_banned_until,
                              observation.ws_ok, rules)
        case RouterRestarted():
            return _router_restarted(state, rules)
        case RouterGaveUp():
            return _router_failed(state, Cause.ROUTER_GAVE_UP,
                                  "router supervisor exceeded its restart intensity and gave up")
        case RouterStartFailed():
            return _router_failed(state, Cause.ROUTER_START_FAILED, "router failed to start")
        case RouterHung():
            return _router_failed(state, Cause.ROUTER_HUNG, "router hung past its deadline")
        case ChannelDegraded():
            degraded = (state.degraded | {observation.channel} if observation.degraded
                        else state.degraded - {observation.channel})
            return replace(state, degraded=degraded)
        case MemorySample():
            return _memory(state, observation.rss_mb, rules)
        case FeedLost():
            return replace(state, feed_lost=observation.lost)
    raise TypeError(f"not an observation: {observation!r}")  # pragma: no cover


def _router_probe(state: LevelState, ok: bool, rules: LevelRules) -> LevelState:
    if state.awaiting_restart:
        return state  # the instance being replaced: its answers prove nothing either way
    if not ok:
        failures = state.failures + 1
        new = replace(state, failures=failures)
        if state.trusted and failures < rules.failure_threshold:
            return new
        return _router_failed(new, Cause.PROBE_FAILURES,
                              f"{failures} router probes failed in a row")
    new = replace(state, failures=0, last_success_at=state.now)
    if state.trusted or state.needs_restart:
        return new
    healthy = state.healthy + 1
    if healthy < rules.recovery_successes:
        return replace(new, healthy=healthy)
    return replace(new, trusted=True, out_cause=None, out_reason="", healthy=0, attempts=0,
                   failed_at=None, attempt_at=None, restarts=(), awaiting_restart=False,
                   needs_restart=False)


def _router_restarted(state: LevelState, rules: LevelRules) -> LevelState:
    if state.awaiting_restart:  # the restart a recovery attempt asked for: a fresh instance
        return replace(state, awaiting_restart=False, healthy=0, failures=0,
                       needs_restart=False, memory_baseline_mb=None)
    if not state.trusted:
        fresh = replace(state, needs_restart=False, memory_baseline_mb=None)
        return _router_failed(fresh, Cause.ROUTER_RESTARTED, "router restarted")
    window = add_restart(state.restarts, state.now, intensity=rules.intensity,
                         period=rules.period)
    if window.exceeded:
        return _router_failed(state, Cause.ROUTER_GAVE_UP,
                              f"{len(window.restarts)} router restarts within "
                              f"{_num(rules.period)} s exceed intensity {rules.intensity}")
    return replace(state, restarts=window.restarts)


def _router_failed(state: LevelState, cause: Cause, reason: str) -> LevelState:
    """The router goes out (if trusted), or a failure ends its recovery attempt (if not)."""
    leak = cause is Cause.MEMORY_GROWTH
    if state.trusted:
        return replace(state, trusted=False, out_cause=cause, out_reason=reason, healthy=0,
                       attempts=0, failed_at=state.now, attempt_at=None, restarts=(),
                       degraded=frozenset(), memory_baseline_mb=None, needs_restart=leak,
                       awaiting_restart=False)
    needs_restart = state.needs_restart or leak
    if state.attempt_at is None:
        # root schedules router_sup's restart from its give-up: the schedule starts there
        failed_at = state.now if cause is Cause.ROUTER_GAVE_UP else state.failed_at
        return replace(state, healthy=0, out_cause=cause, out_reason=reason,
                       needs_restart=needs_restart, failed_at=failed_at)
    return replace(state, healthy=0, attempts=state.attempts + 1, failed_at=state.now,
                   attempt_at=None, awaiting_restart=False, out_cause=cause,
                   out_reason=reason, needs_restart=needs_restart)


def _memory(state: LevelState, rss_mb: float, rules: LevelRules) -> LevelState:
    if not state.trusted and (state.attempt_at is None or state.awaiting_restart):
        return state  # only a trusted router or the fresh one of an attempt is measured
    if state.memory_baseline_mb is None:
        return replace(state, memory_baseline_mb=rss_mb)
    growth = rss_mb - state.memory_baseline_mb
    if growth > rules.memory_limit_mb:
        return _router_failed(state, Cause.MEMORY_GROWTH,
                              f"memory grew {_num(growth)} MiB past its baseline "
                              f"(limit {_num(rules.memory_limit_mb)} MiB)")
    return state


def _fallbacks(
    state: LevelState, rest_check: bool | None, rest_banned_until: float | None,
    ws_ok: bool | None, rules: LevelRules,
) -> LevelState:
    """One check of the fallbacks (``None``: that one was not judged) through the REST
    hysteresis: ``rest_ok`` flips only after enough checks in a row disagree with it."""
    rest_ok, streak = state.rest_ok, state.rest_streak
    if rest_check is not None:
        if rest_check == rest_ok:
            streak = 0
        else:
            streak += 1
            if streak >= (rules.rest_successes if rest_check else rules.rest_failures):
                rest_ok, streak = rest_check, 0
    ws = state.ws_ok if ws_ok is None else ws_ok
    return replace(state, rest_ok=rest_ok, rest_streak=streak,
                   rest_banned_until=rest_banned_until, ws_ok=ws,
                   fallbacks_out=_rest_out(rest_ok, rest_banned_until, state.now))


def _rest_out(rest_ok: bool, banned_until: float | None, now: float) -> bool:
    return not rest_ok or (banned_until is not None and now < banned_until)


# --- the reasons -----------------------------------------------------------------------------


def _change(old: LevelState, new: LevelState, rules: LevelRules) -> LevelChange | None:
    before, after = old.level, new.level
    if before == after:
        return None
    cause, reason = _explain(old, new, rules)
    return LevelChange(before, after, reason, new.now, cause)


def _explain(  # noqa: PLR0911 (one reason per kind of change)
    old: LevelState, new: LevelState, rules: LevelRules
) -> tuple[Cause, str]:
    before, after = old.level, new.level
    if before <= Level.DEGRADED < after and new.out_cause is not None:  # set with the fall
        if after is Level.LAST_RESORT:
            return new.out_cause, f"{new.out_reason}; fallbacks failing too ({_trouble(new)})"
        return new.out_cause, new.out_reason
    if after <= Level.DEGRADED < before:
        return Cause.ROUTER_TRUSTED, (f"router healthy for {rules.recovery_successes} "
                                      "probes in a row")
    if after is Level.LAST_RESORT:
        return Cause.FALLBACKS_FAILED, f"fallbacks failing too ({_trouble(new)})"
    if before is Level.LAST_RESORT:
        return Cause.FALLBACKS_RECOVERED, "REST fallback answering again"
    if after is Level.DEGRADED:
        if new.feed_lost and not old.feed_lost:
            return Cause.FEED_LOST, SHARED_FEED_LOST
        if new.restarts:
            return Cause.ROUTER_RESTARTED, (f"router restarted ({len(new.restarts)} of at most "
                                            f"{rules.intensity} within {_num(rules.period)} s)")
        return Cause.CHANNEL_DEGRADED, f"router routes around {_channels(new.degraded)}"
    parts = []
    if old.feed_lost and not new.feed_lost:
        parts.append("shared feed back")
    if old.degraded:
        parts.append(f"{_channels(old.degraded)} recovered")
    if old.restarts:
        parts.append(f"router restarts aged out of the {_num(rules.period)} s window")
    cause = (Cause.FEED_RECOVERED if old.feed_lost and not new.feed_lost
             else Cause.CHANNEL_RECOVERED if old.degraded else Cause.RESTARTS_SETTLED)
    return cause, "; ".join(parts)


def _trouble(state: LevelState) -> str:
    if state.rest_banned_until is not None and state.now < state.rest_banned_until:
        rest = f"REST banned for {_num(state.rest_banned_until - state.now)} s"
    else:
        rest = "REST fallback failing"
    return rest if state.ws_ok else f"{rest}, WebSocket fallback down"


def _channels(channels: frozenset[Channel]) -> str:
    names = sorted(channel.value for channel in channels)
    return f"channel{'s' if len(names) > 1 else ''} {', '.join(names)}"


def _num(value: float) -> str:
    return f"{value:g}"
