"""Small scripted child actors: plain pykka actors that know nothing of supervisors.

A ``Script`` is shared by every instance of one child id, so it counts start attempts across
restarts and keeps one ``Journal`` of what happened, in order.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
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
    """What a scripted child does: which start attempts fail, which message crashes it."""

    name: str
    journal: Journal
    fail_starts: frozenset[int] = frozenset()
    fail_starts_from: int | None = None
    crash_on_message: int | None = None
    fail_in_init_from: int | None = None
    fail_on_stop: bool = False
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


class ScriptedChild(pykka.ThreadingActor):
    """Messages: ``"crash"`` (raise), ``"exit"`` (stop itself), ``"hang"`` (block until the
    script is released), ``"whoami"`` (its start number), ``("record", x)`` (journal and
    answer ``(number, x)``), ``"fail"`` (raise ValueError: as an ask, goes back to the caller).
    """

    def __init__(self, script: Script) -> None:
        super().__init__()
        self.script = script
        self.number = 0
        self.received = 0
        init = script.next_init()
        if script.fail_in_init_from is not None and init >= script.fail_in_init_from:
            raise Boom(f"{script.name} __init__ #{init}")

    def on_start(self) -> None:
        self.number = self.script.next_start()
        self.script.journal.add("start", self.script.name, self.number)
        if self.script.start_fails(self.number):
            raise Boom(f"{self.script.name} start #{self.number}")

    def on_stop(self) -> None:
        self.script.journal.add("stop", self.script.name, self.number)
        if self.script.fail_on_stop:
            raise Boom(f"{self.script.name} on_stop")

    def on_receive(self, message: Any) -> Any:
        self.received += 1
        if self.script.crash_on_message == self.received:
            raise Boom(f"{self.script.name} message #{self.received}")
        if message == "crash":
            raise Boom(f"{self.script.name} crash")
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
