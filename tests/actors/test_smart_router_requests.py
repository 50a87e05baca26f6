"""The smart router's request path against the simulator, on a manual clock: a request past its
deadline is answered at once and never sent."""

from __future__ import annotations

import pytest

from actors.errors import RequestExpired
from actors.messages import CandlesRequest, Reply, TickerRequest, TradesRequest
from quotation.models import CandleInterval
from quotation.rest import RateLimiter
from tests.actors.test_smart_router import BTC, Router
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
