"""The tree's Level 2 paths end to end against the simulator, on shortened timings from
config (probe_interval 0.2 s, recovery_interval 1 s, recovery_successes 3, router intensity
5 in 10 s): a router that cannot start leaves the system started at Level 2 with the
fallbacks serving (never a tree that fails to start), and a router crash loop makes
router_sup escalate; in both, once the fault is cleared, root's restart of router_sup after
the recovery backoff is the recovery attempt, and the router is trusted again after
``recovery_successes`` healthy probes (Level 0).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pykka
import pytest

from actors.messages import Source, TickerRequest
from lifeline import Level, LevelChange, LifelineConfig, MarketDataSystem
from lifeline.levels import Cause
from lifeline.settings import FallbackSettings, FaultSettings
from lifeline.tree import (
    FALLBACK_SUP,
    HEALTH_PROBE,
    REST_FALLBACK,
    ROOT,
    ROUTER_SUP,
    SMART_ROUTER,
    Recycle,
    RootRecoveryPace,
    fallback_deadline,
)
from quotation.backoff import Backoff, Jitter
from supervisors import (
    ChildExited,
    ChildRestarted,
    ChildState,
    Escalated,
    EscalationTarget,
    ExitKind,
    SupervisionEvent,
    SupervisorFlags,
)
from supervisors.messages import WhichChildren
from tests.lifeline.system_support import upbit_for
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

WAIT = 15.0
"""Real seconds a test waits for a level or an event before failing."""
BTC = "KRW-BTC"
PROBE, RECOVERY, SUCCESSES, DEADLINE = 0.2, 1.0, 3, 1.5
SLACK = 3.0
"""Real seconds allowed on top of the config's bounds (threads, loopback I/O)."""
BACK_TO_0 = RECOVERY * (SUCCESSES + 1) + PROBE + SLACK
"""Fault cleared → Level 0: recovery_interval × (recovery_successes + 1) + probe_interval."""
FOREVER = 1_000
"""A fail_start count no number of router_sup restarts within the test uses up."""


def config_for(sim: Simulator) -> LifelineConfig:
    return LifelineConfig(
        upbit=upbit_for(sim),
        fallback=FallbackSettings(probe_interval=PROBE, failure_threshold=2,
                                  recovery_interval=RECOVERY, recovery_successes=SUCCESSES,
                                  router_timeout=0.2, request_deadline=DEADLINE,
                                  max_stale_age=30.0),
        faults=FaultSettings(enabled=True),
    )


class Watch:
    """Records level changes and supervision events; waits for them with bounded timeouts."""

    def __init__(self, system: MarketDataSystem) -> None:
        self.system = system
        self.changes: list[LevelChange] = []
        self.events: list[SupervisionEvent] = []
        self._cond = threading.Condition()
        system.on_level_change(self._on_change)

    def _on_change(self, change: LevelChange) -> None:
        with self._cond:
            self.changes.append(change)
            self._cond.notify_all()

    def on_event(self, event: SupervisionEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def subscribe(self) -> None:
        """Listen to the whole tree's events from now on (root's listeners get them all)."""
        tree = self.system._tree
        assert tree is not None
        tree.root.subscribe(self.on_event)

    def level(self, level: Level, timeout: float = WAIT) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.system.level is level, timeout):
                raise AssertionError(f"level {self.system.level!r}, not {level!r}, after "
                                     f"{timeout} s; changes: {self.changes}")

    def event(self, match: Callable[[SupervisionEvent], bool], timeout: float = WAIT
              ) -> SupervisionEvent:
        def found() -> SupervisionEvent | None:
            return next((event for event in self.events if match(event)), None)

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no such event after {timeout} s; saw: {self.events}")
            event = found()
            assert event is not None
            return event


def recovery_attempt(event: SupervisionEvent) -> bool:
    return isinstance(event, ChildRestarted) and (event.supervisor, event.child_id) == (
        ROOT, ROUTER_SUP)


def router_sup_escalated(event: SupervisionEvent) -> bool:
    return isinstance(event, Escalated) and event.supervisor == ROUTER_SUP


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    return sim_factory(seed=1, rate_limit=None)


