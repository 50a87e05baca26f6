"""The exit strategy's supervision tree, built from config: the one mapping of actors to specs.

::

    root (supervision.root)                       its own give-up: everything is gone (Level 3)
    ├── router_sup (supervision.router)           a root child restarted after a
    │   │                                         recovery backoff: escalation = Level 2
    │   └── smart_router (deadline)               restarts here = Level 1, after
    │                                             router_restart_backoff
    ├── fallback_sup (supervision.fallbacks)      restarted after restart_backoff(root)
    │   ├── rest_fallback (deadline)              restarted after restart_backoff(fallbacks)
    │   └── ws_fallback (deadline)                restarted after restart_backoff(fallbacks)
    └── health_probe (deadline)                   restarted after restart_backoff(root);
                                                  probes the others through ChildHandle.ask

**Recovery attempts on the OTP tree.** ``router_sup`` is a ``permanent`` child of ``root``
whose restarts are delayed by :class:`RootRecoveryPace`. When router_sup exceeds its
intensity it stops the router and escalates; root sees an abnormal exit and schedules the
restart of router_sup after the pace's delay: that restart IS the recovery attempt (the
keeper marks it with :func:`lifeline.levels.recovery_started` when root reports
``ChildRestarted(router_sup)``). The restarted router then has to pass
``recovery_successes`` probes in a row before the level rules trust it again; if it dies
again, the attempt failed and the next one waits longer. The delay is the level rules'
schedule (:func:`lifeline.levels.root_restart_delay`: ``recovery_interval`` doubling per
failed attempt up to :data:`RECOVERY_CAP_FACTOR` ×, no jitter, from 1 again once the router
is trusted), the same one ``status().next_recovery_at`` shows. Root's own count (its
restarts of router_sup within ``supervision.root.period``, 10 s) would never double with the
default ``recovery_interval`` (300 s): every attempt would wait 300 s; it is used only when
the tree is built without the keeper's delay. Root's intensity still bounds a crash loop of
whole router supervisors (more than ``intensity`` of them within ``period`` and root gives
up: the host's ``on_give_up``, Level 3, and the system rebuilds the tree after
``recovery_backoff(n)``, n counting rebuilds since the router was last trusted).

**Recovery attempts of a running router.** A router that runs but is untrusted (probe
failures, no success, memory growth, or out since a restart) is restarted by the level
keeper when an attempt is due (:func:`lifeline.levels.recovery_due`): :meth:`Tree.recycle_router`
tells the smart router :class:`Recycle`; the router (a :class:`RecyclableRouter`) stops
itself, and router_sup, seeing a ``permanent`` child exit, starts a fresh instance after
:func:`router_restart_backoff` (one restart counted against router_sup's intensity per
attempt). A fresh instance frees what a leaking one held; it must then pass
``recovery_successes`` probes in a row. An instance started after the ``Recycle`` was sent
(router_sup replaced it meanwhile) ignores it: it is fresh already.

**A router that cannot start is Level 2, not a tree that fails to start.** OTP fails a
supervisor whose child fails its first start; here the smart router and router_sup are
specs with ``start_failure=StartFailure.RESTART`` (:mod:`supervisors.spec`): a failing first
start of the router is restarted within router_sup's intensity (each failure is a
``ChildExited(START_FAILED)``, the keeper's ``RouterStartFailed``: Level 2), and once that
is exceeded router_sup escalates (``RouterGaveUp``) and root restarts it after the recovery
backoff, exactly as after a crash loop, while fallback_sup and the health probe start
without waiting for it. So ``MarketDataSystem.start()`` returns with the fallbacks serving.

**A fallback or probe that cannot start (or crash-loops) never takes the tree down.** Without
a wait, a child failing its (re)start burns its supervisor's whole ``intensity`` within
milliseconds: fallback_sup gives up, root restarts it at once, and within seconds root
exceeds its own intensity and gives up too, taking the healthy router with it. So every
child of root and of fallback_sup restarts after :func:`restart_backoff` of its supervisor:
doubling from a first wait so long that one child's first ``intensity`` restarts span the
supervisor's ``period`` (one child failing again and again cannot exceed its supervisor's
intensity on its own), never shorter than ``probe_interval``. They are also
``StartFailure.RESTART`` specs: a fallback (or the probe) that cannot start is restarted
after its backoff while its siblings start, so ``MarketDataSystem.start()`` returns with the
router serving (Level 0/1) instead of failing. If root gives up anyway (several children
failing at once), :class:`~lifeline.system.MarketDataSystem` rebuilds the whole tree after a
recovery backoff (Level 3 meanwhile).

**A router start failure waits a little before the next start.** The smart router restarts
after :func:`router_restart_backoff`: doubling from a first wait so short that the first
``intensity`` waits add up to half of router_sup's ``period`` (0.16 s with the defaults, 5 s
in all). A transient start failure (a refused connection for a moment) is retried within
Level 1 instead of burning router_sup's whole intensity within milliseconds and costing a
``recovery_interval`` (300 s) wait; a router that keeps failing still exceeds the intensity
within the period, so router_sup still escalates (Level 2) as described above.

**A hung probe or fallback is replaced.** The health probe has a liveness ``deadline``
(:func:`probe_liveness_deadline`, longer than the probe's own per-probe deadline) and root
pings it every ``probe_interval``. The REST and WebSocket fallbacks have one too
(:func:`fallback_deadline`: longer than the longest call they make) and fallback_sup pings
them every ``probe_interval``.

The shared pieces every restart reuses (an actor is rebuilt from its spec's arguments): ONE
:class:`~quotation.rest.RateLimiter` (``config.upbit.rate_limit.build(clock)``) for the router
and the REST fallback, one :class:`~actors.faults.FaultBoard`, one
:class:`~actors.snapshots.SnapshotBoard`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors.faults import FaultBoard
from actors.health_probe import HealthProbe, NoVerdict
from actors.messages import (
    HealthRequest,
    OrderbookRequest,
    ProbeReport,
    ProbeRequest,
    WsHealth,
)
from actors.rest_fallback import RestFallback
from actors.rest_health import RestFailing, RestHealthBoard, Verdict, judge
from actors.smart_router import SmartRouter
from actors.snapshots import SnapshotBoard
from actors.ws_fallback import STOP_TIMEOUT as WS_STOP_TIMEOUT
from actors.ws_fallback import WsFallback
from lifeline.config import LifelineConfig
from quotation.backoff import Backoff, Jitter
from quotation.clock import Clock
from quotation.rest.ratelimit import RateLimiter
from quotation.websocket.status import ConnectionState
from supervisors import (
    ChildHandle,
    ChildRestarting,
    ChildSpec,
    ChildUnavailable,
    ExitReason,
    Listener,
    Restart,
    StartFailure,
    SupervisorFlags,
    SupervisorHandle,
    supervisor_child,
)

__all__ = [
    "FALLBACK_SUP",
    "HEALTH_PROBE",
    "RECOVERY_CAP_FACTOR",
    "REST_FALLBACK",
    "ROOT",
    "ROUTER_SUP",
    "SMART_ROUTER",
    "WS_FALLBACK",
    "RecyclableRouter",
    "Recycle",
    "RootRecoveryPace",
    "Tree",
    "TreeParts",
    "build_tree",
    "fallback_deadline",
    "probe_liveness_deadline",
    "probe_rest_check",
    "recovery_backoff",
    "restart_backoff",
    "router_deadline",
    "router_restart_backoff",
]

ROOT, ROUTER_SUP, FALLBACK_SUP = "root", "router_sup", "fallback_sup"
SMART_ROUTER, REST_FALLBACK, WS_FALLBACK, HEALTH_PROBE = (
    "smart_router", "rest_fallback", "ws_fallback", "health_probe")

logger = logging.getLogger(__name__)

RECOVERY_CAP_FACTOR = 8.0
"""Recovery attempts back off up to this many ``recovery_interval``s."""


def recovery_backoff(config: LifelineConfig) -> Backoff:
    """The waits between recovery attempts: ``recovery_interval`` doubling, capped."""
    interval = config.fallback.recovery_interval
    return Backoff(initial=interval, multiplier=2.0, cap=interval * RECOVERY_CAP_FACTOR,
                   jitter=Jitter.NONE)


def router_deadline(config: LifelineConfig) -> float:
    """The router's liveness deadline: twice ``request_deadline`` (a router busy longer than
    that serves no host in time)."""
    return 2.0 * config.fallback.request_deadline


def restart_backoff(flags: SupervisorFlags, floor: float) -> Backoff:
    """The waits before a supervisor restarts a child of its that keeps failing.

    Doubling from ``max(floor, period / (2 ** intensity - 1))``, no jitter: the first
    ``intensity`` waits add up to ``period``, so one child failing at every (re)start never
    has more than ``intensity`` restarts within ``period`` (the oldest has aged out before
    the next one is counted) and cannot make its supervisor give up on its own.
    """
    times = 2 ** max(flags.intensity, 1)
    initial = max(floor, flags.period / (times - 1))
    return Backoff(initial=initial, multiplier=2.0, cap=initial * times, jitter=Jitter.NONE)


def router_restart_backoff(flags: SupervisorFlags) -> Backoff:
    """The waits before router_sup restarts the smart router (a crash or a failed start).

    Doubling from ``period / (2 × (2 ** intensity − 1))``, no jitter: the first ``intensity``
    waits add up to half of ``period`` (defaults 5 / 10 s: 0.16 s first, 5 s in all). Short,
    so a crash is replaced at once (Level 1), yet a transient start failure is retried over
    seconds rather than milliseconds; and a router that keeps failing still exceeds
    ``intensity`` within ``period``, so router_sup still escalates (Level 2).
    """
    times = 2 ** max(flags.intensity, 1)
    initial = flags.period / (2.0 * (times - 1))
    return Backoff(initial=initial, multiplier=2.0, cap=initial * times, jitter=Jitter.NONE)


def fallback_deadline(config: LifelineConfig) -> float:
    """The fallbacks' liveness deadline: ``call_deadline + WS STOP_TIMEOUT + 2 × request_deadline``.

    The longest message a fallback legitimately handles: the REST fallback's one
    :class:`~quotation.rest.RestClient` call, bounded by ``upbit.rest.call_deadline`` (every
    request, page, retry and limiter wait included; 30 s by default); the WebSocket
    fallback's deactivation, bounded by its client's stop (:data:`actors.ws_fallback.STOP_TIMEOUT`,
    5 s). Their sum covers either actor whichever it is doing when a ping arrives, and
    ``2 × request_deadline`` more is grace for the quick answers queued with it (a loaded
    machine). Defaults: 30 + 5 + 6 = 41 s. A fallback with several slow calls queued ahead of
    a ping can be found hung; its callers have all timed out by then, so a fresh instance
    loses nothing.
    """
    return (config.upbit.rest.call_deadline + WS_STOP_TIMEOUT
            + 2.0 * config.fallback.request_deadline)


def probe_liveness_deadline(config: LifelineConfig) -> float:
    """The health probe's liveness deadline: ``2 × probe_interval + request_deadline``.

    A probe keeps the probe actor busy up to its own deadline (``probe_interval``) and at
    most one probe waits ahead of a liveness ping: a live probe answers within
    ``2 × probe_interval``; ``request_deadline`` more is grace (a slow sample, a loaded
    machine, a ``delay`` fault of the probe shorter than that).
    """
    fb = config.fallback
    return 2.0 * fb.probe_interval + fb.request_deadline


@dataclass(frozen=True, slots=True)
class Recycle:
    """Told to the smart router by a recovery attempt: stop, so that router_sup starts a
    fresh instance; ignored by an instance that started at or after ``sent_at``."""

    sent_at: float


class RecyclableRouter(SmartRouter):
    """The smart router as the tree runs it: a :class:`SmartRouter` that takes
    :class:`Recycle` (the keeper's recovery attempt) by stopping itself."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, clock=clock, **kwargs)
        self._recycle_clock = clock
        self._up_since = float("inf")

    def on_start(self) -> None:
        super().on_start()
        self._up_since = self._recycle_clock.monotonic()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Recycle):
            if self._up_since < message.sent_at:
                logger.info("smart router: stopping for a recovery attempt (router_sup "
                            "starts a fresh instance)")
                self.stop()  # after this message; a permanent child: router_sup restarts it
            return None
        return super().on_receive(message)


