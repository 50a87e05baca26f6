"""Small fakes implementing real interfaces, shared by the tests.

* ``ManualClock``: a ``quotation.clock.Clock`` (and so a supervisor's clock) that moves
  only when told to; with ``blocking=True`` a sleep waits for the test to move it.
* ``LockstepClock``: a ``ManualClock`` that moves when all of its threads sleep.
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
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "NOON_2026_03_11",
    "Answer",
    "BlockingCallback",
    "LockstepClock",
    "ManualClock",
    "RecordingServer",
    "Seen",
    "serving",
]

NOON_2026_03_11 = 1_773_230_400.0
"""2026-03-11 12:00 UTC, the day of the real recordings."""


class ManualClock:
    """A ``quotation.clock.Clock`` that only moves when told to: every reading is reproducible.

    It is also the ``supervisors.clock.MonotonicClock`` a supervisor takes. ``advance``
    moves both readings. Every ``sleep`` is recorded in ``sleeps``, so tests assert exact
    waits; what it does then depends on ``blocking``:

    * ``False`` (the default, for code that sleeps on the caller's thread): it returns at
      once and moves both readings by what was asked; zero or less moves nothing, as with
      the real clock.
    * ``True`` (for timer threads, e.g. a supervisor's backoff and liveness timers): the
      sleeping thread waits until ``advance`` has moved time to the end of its sleep, or
      until ``close`` (call it at teardown; later sleeps return at once). The test waits for
      the threads to sleep with ``wait_for_sleeps`` before it moves time.

    Thread-safe: the code under test may sleep on its own threads while the test reads
    and moves the clock.
    """

    def __init__(
        self, wall: float = NOON_2026_03_11, *, mono: float = 1_000.0, blocking: bool = False
    ) -> None:
        self._cond = threading.Condition()
        self._wall = wall
        self._mono = mono
        self._blocking = blocking
        self._closed = False
        self._sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._cond:
            return self._mono

    def time(self) -> float:
        with self._cond:
            return self._wall

    def sleep(self, seconds: float) -> None:
        with self._cond:
            self._sleeps.append(seconds)
            self._cond.notify_all()  # wakes wait_for_sleeps
            if not self._blocking:
                self._move(max(0.0, seconds))
                return
            until = self._mono + seconds
            while self._mono < until and not self._closed:
                self._cond.wait()

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._move(seconds)
            self._cond.notify_all()

    @property
    def sleeps(self) -> list[float]:
        """Every ``sleep`` asked for so far, oldest first (a copy)."""
        with self._cond:
            return list(self._sleeps)

    def wait_for_sleeps(self, count: int, timeout: float = 5.0) -> list[float]:
        """Wait until ``count`` sleeps were asked for in all (up to ``timeout`` real
        seconds, then fail); return every one so far."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._sleeps) >= count, timeout):
                raise AssertionError(f"expected {count} sleeps, saw {self._sleeps}")
            return list(self._sleeps)

    def close(self) -> None:
        """Wake every blocked sleeper for good; later sleeps return at once (teardown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _move(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += seconds


class LockstepClock(ManualClock):
    """A ``ManualClock`` for ``parties`` threads: time moves only when all of them sleep.

    ``sleep`` blocks. Once every party still running is asleep, the clock jumps to
    the earliest wake-up and wakes whoever is due; a party that finishes calls
    :meth:`leave`. Work between sleeps (an HTTP exchange, a wait for another
    party's release) takes no time, and threads that sleep at once overlap, as on
    a real clock, instead of adding up: every sleep ends at the earliest moment it
    could, the most hostile schedule for a rate limiter. ``sleeps`` records what
    was asked, as in ``ManualClock``. Only the parties may sleep on it.
    """

    def __init__(
        self, parties: int, wall: float = NOON_2026_03_11, *, mono: float = 1_000.0
    ) -> None:
        super().__init__(wall, mono=mono)
        self._turn = threading.Condition()
        self._running = parties
        self._wake_ups: list[float] = []
        self._asked: list[float] = []

    def sleep(self, seconds: float) -> None:
        with self._turn:
            self._asked.append(seconds)
            if seconds <= 0:
                return
            wake_up = self.monotonic() + seconds
            self._wake_ups.append(wake_up)
            self._step()
            while self.monotonic() < wake_up:
                self._turn.wait()
            self._wake_ups.remove(wake_up)

    def leave(self) -> None:
        """The calling party is done: time no longer waits for it."""
        with self._turn:
            self._running -= 1
            self._step()

    @property
    def sleeps(self) -> list[float]:
        with self._turn:
            return list(self._asked)

    def _step(self) -> None:
        if self._wake_ups and len(self._wake_ups) >= self._running:
            due = min(self._wake_ups) - self.monotonic()
            if due > 0:
                self.advance(due)
            self._turn.notify_all()


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


class BlockingCallback:
    """A host ``on_level_change`` callback that blocks on its first call until
    :meth:`release` (at most ``hold`` real seconds), then records every change it gets as
    ``(old, new)``; :meth:`wait_for` waits (at most ``wait`` seconds) for ``count`` of them."""

    def __init__(self, *, hold: float, wait: float) -> None:
        self.entered = threading.Event()
        self._released = threading.Event()
        self._cond = threading.Condition()
        self._hold = hold
        self._wait = wait
        self.seen: list[tuple[Any, Any]] = []

    def release(self) -> None:
        self._released.set()

    def __call__(self, change: Any) -> None:
        self.entered.set()
        self._released.wait(self._hold)
        with self._cond:
            self.seen.append((change.old, change.new))
            self._cond.notify_all()

    def wait_for(self, count: int) -> list[tuple[Any, Any]]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.seen) >= count, self._wait), self.seen
            return list(self.seen)