@pytest.fixture
def systems(sim: Simulator) -> Iterator[Callable[[], MarketDataSystem]]:
    made: list[MarketDataSystem] = []

    def make() -> MarketDataSystem:
        system = MarketDataSystem.from_config(config_for(sim))
        made.append(system)
        return system

    yield make
    for system in made:
        system.faults.clear_all()
        system.stop()
    pykka.ActorRegistry.stop_all(timeout=WAIT)


def root_children(system: MarketDataSystem) -> dict[str, ChildState]:
    tree = system._tree
    assert tree is not None and tree.root.is_alive()
    return {info.id: info.state for info in tree.root.which_children(timeout=WAIT)}


def served_by_fallbacks(system: MarketDataSystem) -> None:
    for _ in range(3):
        began = time.monotonic()
        trades = system.get_trades(BTC, count=3)
        assert trades.source is Source.REST_FALLBACK
        assert trades.level is Level.FALLBACK
        ticker = system.get_ticker([BTC])
        assert ticker.source in (Source.REST_FALLBACK, Source.WS_FALLBACK)
        assert [t.market for t in ticker.data] == [BTC]
        assert time.monotonic() - began < 2 * DEADLINE


def test_a_router_that_cannot_start_leaves_the_system_started_at_level_2_on_the_fallbacks(
    systems: Callable[[], MarketDataSystem]
) -> None:
    system = systems()
    watch = Watch(system)
    system.faults.inject(SMART_ROUTER, "fail_start", count=FOREVER)
    began = time.monotonic()
    system.start()  # returns: root neither gave up nor waits for the router

    assert system.level is Level.FALLBACK  # start() returns at the level the tree found
    assert watch.changes[0].new is Level.FALLBACK
    assert watch.changes[0].cause is Cause.ROUTER_START_FAILED
    children = root_children(system)  # router_sup retries after router_restart_backoff
    assert children[ROUTER_SUP] in (ChildState.RUNNING, ChildState.RESTARTING)
    assert (children[FALLBACK_SUP], children[HEALTH_PROBE]) == (ChildState.RUNNING,) * 2
    served_by_fallbacks(system)

    watch.subscribe()
    watch.event(router_sup_escalated)  # within half its period: the start keeps failing
    assert root_children(system)[ROUTER_SUP] is ChildState.RESTARTING  # its recovery attempt
    system.faults.clear_all()
    cleared = time.monotonic()
    watch.level(Level.NORMAL, timeout=BACK_TO_0)
    took = time.monotonic() - cleared
    attempt = watch.event(recovery_attempt, timeout=0)
    assert attempt.at >= began + RECOVERY  # root waited its recovery backoff
    assert took <= BACK_TO_0
    assert watch.changes[-1].cause is Cause.ROUTER_TRUSTED
    assert system.get_ticker([BTC]).source.startswith("smart_router/")


def test_a_router_that_fails_a_few_starts_within_intensity_is_restarted_by_router_sup(
    systems: Callable[[], MarketDataSystem]
) -> None:
    system = systems()
    watch = Watch(system)
    system.faults.inject(SMART_ROUTER, "fail_start", count=2)  # router intensity is 5
    system.start()
    watch.level(Level.NORMAL, timeout=RECOVERY * (SUCCESSES + 1) + PROBE + SLACK)
    assert [change.cause for change in watch.changes] == [Cause.ROUTER_START_FAILED,
                                                          Cause.ROUTER_TRUSTED]
    tree = system._tree
    assert tree is not None
    router_sup = tree.root.which_children(timeout=WAIT)[0]
    assert (router_sup.id, router_sup.state) == (ROUTER_SUP, ChildState.RUNNING)
    assert router_sup.instance == 1  # root's first: router_sup never escalated


