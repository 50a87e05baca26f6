"""The gap-fill worker: REST gap fills on their own thread, never on the socket's receive thread.

A gap fill pages through REST ``trades/ticks`` (up to ``max_pages`` requests,
each waiting its turn at the process-wide rate limiter, longer under a 418 ban
or a slow server), so it can take seconds. The receive thread must keep reading
the socket meanwhile (pongs, control frames, and Upbit's realtime volume, which
otherwise fills the server's send buffer until it drops the connection).

:class:`GapFillWorker` is one daemon thread with a bounded FIFO of
:class:`FillRequest` jobs (one per market per reconnect). The receive thread
:meth:`~GapFillWorker.submit`\\ s a job and goes on; the worker runs
:func:`~quotation.websocket.gapfill.fill_trade_gap` and appends a :class:`FillOutcome`
to a done list that the receive thread collects with :meth:`~GapFillWorker.take_done`.
Both messages are frozen: the worker never touches the de-duplicator, the
cache or the delivery buffer, so the receive thread stays their only writer.

:meth:`~GapFillWorker.stop` asks a running fill to stop before its next page
and waits at most ``timeout`` for the thread; a REST call in flight is bounded
by the REST client's own timeouts, and past the join timeout the daemon thread
is abandoned (its late outcome is ignored).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

from quotation.clock import Clock
from quotation.models import Trade
from quotation.values import check
from quotation.websocket.gapfill import GapFill, TradeSource, fill_trade_gap, unfilled_gap

__all__ = ["FillOutcome", "FillRequest", "GapFillWorker"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class FillRequest:
    """Fill one market's hole between the last trade before a drop and the first after it."""

    market: str
    last_known: Trade
    first_new: Trade


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """A finished fill: its request, the trades and gap found, and how long REST took."""

    request: FillRequest
    fill: GapFill
    seconds: float


class GapFillWorker:
    """Runs gap fills one at a time on a daemon thread, from a bounded queue."""

    def __init__(
        self,
        source: TradeSource,
        *,
        clock: Clock,
        page_size: int = 200,
        max_pages: int = 10,
        capacity: int = 1000,
        name: str = "ws-gapfill",
    ) -> None:
        check("page_size", page_size, at_least=1, integer=True)
        check("max_pages", max_pages, at_least=1, integer=True)
        check("capacity", capacity, at_least=1, integer=True)
        self._source = source
        self._clock = clock
        self._page_size = page_size
        self._max_pages = max_pages
        self._capacity = capacity
        self._name = name
        self._cond = threading.Condition()
        self._jobs: deque[FillRequest] = deque()
        self._done: deque[FillOutcome] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        """The running thread's own stop flag (a restarted worker gets a new one)."""

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stopping,), name=self._name, daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop taking jobs, ask a running fill to stop; True if the thread ended in time.

        Queued jobs are dropped (the caller marks their holes).
        """
        with self._cond:
            thread = self._thread
            self._thread = None
            self._stopping.set()
            self._jobs.clear()
            self._cond.notify_all()
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("gap-fill worker still in REST after %.1f s; abandoned", timeout)
            return False
        return True

    def submit(self, request: FillRequest) -> bool:
        """Queue ``request``; False (at once, never blocking) if the queue is full or stopped."""
        with self._cond:
            if self._thread is None or len(self._jobs) >= self._capacity:
                return False
            self._jobs.append(request)
            self._cond.notify()
        return True

    def has_done(self) -> bool:
        """True if outcomes wait to be taken (cheap; for the receive loop)."""
        return bool(self._done)

    def take_done(self) -> list[FillOutcome]:
        """Every finished outcome so far, in completion order."""
        done = self._done
        taken: list[FillOutcome] = []
        while done:
            taken.append(done.popleft())
        return taken

    def _run(self, stopping: threading.Event) -> None:
        while True:
            with self._cond:
                while not self._jobs and not stopping.is_set():
                    self._cond.wait()
                if stopping.is_set():
                    return
                request = self._jobs.popleft()
            self._done.append(self._fill(request, stopping))

    def _fill(self, request: FillRequest, stopping: threading.Event) -> FillOutcome:
        started = self._clock.monotonic()
        try:
            fill = fill_trade_gap(
                self._source,
                last_known=request.last_known,
                first_new=request.first_new,
                # Which trades the receive thread already has is its business: it
                # de-duplicates the outcome when it merges it.
                is_known=_unknown,
                page_size=self._page_size,
                max_pages=self._max_pages,
                abandoned=stopping.is_set,
            )
        except Exception as exc:
            # Not a REST error (those become the gap's reason): a bug or a foreign
            # exception from the source. The hole is marked; the worker lives on.
            logger.exception("gap fill for %s failed", request.market)
            reason = f"gap fill failed: {type(exc).__name__}: {exc}"
            fill = GapFill((), unfilled_gap(request.last_known, request.first_new, reason))
        return FillOutcome(request, fill, self._clock.monotonic() - started)


def _unknown(sequential_id: int) -> bool:
    return False
