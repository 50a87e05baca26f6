"""The REST fallback's lane (a host's thread makes the actor's call itself) and request expiry
(a request past its deadline is answered at once and never sent), against the simulator.

Requests reaching the simulator are counted there: a latency of 0.1 ms on every path makes
the simulator's fault controller count each request it answers (``applied["latency"]``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import pykka
import pytest

from actors.errors import RequestExpired
from actors.faults import FaultBoard
from actors.messages import (
    CandlesRequest,
    HealthRequest,
    LaneRequest,
    OrderbookRequest,
    Reply,
    RestHealth,
    Source,
    TickerRequest,
    TradesRequest,
)
from actors.rest_fallback import RestFallback, RestLane
from quotation.backoff import Backoff, Jitter
from quotation.models import CandleInterval
from quotation.rest import RateLimiter, RestConfig
from supervisors import ChildRestarted, ChildSpec, SupervisionEvent, SupervisorFlags
from supervisors.handle import SupervisorHandle
from tests.fakes import ManualClock
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0
"""Real seconds a test waits for an answer or another thread before failing."""
BTC = "KRW-BTC"
ABANDONED = 25
"""Asks sent while the child waits out its restart backoff."""


@pytest.fixture
def counted(quiet: Simulator) -> Simulator:
    """The still simulator, counting every request it answers."""
    quiet.faults.set_latency(0.0001)
    return quiet


def seen(sim: Simulator) -> int:
    """Requests the simulator has answered since :func:`counted` (what reached it)."""
    applied = sim.faults.snapshot()["applied"]
    assert isinstance(applied, dict)
    return int(applied["latency"])


def _start(sim: Simulator, limiter: RateLimiter, **kwargs: object
           ) -> pykka.ActorRef[RestFallback]:
    return RestFallback.start(RestConfig(base_url=sim.base_url), limiter, **kwargs)


def _lane(ref: pykka.ActorRef[RestFallback]) -> RestLane:
    lane = ref.ask(LaneRequest(), timeout=WAIT)
    assert isinstance(lane, RestLane)
    return lane


def _health(ref: pykka.ActorRef[RestFallback]) -> RestHealth:
    health = ref.ask(HealthRequest(), timeout=WAIT)
    assert isinstance(health, RestHealth)
    return health


# -- expiry --------------------------------------------------------------------------------


@pytest.mark.parametrize("request_", [
    TickerRequest((BTC,), deadline=999.0),
    OrderbookRequest((BTC,), deadline=999.0),
    TradesRequest(BTC, 5, deadline=999.0),
    CandlesRequest(BTC, CandleInterval.MINUTE_1, 5, deadline=999.0),
], ids=["ticker", "orderbook", "trades", "candles"])
def test_an_expired_request_is_answered_at_once_and_never_sent(
    counted: Simulator, limiter: RateLimiter, clock: ManualClock, request_: object
) -> None:
    ref = _start(counted, limiter, clock=clock)  # clock at 1000.0: the deadline is past
    with pytest.raises(RequestExpired) as caught:
        ref.ask(request_, timeout=WAIT)
    assert caught.value.deadline == 999.0
    assert caught.value.now == clock.monotonic()
    with pytest.raises(RequestExpired):
        _lane(ref).fetch(request_)  # type: ignore[arg-type]
    assert seen(counted) == 0
    assert _health(ref).consecutive_failures == 0  # nothing was tried: not a failure
    in_time = TickerRequest((BTC,), deadline=clock.monotonic() + 5.0)
    assert isinstance(ref.ask(in_time, timeout=WAIT), Reply)
    assert seen(counted) == 1  # the counter counts: a request in time reaches it


def test_asks_buffered_during_a_restart_backoff_expire_and_none_reaches_the_simulator(
    counted: Simulator, limiter: RateLimiter
) -> None:
    clock = ManualClock(mono=0.0, blocking=True)  # the supervisor's backoff sleeps on it
    board = FaultBoard(enabled=True, clock=clock)
    events: queue.Queue[SupervisionEvent] = queue.Queue()
    spec = ChildSpec("rest", RestFallback, args=(RestConfig(base_url=counted.base_url), limiter),
                     kwargs={"faults": board, "clock": clock},
                     backoff=Backoff(initial=5.0, multiplier=1.0, cap=5.0, jitter=Jitter.NONE))
    sup = SupervisorHandle.start(SupervisorFlags(intensity=10, period=60.0), [spec],
                                 clock=clock, listeners=[events.put])
    try:
        rest = sup.child("rest")
        board.inject("rest_fallback", "crash", point="request", count=1)
        with pytest.raises(Exception, match="crash"):
            rest.ask(TickerRequest((BTC,)), timeout=WAIT)
        clock.wait_for_sleeps(1, timeout=WAIT)  # dead; the restart waits out its backoff
        abandoned = [rest.ask_future(TickerRequest((BTC,), deadline=clock.monotonic() + 1.0))
                     for _ in range(ABANDONED)]
        clock.advance(5.0)  # the restart: every buffered ask is past its deadline by now
        for future in abandoned:
            with pytest.raises(RequestExpired):
                future.get(timeout=WAIT)
        restarted = _restarts(events)
        assert [e.child_id for e in restarted] == ["rest"]
        assert seen(counted) == 0  # the crash came before the call; none was replayed
        fresh = rest.ask(TickerRequest((BTC,), deadline=clock.monotonic() + 1.0), timeout=WAIT)
        assert isinstance(fresh, Reply)
        assert seen(counted) == 1
    finally:
        clock.close()
        sup.stop(timeout=WAIT)


def test_asks_queued_behind_a_slow_call_expire_and_are_never_sent(
    counted: Simulator, limiter: RateLimiter, clock: ManualClock
) -> None:
    ref = _start(counted, limiter, clock=clock)
    counted.faults.black_hole(True)
    slow = ref.ask(TickerRequest((BTC,)), block=False)  # no deadline: held at the simulator
    assert counted.faults.wait_for_held(1, timeout=WAIT)
    queued = [ref.ask(TickerRequest((BTC,), deadline=clock.monotonic() + 1.0), block=False)
              for _ in range(ABANDONED)]
    clock.advance(2.0)  # every asker behind the slow call has given up
    counted.faults.black_hole(False)
    assert isinstance(slow.get(timeout=WAIT), Reply)
    for future in queued:
        with pytest.raises(RequestExpired):
            future.get(timeout=WAIT)
    assert seen(counted) == 1  # the slow call only


def _restarts(events: queue.Queue[SupervisionEvent]) -> list[ChildRestarted]:
    """The ChildRestarted events: waits (bounded) for the first — the supervisor reports it
    after the new child started, so its buffered asks may be answered before that — then
    takes what else is queued."""
    found: list[ChildRestarted] = []
    deadline = time.monotonic() + WAIT
    while not found and time.monotonic() < deadline:
        try:
            event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if isinstance(event, ChildRestarted):
            found.append(event)
    found.extend(e for e in _drain(events) if isinstance(e, ChildRestarted))
    return found


def _drain(events: queue.Queue[SupervisionEvent]) -> list[SupervisionEvent]:
    found = []
    while True:
        try:
            found.append(events.get_nowait())
        except queue.Empty:
            return found


# -- the lane ------------------------------------------------------------------------------


def test_the_lane_answers_in_the_callers_thread_as_the_actor_would_and_records_health(
    counted: Simulator, limiter: RateLimiter
) -> None:
    ref = _start(counted, limiter)
    lane = _lane(ref)
    assert lane.open
    reply = lane.fetch(TickerRequest((BTC,)))
    assert reply is not None
    assert reply.source is Source.REST_FALLBACK
    assert [item.market for item in reply.data] == [BTC]
    assert seen(counted) == 1
    health = _health(ref)
    assert health.last_success_at is not None
    assert health.consecutive_failures == 0


def test_a_live_fault_of_the_rest_fallback_sends_every_request_through_the_actor(
    counted: Simulator, limiter: RateLimiter, board: FaultBoard
) -> None:
    ref = _start(counted, limiter, faults=board)
    lane = _lane(ref)
    injection = board.inject("rest_fallback", "raise", point="request")
    assert lane.fetch(TickerRequest((BTC,))) is None  # not on the lane: ask the actor
    with pytest.raises(Exception, match="injected"):
        ref.ask(TickerRequest((BTC,)), timeout=WAIT)
    assert injection.fired == 1
    assert seen(counted) == 0
    injection.clear()
    assert lane.fetch(TickerRequest((BTC,))) is not None
    assert seen(counted) == 1


def test_a_busy_lane_answers_none_and_one_call_runs_at_a_time(
    counted: Simulator, limiter: RateLimiter
) -> None:
    ref = _start(counted, limiter)
    lane = _lane(ref)
    with lane.lock:  # a call in flight (the actor's, or another caller's)
        assert lane.fetch(TickerRequest((BTC,))) is None
        asked = ref.ask(TickerRequest((BTC,)), block=False)  # the actor waits for the lock
        with pytest.raises(pykka.Timeout):
            asked.get(timeout=0.05)
        assert seen(counted) == 0
    assert isinstance(asked.get(timeout=WAIT), Reply)
    assert seen(counted) == 1


def test_a_stopped_actor_closes_its_lane_and_its_client_after_a_call_in_flight(
    counted: Simulator, limiter: RateLimiter
) -> None:
    ref = _start(counted, limiter)
    lane = _lane(ref)
    counted.faults.black_hole(True)
    answers: list[object] = []
    caller = threading.Thread(target=_catching(lambda: lane.fetch(TickerRequest(
        (BTC,), deadline=1_000_000_000.0)), answers))
    caller.start()
    try:
        assert counted.faults.wait_for_held(1, timeout=WAIT)  # the lane call is in flight
        ref.stop(timeout=WAIT)
        assert not lane.open
        assert lane.fetch(TickerRequest((BTC,))) is None  # closed: ask the (new) actor
        assert not _client_closed(lane)  # never under the call in flight
    finally:
        counted.faults.black_hole(False)
        caller.join(WAIT)
    assert not caller.is_alive()
    assert len(answers) == 1
    assert _client_closed(lane)  # the call that ended last closed it


def _catching(call: Callable[[], object], into: list[object]) -> Callable[[], None]:
    def run() -> None:
        try:
            into.append(call())
        except Exception as exc:  # the test looks at what came back
            into.append(exc)
    return run


def _client_closed(lane: RestLane) -> bool:
    return bool(lane._shut)


@pytest.fixture(autouse=True)
def _no_hold(counted: Simulator) -> Iterator[None]:
    yield
    counted.faults.black_hole(False)
