"""The fault matrix of issue 9: every actor × every fault kind its points allow
(:data:`actors.faults.ACTOR_POINTS`, :data:`actors.faults.KIND_POINTS`), the simulator's
network faults, and a backbone outage — each against a running MarketDataSystem under load
from several host threads, on shortened timings (``system_support.FALLBACK``).

Each case asserts the level it reaches; that every host call made during the fault returned
data or a typed error within ``request_deadline`` (none lost, none hung; Level 3 data stale,
from last known good, with its true age); restarts within intensity; and, once the fault is
cleared, Level 0 within ``recovery_interval × (recovery_successes + 1) + probe_interval``
with the WebSocket fallback idle (its socket closed at the simulator) and the thread count
back to its baseline.

Expected levels, per the issue's level rules:

* smart_router, any kind → 2 (probe failures, a crash loop past router_sup's intensity, a
  start failure, a hang, memory growth past ``memory_limit_mb``); the REST fallback serves.
* rest_fallback / ws_fallback, any kind → 0: the router serves the host; the fallback is
  driven by asking it directly (nothing else asks it at Level 0), its supervisor restarts
  it after a crash, and one that cannot start after its restart backoff
  (``lifeline.tree.restart_backoff``): fallback_sup and root never give up on it.
* health_probe, any kind → 0 during the window (the router is fine; the window is shorter
  than ``no_success_timeout``); a probe that crashes or cannot start is restarted by root
  after its backoff (the time it is away may exceed the shortened ``no_success_timeout``
  after the window: a 0 → 2 → 0 blip by the rules, within the recovery bound).
* 5xx, 429 storm, 418 ban, black hole on REST → 3 (the router's probes and the REST
  fallback fail alike); backbone outage → 3.
* WebSocket close / silent WebSocket → 1 (a degraded channel, the router serving from REST);
  malformed frames, field drift → 0 (dropped / tolerated).

``subscribe`` is not part of the facade yet, so no case checks a host subscription.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from actors.faults import ACTOR_POINTS, KIND_POINTS, ActorName, FaultKind, FaultPoint
from lifeline import Level, MarketDataSystem
from lifeline.drill.faults import repeat
from tests.lifeline.system_support import (
    WAIT,
    Case,
    Clear,
    run_checked,
    tree_of,
    until,
)
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(90)

_ASK_POINT = {
    ActorName.SMART_ROUTER: FaultPoint.REQUEST,
    ActorName.REST_FALLBACK: FaultPoint.REQUEST,
    ActorName.WS_FALLBACK: FaultPoint.REQUEST,
    ActorName.HEALTH_PROBE: FaultPoint.PROBE,
}
"""Where a ``count=1`` crash forces the restart that lets a ``fail_start`` fire."""
_POKE = {ActorName.REST_FALLBACK: "rest", ActorName.WS_FALLBACK: "ws"}
_EXPECTED = {
    ActorName.SMART_ROUTER: Level.FALLBACK,
    ActorName.REST_FALLBACK: Level.NORMAL,
    ActorName.WS_FALLBACK: Level.NORMAL,
    ActorName.HEALTH_PROBE: Level.NORMAL,
}
XFAIL: dict[str, str] = {}
"""Case id → the exact bug that makes it fail today (strict: a fix turns it into a failure,
and the fixer removes the entry)."""


def _actor_fault(actor: ActorName, kind: FaultKind) -> Callable[[MarketDataSystem, Simulator],
                                                                Clear]:
    def inject(system: MarketDataSystem, sim: Simulator) -> Clear:
        faults = system.faults
        point: FaultPoint | None = None
        options: dict[str, Any] = {}
        if kind is FaultKind.DELAY:
            options["seconds"] = 0.5  # > router_timeout and > the probe's deadline
        if kind is FaultKind.MEMORY_GROWTH:
            point = _ASK_POINT[actor]  # 1 MiB per hit: per request/probe, not per frame
        faults.inject(actor, kind, point=point, **options)
        if kind is FaultKind.FAIL_START:  # a start failure needs a restart to fire
            faults.inject(actor, FaultKind.CRASH, point=_ASK_POINT[actor], count=1)
        return faults.clear_all

    return inject


def _actor_cases() -> list[Case]:
    cases = []
    for actor in ActorName:
        for kind in FaultKind:
            if not ACTOR_POINTS[actor] & KIND_POINTS[kind]:
                continue  # e.g. health_probe has no point where a payload could be corrupted
            settings: dict[str, Any] = {}
            if actor is ActorName.SMART_ROUTER and kind is FaultKind.MEMORY_GROWTH:
                settings["memory_limit_mb"] = 8
            cases.append(Case(f"{actor.value}-{kind.value}", _EXPECTED[actor],
                              _actor_fault(actor, kind), poke=_POKE.get(actor),
                              settings=settings))
    return cases


def _http_5xx(system: MarketDataSystem, sim: Simulator) -> Clear:
    sim.faults.fail_fraction(1.0, 503, path_prefix="/v1/")
    return lambda: sim.faults.fail_fraction(0)


def _storm_429(system: MarketDataSystem, sim: Simulator) -> Clear:
    """After the n-th 429 in a row the shared limiter pauses that group 1 s, 2 s, 4 s, …
    (``quotation.rest.ratelimit.RATE_LIMIT_BACKOFF``: Upbit asks a client to stop after a
    429). Like a ban's end, the end of a storm cannot be seen before the pause it imposed
    ends: the fault clears when the storm is over and no group is paused any more, and
    recovery is timed from then (a storm cleared during a 4 s pause came back after ~4.1 s,
    one cleared during a 1 s pause after ~1.9 s)."""
    sim.faults.storm_429(None, path_prefix="/v1/")
    limiter = tree_of(system).parts.limiter

    def paused() -> bool:
        return any(group.paused_until is not None
                   for group in limiter.status().groups.values())

    def clear() -> None:
        sim.faults.clear("storm_429")
        assert until(lambda: not paused(), WAIT), limiter.status()

    return clear


BAN = 3.0


def _ban_418(system: MarketDataSystem, sim: Simulator) -> Clear:
    """A ban the client is told lasts BAN s (it cannot know of an early lift): the fault
    clears when the ban ends, and recovery is timed from then."""
    ends = time.monotonic() + BAN
    sim.faults.ban_418(BAN, path_prefix="/v1/")

    def clear() -> None:
        threading.Event().wait(max(0.0, ends - time.monotonic()))

    return clear


def _black_hole(system: MarketDataSystem, sim: Simulator) -> Clear:
    sim.faults.black_hole(path_prefix="/v1/")
    return lambda: sim.faults.black_hole(False, path_prefix="/v1/")


def _ws_close(system: MarketDataSystem, sim: Simulator) -> Clear:
    return repeat(sim.ws.close_all, 0.3)


def _ws_silent(system: MarketDataSystem, sim: Simulator) -> Clear:
    sim.ws.set_silent(True)
    return lambda: sim.ws.set_silent(False)


def _ws_malformed(system: MarketDataSystem, sim: Simulator) -> Clear:
    return repeat(lambda: sim.ws.inject_malformed(5), 0.1)


def _field_drift(system: MarketDataSystem, sim: Simulator) -> Clear:
    sim.faults.field_drift(True)
    return lambda: sim.faults.field_drift(False)


def _backbone(system: MarketDataSystem, sim: Simulator) -> Clear:
    sim.faults.black_hole(path_prefix="/v1/")
    sim.ws.set_accepting(False)
    sim.ws.drop_all()

    def clear() -> None:
        sim.faults.black_hole(False, path_prefix="/v1/")
        sim.ws.set_accepting(True)

    return clear


NETWORK_CASES = [
    Case("net-5xx", Level.LAST_RESORT, _http_5xx),
    Case("net-429-storm", Level.LAST_RESORT, _storm_429),
    Case("net-418-ban", Level.LAST_RESORT, _ban_418),
    Case("net-black-hole", Level.LAST_RESORT, _black_hole),
    Case("net-ws-close", Level.DEGRADED, _ws_close),
    Case("net-ws-silent", Level.DEGRADED, _ws_silent),
    Case("net-ws-malformed", Level.NORMAL, _ws_malformed),
    Case("net-field-drift", Level.NORMAL, _field_drift),
    Case("backbone-outage", Level.LAST_RESORT, _backbone),
]
CASES = _actor_cases() + NETWORK_CASES


def _param(case: Case) -> Any:
    marks = ([pytest.mark.xfail(strict=True, reason=XFAIL[case.id])]
             if case.id in XFAIL else [])
    return pytest.param(case, id=case.id, marks=marks)


def test_the_matrix_covers_every_actor_and_kind_its_points_allow() -> None:
    ids = {case.id for case in CASES}
    for actor, points in ACTOR_POINTS.items():
        for kind, applies in KIND_POINTS.items():
            assert (f"{actor.value}-{kind.value}" in ids) == bool(points & applies)
    assert len(NETWORK_CASES) == 9


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_each_fault_reaches_its_level_answers_every_call_in_time_and_recovers(
    case: Case, sim_factory: Callable[..., Simulator]
) -> None:
    run_checked(sim_factory, case)
