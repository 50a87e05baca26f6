"""The host's handle on a supervision tree: start it, address children, look inside, stop.

::

    sup = SupervisorHandle.start(SupervisorFlags(intensity=3), [ChildSpec("router", Router)],
                                 name="root", on_give_up=host_callback)
    sup.child("router").ask(GetTicker("KRW-BTC"), timeout=1.0)
    sup.which_children()
    sup.stop()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pykka

from supervisors.addressing import DEFAULT_MAX_PENDING, ChildHandle, ChildTable
from supervisors.events import Listener
from supervisors.messages import (
    CheckLiveness,
    ChildCounts,
    ChildInfo,
    CountChildren,
    Subscribe,
    WhichChildren,
)
from supervisors.spec import ChildSpec, SupervisorFlags, validate_children
from supervisors.supervisor import Supervisor

__all__ = ["DEFAULT_ASK_TIMEOUT", "SupervisorHandle"]

DEFAULT_ASK_TIMEOUT = 5.0
"""Seconds the handle waits for the supervisor to answer an introspection query."""


class SupervisorHandle:
    """A started root supervisor, with stable addressing of its children by id."""

    __slots__ = ("_ref", "_table")

    def __init__(self, ref: pykka.ActorRef[Supervisor], table: ChildTable) -> None:
        self._ref = ref
        self._table = table

    @classmethod
    def start(
        cls,
        flags: SupervisorFlags | None = None,
        children: Sequence[ChildSpec] = (),
        *,
        name: str = "supervisor",
        max_pending: int = DEFAULT_MAX_PENDING,
        **options: Any,
    ) -> SupervisorHandle:
        """Start a ``Supervisor`` (``options`` as its keyword arguments) and return its handle.

        Returns at once; children start in order on the supervisor's thread (subscribe a
        listener through ``options["listeners"]`` to see them start).
        """
        specs = validate_children(children)
        table = ChildTable(name, [spec.id for spec in specs], max_pending)
        ref = Supervisor.start(flags, specs, name=name, table=table, **options)
        return cls(ref, table)

    @property
    def ref(self) -> pykka.ActorRef[Supervisor]:
        """The supervisor actor's ref."""
        return self._ref

    @property
    def name(self) -> str:
        """The supervisor's name."""
        return self._table.supervisor

    def child(self, child_id: str) -> ChildHandle:
        """A handle that always reaches the current instance of ``child_id``."""
        return ChildHandle(self._table, (child_id,))

    def which_children(self, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> tuple[ChildInfo, ...]:
        """Every child in start order with its state (OTP ``which_children``)."""
        result: tuple[ChildInfo, ...] = self._ref.ask(WhichChildren(), block=True, timeout=timeout)
        return result

    def count_children(self, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> ChildCounts:
        """How many specs, active children, supervisors and workers (OTP ``count_children``)."""
        result: ChildCounts = self._ref.ask(CountChildren(), block=True, timeout=timeout)
        return result

    def subscribe(self, listener: Listener, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> None:
        """Add an event listener; returns once the supervisor has it."""
        self._ref.ask(Subscribe(listener), timeout=timeout)

    def check_liveness(self, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> None:
        """Ping now every child with a ``deadline`` that answered its last ping (the ticker
        does this every ``liveness_interval``); each ping's own timer judges it."""
        self._ref.ask(CheckLiveness(), timeout=timeout)

    def is_alive(self) -> bool:
        """Whether the supervisor is still running (False once it stopped or gave up)."""
        return self._ref.is_alive()

    def stop(self, *, timeout: float | None = None) -> bool:
        """Stop the children in reverse order, then the supervisor; False if already dead."""
        return self._ref.stop(block=True, timeout=timeout)

    def __repr__(self) -> str:
        return f"<SupervisorHandle {self.name}>"
