"""Small scripted child actors: plain pykka actors that know nothing of supervisors.

A ``Script`` is shared by every instance of one child id, so it counts start attempts across
restarts and keeps one ``Journal`` of what happened, in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pykka


class Boom(Exception):
    """The failure the scripted children raise."""


class Journal:
    """A thread-safe, ordered record of ``(what, child, detail)`` entries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[str, str, Any]] = []

    def add(self, what: str, child: str, detail: Any = None) -> None:
        with self._lock:
            self._entries.append((what, child, detail))

    def entries(self, what: str | None = None) -> list[tuple[str, str, Any]]:
        with self._lock:
            return [entry for entry in self._entries if what is None or entry[0] == what]

    def lifecycle(self) -> list[tuple[str, str]]:
        """Only starts and stops, as ``(what, child)``."""
        return [(what, child) for what, child, _ in self.entries() if what in ("start", "stop")]


@dataclass
class Script:
    """What a scripted child does: which start attempts fail, which message crashes it, and
    what it raises then (``error``, called with a description: ``Boom`` unless told)."""

    name: str
    journal: Journal
    fail_starts: frozenset[int] = frozenset()
    fail_starts_from: int | None = None
    fail_in_init_from: int | None = None
    fail_inits: frozenset[int] = frozenset()
    fail_on_stop: bool = False
    fail_stops: frozenset[int] = frozenset()
    hang_in_start: bool = False
    error: Callable[[str], BaseException] = Boom
    threads: list[threading.Thread] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    hanging: threading.Event = field(default_factory=threading.Event)
    _starts: int = 0
    _inits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_start(self) -> int:
        with self._lock:
            self._starts += 1
            return self._starts

    def next_init(self) -> int:
        with self._lock:
            self._inits += 1
            return self._inits

    def start_fails(self, number: int) -> bool:
        return number in self.fail_starts or (
            self.fail_starts_from is not None and number >= self.fail_starts_from
        )

    def stop_fails(self, number: int) -> bool:
        return self.fail_on_stop or number in self.fail_stops


class ScriptedChild(pykka.ThreadingActor):
    """Messages: ``"crash"`` (raise), ``"exit"`` (stop itself), ``"hang"`` (block until the
    script is released), ``"whoami"`` (its start number), ``("record", x)`` (journal and
    answer ``(number, x)``), ``"fail"`` (raise ValueError: as an ask, goes back to the caller),
    ``("raise", exception)`` (raise that exception, e.g. a ``SystemExit``).
    """

    def __init__(self, script: Script) -> None:
        super().__init__()
        self.script = script
        self.number = 0
        init = script.next_init()
        if init in script.fail_inits or (
            script.fail_in_init_from is not None and init >= script.fail_in_init_from
        ):
            raise script.error(f"{script.name} __init__ #{init}")

    def on_start(self) -> None:
        self.number = self.script.next_start()
        self.script.threads.append(threading.current_thread())
        self.script.journal.add("start", self.script.name, self.number)
        if self.script.hang_in_start:
            self.script.hanging.set()
            self.script.release.wait()
        if self.script.start_fails(self.number):
            raise self.script.error(f"{self.script.name} start #{self.number}")

    def on_stop(self) -> None:
        self.script.journal.add("stop", self.script.name, self.number)
        if self.script.stop_fails(self.number):
            raise self.script.error(f"{self.script.name} on_stop")

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.script.journal.add("failure", self.script.name, exception_value)

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise Boom(f"{self.script.name} crash")
        if isinstance(message, tuple) and message[0] == "raise":
            raise message[1]
        if message == "exit":
            self.stop()
            return None
        if message == "hang":
            self.script.journal.add("hang", self.script.name, self.number)
            self.script.hanging.set()
            self.script.release.wait()
            return "released"
        if message == "whoami":
            return self.number
        if message == "fail":
            raise ValueError("bad request")
        if isinstance(message, tuple) and message[0] == "record":
            self.script.journal.add("record", self.script.name, message[1])
            return (self.number, message[1])
        return super().on_receive(message)
