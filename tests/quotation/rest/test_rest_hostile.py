"""A hostile upstream: the REST client holds at most ``max_body_bytes`` of an answer (on the wire
and decoded) and turns bodies it cannot decode into typed errors, never a ``RecursionError``.

Against real loopback servers: ``RecordingServer`` for answers with a length (and gzip), and a
raw-socket server for a chunked body that never ends. Each hostile answer is followed by a good
one on the same client, which must succeed.
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

from quotation.errors import BodyTooLarge, FormatError, InvalidValue, RateLimited, ServerError
from quotation.models import Market
from quotation.rest.answers import parse_error_body
from quotation.rest.client import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from tests.fakes import Answer, ManualClock, RecordingServer, serving
from tests.quotation.rest.footprint import Footprint

pytestmark = pytest.mark.timeout(30)

LIMIT = 64 * 1024
"""A small ``max_body_bytes`` keeps every test fast."""
HEADERS = {
    "Content-Type": "application/json;charset=UTF-8",
    "Remaining-Req": "group=market; min=600; sec=9",
}
GOOD_MARKETS = [{"market": "KRW-BTC", "korean_name": "비트코인", "english_name": "Bitcoin"}]
GOOD = Answer(200, orjson.dumps(GOOD_MARKETS), HEADERS)
DEEP = 50_000
"""Far deeper than any JSON decoder's or ``repr``'s recursion limit, yet within ``LIMIT``."""


def markets_body(size: int) -> bytes:
    """A valid ``/market/all`` answer of exactly ``size`` bytes (markets, then padding)."""
    items: list[dict[str, str]] = []
    while len(orjson.dumps([*items, GOOD_MARKETS[0]])) <= size:
        items.append({**GOOD_MARKETS[0], "market": f"KRW-C{len(items)}"})
    body = orjson.dumps(items)
    return body + b" " * (size - len(body))


def first_then_good(first: Answer) -> Callable[[str], Answer]:
    """The server's answers: ``first`` once, then the good one."""
    answers = [first]
    return lambda path: answers.pop() if answers else GOOD


@pytest.fixture
def limiter() -> RateLimiter:
    """A limiter on a fake clock: a 429's pause is waited out at once."""
    return RateLimiter(ManualClock())


@pytest.fixture
def footprint() -> Iterator[Footprint]:
    """Taken before the server and the client, checked after both are closed: no socket or
    thread of the exchange is left (no gc pass)."""
    with Footprint() as taken:
        yield taken
    taken.assert_back_to_baseline()


@pytest.fixture
def server(footprint: Footprint) -> Iterator[RecordingServer]:
    with serving(RecordingServer()) as running:
        yield running


@pytest.fixture
def client(server: RecordingServer, limiter: RateLimiter) -> Iterator[RestClient]:
    config = RestConfig(base_url=server.base_url, max_body_bytes=LIMIT, rate_limit_retries=0)
    with RestClient(config, limiter=limiter) as rest:
        yield rest


def assert_the_next_call_succeeds_on_a_new_connection(
    client: RestClient, server: RecordingServer
) -> None:
    assert client.get_markets() == [Market("KRW-BTC", "비트코인", "Bitcoin")]
    first, second = server.seen[-2:]
    assert first.client_port != second.client_port, "the oversized answer's connection was reused"


def assert_the_permit_was_returned_without_a_pause(limiter: RateLimiter) -> None:
    group = limiter.status().groups["market"]
    assert group.in_flight == 0
    assert group.paused_until is None
    assert limiter.banned_until() is None