def test_a_router_crash_loop_escalates_from_router_sup_and_root_restarts_it_after_the_backoff(
    systems: Callable[[], MarketDataSystem]
) -> None:
    system = systems()
    watch = Watch(system)
    system.start()
    watch.subscribe()
    assert system.level is Level.NORMAL
    system.faults.inject(SMART_ROUTER, "crash", point="request")  # every probe kills it

    escalated = watch.event(router_sup_escalated)
    assert isinstance(escalated, Escalated)
    assert escalated.target is EscalationTarget.PARENT
    exits = [e for e in watch.events if isinstance(e, ChildExited)
             and (e.supervisor, e.child_id) == (ROUTER_SUP, SMART_ROUTER)]
    # every exit counts toward router_sup's intensity: the crashes, and a recovery attempt's
    # deliberate restart (the keeper recycles an untrusted router) if one came in between
    assert len(exits) > system.config.supervision.router.intensity, exits
    assert any(e.reason.kind is ExitKind.CRASHED for e in exits), exits
    watch.level(Level.FALLBACK)
    served_by_fallbacks(system)

    system.faults.clear_all()
    cleared = time.monotonic()
    attempt = watch.event(recovery_attempt, timeout=BACK_TO_0)
    assert attempt.at >= escalated.at + RECOVERY  # the recovery backoff, no jitter
    watch.level(Level.NORMAL, timeout=BACK_TO_0)
    assert time.monotonic() - cleared <= BACK_TO_0
    assert watch.changes[-1].cause is Cause.ROUTER_TRUSTED
    assert root_children(system)[ROUTER_SUP] is ChildState.RUNNING




def _root_gives_up_at_once(sim: Simulator) -> MarketDataSystem:
    """A system whose root has intensity 0: any restart of one of its children is its
    give-up (the probe crashing once is enough)."""
    config = config_for(sim)
    supervision = replace(config.supervision,
                          root=SupervisorFlags(intensity=0, period=10.0))
    return MarketDataSystem.from_config(replace(config, supervision=supervision))


def _actors_left() -> list[str]:
    return [ref.actor_class.__name__ for ref in pykka.ActorRegistry.get_all()]


def test_a_fallback_or_probe_that_cannot_start_leaves_start_returning_with_the_router_serving(
    systems: Callable[[], MarketDataSystem]
) -> None:
    system = systems()
    for actor in (REST_FALLBACK, HEALTH_PROBE):
        system.faults.inject(actor, "fail_start", count=FOREVER)
    system.start()  # neither root nor fallback_sup gives up: the failed starts wait backoffs

    assert system.level is Level.NORMAL
    assert system.get_trades(BTC, count=3).source is Source.SMART_ROUTER_REST
    children = root_children(system)
    assert children[ROUTER_SUP] is ChildState.RUNNING
    assert children[HEALTH_PROBE] is ChildState.RESTARTING

    system.faults.clear_all()
    assert until_true(lambda: set(root_children(system).values()) == {ChildState.RUNNING},
                      WAIT)
    assert system.level is Level.NORMAL


def test_root_giving_up_is_level_3_on_last_known_good_and_the_system_rebuilds_the_tree(
    sim: Simulator
) -> None:
    system = _root_gives_up_at_once(sim)
    try:
        watch = Watch(system)
        system.start()
        assert system.get_ticker([BTC]).source.startswith("smart_router/")  # kept as good
        dead = system._tree
        assert dead is not None
        system.faults.inject(HEALTH_PROBE, "crash", point="probe", count=1)

        watch.level(Level.LAST_RESORT)
        gave_up = time.monotonic()
        assert watch.changes[0].cause is Cause.ROUTER_GAVE_UP
        stale = system.get_ticker([BTC])
        if system.level is Level.LAST_RESORT:  # not rebuilt yet (recovery_interval: 1 s)
            assert stale.stale is True and stale.source is Source.LAST_KNOWN_GOOD
            assert stale.level is Level.LAST_RESORT and stale.age is not None
        watch.level(Level.NORMAL, timeout=BACK_TO_0)
        assert time.monotonic() - gave_up <= BACK_TO_0
        assert watch.changes[-1].cause is Cause.ROUTER_TRUSTED
        assert system._tree is not dead and not dead.root.is_alive()
        assert set(root_children(system).values()) == {ChildState.RUNNING}
        assert system.get_ticker([BTC]).source.startswith("smart_router/")
    finally:
        system.stop()
    assert _actors_left() == []


def test_a_stop_while_a_rebuild_waits_cancels_it_and_leaves_no_actor_or_keeper_thread(
    sim: Simulator
) -> None:
    system = _root_gives_up_at_once(sim)
    watch = Watch(system)
    system.start()
    system.faults.inject(HEALTH_PROBE, "crash", point="probe", count=1)
    watch.level(Level.LAST_RESORT)
    system.stop()  # the rebuild is due recovery_interval (1 s) after the give-up

    assert _actors_left() == []
    assert not until_true(lambda: bool(_actors_left()), RECOVERY + 0.5)  # never rebuilt
    assert not [t for t in threading.enumerate() if t.name == "lifeline-keeper"]


