"""Stable addressing: callers reach a child by id, whatever instance is current.

A restart makes a new pykka actor with a new ``ActorRef``, so callers hold a ``ChildHandle``
instead of a ref. Each child id has one ``Entry`` for the supervisor's lifetime; the entry
is *open* on the current instance, or *restarting* (messages are buffered in order and
delivered to the next instance), or *closed* (the child will not run again: asks are answered
with ``ChildNotRunning``).

No message is lost across a restart: when an instance dies, the hook that reports its death
runs on its own thread *before* pykka tears its inbox down; it closes the entry under the
entry's lock and moves every message still in the dead inbox into the buffer. A sender holds
the same lock while it puts a message into the current inbox, so a message is either in the
inbox before the move (and is moved) or sees the entry restarting (and is buffered).

This is the one module that reaches into pykka's internals (``pykka._envelope.Envelope``,
``pykka.messages._ActorStop``, ``actor_inbox.get_nowait()``);
``tests/supervisors/test_pykka_assumptions.py`` pins what it assumes of them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from enum import Enum
from typing import Any

import pykka
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

from supervisors.errors import ChildNotRunning, ChildRestarting, UnknownChild
from supervisors.messages import LivenessPing

__all__ = ["DEFAULT_MAX_PENDING", "ChildHandle", "ChildTable", "Entry", "refuse_all"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_PENDING = 10_000
"""Messages buffered per child while it restarts; beyond that, senders get ChildRestarting."""


class _Gate(Enum):
    OPEN = "open"
    RESTARTING = "restarting"
    CLOSED = "closed"


def _answer(envelope: Envelope[Any], error: BaseException | None) -> None:
    """Reply to an envelope that will never be handled (tells are only logged)."""
    if envelope.reply_to is None:
        if error is not None:
            logger.warning("Dropped a tell: %r (%s)", envelope.message, error)
        return
    try:
        if error is None:
            envelope.reply_to.set(None)
        else:
            envelope.reply_to.set_exception(exc_info=(type(error), error, None))
    except queue.Full:  # already answered
        pass


class Entry:
    """The current instance of one child, with the buffer used while it restarts."""

    __slots__ = (
        "_gate", "_instance", "_lock", "_max_pending", "_nested", "_pending", "_ref", "child_id",
    )

    def __init__(self, child_id: str, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.child_id = child_id
        self._lock = threading.Lock()
        self._gate = _Gate.RESTARTING
        self._ref: pykka.ActorRef[Any] | None = None
        self._instance = 0
        self._pending: deque[Envelope[Any]] = deque()
        self._max_pending = max_pending
        self._nested: ChildTable | None = None

    @property
    def nested(self) -> ChildTable | None:
        """The table of the current instance when the child is itself a supervisor."""
        return self._nested

    @property
    def running(self) -> bool:
        """Whether an instance is open for messages."""
        return self._gate is _Gate.OPEN

    def open(self, instance: int, ref: pykka.ActorRef[Any], nested: ChildTable | None) -> None:
        """Make ``instance`` current and hand it the buffered messages, oldest first.

        Called while the instance is being constructed, before its thread runs.
        """
        with self._lock:
            self._instance = instance
            self._ref = ref
            self._nested = nested
            self._gate = _Gate.OPEN
            while self._pending:
                ref.actor_inbox.put(self._pending.popleft())

    def close(self, instance: int) -> bool:
        """``instance`` is dead (or abandoned): buffer what was left in its inbox.

        Returns False, doing nothing, if ``instance`` is not the current open one.
        """
        with self._lock:
            if instance != self._instance or self._gate is not _Gate.OPEN:
                return False
            left = list(_drain(self._ref.actor_inbox)) if self._ref is not None else []
            self._ref = None
            self._nested = None
            self._gate = _Gate.RESTARTING
            for envelope in reversed(left):
                if isinstance(envelope.message, _ActorStop):
                    _answer(envelope, None)
                elif isinstance(envelope.message, LivenessPing):
                    _answer(envelope, pykka.ActorDeadError(f"{self.child_id} died"))
                else:
                    self._pending.appendleft(envelope)
            return True

    def shut(self) -> None:
        """The child will not run again (unless restarted by a later group restart)."""
        with self._lock:
            self._gate = _Gate.CLOSED
            self._ref = None
            self._nested = None
            pending, self._pending = self._pending, deque()
        error = ChildNotRunning(f"child {self.child_id!r} is not running",
                                child_id=self.child_id)
        for envelope in pending:
            _answer(envelope, error)

    def deliver(self, envelope: Envelope[Any]) -> None:
        """Put ``envelope`` in the current inbox, or buffer it while the child restarts."""
        with self._lock:
            if self._gate is _Gate.OPEN and self._ref is not None:
                self._ref.actor_inbox.put(envelope)
                return
            if self._gate is _Gate.CLOSED:
                raise ChildNotRunning(f"child {self.child_id!r} is not running",
                                      child_id=self.child_id)
            if len(self._pending) >= self._max_pending:
                raise ChildRestarting(
                    f"child {self.child_id!r} is restarting and {self._max_pending} "
                    "messages are already waiting", child_id=self.child_id)
            self._pending.append(envelope)


def _drain(inbox: Any) -> Iterator[Envelope[Any]]:
    while True:
        try:
            yield inbox.get_nowait()
        except queue.Empty:
            return


def refuse_all(inbox: Any, error: BaseException) -> None:
    """Answer every envelope waiting in an actor's ``inbox`` now: a stop as done, an ask with
    ``error``; tells are dropped. A stopping supervisor uses it so no asker hangs on it."""
    for envelope in _drain(inbox):
        if envelope.reply_to is not None:
            _answer(envelope, None if isinstance(envelope.message, _ActorStop) else error)


class ChildTable:
    """The entries of one supervisor's children, by id (fixed for the supervisor's life)."""

    __slots__ = ("_entries", "supervisor")

    def __init__(self, supervisor: str, ids: Iterable[str],
                 max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.supervisor = supervisor
        self._entries = {child_id: Entry(child_id, max_pending) for child_id in ids}

    def entry(self, child_id: str) -> Entry:
        """The entry for ``child_id``; ``UnknownChild`` if there is none."""
        try:
            return self._entries[child_id]
        except KeyError:
            raise UnknownChild(child_id) from None

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())


class ChildHandle:
    """Send to a child by id (or by a path through nested supervisors).

    ``tell`` and ``ask`` always reach the current instance; while the child restarts the
    message waits in order for the new instance. A child that will not run again answers
    ``ChildNotRunning``; a full buffer, or a supervisor on the path that is itself restarting,
    answers ``ChildRestarting``.
    """

    __slots__ = ("_path", "_table")

    def __init__(self, table: ChildTable, path: tuple[str, ...]) -> None:
        self._table = table
        self._path = path
        table.entry(path[0])  # fail fast on an unknown first id

    @property
    def child_id(self) -> str:
        """The id of the child this handle reaches."""
        return self._path[-1]

    @property
    def path(self) -> tuple[str, ...]:
        """Child ids from the supervisor this handle was made from down to the child."""
        return self._path

    def child(self, child_id: str) -> ChildHandle:
        """A handle on ``child_id`` under this child, which must be a supervisor."""
        return ChildHandle(self._table, (*self._path, child_id))

    def _entry(self) -> Entry:
        entry = self._table.entry(self._path[0])
        for child_id in self._path[1:]:
            nested = entry.nested
            if nested is None:
                if entry.running:
                    raise UnknownChild(child_id)
                raise ChildRestarting(
                    f"supervisor {entry.child_id!r} above {child_id!r} is not running",
                    child_id=child_id)
            entry = nested.entry(child_id)
        return entry

    def tell(self, message: Any) -> None:
        """Send ``message`` without waiting for an answer."""
        self._entry().deliver(Envelope(message))

    def ask(self, message: Any, *, timeout: float | None = None) -> Any:
        """Send ``message`` and wait up to ``timeout`` seconds for the answer.

        Raises what the child raised, ``pykka.Timeout``, or a ``ChildUnavailable``.
        """
        return self.ask_future(message).get(timeout=timeout)

    def ask_future(self, message: Any, *, future: pykka.Future[Any] | None = None
                   ) -> pykka.Future[Any]:
        """Send ``message`` and return the future of its answer: ``future`` when given (e.g.
        one that calls back when it is set, on the thread that sets it), else a new one."""
        reply_to: pykka.Future[Any] = pykka.ThreadingFuture() if future is None else future
        self._entry().deliver(Envelope(message, reply_to=reply_to))
        return reply_to

    def __repr__(self) -> str:
        return f"<ChildHandle {self._table.supervisor}/{'/'.join(self._path)}>"
