"""Reconnect hygiene against a hostile upstream (issue 8, WebSocket items 3 and 4).

* The handshake has ``connect_timeout`` as a whole: a server dripping its ``101`` answer
  one byte at a time is cut off at the deadline, and ``stop()`` cuts it short.
* The failure count (and so the backoff) resets only after a connection stayed healthy
  for ``healthy_after`` seconds, not on its first frame.
* A server that sends one trade and closes, again and again, costs at most one REST gap
  fill per market per ``gap_fill_min_interval``.

:class:`HygieneServer` is a raw-socket server on 127.0.0.1: per connection it either
drips a handshake answer or completes the handshake (RFC 6455 accept key), waits for the
subscription and sends one trade, then closes (or holds the connection until told to
close it, answering each ping with a pong). Bounded in connections, bytes and time; it
stops by itself. Every test ends with no thread or fd more than before it.

The bounds asserted are the config's: the handshake's by what the server managed to drip
(and the error naming ``connect_timeout``), ``stop``'s by its own ``timeout``, the backoff's
on a :class:`~tests.fakes.ManualClock`; no test reads the wall clock.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson
import pytest

from quotation.backoff import Backoff, Jitter
from quotation.models import Trade
from quotation.websocket.client import (
    CloseReason,
    ConnectionState,
    WebSocketClient,
    WebSocketConfig,
    WebSocketLike,
    default_connector,
)
from quotation.websocket.liveness import LivenessConfig
from quotation.websocket.subscription import DataType, Subscription
from tests.fakes import ManualClock
from tests.quotation.examples import WS_TRADE, changed
from tests.quotation.websocket.ws_support import Held, frame, handshake_answer

pytestmark = pytest.mark.timeout(20)

SUBS = (Subscription(DataType.TRADE, ("KRW-BTC",), is_only_realtime=True),)
_LIMIT = 8192
"""Bytes read from one client at most."""
_CONNECTION_DEADLINE = 4.0
"""Real seconds the server gives one connection before hanging up itself."""
_FIRST_SID = 17732400590950000


@dataclass(frozen=True, slots=True)
class Plan:
    """What the server does on one connection."""

    drip: float | None = None
    """Seconds between the bytes of the handshake answer (``None``: sent at once)."""
    hold: bool = False
    """After the trade, keep the connection open until ``release`` (else close at once)."""


class HygieneServer:
    """A raw WebSocket server following one :class:`Plan` per connection, then stopping."""

    def __init__(self, plans: list[Plan]) -> None:
        self._plans = plans
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._release = threading.Event()
        self._cond = threading.Condition()
        self.connections = 0
        self.dripped = 0
        self.holding = False
        self._thread = threading.Thread(target=self._run, name="hygiene-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/websocket/v1"

    def wait_for(self, predicate: Callable[[HygieneServer], bool], timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def release(self) -> None:
        """Close the held connection."""
        self._release.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self._listener.close()

    def _run(self) -> None:
        for number, plan in enumerate(self._plans):
            conn = self._accept()
            if conn is None:
                break
            with conn:
                conn.settimeout(0.05)
                with self._cond:
                    self.connections = number + 1
                    self._cond.notify_all()
                self._serve(conn, plan, time.monotonic() + _CONNECTION_DEADLINE)
        self._listener.close()  # later connects are refused

    def _accept(self) -> socket.socket | None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            return conn
        return None

    def _serve(self, conn: socket.socket, plan: Plan, deadline: float) -> None:
        request = self._read_until(conn, b"\r\n\r\n", deadline)
        if request is None:
            return
        answer = handshake_answer(request)
        try:
            if plan.drip is not None:
                for byte in answer:
                    if self._stop.wait(plan.drip) or time.monotonic() > deadline:
                        return
                    conn.sendall(bytes((byte,)))
                    with self._cond:
                        self.dripped += 1
                        self._cond.notify_all()
                return
            conn.sendall(answer)
            # The subscription frame (masked, short): its first bytes are enough.
            if self._read_until(conn, b"", deadline, least=2) is None:
                return
            sid = _FIRST_SID + self.connections
            trade = orjson.dumps(changed(WS_TRADE, sequential_id=sid))
            conn.sendall(frame(trade))
            if plan.hold:
                with self._cond:
                    self.holding = True
                    self._cond.notify_all()
                self._hold(conn, deadline)
                with self._cond:
                    self.holding = False
            conn.sendall(bytes((0x88, 2)) + (1000).to_bytes(2, "big"))  # close frame
        except OSError:
            return
        self._read_until(conn, b"\x00never", min(deadline, time.monotonic() + 0.5))

    def _hold(self, conn: socket.socket, deadline: float) -> None:
        """Until ``release`` (or the deadline): whatever the client sends is taken for a
        ping (it sends nothing else meanwhile) and answered with a pong."""
        read = 0
        while not self._release.is_set() and not self._stop.is_set():
            if time.monotonic() > deadline:
                return
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            if not chunk or read + len(chunk) > _LIMIT:
                return
            read += len(chunk)
            conn.sendall(bytes((0x8A, 0)))  # an empty pong

    def _read_until(
        self, conn: socket.socket, marker: bytes, deadline: float, least: int = 0
    ) -> bytes | None:
        buf = b""
        while time.monotonic() < deadline and not self._stop.is_set():
            if (marker and marker in buf) or (least and len(buf) >= least):
                return buf
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return None
            if not chunk or len(buf) + len(chunk) > _LIMIT:
                return None
            buf += chunk
        return None


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """After the test's clients and servers are torn down: no thread or fd more than before."""
    before = Held.now()
    yield
    assert Held.left_after(before) == []


