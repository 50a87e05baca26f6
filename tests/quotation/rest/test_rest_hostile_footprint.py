"""Issue 8's REST memory cases as they were reported, with the client's defaults: a 100 MB body,
an endless fast body and a 6 MB gzip bomb each end in ``BodyTooLarge`` naming
``max_body_bytes`` within ``total_timeout``, the process's RSS grows by a bounded amount while
the answer is read, the connection is not reused, and once the client and the server are
closed the process has no more fds and threads than before (no ``gc.collect()``).

Before the limit existed these took the process to 1.4 GB RSS (100 MB body), delivered 1 GB in
3 s (endless body) and decompressed 542 MB (gzip bomb) before the total timeout cut them.

The upstream is a raw-socket HTTP/1.1 server on 127.0.0.1 (one thread per connection, each
bounded in bytes and time): its first answer is the hostile one, every later one a good
``/market/all``.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator

import orjson
import pytest

from quotation.errors import FormatError, QuotationError
from quotation.models import Market
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from tests.quotation.rest.footprint import Footprint

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024
DEFAULT_LIMIT = 4 * MiB
"""``RestConfig.max_body_bytes`` by default."""
RSS_BOUND = 64 * MiB
"""Peak RSS growth allowed while a hostile answer is read: 16 times the default 4 MiB limit
(the body, its decoded copy and the reads' buffers), against the 1.4 GB seen before."""
HEADERS = b"Content-Type: application/json\r\nRemaining-Req: group=market; min=600; sec=9\r\n"
GOOD_BODY = orjson.dumps(
    [{"market": "KRW-BTC", "korean_name": "비트코인", "english_name": "Bitcoin"}]
)
GOOD = [Market("KRW-BTC", "비트코인", "Bitcoin")]
PIECE = 64 * 1024
SEND_CAP = 256 * MiB
"""No hostile answer sends more than this, whatever the client does."""


def _gzip_bomb(wire_bytes: int) -> bytes:
    """At most ``wire_bytes`` of gzip that decode to about a thousand times as much: members
    of 16 MiB of spaces each (about 16 KiB compressed), one after the other."""
    member = gzip.compress(b" " * (16 * MiB), compresslevel=9)
    return member * (wire_bytes // len(member))


class EvilUpstream:
    """The first request gets ``hostile(conn, server)``; later ones get the good answer."""

    def __init__(self, hostile: Callable[[socket.socket, EvilUpstream], None],
                 seconds: float = 20.0) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._hostile = hostile
        self.seconds = seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._hostile_taken = False
        self.client_ports: list[int] = []
        """The client port of every request, in order."""
        self.sent = 0
        """Body bytes the hostile answer put on the wire (chunk framing excluded)."""
        self.hung_up = threading.Event()
        """Set when the client closed the hostile answer's connection under it."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    def __enter__(self) -> EvilUpstream:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name="evil-upstream", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._conns.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            port = conn.getpeername()[1]
            while not self._stop.is_set() and self._read_request(conn):
                self.client_ports.append(port)
                if not self._hostile_taken:
                    self._hostile_taken = True
                    try:
                        self._hostile(conn, self)
                    except (BrokenPipeError, ConnectionResetError):
                        self.hung_up.set()
                    except OSError:
                        pass  # a send timed out: the client neither read nor hung up
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\n" + HEADERS
                             + f"Content-Length: {len(GOOD_BODY)}\r\n\r\n".encode() + GOOD_BODY)

    @staticmethod
    def _read_request(conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            try:
                piece = conn.recv(4096)
            except OSError:
                return False
            if not piece:
                return False
            data += piece
        return b"\r\n\r\n" in data

    def until_done(self) -> Iterator[None]:
        """Yields while the hostile answer may still send (bounded in time and bytes)."""
        ends = time.monotonic() + self.seconds
        while not self._stop.is_set() and time.monotonic() < ends and self.sent < SEND_CAP:
            yield


def declared_body(size: int) -> Callable[[socket.socket, EvilUpstream], None]:
    """An answer declaring ``Content-Length: size`` and sending it as fast as it can: a JSON
    list of spaces (``[ ... ]``, an empty list once whole)."""

    def send(conn: socket.socket, server: EvilUpstream) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + HEADERS + f"Content-Length: {size}\r\n\r\n".encode())
        conn.sendall(b"[")
        server.sent = 1
        blank = b" " * PIECE
        for _ in server.until_done():
            left = size - 1 - server.sent
            if left <= 0:
                break
            conn.sendall(blank[:left])
            server.sent += min(left, PIECE)
        conn.sendall(b"]")

    return send


def endless_body(conn: socket.socket, server: EvilUpstream) -> None:
    """A chunked answer that never ends, sent as fast as the client reads it."""
    conn.sendall(b"HTTP/1.1 200 OK\r\n" + HEADERS + b"Transfer-Encoding: chunked\r\n\r\n")
    frame = f"{PIECE:x}\r\n".encode() + b" " * PIECE + b"\r\n"
    for _ in server.until_done():
        conn.sendall(frame)
        server.sent += PIECE


def gzip_body(bomb: bytes) -> Callable[[socket.socket, EvilUpstream], None]:
    """A gzip-encoded answer of ``bomb`` with its length declared."""

    def send(conn: socket.socket, server: EvilUpstream) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + HEADERS + b"Content-Encoding: gzip\r\n"
                     + f"Content-Length: {len(bomb)}\r\n\r\n".encode())
        view = memoryview(bomb)
        for _ in server.until_done():
            if server.sent >= len(bomb):
                break
            conn.sendall(view[server.sent: server.sent + PIECE])
            server.sent += len(view[server.sent: server.sent + PIECE])

    return send


def outcome_of(call: Callable[[], object]) -> object:
    """What the call returned, or the quotation error it raised."""
    try:
        return call()
    except QuotationError as error:
        return error


def assert_body_too_large(outcome: object, *, decoded: bool = False) -> None:
    """The typed error the issue asks for: a ``FormatError`` subclass naming the limit."""
    assert isinstance(outcome, FormatError), f"not a FormatError: {outcome!r:.300}"
    assert type(outcome).__name__ == "BodyTooLarge", repr(outcome)
    assert f"max_body_bytes of {DEFAULT_LIMIT}" in str(outcome)
    assert "GET /market/all" in str(outcome)
    if decoded:
        assert "decoded" in str(outcome)


def run_hostile(
    hostile: Callable[[socket.socket, EvilUpstream], None],
) -> tuple[object, float, Footprint, EvilUpstream]:
    """One hostile answer then a good one, through a client of the default config; returns
    the hostile call's outcome, its seconds, the footprint and the (closed) server."""
    with Footprint() as footprint:
        with EvilUpstream(hostile) as server:
            with RestClient(RestConfig(base_url=server.base_url), limiter=RateLimiter()) as rest:
                started = time.monotonic()
                outcome = outcome_of(rest.get_markets)
                took = time.monotonic() - started
                assert rest.get_markets() == GOOD
                first, second = server.client_ports[:2]
                assert first != second, "the hostile answer's connection was reused"
    return outcome, took, footprint, server


def test_the_default_body_limit_is_4_mib() -> None:
    assert RestConfig().max_body_bytes == DEFAULT_LIMIT


def test_a_100_mb_body_is_body_too_large_with_rss_bounded_and_nothing_left_open() -> None:
    outcome, took, footprint, server = run_hostile(declared_body(100 * MiB))
    growth = footprint.peak_rss_growth
    assert growth < RSS_BOUND, f"RSS grew by {growth / MiB:.0f} MiB reading the body"
    assert_body_too_large(outcome)
    assert took < RestConfig().total_timeout
    assert server.sent < 100 * MiB - 1
    footprint.assert_back_to_baseline()


def test_an_endless_fast_body_is_body_too_large_with_rss_bounded_and_nothing_left_open() -> None:
    outcome, took, footprint, server = run_hostile(endless_body)
    growth = footprint.peak_rss_growth
    assert growth < RSS_BOUND, f"RSS grew by {growth / MiB:.0f} MiB; server sent {server.sent}"
    assert_body_too_large(outcome)
    assert took < RestConfig().total_timeout
    assert server.hung_up.is_set(), "the client did not hang up on the endless body"
    footprint.assert_back_to_baseline()


@pytest.mark.parametrize(
    ("wire_mib", "decoded"),
    [(6, False), (3, True)],
    ids=["6-mib-cut-on-the-wire", "3-mib-cut-decoded"],
)
def test_a_gzip_bomb_is_body_too_large_with_rss_bounded_and_nothing_left_open(
    wire_mib: int, decoded: bool
) -> None:
    # 6 MiB (the bomb) is over the limit on the wire already; 3 MiB is under it and
    # decodes to about 3 GiB, so only the decoded count can stop it.
    bomb = _gzip_bomb(wire_mib * MiB)  # built before the footprint's baseline
    assert (wire_mib - 1) * MiB < len(bomb) <= wire_mib * MiB
    outcome, took, footprint, _ = run_hostile(gzip_body(bomb))
    growth = footprint.peak_rss_growth
    assert growth < RSS_BOUND, f"RSS grew by {growth / MiB:.0f} MiB decoding the bomb"
    assert_body_too_large(outcome, decoded=decoded)
    assert took < RestConfig().total_timeout
    footprint.assert_back_to_baseline()
