"""The smart router's request path against the simulator, on a manual clock: a request past its
deadline is answered at once and never sent; a market the host reads only from the board
(the facade's cache hits, :meth:`SnapshotBoard.note_read`) stays subscribed past
``cold_after``, one nobody reads is dropped."""

from __future__ import annotations

import pytest

from actors.errors import RequestExpired
from actors.faults import FaultBoard, FaultKind, FaultPoint, InjectedCrash
from actors.messages import CandlesRequest, ProbeRequest, Reply, TickerRequest, TradesRequest
from quotation.models import CandleInterval
from quotation.rest import RateLimiter
from tests.actors.test_smart_router import BTC, ETH, R, Router, eventually
from tests.fakes import ManualClock
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def counted(quiet: Simulator) -> Simulator:
    """The still simulator, counting every request it answers (``applied["latency"]``)."""
    quiet.faults.set_latency(0.0001)
    return quiet


def seen(sim: Simulator) -> int:
    applied = sim.faults.snapshot()["applied"]
    assert isinstance(applied, dict)
    return int(applied["latency"])


@pytest.mark.parametrize("request_", [
    TickerRequest((BTC,), deadline=999.0),
    TradesRequest(BTC, 5, deadline=999.0),
    CandlesRequest(BTC, CandleInterval.MINUTE_1, 5, deadline=999.0),
], ids=["ticker", "trades", "candles"])
def test_an_expired_request_is_answered_at_once_and_never_sent(
    counted: Simulator, limiter: RateLimiter, request_: object
) -> None:
    clock = ManualClock(mono=1_000.0)
    router = Router(counted, limiter, clock=clock)
    with pytest.raises(RequestExpired) as caught:
        router.ask(request_)
    assert (caught.value.deadline, caught.value.now) == (999.0, 1_000.0)
    status = router.status()
    assert status.rest_calls == 0
    assert status.subscribed == ()  # no demand counted for it either
    assert seen(counted) == 0
    assert isinstance(router.ask(TickerRequest((BTC,), deadline=1_001.0)), Reply)
    assert router.status().rest_calls == 1
    assert seen(counted) == 1  # the counter counts: a request in time reaches it


# -- demand: reads from the board count ----------------------------------------------------


def test_a_market_read_only_from_the_board_stays_subscribed_and_one_nobody_reads_is_dropped(
    quiet: Simulator, limiter: RateLimiter
) -> None:
    clock = ManualClock()
    router = Router(quiet, limiter, clock=clock)  # RULES: cold_after 60 s
    router.make_hot(BTC, ETH)
    assert set(router.status().subscribed) == {BTC, ETH}
    cold_after = router.rules.cold_after
    for _ in range(3):  # the host reads BTC from the board only (as the facade notes a hit)
        clock.advance(cold_after / 2)
        router.board.note_read((BTC,), clock.monotonic())
    clock.advance(1.0)  # 91 s since the last request: past cold_after for both
    router.ask(ProbeRequest(BTC))  # the probe's tick re-evaluates the demand, counting none
    assert router.status().subscribed == (BTC,)
    assert set(router.board.snapshot.markets) == {BTC}
    assert ETH not in router.board.read_at
    clock.advance(cold_after)  # nobody reads BTC any more
    router.ask(ProbeRequest(BTC))
    assert router.status().subscribed == ()


# -- the probe: the router's own REST success is its evidence ---------------------------------


def test_a_probe_is_answered_by_the_routers_own_recent_rest_success_without_a_call(
    counted: Simulator, limiter: RateLimiter
) -> None:
    """Within ``evidence_within`` of a successful REST answer (none failed since) the probe
    makes no call: a host using up the ticker budget cannot make the router's probe wait in
    the limiter past its deadline. Older evidence, or none, and the probe calls."""
    clock = ManualClock(mono=1_000.0)
    router = Router(counted, limiter, clock=clock)
    probe = ProbeRequest(BTC, evidence_within=1.0)
    assert isinstance(router.ask(probe), Reply)  # no evidence yet: a call
    assert isinstance(router.ask(probe), Reply)  # a probe's own call is no evidence: a call
    assert seen(counted) == 2
    host = router.ask(TradesRequest(ETH, 5))  # the host's request: a success
    assert seen(counted) == 3
    clock.advance(0.5)
    assert router.ask(probe) is host  # within 1 s of it: its answer is the evidence
    assert router.ask(ProbeRequest(BTC)) is not host  # evidence_within 0: always a call
    assert seen(counted) == 4
    clock.advance(0.6)  # the evidence (the host's call at 1000.0) is 1.1 s old: a call again
    assert router.ask(probe) is not host
    assert seen(counted) == 5


def test_a_failed_rest_call_voids_the_evidence_so_the_next_probe_calls_and_fails(
    counted: Simulator, limiter: RateLimiter
) -> None:
    clock = ManualClock(mono=1_000.0)
    router = Router(counted, limiter, clock=clock)
    router.ask(TickerRequest((ETH,)))  # a success: evidence
    counted.faults.fail_next(2, 503)
    with pytest.raises(Exception, match="503"):
        router.ask(TradesRequest(ETH, 5))  # then a failure
    with pytest.raises(Exception, match="503"):
        router.ask(ProbeRequest(BTC, evidence_within=60.0))  # no evidence: its own call
    assert seen(counted) == 3
    assert isinstance(router.ask(ProbeRequest(BTC, evidence_within=60.0)), Reply)
    assert seen(counted) == 4


def test_an_expired_probe_is_answered_at_once_and_never_sent(
    counted: Simulator, limiter: RateLimiter
) -> None:
    clock = ManualClock(mono=1_000.0)
    router = Router(counted, limiter, clock=clock)
    with pytest.raises(RequestExpired):
        router.ask(ProbeRequest(BTC, deadline=999.5))
    assert seen(counted) == 0


def test_a_crash_injected_at_request_kills_the_router_when_the_probe_answers_by_evidence(
    counted: Simulator, limiter: RateLimiter
) -> None:
    """The evidence path passes the ``request`` fault point as a call does, and an injected
    crash there kills the router the same way (``count=1`` crashes are how tests force a
    restart: consumed by a probe without the death, the restart never came)."""
    faults = FaultBoard(enabled=True)
    router = Router(counted, limiter, clock=ManualClock(mono=1_000.0), faults=faults)
    try:
        router.ask(TickerRequest((ETH,)))  # a success: the next probe answers by evidence
        faults.inject(R, FaultKind.CRASH, point=FaultPoint.REQUEST, count=1)
        with pytest.raises(InjectedCrash):
            router.ask(ProbeRequest(BTC, evidence_within=60.0))
        eventually(lambda: not router.ref.is_alive(), "the router dead")
        assert seen(counted) == 1  # the probe made no call
    finally:
        faults.clear_all()