@pytest.fixture
def servers() -> Iterator[list[HygieneServer]]:
    started: list[HygieneServer] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def clients() -> Iterator[list[WebSocketClient]]:
    started: list[WebSocketClient] = []
    yield started
    for client in started:
        client.stop(2.0)


DRIP = 0.2
"""Seconds between the bytes of a dripped handshake answer."""
SLOW_BACKOFF = Backoff(initial=30.0, cap=30.0)
"""Long enough that a test sees exactly one attempt."""


def test_a_handshake_dripped_a_byte_at_a_time_fails_at_connect_timeout_as_a_whole(
    servers: list[HygieneServer], clients: list[WebSocketClient]
) -> None:
    server = HygieneServer([Plan(drip=DRIP)])
    servers.append(server)
    config = WebSocketConfig(
        subscriptions=SUBS, url=server.url, connect_timeout=0.5, backoff=SLOW_BACKOFF
    )
    client = WebSocketClient(config)
    clients.append(client)
    client.start()
    assert client.wait_until(lambda s: s.connect_failures == 1, 5.0)
    # The answer is ~130 bytes (26 s of drip); the server's own deadline would end it after
    # 20. Cut at connect_timeout: 0.5 / 0.2 = 2 bytes, 3 if the timer is late by a drip.
    assert server.dripped <= config.connect_timeout / DRIP + 1
    status = client.status()
    assert status.last_close is CloseReason.HANDSHAKE_TIMEOUT
    assert status.last_error == "HandshakeTimeout: handshake timed out after 0.5 s"
    assert status.connects == 0


def test_stop_cuts_a_dripping_handshake_short_and_returns_true(
    servers: list[HygieneServer], clients: list[WebSocketClient]
) -> None:
    server = HygieneServer([Plan(drip=DRIP)])
    servers.append(server)
    config = WebSocketConfig(
        subscriptions=SUBS, url=server.url, connect_timeout=10.0, backoff=SLOW_BACKOFF
    )
    client = WebSocketClient(config)
    clients.append(client)
    client.start()
    assert server.wait_for(lambda s: s.dripped >= 1)
    assert client.status().state is ConnectionState.CONNECTING
    # Well within connect_timeout (10 s): stop's own bound is what cuts the handshake.
    assert client.stop(2.0) is True
    status = client.status()
    assert status.state is ConnectionState.STOPPED
    assert status.connect_failures == 0  # stopping is not a failure
    assert status.last_close is CloseReason.STOPPED


