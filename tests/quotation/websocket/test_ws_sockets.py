"""Sockets are released when a connection ends, without waiting for the garbage collector.

``websocket-client`` keeps its socket in a reference cycle and its ``close()`` does
nothing once the server closed first; the client closes the socket itself. The test
counts this process's open file descriptors after each of 100 server-initiated closes
from the project simulator (``sim.ws.close_all()``), with the garbage collector off, and
its threads and fds once the client has stopped.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

import pytest

from quotation.backoff import Backoff, Jitter
from quotation.websocket.client import (
    CloseReason,
    ConnectionState,
    WebSocketClient,
    WebSocketConfig,
)
from quotation.websocket.pacing import RateWindow
from quotation.websocket.subscription import DataType, Subscription
from tests.quotation.websocket.ws_support import WAIT, Held
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

SUBS = (Subscription(DataType.TRADE, ("KRW-BTC",), is_only_realtime=True),)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_sockets_closed_by_the_server_are_released_without_garbage_collection(
    sim_factory: Callable[..., Simulator],
) -> None:
    sim = sim_factory(seed=3, auto_trade=False)
    backoff = Backoff(initial=0.01, multiplier=2.0, cap=0.02, jitter=Jitter.NONE)
    config = WebSocketConfig(
        subscriptions=SUBS,
        url=sim.ws_url,
        backoff=backoff,
        connect_limits=(RateWindow(1000, 1.0),),  # Upbit's 5/s would make 100 reconnects 20 s
    )
    client = WebSocketClient(config)
    closes = 100
    before = Held.now()

    def close_and_wait_for_reconnect() -> None:
        assert sim.ws.wait_for(lambda st: st.subscribed == 1, WAIT)
        connects = client.status().connects
        assert sim.ws.close_all() == 1
        assert client.wait_until(lambda s: s.connects > connects, WAIT)
        assert client.wait_until(lambda s: s.state is ConnectionState.SUBSCRIBED, WAIT)

    client.start()
    try:
        close_and_wait_for_reconnect()  # warm-up: lazy imports, logging, first reconnect
        gc.collect()
        baseline = _open_fds()
        gc.disable()
        try:
            peak = baseline
            for _ in range(closes):
                close_and_wait_for_reconnect()
                peak = max(peak, _open_fds())
            assert client.wait_until(lambda s: s.last_close is CloseReason.SERVER_CLOSED, WAIT)
            leaked = _open_fds() - baseline
        finally:
            gc.enable()
        assert leaked <= 2, f"{leaked} file descriptors left open after {closes} server closes"
        assert peak - baseline <= 2, f"{peak - baseline} more file descriptors at the peak"
    finally:
        assert client.stop(5)
    assert Held.left_after(before) == []
