"""Rule: the pykka behaviour and internals supervision relies on still hold.

``supervisors`` hands messages over between a dead instance and its replacement by reaching
into pykka: it builds ``pykka._envelope.Envelope``s and puts them straight into
``actor_inbox``, drains a dead inbox with ``get_nowait()`` until ``queue.Empty``, recognises
``pykka.messages._ActorStop``, ends an instance by setting ``actor_stopped`` from inside
``on_receive``, and works around pykka stopping every actor on a ``BaseException``. None of
that is pykka's public API (written against pykka 4.5); if an upgrade changes it, these tests
fail here, loudly, instead of messages being lost silently in production.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

pytestmark = pytest.mark.timeout(20)


class Gate:
    """Holds an actor in a message: ``entered`` once it waits, until ``opened``."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def hold(self, ref: pykka.ActorRef[Any]) -> None:
        """Make ``ref`` wait in a message; returns once it does."""
        ref.tell(("block", self))
        assert self.entered.wait(5)


class Echo(pykka.ThreadingActor):
    """Answers ``("echo", x)`` with ``x``; ``("block", gate)`` waits at the gate; ``"halt"``
    sets ``actor_stopped`` and answers; ``("raise", e)`` raises ``e``; ``"daemon?"`` says
    whether its thread is a daemon."""

    use_daemon_thread = True

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "block":
            message[1].entered.set()
            message[1].opened.wait()
            return "unblocked"
        if message == "halt":
            self.actor_stopped.set()
            return "halted"
        if message == "daemon?":
            return threading.current_thread().daemon
        if isinstance(message, tuple) and message[0] == "raise":
            raise message[1]
        if isinstance(message, tuple) and message[0] == "echo":
            return message[1]
        return super().on_receive(message)


class FailsToStart(pykka.ThreadingActor):
    def on_start(self) -> None:
        raise RuntimeError("no start")


@pytest.fixture
def gate() -> Iterator[Gate]:
    made = Gate()
    yield made
    made.opened.set()


def test_an_envelope_put_straight_into_an_inbox_is_handled_and_answered() -> None:
    ref = Echo.start()
    future: pykka.Future[Any] = pykka.ThreadingFuture()
    envelope = Envelope(("echo", 42), reply_to=future)
    assert (envelope.message, envelope.reply_to) == (("echo", 42), future)

    ref.actor_inbox.put(envelope)
    ref.actor_inbox.put(Envelope(("echo", "told")))  # a tell: no reply_to

    assert future.get(timeout=5) == 42
    assert ref.ask(("echo", "after"), timeout=5) == "after"


def test_a_stop_request_is_an_actor_stop_envelope_that_get_nowait_drains(gate: Gate) -> None:
    actor_ref = Echo.start()
    gate.hold(actor_ref)

    stop_future = actor_ref.stop(block=False)
    inbox: Any = actor_ref.actor_inbox
    drained = []
    with pytest.raises(queue.Empty):
        while True:
            drained.append(inbox.get_nowait())
    assert inbox.empty()

    [envelope] = drained
    assert isinstance(envelope, Envelope)
    assert isinstance(envelope.message, _ActorStop)
    assert envelope.reply_to is not None
    envelope.reply_to.set(None)  # what the supervisor does with a drained stop
    assert stop_future.get(timeout=5) is True  # the stop counts as done


def test_setting_actor_stopped_inside_on_receive_ends_the_loop_after_that_message(
    gate: Gate,
) -> None:
    actor_ref = Echo.start()
    gate.hold(actor_ref)
    halted = actor_ref.ask("halt", block=False)
    behind = actor_ref.ask(("echo", "never"), block=False)

    gate.opened.set()

    assert halted.get(timeout=5) == "halted"
    with pytest.raises(pykka.ActorDeadError):
        behind.get(timeout=5)  # answered by pykka's teardown, not handled
    assert not actor_ref.is_alive()
    pykka.ActorRegistry.unregister(actor_ref)  # unregistering twice is harmless


def test_an_exception_from_on_start_unregisters_and_stops_the_actor() -> None:
    ref = FailsToStart.start()
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("anything", block=False).get(timeout=5)
    assert ref not in pykka.ActorRegistry.get_all()
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("anything")  # Link.up/down and the timers count on this to notice


def test_use_daemon_thread_puts_the_actor_on_a_daemon_thread() -> None:
    ref = Echo.start()
    assert ref.ask("daemon?", timeout=5) is True
    ref.stop()


def test_pykka_still_stops_every_actor_on_a_base_exception_in_a_message(gate: Gate) -> None:
    """What the generated subclass contains; should pykka change it, revisit supervised.py."""
    bystander = Echo.start()
    culprit = Echo.start()
    gate.hold(culprit)
    culprit.tell(("raise", SystemExit("from a plain actor")))
    behind = culprit.ask(("echo", "never"), block=False)  # answered once stop_all returned

    gate.opened.set()

    with pytest.raises(pykka.ActorDeadError):
        behind.get(timeout=5)
    assert not bystander.is_alive()
    assert pykka.ActorRegistry.get_all() == []
