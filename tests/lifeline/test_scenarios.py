"""The seed's scenario groups end to end against the simulator (issue 9, "Must show"), each
under load from several host threads, with the matrix's checks (``system_support``) plus
what the scenario is about: where the answers came from and why the level changed.

Level 1: channel selection error (the router's WebSocket refused, REST fine), format
unification failure (corrupt WebSocket messages), unstable WebSocket (closed again and
again), and a router restart within router_sup's intensity. Level 2: start failure, crash
loop, memory growth, hang. Level 3: the router and the backbone down at once.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from actors.messages import Source
from lifeline import Level, MarketDataSystem
from lifeline.drill.faults import repeat
from lifeline.levels import Cause
from tests.lifeline.system_support import (
    WAIT,
    Case,
    Clear,
    Result,
    router_status,
    run_checked,
    until,
)
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(90)

ROUTER = (Source.SMART_ROUTER_WEBSOCKET, Source.SMART_ROUTER_REST)
FALLBACKS = (Source.REST_FALLBACK, Source.WS_FALLBACK)


def served_by_the_router(result: Result) -> None:
    """At Level 1 (or 0) the router serves. The hedging rule may still answer a single slow
    read from the REST fallback, but only once the router has had its ``router_timeout``
    (a loaded machine can slow the router that much); anything else is a failure."""
    router_timeout = result.config.fallback.router_timeout
    others = [c for c in result.calls if c.source not in ROUTER]
    assert all(c.source is Source.REST_FALLBACK and c.elapsed >= router_timeout
               for c in others), others[:3]
    assert len(others) <= len(result.calls) // 4, f"{len(others)} of {len(result.calls)}"


def causes(result: Result) -> set[Cause | None]:
    return {change.cause for change in result.changes}


# -- Level 1 -----------------------------------------------------------------------------------


def test_level_1_channel_selection_error_the_router_routes_around_a_refused_websocket(
    sim_factory: Callable[..., Simulator]
) -> None:
    def inject(system: MarketDataSystem, sim: Simulator) -> Clear:
        sim.ws.set_accepting(False)
        sim.ws.drop_all()
        return lambda: sim.ws.set_accepting(True)

    result = run_checked(sim_factory, Case("channel-selection", Level.DEGRADED, inject))
    assert Cause.CHANNEL_DEGRADED in causes(result)
    served_by_the_router(result)


def test_level_1_format_unification_failure_corrupt_websocket_messages_never_reach_the_host(
    sim_factory: Callable[..., Simulator]
) -> None:
    malformed: list[int] = []

    def inject(system: MarketDataSystem, sim: Simulator) -> Clear:
        system.faults.inject("smart_router", "corrupt", point="ws_message")
        # the fault window lasts until the router has had WebSocket items to spoil
        until(lambda: router_status(system).messages_malformed > 0, WAIT)
        malformed.append(router_status(system).messages_malformed)
        return system.faults.clear_all

    result = run_checked(sim_factory, Case("format-unification", Level.NORMAL, inject))
    assert malformed and malformed[0] > 0, "the corrupt items were counted, not served"
    served_by_the_router(result)


def test_level_1_unstable_websocket_closed_again_and_again_the_router_keeps_serving(
    sim_factory: Callable[..., Simulator]
) -> None:
    def inject(system: MarketDataSystem, sim: Simulator) -> Clear:
        return repeat(sim.ws.close_all, 0.3)

    result = run_checked(sim_factory, Case("unstable-websocket", Level.DEGRADED, inject))
    assert Cause.CHANNEL_DEGRADED in causes(result)
    served_by_the_router(result)


def test_level_1_a_router_crash_restarted_within_intensity_keeps_the_router_serving(
    sim_factory: Callable[..., Simulator]
) -> None:
    def inject(system: MarketDataSystem, sim: Simulator) -> Clear:
        system.faults.inject("smart_router", "crash", point="request", count=1)
        system.get_trades("KRW-BTC", count=3)  # the crash fires on this one
        return system.faults.clear_all

    result = run_checked(sim_factory, Case("router-restart", Level.DEGRADED, inject))
    assert Cause.ROUTER_RESTARTED in causes(result)
    assert result.restarts.get("router_sup/smart_router") == 1


# -- Level 2 -----------------------------------------------------------------------------------


def _router_fault(kind: str, **options: object) -> Callable[[MarketDataSystem, Simulator],
                                                              Clear]:
    def inject(system: MarketDataSystem, sim: Simulator) -> Clear:
        system.faults.inject("smart_router", kind, **options)  # type: ignore[arg-type]
        if kind == "fail_start":
            system.faults.inject("smart_router", "crash", point="request", count=1)
        return system.faults.clear_all

    return inject


def _served_by_fallbacks_at_level_2(result: Result) -> None:
    at_2 = [c for c in result.calls if c.level is Level.FALLBACK and c.outcome == "answer"]
    assert at_2, "no call was made at Level 2"
    assert all(c.source in (*FALLBACKS, Source.LAST_KNOWN_GOOD) for c in at_2), at_2[:3]


def test_level_2_start_failure_the_fallbacks_serve_until_the_router_starts_again(
    sim_factory: Callable[..., Simulator]
) -> None:
    result = run_checked(sim_factory, Case("start-failure", Level.FALLBACK,
                                   _router_fault("fail_start", point="start")))
    assert Cause.ROUTER_START_FAILED in causes(result)
    _served_by_fallbacks_at_level_2(result)


def test_level_2_crash_loop_router_sup_gives_up_and_the_fallbacks_serve(
    sim_factory: Callable[..., Simulator]
) -> None:
    result = run_checked(sim_factory, Case("crash-loop", Level.FALLBACK,
                                   _router_fault("crash", point="request")))
    assert Cause.ROUTER_GAVE_UP in causes(result) or Cause.PROBE_FAILURES in causes(result)
    _served_by_fallbacks_at_level_2(result)


def test_level_2_memory_growth_past_memory_limit_mb_takes_the_router_out(
    sim_factory: Callable[..., Simulator]
) -> None:
    result = run_checked(sim_factory, Case("memory-growth", Level.FALLBACK,
                                   _router_fault("memory_growth", point="request"),
                                   settings={"memory_limit_mb": 8}))
    assert Cause.MEMORY_GROWTH in causes(result)
    _served_by_fallbacks_at_level_2(result)


def test_level_2_hang_requests_are_answered_by_the_rest_fallback_within_the_deadline(
    sim_factory: Callable[..., Simulator]
) -> None:
    result = run_checked(sim_factory, Case("hang", Level.FALLBACK,
                                   _router_fault("hang", point="request")))
    assert causes(result) & {Cause.PROBE_FAILURES, Cause.ROUTER_HUNG}
    fb = result.config.fallback
    at_0 = [c for c in result.calls if c.level is Level.NORMAL and c.source is not None
            and c.source is Source.REST_FALLBACK]
    for call in at_0:  # hedged: router_timeout, then one REST call
        assert call.elapsed < fb.request_deadline
    _served_by_fallbacks_at_level_2(result)


# -- Level 3 -----------------------------------------------------------------------------------


def test_level_3_router_and_backbone_down_at_once_serves_last_known_good_marked_stale(
    sim_factory: Callable[..., Simulator]
) -> None:
    def inject(system: MarketDataSystem, sim: Simulator) -> Clear:
        system.faults.inject("smart_router", "crash", point="request")
        sim.faults.black_hole(path_prefix="/v1/")
        sim.ws.set_accepting(False)
        sim.ws.drop_all()

        def clear() -> None:
            system.faults.clear_all()
            sim.faults.black_hole(False, path_prefix="/v1/")
            sim.ws.set_accepting(True)

        return clear

    result = run_checked(sim_factory, Case("router-and-backbone", Level.LAST_RESORT, inject))
    at_3 = [c for c in result.calls if c.level is Level.LAST_RESORT]
    assert at_3, "no call was made at Level 3"
    for call in at_3:  # check_calls asserted the true age of each; no WebSocket: all stale
        assert call.outcome == "unavailable" or (
            call.stale is True and call.source in (Source.LAST_KNOWN_GOOD, Source.WS_FALLBACK))