# -- the limit's setting -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "4096"])
def test_max_body_bytes_must_be_a_positive_integer(value: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        RestConfig(max_body_bytes=value)  # type: ignore[arg-type]
    assert caught.value.field == "max_body_bytes"


# -- bodies around the limit -------------------------------------------------------------------


def test_a_body_of_exactly_the_limit_is_read_whole(
    server: RecordingServer, client: RestClient
) -> None:
    body = markets_body(LIMIT)
    server.answer = lambda path: Answer(200, body, HEADERS)
    markets = client.get_markets()
    assert len(markets) == len(orjson.loads(body)) > 100
    assert markets[-1].market == f"KRW-C{len(markets) - 1}"


def test_a_body_one_byte_over_the_limit_with_its_length_declared_is_body_too_large(
    server: RecordingServer, client: RestClient, limiter: RateLimiter
) -> None:
    server.answer = first_then_good(Answer(200, markets_body(LIMIT + 1), HEADERS))
    with pytest.raises(BodyTooLarge) as caught:
        client.get_markets()
    error = caught.value
    assert isinstance(error, FormatError)
    assert error.limit == LIMIT
    assert error.received <= LIMIT + 1
    assert "GET /market/all" in str(error)
    assert f"max_body_bytes of {LIMIT}" in str(error)
    assert_the_permit_was_returned_without_a_pause(limiter)
    assert_the_next_call_succeeds_on_a_new_connection(client, server)


def test_a_chunked_body_one_byte_over_the_limit_is_body_too_large(
    server: RecordingServer, client: RestClient, limiter: RateLimiter
) -> None:
    server.answer = first_then_good(Answer(200, markets_body(LIMIT + 1), HEADERS, chunk_size=4096))
    with pytest.raises(BodyTooLarge) as caught:
        client.get_markets()
    assert caught.value.received == LIMIT + 1
    assert_the_permit_was_returned_without_a_pause(limiter)
    assert_the_next_call_succeeds_on_a_new_connection(client, server)


def test_a_gzip_bomb_is_body_too_large_holding_at_most_one_byte_over_the_limit(
    server: RecordingServer, client: RestClient, limiter: RateLimiter
) -> None:
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")
    assert len(bomb) < LIMIT  # small on the wire, 1024 times the limit decoded
    server.answer = first_then_good(Answer(200, bomb, {**HEADERS, "Content-Encoding": "gzip"}))
    with pytest.raises(BodyTooLarge) as caught:
        client.get_markets()
    assert caught.value.received == LIMIT + 1
    assert "decoded" in str(caught.value)
    assert_the_permit_was_returned_without_a_pause(limiter)
    assert_the_next_call_succeeds_on_a_new_connection(client, server)


def test_an_error_answer_over_the_limit_is_body_too_large_too(
    server: RecordingServer, client: RestClient, limiter: RateLimiter
) -> None:
    huge = Answer(503, b"<html>" + b"x" * LIMIT + b"</html>", HEADERS, chunk_size=8192)
    server.answer = first_then_good(huge)
    with pytest.raises(BodyTooLarge):
        client.get_markets()
    assert_the_permit_was_returned_without_a_pause(limiter)
    assert_the_next_call_succeeds_on_a_new_connection(client, server)


# -- a body that never ends ------------------------------------------------------------------


class EndlessServer:
    """A raw-socket HTTP/1.1 server on 127.0.0.1 whose first answer is a chunked body that never
    ends: it sends until the client hangs up, ``cap`` bytes or ``seconds`` (whichever is first),
    counting what it sent. Later requests, on any connection, get ``GOOD``."""

    PIECE = 16 * 1024

    def __init__(self, cap: int = 64 * 1024 * 1024, seconds: float = 10.0) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.cap = cap
        self._seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="endless-server", daemon=True)
        self.sent = 0
        """Body bytes sent in the endless answer (chunk framing excluded)."""
        self.hung_up = threading.Event()
        """Set when the client closed the endless answer's connection before the cap."""
        self.endless_done = threading.Event()
        self.good_answers = 0
        self._open: list[socket.socket] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    def __enter__(self) -> EndlessServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for conn in list(self._open):  # a keep-alive connection the client has not closed yet
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        endless_sent = False
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._open.append(conn)
            with conn:
                conn.settimeout(5)
                while self._read_request(conn):
                    if not endless_sent:
                        endless_sent = True
                        self._send_endless(conn)
                        break
                    # counted before it is sent: the client may check the count as soon as it
                    # has the answer, before this thread runs again
                    self.good_answers += 1
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Remaining-Req: group=market; min=600; sec=9\r\n"
                        + f"Content-Length: {len(GOOD.body)}\r\n\r\n".encode()
                        + GOOD.body
                    )

    @staticmethod
    def _read_request(conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                piece = conn.recv(4096)
            except OSError:
                return False
            if not piece:
                return False
            data += piece
        return True

    def _send_endless(self, conn: socket.socket) -> None:
        frame = f"{self.PIECE:x}\r\n".encode() + b" " * self.PIECE + b"\r\n"
        ends = time.monotonic() + self._seconds
        try:
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Remaining-Req: group=market; min=600; sec=9\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            while self.sent < self.cap and time.monotonic() < ends:
                conn.sendall(frame)
                self.sent += self.PIECE
        except (BrokenPipeError, ConnectionResetError):
            self.hung_up.set()
        except OSError:
            pass  # a send timed out: the client neither read nor hung up
        finally:
            self.endless_done.set()


def test_an_endless_chunked_body_is_cut_off_once_it_passes_the_limit(
    limiter: RateLimiter, footprint: Footprint
) -> None:
    with EndlessServer() as server:
        config = RestConfig(base_url=server.base_url, max_body_bytes=LIMIT)
        with RestClient(config, limiter=limiter) as client:
            with pytest.raises(BodyTooLarge) as caught:
                client.get_markets()
            assert caught.value.received == LIMIT + 1
            assert server.endless_done.wait(10)
            # The client hung up: the server stopped long before its own cap (what it sent
            # beyond the limit sat in the two sockets' buffers).
            assert server.hung_up.is_set()
            # Long before its own cap: what it sent beyond the limit is what the kernel's
            # socket buffers took (the receive side autotunes up to tcp_rmem's maximum, 32 MiB
            # here), so the cap, not a buffer-size guess, is the bound that holds everywhere.
            assert server.sent < server.cap
            assert_the_permit_was_returned_without_a_pause(limiter)
            assert client.get_markets() == [Market("KRW-BTC", "비트코인", "Bitcoin")]
            assert server.good_answers == 1


# -- bodies that nest deeper than a decoder can follow -------------------------------------------


def test_a_deeply_nested_json_error_body_on_a_500_is_a_server_error_with_a_text_summary(
    server: RecordingServer, client: RestClient
) -> None:
    server.answer = first_then_good(Answer(500, b"[" * DEEP, HEADERS))
    with pytest.raises(ServerError) as caught:
        client.get_markets()
    assert caught.value.status == 500
    assert caught.value.body.startswith("[[[[")
    assert len(caught.value.body) <= 300
    assert client.get_markets() == [Market("KRW-BTC", "비트코인", "Bitcoin")]


def test_a_deeply_nested_json_error_body_on_a_429_is_rate_limited_with_a_text_summary(
    server: RecordingServer, client: RestClient, limiter: RateLimiter
) -> None:
    body = b'{"error": {"name": 429, "message": ' + b"[" * DEEP + b"}}"
    server.answer = first_then_good(Answer(429, body, HEADERS))
    with pytest.raises(RateLimited) as caught:
        client.get_markets()
    assert caught.value.group == "market"
    assert "HTTP 429 ({\"error\": {\"name\": 429, \"message\": [[[[" in str(caught.value)
    assert client.get_markets() == [Market("KRW-BTC", "비트코인", "Bitcoin")]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * DEEP + b"]" * DEEP,
        # Within the JSON decoder's depth, but deeper than repr() can follow.
        b'{"error": {"name": ' + b"[" * 1000 + b"]" * 1000 + b', "message": "slow down"}}',
        b'{"error": {"name": 500, "message": ' + b"[" * 1000 + b"]" * 1000 + b"}}",
        b'{"error": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001,
    ],
    ids=["unclosed", "nested-name", "nested-message", "nested-object"],
)
def test_no_error_body_however_nested_makes_the_reader_raise(body: bytes) -> None:
    error = parse_error_body(body)
    assert 0 < len(error.message) <= 300
    assert error.name is None or len(error.name) <= 300


@pytest.mark.parametrize(
    "body",
    [
        b"[" * DEEP,
        b'[{"market": ' + b"[" * 1000 + b"]" * 1000
        + b', "korean_name": "a", "english_name": "b"}]',
    ],
    ids=["deeper-than-the-decoder", "a-field-deeper-than-repr"],
)
def test_a_deeply_nested_success_body_is_a_format_error(
    server: RecordingServer, client: RestClient, body: bytes
) -> None:
    server.answer = first_then_good(Answer(200, body, HEADERS))
    with pytest.raises(FormatError) as caught:
        client.get_markets()
    assert len(str(caught.value)) < 500
    assert client.get_markets() == [Market("KRW-BTC", "비트코인", "Bitcoin")]