class RootRecoveryPace:
    """router_sup's restart backoff in root: ``delay()`` (the level keeper's
    :meth:`~lifeline.keeper.LevelKeeper.root_restart_delay`) when given, so root's restarts
    double per failed recovery attempt as the level rules count them; else ``fallback``
    by root's own count (its restarts of router_sup within ``supervision.root.period``)."""

    def __init__(self, fallback: Backoff, delay: Callable[[], float] | None = None) -> None:
        self._fallback = fallback
        self._delay = delay

    def delay(self, attempt: int, draw: float = 0.5) -> float:
        if self._delay is None:
            return self._fallback.delay(attempt, draw)
        return self._delay()


def probe_rest_check(verdict: Verdict, why: str) -> object:
    """What the health probe's ``probe_rest`` makes of a :func:`~actors.rest_health.judge`
    verdict other than CHECK: OK returns, FAILING raises :class:`RestFailing`, UNKNOWN is a
    :class:`~actors.health_probe.NoVerdict` (counted neither way)."""
    if verdict is Verdict.FAILING:
        raise RestFailing(why)
    if verdict is Verdict.UNKNOWN:
        return NoVerdict(why)
    return verdict


@dataclass(frozen=True, slots=True)
class TreeParts:
    """What the tree's actors share (passed to every instance, kept across restarts)."""

    clock: Clock
    limiter: RateLimiter
    faults: FaultBoard
    snapshots: SnapshotBoard
    rest_health: RestHealthBoard = field(default_factory=RestHealthBoard)
    """Where the REST fallback publishes its requests; the probe judges it from there."""


