"""A hostile upstream (issue 8): oversized frames and huge JSON lists on the WebSocket.

The oversized-frame and huge-list tests run against :class:`EvilServer`, a raw-socket
WebSocket server on 127.0.0.1 written here: it completes each handshake (RFC 6455
accept key), waits for the client's subscription frame, sends the bytes its script
gives for that connection (then, if given one, a stream of payload bytes for as long as
the client takes them), then reads what the client sends back (its close frame) until
the client hangs up. Everything it does is bounded: connections, bytes sent and read,
and time per connection; it stops by itself.

Every test here ends with this process holding no thread and no file descriptor more
than before it (``nothing_left_behind``, no garbage collection asked for); the streamed
ones also bound the resident memory the client may take by its ``max_frame_bytes``.
"""

from __future__ import annotations

import itertools
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
import pytest

from quotation.backoff import Backoff, Jitter
from quotation.errors import InvalidValue
from quotation.websocket.client import (
    CloseReason,
    ConnectionState,
    WebSocketClient,
    WebSocketConfig,
)
from quotation.websocket.subscription import DataType, Subscription
from tests.quotation.examples import WS_TRADE, changed
from tests.quotation.websocket.ws_support import (
    FAST_BACKOFF,
    WAIT,
    Collector,
    Held,
    frame,
    handshake_answer,
    header,
    rss_bytes,
)

pytestmark = pytest.mark.timeout(30)

SUBS = (Subscription(DataType.TRADE, ("KRW-BTC",), is_only_realtime=True),)
TIB = 1 << 40
STATUS_MESSAGE_TOO_BIG = 1009
_HANDSHAKE_LIMIT = 8192
_READ_LIMIT = 1 << 16
"""Bytes the evil server reads from one client after its script (a close frame is tiny)."""
_CONNECTION_DEADLINE = 5.0
"""Seconds the evil server gives one connection before hanging up itself."""

_STREAM_LIMIT = 64 << 20
"""Payload bytes the evil server streams at most on one connection."""
_STREAM_SEND_TIMEOUT = 1.0
"""Seconds one streamed chunk may wait for the client to take it."""
RSS_SLACK = 8 << 20
"""Resident memory a client may grow by beyond its ``max_frame_bytes`` (threads, buffers)."""
_ITEMS_BLOCK = b"0," * (1 << 15)
"""64 KiB of JSON list items, sent again and again (the server allocates nothing more)."""

NO_RECONNECT_IN_TEST = Backoff(initial=30.0, cap=30.0, jitter=Jitter.NONE)
"""A reconnect backoff no test here waits out."""

Script = Callable[[int], bytes]
"""What the evil server sends on its ``n``-th connection (0-based), after the subscription."""
Stream = Callable[[], Iterable[bytes]]
"""Payload chunks the evil server sends after the script, while the client takes them."""


