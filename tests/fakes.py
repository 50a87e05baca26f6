"""Small fakes implementing real interfaces, shared by the quotation tests.

* ``ManualClock``: a ``quotation.clock.Clock`` that moves only when told to.
* ``RecordingServer``: a tiny HTTP server on 127.0.0.1 standing in for Upbit where
  a test needs to see the exact request (headers, query, connection reuse) or to
  send an answer the simulator never sends (HTML 502, a cut, compressed or
  chunked body); run it with ``serving``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = ["NOON_2026_03_11", "Answer", "ManualClock", "RecordingServer", "Seen", "serving"]

NOON_2026_03_11 = 1_773_230_400.0
"""2026-03-11 12:00 UTC, the day of the real recordings."""


class ManualClock:
    """A ``quotation.clock.Clock`` that only moves when told to: every reading is reproducible.

    ``advance`` moves both readings; so does ``sleep``, which returns at once and
    records what was asked in ``sleeps``, so tests assert exact waits. A sleep of
    zero or less moves nothing, as with the real clock. Thread-safe: the code
    under test may sleep on its own thread while the test reads the clock.
    """

    def __init__(self, wall: float = NOON_2026_03_11, *, mono: float = 1_000.0) -> None:
        self._lock = threading.Lock()
        self._wall = wall
        self._mono = mono
        self._sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def time(self) -> float:
        with self._lock:
            return self._wall

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._sleeps.append(seconds)
            self._move(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._move(seconds)

    @property
    def sleeps(self) -> list[float]:
        """Every ``sleep`` asked for so far, oldest first (a copy)."""
        with self._lock:
            return list(self._sleeps)

    def _move(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += seconds


@dataclass
class Answer:
    """What :class:`RecordingServer` answers to one GET."""

    status: int = 200
    body: bytes = b"[]"
    headers: dict[str, str] = field(
        default_factory=lambda: {"Remaining-Req": "group=ticker; min=600; sec=9"}
    )
    content_length: int | None = None
    """Declared length if it should differ from the body (a cut connection)."""
    chunk_size: int | None = None
    """Send the body in chunked transfer encoding, pieces of this many bytes (no length)."""


@dataclass
class Seen:
    """One request :class:`RecordingServer` received."""

    path: str
    headers: dict[str, str]
    client_port: int

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query, keep_blank_values=True)


class RecordingServer(ThreadingHTTPServer):
    """Records every GET in ``seen`` and answers it with ``answer(path)`` (HTTP/1.1 keep-alive)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.seen: list[Seen] = []
        self.answer: Callable[[str], Answer] = lambda path: Answer()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RecordingServer

    def do_GET(self) -> None:
        self.server.seen.append(Seen(self.path, dict(self.headers), self.client_address[1]))
        answer = self.server.answer(self.path)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.chunk_size is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            body, size = answer.body, answer.chunk_size
            for start in range(0, len(body), size):
                piece = body[start : start + size]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        length = answer.content_length if answer.content_length is not None else len(answer.body)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(answer.body)
        if answer.content_length is not None:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(server: RecordingServer) -> Iterator[RecordingServer]:
    """Run ``server`` on a thread for the block; shut it down and close it after."""
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name="recording-server", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