def until_true(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` (no event to wait on) until it holds or ``timeout`` passes."""
    end = time.monotonic() + timeout
    idle = threading.Event()
    while not predicate():
        if time.monotonic() >= end:
            return False
        idle.wait(0.05)
    return True


def test_a_router_start_failing_for_a_moment_is_retried_by_router_sup_without_escalating(
    systems: Callable[[], MarketDataSystem]
) -> None:
    system = systems()
    watch = Watch(system)
    system.faults.inject(SMART_ROUTER, "fail_start", duration=0.4)  # refused for a moment
    system.start()
    watch.level(Level.NORMAL, timeout=RECOVERY * (SUCCESSES + 1) + PROBE + SLACK)
    tree = system._tree
    assert tree is not None
    router_sup = tree.root.which_children(timeout=WAIT)[0]
    assert (router_sup.id, router_sup.instance) == (ROUTER_SUP, 1)  # never escalated
    assert Cause.ROUTER_GAVE_UP not in [change.cause for change in watch.changes]


def test_a_hung_rest_fallback_is_found_by_its_deadline_and_replaced(
    systems: Callable[[], MarketDataSystem]
) -> None:
    system = systems()
    watch = Watch(system)
    system.start()
    watch.subscribe()
    tree = system._tree
    assert tree is not None
    system.faults.inject(REST_FALLBACK, "hang", point="request")
    tree.rest.tell(TickerRequest((BTC,)))  # stuck in it from now on
    hung = watch.event(lambda e: isinstance(e, ChildExited) and (e.supervisor, e.child_id) == (
        FALLBACK_SUP, REST_FALLBACK) and e.reason.kind is ExitKind.HUNG)
    system.faults.clear_all()
    restarted = watch.event(lambda e: isinstance(e, ChildRestarted) and (
        e.supervisor, e.child_id) == (FALLBACK_SUP, REST_FALLBACK))
    assert restarted.at >= hung.at
    assert system.config.upbit.rest.call_deadline < fallback_deadline(system.config) < WAIT


def _router_restarted(event: SupervisionEvent) -> bool:
    return isinstance(event, ChildRestarted) and (event.supervisor, event.child_id) == (
        ROUTER_SUP, SMART_ROUTER)


def test_recycle_restarts_the_running_router_through_router_sup_once(
    systems: Callable[[], MarketDataSystem]
) -> None:
    system = systems()
    watch = Watch(system)
    system.start()
    watch.subscribe()
    tree = system._tree
    assert tree is not None
    sent_at = system._clock.monotonic()
    assert tree.recycle_router()
    restarted = watch.event(_router_restarted)
    assert isinstance(restarted, ChildRestarted)
    exited = watch.event(lambda e: isinstance(e, ChildExited) and e.child_id == SMART_ROUTER)
    assert isinstance(exited, ChildExited) and exited.reason.kind is ExitKind.NORMAL
    # A Recycle sent before the fresh instance started is ignored by it: one restart only.
    tree.router.tell(Recycle(sent_at))
    for _ in range(2):  # the second lands after the Recycle was taken up (or its stop)
        assert tree.router.ask(TickerRequest((BTC,)), timeout=WAIT) is not None
    infos = tree.root.child(ROUTER_SUP).ask(WhichChildren(), timeout=WAIT)
    assert [(i.id, i.state, i.instance) for i in infos] == [
        (SMART_ROUTER, ChildState.RUNNING, restarted.instance)]


def test_recycle_answers_false_while_router_sup_is_not_running(
    systems: Callable[[], MarketDataSystem]
) -> None:
    system = systems()
    system.start()
    tree = system._tree
    assert tree is not None
    tree.root.stop(timeout=WAIT)
    assert tree.recycle_router() is False


def test_root_paces_router_sup_restarts_by_the_level_rules_when_given_their_delay() -> None:
    fallback = Backoff(initial=300.0, cap=2400.0, jitter=Jitter.NONE)
    delays = iter([300.0, 600.0, 1200.0])
    paced = RootRecoveryPace(fallback, lambda: next(delays))
    # root's own attempt number (restarts within its 10 s period) is 1 every time here
    assert [paced.delay(1, 0.5) for _ in range(3)] == [300.0, 600.0, 1200.0]
    assert RootRecoveryPace(fallback).delay(2, 0.5) == 600.0  # without: root's own count
