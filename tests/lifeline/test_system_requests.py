"""The facade's request path to the REST fallback: every request carries its deadline, an
expired one comes back as the usual typed outcome, and the REST fallback's lane
(:class:`~actors.rest_fallback.RestLane`) is used while the breaker is open, skipped while a
fault of the REST fallback is live, and taken anew from each new instance.

The first tests use the stand-in children of ``test_system_routing`` (no tree); the others a
system against the simulator with the breaker set up as ``test_system_breaker`` does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from actors.errors import RequestExpired
from actors.messages import CandlesRequest, Reply, Source, TickerRequest
from actors.rest_fallback import RestLane
from lifeline import Level, LifelineConfig, MarketDataSystem, MarketDataUnavailable
from lifeline.settings import FallbackSettings
from lifeline.tree import Tree
from tests.fakes import ManualClock
from tests.lifeline.system_support import started_system
from tests.lifeline.test_hot_path import ticker
from tests.lifeline.test_system import config_for, wait_until
from tests.lifeline.test_system_breaker import ETH, breaker, open_breaker, probe_blinded
from tests.lifeline.test_system_routing import NOW, StandIns, at_level
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

BTC = "KRW-BTC"


# -- deadlines (stand-ins) -----------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall=NOW.timestamp())


@pytest.fixture
def children() -> StandIns:
    return StandIns()


@pytest.fixture
def stood(clock: ManualClock, children: StandIns) -> Iterator[MarketDataSystem]:
    """A system whose tree is the stand-ins (as ``test_system_routing``'s)."""
    config = LifelineConfig(fallback=FallbackSettings(router_timeout=0.2, request_deadline=1.0))
    made = MarketDataSystem(config, clock=clock)
    made._tree = cast("Tree", children)
    yield made
    made._tree = None


def test_every_request_an_actor_gets_carries_the_facades_deadline(
    stood: MarketDataSystem, children: StandIns, clock: ManualClock
) -> None:
    at_level(stood, Level.FALLBACK)
    children.rest.answer = Reply.of([ticker(BTC, NOW)], Source.REST_FALLBACK)
    stood.get_ticker([BTC])
    stood.get_candles(BTC, "1m", count=3)
    due = clock.monotonic() + stood.config.fallback.request_deadline
    sent = [m for m in children.rest.asked if isinstance(m, TickerRequest | CandlesRequest)]
    assert [type(m) for m in sent] == [TickerRequest, CandlesRequest]
    assert [m.deadline for m in sent] == [due, due]
    asked_ws = [m for m in children.ws.asked if isinstance(m, TickerRequest)]
    assert [m.deadline for m in asked_ws] == [due]
    assert sent[0] == TickerRequest((BTC,))  # the deadline is not part of its equality


def test_an_expired_answer_is_the_facades_usual_typed_outcome(
    stood: MarketDataSystem, children: StandIns
) -> None:
    at_level(stood, Level.FALLBACK)
    children.rest.answer = RequestExpired("expired", deadline=1.0, now=2.0)
    with pytest.raises(MarketDataUnavailable) as caught:
        stood.get_ticker([BTC])
    assert isinstance(caught.value.__cause__, RequestExpired)


# -- the lane (against the simulator) ------------------------------------------------------


@pytest.fixture
def system(sim_factory: Any) -> Iterator[MarketDataSystem]:
    sim: Simulator = sim_factory(seed=1, rate_limit=None)
    config = config_for(sim)
    config = replace(config, fallback=replace(config.fallback, probe_interval=0.3,
                                              no_success_timeout=30.0))
    with started_system(config) as started:
        yield started


def lane_of(system: MarketDataSystem) -> RestLane | None:
    lane = system._lane
    return lane if lane is not None and lane.open else None


def test_the_breaker_open_path_answers_on_the_lane_and_a_live_fault_goes_through_the_actor(
    system: MarketDataSystem
) -> None:
    probe_blinded(system)
    open_breaker(system)
    wait_until(lambda: lane_of(system) is not None)  # lent at start
    answer = system.get_candles(ETH, "1m", count=3)
    assert (answer.source, answer.stale) == (Source.REST_FALLBACK, False)
    assert breaker(system)["state"] == "open"
    fault = system.faults.inject("rest_fallback", "delay", point="request", seconds=0.01)
    for _ in range(3):
        answer = system.get_candles(ETH, "1m", count=3)
        assert answer.source is Source.REST_FALLBACK
    assert fault.fired == 3  # every request passed the actor's fault point
    fault.clear()


def test_a_restarted_rest_fallback_lends_a_new_lane_and_the_old_one_is_closed(
    system: MarketDataSystem
) -> None:
    probe_blinded(system)
    open_breaker(system)
    wait_until(lambda: lane_of(system) is not None)
    old = lane_of(system)
    assert old is not None
    crash = system.faults.inject("rest_fallback", "crash", point="request", count=1)
    with pytest.raises(MarketDataUnavailable):
        system.get_ticker(["KRW-XRP"])  # the crash answers it; nothing kept for it yet
    assert crash.fired == 1
    wait_until(lambda: not old.open)

    def answered_on_a_new_lane() -> bool:
        try:
            answer = system.get_candles(ETH, "1m", count=3)
        except MarketDataUnavailable:  # still restarting: its backoff
            return False
        new = lane_of(system)
        return answer.source is Source.REST_FALLBACK and new is not None and new is not old

    wait_until(answered_on_a_new_lane, timeout=20.0)


def test_a_cache_hit_is_noted_on_the_board_as_demand_for_the_router(
    stood: MarketDataSystem, children: StandIns, clock: ManualClock
) -> None:
    board = stood._snapshots
    board.set_markets([BTC])
    board.set_ws_healthy(True)
    board.publish([ticker(BTC, datetime.now(UTC))], clock.monotonic())  # the board's wall: real
    clock.advance(1.0)
    answer = stood.get_ticker([BTC])
    assert answer.source is Source.SMART_ROUTER_WEBSOCKET  # a hit, in this thread
    assert children.router.asked == []
    assert dict(board.read_at) == {BTC: clock.monotonic()}


def test_at_router_timeout_the_rest_call_is_made_in_the_callers_thread_on_the_lane(
    sim_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The hedge's REST call at ``router_timeout`` (router hung) takes the lane: made in the
    host's thread, no hop to the REST fallback's and back. Seen by the thread that logs the
    fallback's failed call (the simulator answers 503)."""
    sim: Simulator = sim_factory(seed=1, rate_limit=None)
    config = config_for(sim)
    config = replace(config, fallback=replace(config.fallback, probe_interval=0.3,
                                              no_success_timeout=30.0))
    with started_system(config) as system:
        probe_blinded(system)  # the probes leave the hung router alone
        wait_until(lambda: lane_of(system) is not None)
        hang = system.faults.inject("smart_router", "hang", point="request")
        sim.faults.fail_next(20, 503, path_prefix="/v1/candles")
        try:
            with caplog.at_level(logging.DEBUG, logger="actors.rest_fallback"):
                with pytest.raises(MarketDataUnavailable):  # router hung, REST failing
                    system.get_candles(ETH, "1m", count=3)
        finally:
            hang.clear()
    failed = [r for r in caplog.records
              if r.getMessage().startswith("REST fallback request failed")]
    assert failed, "the REST fallback made no call"
    assert failed[0].threadName == threading.current_thread().name, failed[0].threadName