@dataclass(slots=True)
class Tree:
    """The started tree and stable handles on its children."""

    root: SupervisorHandle
    parts: TreeParts
    router: ChildHandle = field(init=False)
    rest: ChildHandle = field(init=False)
    ws: ChildHandle = field(init=False)

    def __post_init__(self) -> None:
        self.router = self.root.child(ROUTER_SUP).child(SMART_ROUTER)
        self.rest = self.root.child(FALLBACK_SUP).child(REST_FALLBACK)
        self.ws = self.root.child(FALLBACK_SUP).child(WS_FALLBACK)

    def recycle_router(self) -> bool:
        """A recovery attempt: tell the smart router to stop so that router_sup starts a
        fresh one (:class:`Recycle`). False: router_sup is not running (root restarts it)."""
        try:
            self.router.tell(Recycle(self.parts.clock.monotonic()))
        except ChildUnavailable:
            return False
        return True


class _Late:
    """The health probe's callables are built before the tree they probe: bound late."""

    def __init__(self) -> None:
        self.tree: Tree | None = None

    def get(self) -> Tree:
        if self.tree is None:
            raise ChildRestarting("the tree is still starting", child_id=ROOT)
        return self.tree


def build_tree(
    config: LifelineConfig,
    parts: TreeParts,
    *,
    report: Callable[[ProbeReport], None],
    listener: Listener,
    on_give_up: Callable[[ExitReason], None],
    root_restart_delay: Callable[[], float] | None = None,
    probe_pace: Callable[[], float] | None = None,
) -> Tree:
    """Start the tree (returns at once; children start in order on the supervisors' threads).

    ``report`` gets every health probe report (on the probe's thread: hand it on, never
    wait); ``listener`` every supervision event of the whole tree; ``on_give_up`` root's;
    ``probe_pace`` is the health probe's backoff factor (its ticker's thread asks it:
    :meth:`lifeline.keeper.LevelKeeper.probe_pace`).
    """
    fb, sup = config.fallback, config.supervision
    rest_config, ws_config = config.upbit.rest, config.upbit.websocket
    shared: dict[str, Any] = {"faults": parts.faults, "clock": parts.clock}
    probe_deadline = fb.probe_interval
    late = _Late()

    def probe_router() -> object:
        # The router's own REST success within the last interval is evidence enough (its
        # traffic may have used up the ticker budget this call would wait in); due by the
        # probe's deadline, so one left queued behind a hang is dropped, never replayed.
        due = parts.clock.monotonic() + probe_deadline
        return late.get().router.ask(
            ProbeRequest(fb.probe_market, evidence_within=fb.probe_interval, deadline=due),
            timeout=probe_deadline)

    def probe_rest() -> object:
        # Read what the fallback published: never queue behind host traffic in its inbox.
        verdict, why = judge(parts.rest_health.snapshot(), parts.clock.monotonic(),
                             recent=fb.probe_interval, stall=fb.request_deadline)
        if verdict is not Verdict.CHECK:
            return probe_rest_check(verdict, why)
        # Idle (no recent request): one real call, an order book of probe_market (a group
        # the router's REST ticker probes do not use), through the shared limiter; due by
        # the probe's deadline, so one left queued is dropped, never replayed later.
        due = parts.clock.monotonic() + probe_deadline
        return late.get().rest.ask(OrderbookRequest((fb.probe_market,), deadline=due),
                                   timeout=probe_deadline)

    def check_ws() -> bool:
        health = late.get().ws.ask(HealthRequest(), timeout=probe_deadline)
        return isinstance(health, WsHealth) and (
            health.idle_by_design or health.connection.state is ConnectionState.LIVE)

    router_sup = supervisor_child(
        ROUTER_SUP, sup.router,
        [ChildSpec(SMART_ROUTER, RecyclableRouter,
                   args=(rest_config, ws_config, parts.limiter),
                   kwargs={"snapshots": parts.snapshots, **shared},
                   deadline=router_deadline(config), backoff=router_restart_backoff(sup.router),
                   start_failure=StartFailure.RESTART)],
        restart=Restart.PERMANENT,
        backoff=RootRecoveryPace(recovery_backoff(config), root_restart_delay),
        start_failure=StartFailure.RESTART, clock=parts.clock,
        liveness_interval=fb.probe_interval,
    )
    in_fallbacks = restart_backoff(sup.fallbacks, fb.probe_interval)
    in_root = restart_backoff(sup.root, fb.probe_interval)
    fallback_hung = fallback_deadline(config)
    fallback_sup = supervisor_child(
        FALLBACK_SUP, sup.fallbacks,
        [ChildSpec(REST_FALLBACK, RestFallback, args=(rest_config, parts.limiter),
                   kwargs={**shared, "health": parts.rest_health}, deadline=fallback_hung,
                   backoff=in_fallbacks,
                   start_failure=StartFailure.RESTART),
         ChildSpec(WS_FALLBACK, WsFallback, args=(ws_config,), kwargs=shared,
                   deadline=fallback_hung, backoff=in_fallbacks,
                   start_failure=StartFailure.RESTART)],
        restart=Restart.PERMANENT, backoff=in_root, start_failure=StartFailure.RESTART,
        clock=parts.clock, liveness_interval=fb.probe_interval,
    )
    probe = ChildSpec(HEALTH_PROBE, HealthProbe, kwargs={
        "probe_router": probe_router, "report": report, "interval": fb.probe_interval,
        "deadline": probe_deadline, "probe_rest": probe_rest, "check_ws": check_ws,
        "limiter": parts.limiter, "probe_market": fb.probe_market, "pace": probe_pace,
        **shared,
    }, deadline=probe_liveness_deadline(config), backoff=in_root,
        start_failure=StartFailure.RESTART)
    root = SupervisorHandle.start(
        sup.root, [router_sup, fallback_sup, probe], name=ROOT, clock=parts.clock,
        listeners=[listener], on_give_up=on_give_up, liveness_interval=fb.probe_interval,
    )
    tree = Tree(root, parts)
    late.tree = tree
    return tree