def test_backoff_grows_on_a_server_that_sends_one_trade_and_closes_until_one_stays_healthy(
    servers: list[HygieneServer], clients: list[WebSocketClient]
) -> None:
    plans = [Plan()] * 4 + [Plan(hold=True)] + [Plan()] * 2
    server = HygieneServer(plans)
    servers.append(server)
    clock = ManualClock()
    attempts: list[float] = []

    def recording(url: str, timeout: float) -> WebSocketLike:
        attempts.append(clock.monotonic())
        return default_connector(url, timeout)

    config = WebSocketConfig(
        subscriptions=SUBS,
        url=server.url,
        backoff=Backoff(initial=1.0, multiplier=2.0, cap=64.0, jitter=Jitter.FULL),
        healthy_after=5.0,
        # A short real read timeout (tick 0.05 s); silence never due on this clock, and the
        # first ping only once healthy_after has passed (then the server answers it).
        liveness=LivenessConfig(ping_interval=5.5, pong_timeout=0.2, idle_timeout=100.0),
    )
    client = WebSocketClient(config, clock=clock, random=lambda: 0.5, connector=recording)
    clients.append(client)
    client.start()
    assert server.wait_for(lambda s: s.holding)
    assert client.wait_until(lambda s: s.state is ConnectionState.LIVE, 5.0)
    clock.advance(config.healthy_after + 1.0)  # the held connection stays healthy past it
    # The receive loop's next check sends the ping now due and marks the connection
    # healthy before it reads again, so the pong's arrival proves the mark was made.
    assert client.wait_until(lambda s: s.keepalives_answered == 1, 5.0)
    server.release()
    assert client.wait_until(lambda s: len(attempts) >= 7, 5.0)
    client.stop(2.0)
    delays = [b - a for a, b in itertools.pairwise(attempts[:7])]
    # Each of the first four connections delivered a trade and died: a failure in a row
    # each, so the wait doubles (0.5 * min(64, 1 * 2**n)); the held one was healthy for
    # 6 s, so after it the count starts over (0.5 * 1), then grows again.
    assert delays[:4] == pytest.approx([0.5 * 2, 0.5 * 4, 0.5 * 8, 0.5 * 16])
    assert delays[4] == pytest.approx(6.0 + 0.5 * 1)
    assert delays[5] == pytest.approx(0.5 * 2)
    assert client.status().connects == 7


class CountingTrades:
    """A REST trade source that has no history, noting each request's client-clock time."""

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock
        self.requests: list[float] = []

    def get_trades(self, market: str, *, count: int = 1, cursor: int | None = None) -> list[Trade]:
        self.requests.append(self._clock.monotonic())
        return []


def test_a_server_that_sends_one_trade_and_closes_gets_one_rest_gap_fill_per_interval(
    servers: list[HygieneServer], clients: list[WebSocketClient]
) -> None:
    # Five connections that each deliver one trade and close, then one that stays. Every
    # reconnect leaves a hole in KRW-BTC's trades; the backoff draw is 0 (a storm) and the
    # clock moves only by the connect pacer's sleeps (5 connects/s) and the test.
    server = HygieneServer([Plan()] * 5 + [Plan(hold=True)])
    servers.append(server)
    clock = ManualClock()
    source = CountingTrades(clock)
    config = WebSocketConfig(
        subscriptions=SUBS,
        url=server.url,
        liveness=LivenessConfig(ping_interval=100.0, pong_timeout=0.2, idle_timeout=100.0),
    )
    client = WebSocketClient(config, clock=clock, random=lambda: 0.0, trade_source=source)
    clients.append(client)
    started = clock.monotonic()
    client.start()
    assert server.wait_for(lambda s: s.holding)
    # Live on the sixth: its trade has been taken (held behind its hole) by now.
    assert client.wait_until(lambda s: s.connects == 6 and s.state is ConnectionState.LIVE, 5.0)
    # Five holes: the first filled at once, the four found within the interval wait.
    assert source.requests == [started]
    assert client.wait_until(lambda s: s.gap_fills == 1 and s.held_trades == 4, 5.0)
    assert client.status().gap_fills_pending == 1
    assert clock.monotonic() - started < config.gap_fill_min_interval

    clock.advance(config.gap_fill_min_interval)  # one fill for the four waiting holes
    assert client.wait_until(lambda s: s.gap_fills == 2 and s.gap_fills_pending == 0, 5.0)
    assert len(source.requests) == 2
    assert source.requests[1] - source.requests[0] >= config.gap_fill_min_interval