def json_list_stream(items: int, limit: int = _STREAM_LIMIT) -> Iterator[bytes]:
    """The payload ``[0,0,...,0]`` of ``items`` items (``2 * items + 1`` bytes) in chunks,
    ending before the chunk that would pass ``limit`` bytes."""
    full, rest = divmod(items - 1, len(_ITEMS_BLOCK) // 2)  # "0," pairs before the last "0"
    chunks = itertools.chain(
        (b"[",), itertools.repeat(_ITEMS_BLOCK, full), (_ITEMS_BLOCK[: 2 * rest] + b"0]",)
    )
    sent = 0
    for chunk in chunks:
        if sent + len(chunk) > limit:
            return
        yield chunk
        sent += len(chunk)


def trade_json(sequential_id: int = 17732400590950000) -> bytes:
    return orjson.dumps(changed(WS_TRADE, sequential_id=sequential_id))


class EvilServer:
    """A raw-socket WebSocket server that follows a script, bounded in connections and time."""

    def __init__(
        self, script: Script, *, max_connections: int = 4, stream: Stream | None = None
    ) -> None:
        self._script = script
        self._stream = stream
        self._max = max_connections
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self.connections = 0
        self.close_codes: list[int | None] = []
        """Per finished connection: the status code of the client's close frame, if any."""
        self.streamed = 0
        """Stream bytes the client took (on the last connection that streamed)."""
        self.stream_done = False
        """The last stream ended: all sent, or the client stopped taking it."""
        self._thread = threading.Thread(target=self._run, name="evil-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/websocket/v1"

    def wait_for(self, predicate: Callable[[EvilServer], bool], timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        self._listener.close()

    def _run(self) -> None:
        while not self._stop.is_set() and self.connections < self._max:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                deadline = time.monotonic() + _CONNECTION_DEADLINE
                conn.settimeout(0.1)
                with self._cond:
                    number = self.connections
                    self.connections += 1
                    self._cond.notify_all()
                code = self._serve(conn, number, deadline)
            with self._cond:
                self.close_codes.append(code)
                self._cond.notify_all()
        self._listener.close()

    def _serve(self, conn: socket.socket, number: int, deadline: float) -> int | None:
        reader = _Reader(conn, deadline, self._stop)
        request = reader.until(b"\r\n\r\n", _HANDSHAKE_LIMIT)
        if request is None:
            return None
        conn.sendall(handshake_answer(request))
        if reader.client_frame() is None:  # the subscription request
            return None
        try:
            conn.sendall(self._script(number))
        except OSError:
            return None
        if self._stream is not None:
            self._send_stream(conn, deadline)
        while True:
            got = reader.client_frame()
            if got is None:
                return None
            opcode, payload = got
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def _send_stream(self, conn: socket.socket, deadline: float) -> None:
        assert self._stream is not None
        conn.settimeout(_STREAM_SEND_TIMEOUT)
        try:
            for chunk in self._stream():
                if self._stop.is_set() or time.monotonic() > deadline:
                    break
                conn.sendall(chunk)
                self.streamed += len(chunk)
        except OSError:
            pass  # the client closed, or stopped reading
        finally:
            conn.settimeout(0.1)
            with self._cond:
                self.stream_done = True
                self._cond.notify_all()


class _Reader:
    """Bounded reads from one client socket: until a deadline, at most ``_READ_LIMIT`` bytes."""

    def __init__(self, conn: socket.socket, deadline: float, stop: threading.Event) -> None:
        self._conn = conn
        self._deadline = deadline
        self._stop = stop
        self._buf = b""
        self._total = 0

    def _more(self) -> bool:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                chunk = self._conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return False
            if not chunk or self._total + len(chunk) > _HANDSHAKE_LIMIT + _READ_LIMIT:
                return False
            self._total += len(chunk)
            self._buf += chunk
            return True
        return False

    def exactly(self, count: int) -> bytes | None:
        while len(self._buf) < count:
            if not self._more():
                return None
        data, self._buf = self._buf[:count], self._buf[count:]
        return data

    def until(self, marker: bytes, limit: int) -> bytes | None:
        while marker not in self._buf:
            if len(self._buf) > limit or not self._more():
                return None
        data, _, self._buf = self._buf.partition(marker)
        return data

    def client_frame(self) -> tuple[int, bytes] | None:
        """One masked client frame: (opcode, unmasked payload)."""
        head = self.exactly(2)
        if head is None:
            return None
        length = head[1] & 0x7F
        if length >= 126:
            extended = self.exactly(2 if length == 126 else 8)
            if extended is None:
                return None
            length = int.from_bytes(extended, "big")
        if length > _READ_LIMIT:
            return None
        mask = self.exactly(4)
        payload = self.exactly(length)
        if mask is None or payload is None:
            return None
        return head[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """After the test's clients and servers are torn down: no thread or fd more than before
    (set up before them, so torn down after them; no ``gc.collect()``)."""
    before = Held.now()
    yield
    assert Held.left_after(before) == []


@pytest.fixture
def evil() -> Iterator[Callable[..., EvilServer]]:
    servers: list[EvilServer] = []

    def start(script: Script, **kwargs: Any) -> EvilServer:
        server = EvilServer(script, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def make_client() -> Iterator[Callable[..., tuple[WebSocketClient, Collector]]]:
    clients: list[WebSocketClient] = []

    def make(url: str, **kwargs: object) -> tuple[WebSocketClient, Collector]:
        kwargs.setdefault("backoff", FAST_BACKOFF)
        client = WebSocketClient(WebSocketConfig(subscriptions=SUBS, url=url, **kwargs))  # type: ignore[arg-type]
        got = Collector()
        client.add_consumer(got)
        clients.append(client)
        client.start()
        return client, got

    yield make
    for client in clients:
        client.stop()


MakeClient = Callable[..., tuple[WebSocketClient, Collector]]


def test_a_frame_header_claiming_a_tebibyte_closes_the_connection_with_1009_before_any_payload(
    evil: Callable[..., EvilServer], make_client: MakeClient
) -> None:
    # The header and nothing more: a client that waited for the payload would sit SUBSCRIBED.
    server = evil(lambda n: header(TIB), max_connections=2)
    client, _ = make_client(server.url)
    assert server.wait_for(lambda s: len(s.close_codes) >= 1)
    assert server.close_codes[0] == STATUS_MESSAGE_TOO_BIG
    assert client.wait_until(lambda s: s.last_close is CloseReason.FRAME_TOO_LARGE, WAIT)
    status = client.status()
    assert status.connect_failures >= 1
    assert status.last_error is not None and str(TIB) in status.last_error
    # It reconnects (and meets the same header again).
    assert server.wait_for(lambda s: s.connections >= 2)
    assert client.stop(5)


@pytest.mark.parametrize(
    "items",
    [TIB // 2, 25_000_000],
    ids=["a 1 TiB header with list items streaming behind it", "a 50 MB JSON list frame"],
)
def test_an_oversized_frame_is_refused_on_its_header_while_its_payload_streams_in(
    evil: Callable[..., EvilServer], make_client: MakeClient, items: int
) -> None:
    # The server streams the payload for as long as the client takes it (at most 64 MiB):
    # a client reading it would grow by that much and sit SUBSCRIBED meanwhile.
    length = 2 * items + 1
    server = evil(
        lambda n: header(length), max_connections=1, stream=lambda: json_list_stream(items)
    )
    rss_before = rss_bytes()
    # Defaults (max_frame_bytes 1 MiB) but a long backoff: the status stays as the close left it.
    client, _ = make_client(server.url, backoff=NO_RECONNECT_IN_TEST)
    assert server.wait_for(lambda s: s.stream_done)
    grown = rss_bytes() - rss_before
    assert grown <= client.config.max_frame_bytes + RSS_SLACK, f"RSS grew by {grown} bytes"
    assert server.streamed < min(length, _STREAM_LIMIT)  # the client stopped taking it
    assert client.wait_until(lambda s: s.state is ConnectionState.BACKING_OFF, WAIT)
    status = client.status()
    assert status.last_close is CloseReason.FRAME_TOO_LARGE
    assert (status.frames, status.messages, status.malformed) == (0, 0, 0)  # never decoded
    assert status.connect_failures == 1
    assert status.last_error is not None and str(length) in status.last_error
    assert client.stop(5)


def test_a_frame_exactly_at_the_limit_is_delivered(
    evil: Callable[..., EvilServer], make_client: MakeClient
) -> None:
    payload = trade_json()
    server = evil(lambda n: frame(payload), max_connections=1)
    client, got = make_client(server.url, max_frame_bytes=len(payload))
    assert client.wait_live(WAIT)
    assert got.wait_for(lambda items: len(items) == 1)
    assert client.status().messages == 1
    assert client.status().last_close is None
    assert client.stop(5)


def test_a_frame_one_byte_over_the_limit_is_refused_unread(
    evil: Callable[..., EvilServer], make_client: MakeClient
) -> None:
    payload = trade_json()
    server = evil(lambda n: frame(payload), max_connections=2)
    client, _ = make_client(server.url, max_frame_bytes=len(payload) - 1)
    assert server.wait_for(lambda s: len(s.close_codes) >= 1)
    assert server.close_codes[0] == STATUS_MESSAGE_TOO_BIG
    assert client.wait_until(lambda s: s.last_close is CloseReason.FRAME_TOO_LARGE, WAIT)
    assert client.status().messages == 0
    assert client.status().state is not ConnectionState.LIVE
    assert client.stop(5)


def test_a_fragmented_message_is_limited_by_its_total_not_by_each_fragment(
    evil: Callable[..., EvilServer], make_client: MakeClient
) -> None:
    payload = trade_json()
    half = len(payload) // 2
    fragments = frame(payload[:half], opcode=0x2, fin=False) + frame(
        payload[half:], opcode=0x0, fin=True
    )
    server = evil(lambda n: fragments, max_connections=2)
    # Each fragment fits the limit; the message does not.
    client, _ = make_client(server.url, max_frame_bytes=len(payload) - 1)
    assert server.wait_for(lambda s: len(s.close_codes) >= 1)
    assert server.close_codes[0] == STATUS_MESSAGE_TOO_BIG
    assert client.wait_until(lambda s: s.last_close is CloseReason.FRAME_TOO_LARGE, WAIT)
    assert client.status().messages == 0
    assert client.stop(5)


def test_a_fragmented_message_within_the_limit_is_delivered_whole(
    evil: Callable[..., EvilServer], make_client: MakeClient
) -> None:
    payload = trade_json()
    half = len(payload) // 2
    fragments = frame(payload[:half], opcode=0x2, fin=False) + frame(
        payload[half:], opcode=0x0, fin=True
    )
    server = evil(lambda n: fragments, max_connections=1)
    client, got = make_client(server.url, max_frame_bytes=len(payload))
    assert client.wait_live(WAIT)
    assert got.wait_for(lambda items: len(items) == 1)
    assert client.stop(5)


def test_a_json_list_one_item_over_the_cap_is_one_malformed_frame_and_the_next_frame_flows(
    evil: Callable[..., EvilServer], make_client: MakeClient
) -> None:
    cap = 10
    too_many = b"[" + b",".join(trade_json(1000 + i) for i in range(cap + 1)) + b"]"
    just_enough = b"[" + b",".join(trade_json(2000 + i) for i in range(cap)) + b"]"
    server = evil(lambda n: frame(too_many) + frame(just_enough), max_connections=1)
    client, got = make_client(server.url, max_items_per_frame=cap)
    assert got.wait_for(lambda items: len(items) == cap)
    status = client.status()
    assert status.malformed == 1
    assert status.messages == cap
    assert status.frames == 2
    assert status.last_close is None  # a bad frame is skipped; the connection stays up
    assert client.stop(5)


def test_a_megabyte_of_list_items_counts_once_and_the_client_still_stops_in_time(
    evil: Callable[..., EvilServer], make_client: MakeClient
) -> None:
    # Half a million items in one frame under the default frame limit, defaults everywhere.
    items = 500_000
    payload = b"[" + b"0," * (items - 1) + b"0]"
    assert len(payload) <= WebSocketConfig().max_frame_bytes
    server = evil(lambda n: frame(payload), max_connections=1)
    client, _ = make_client(server.url)
    assert client.wait_until(lambda s: s.frames >= 1 and s.malformed >= 1, WAIT)
    assert client.status().malformed == 1
    assert client.stop(5)


def test_credentials_in_the_url_are_in_no_log_record_and_no_status(
    evil: Callable[..., EvilServer],
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # One connection: a trade, then a 1 TiB header (closed with 1009); then the listener is
    # gone and every reconnect is refused. Every log record of every logger is kept.
    secret = "s3cret-Pa55"
    server = evil(lambda n: frame(trade_json()) + header(TIB), max_connections=1)
    url = server.url.replace("ws://", f"ws://alice:{secret}@")
    caplog.set_level(logging.DEBUG)
    client, got = make_client(url)
    assert got.wait_for(lambda items: len(items) == 1)
    assert client.wait_until(lambda s: s.connect_failures >= 3, WAIT)  # 1009, refused twice
    statuses = [client.status()]
    assert client.stop(5)
    statuses.append(client.status())
    shown = [record.getMessage() for record in caplog.records]
    assert not [message for message in shown if secret in message]
    assert any("ws://***@127.0.0.1" in message for message in shown)  # named, redacted
    assert not [status for status in statuses if secret in repr(status)]
    assert secret not in repr(client.config)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_frame_bytes", 124),
        ("max_frame_bytes", 1.5e6),
        ("max_frame_bytes", True),
        ("max_items_per_frame", 0),
        ("max_items_per_frame", 10.0),
    ],
)
def test_a_frame_limit_that_cannot_work_is_refused_naming_its_field(
    field: str, value: object
) -> None:
    with pytest.raises(InvalidValue) as caught:
        WebSocketConfig(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field
    assert caught.value.value == value
