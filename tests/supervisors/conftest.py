"""Fixtures for supervisor tests: a blocking fake clock, an event recorder, scripted children,
and teardown of every supervisor and actor a test started."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest

from supervisors import ChildSpec, SupervisionEvent, SupervisorFlags, SupervisorHandle
from tests.fakes import ManualClock
from tests.supervisors.scripted import Journal, Script, ScriptedChild


class Events:
    """A listener that records events and lets tests wait for them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._events: list[SupervisionEvent] = []

    def __call__(self, event: SupervisionEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def all(self) -> list[SupervisionEvent]:
        with self._cond:
            return list(self._events)

    def of(self, kind: type[Any], **fields: Any) -> list[Any]:
        with self._cond:
            return self._matching(kind, fields)

    def wait_for(
        self, kind: type[Any], count: int = 1, timeout: float = 10.0, **fields: Any
    ) -> list[Any]:
        def enough() -> bool:
            return len(self._matching(kind, fields)) >= count

        with self._cond:
            if not self._cond.wait_for(enough, timeout):
                pytest.fail(
                    f"waited for {count} {kind.__name__} {fields}; saw:\n"
                    + "\n".join(repr(event) for event in self._events)
                )
            return self._matching(kind, fields)

    def _matching(self, kind: type[Any], fields: dict[str, Any]) -> list[Any]:
        return [
            event for event in self._events
            if isinstance(event, kind)
            and all(getattr(event, name) == value for name, value in fields.items())
        ]


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    """Monotonic time from 0 that moves only on ``advance``; the supervisor's timer threads
    block in ``sleep`` until it does (closed at teardown, which wakes them)."""
    fake = ManualClock(mono=0.0, blocking=True)
    yield fake
    fake.close()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
def scripts(journal: Journal) -> Iterator[Callable[..., Script]]:
    made: list[Script] = []

    def make(name: str, **options: Any) -> Script:
        script = Script(name=name, journal=journal, **options)
        made.append(script)
        return script

    yield make
    for script in made:
        script.release.set()


def script_of(spec: ChildSpec) -> Script:
    """The ``Script`` a spec made by the ``child`` fixture runs."""
    script: Script = spec.args[0]
    return script


@pytest.fixture
def child(scripts: Callable[..., Script]) -> Callable[..., ChildSpec]:
    """``child("a", restart=..., fail_starts=...)``: a spec for a scripted child."""

    spec_fields = {"restart", "shutdown", "type", "deadline", "backoff", "start_failure"}

    def make(name: str, **options: Any) -> ChildSpec:
        spec_options = {key: value for key, value in options.items() if key in spec_fields}
        script_options = {key: value for key, value in options.items() if key not in spec_fields}
        return ChildSpec(id=name, start=ScriptedChild, args=(scripts(name, **script_options),),
                         **spec_options)

    return make


@pytest.fixture
def start_supervisor(
    clock: ManualClock, events: Events
) -> Iterator[Callable[..., SupervisorHandle]]:
    """Start a root supervisor on the fake clock, recording its events; stopped at teardown."""
    handles: list[SupervisorHandle] = []

    def start(
        children: list[ChildSpec], flags: SupervisorFlags | None = None, **options: Any
    ) -> SupervisorHandle:
        options.setdefault("name", "root")
        options.setdefault("clock", clock)
        options.setdefault("listeners", [events])
        options.setdefault("liveness_interval", None)
        handle = SupervisorHandle.start(flags or SupervisorFlags(), children, **options)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop(timeout=10)


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    """Safety net: no actor outlives its test."""
    yield
    pykka.ActorRegistry.stop_all(timeout=10)
