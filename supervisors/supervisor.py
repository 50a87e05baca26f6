"""The supervisor actor: starts, watches, restarts and stops its children, OTP-style.

It starts children in spec order, one at a time (the next starts once the previous has
finished ``on_start``), and stops them in reverse order. When a child dies it applies the
restart type (``should_restart``) and the strategy (``restart_group``), counting every restart
-- including each failed restart attempt -- against ``intensity`` within ``period``
(``add_restart``). Past that it stops its children and gives up: it dies with
``SupervisorGaveUp``, which its parent sees as an abnormal exit, or, at the root, which the
host's ``on_give_up`` callback receives. The root never kills the host process.

It never blocks on a child: it only ``tell``s them. Reports arrive as ``tell``s carrying an
instance number; a report from an instance already replaced is ignored. Sibling stops for
``one_for_all``/``rest_for_one`` run on a short-lived helper thread that reports back. Only
its own shutdown waits for children, from ``on_stop``/``on_failure``, when pykka already
refuses new asks to it, so a child that asks back fails fast instead of deadlocking.

Liveness: every ``liveness_interval`` seconds it pings each child that has a ``deadline``
and has answered its previous ping (one ping at a time), and fixes a timer at the moment the
ping's deadline comes (``hung_at``); a ping still unanswered then means the child is hung: it
is abandoned and replaced (reason ``HUNG``). So a child that stops answering is reported hung
at least ``deadline`` and at most ``deadline + liveness_interval`` seconds after the last
moment it was known alive (it answered a ping, or was started): the next ping goes out within
``liveness_interval`` of that moment, and is judged exactly ``deadline`` after it was sent. A
child that answers every ping within ``deadline`` is never reported hung.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

import pykka

from supervisors.addressing import DEFAULT_MAX_PENDING, ChildTable, Entry, refuse_all
from supervisors.clock import MonotonicClock, SystemMonotonicClock
from supervisors.errors import SpecError, SupervisorGaveUp
from supervisors.events import (
    ChildExited,
    ChildRestarted,
    ChildStarted,
    Escalated,
    EscalationTarget,
    ExitKind,
    ExitReason,
    IntensityReached,
    Listener,
    SupervisionEvent,
    SupervisorStopped,
)
from supervisors.messages import (
    LIVENESS_PING,
    CheckLiveness,
    ChildCounts,
    ChildDown,
    ChildInfo,
    ChildState,
    ChildUp,
    CountChildren,
    GiveUp,
    GroupStopped,
    NestedEvent,
    PingExpired,
    RestartDue,
    Subscribe,
    WhichChildren,
)
from supervisors.rules import add_restart, hung_at, is_hung, restart_group, should_restart
from supervisors.shutdown import StopItem, abandon, stop_child, stop_in_reverse
from supervisors.spec import (
    ChildSpec,
    ChildType,
    Restart,
    RestartBackoff,
    StartFailure,
    Strategy,
    SupervisorFlags,
    check_number,
    validate_children,
)
from supervisors.supervised import LINK_KEYWORD, Link, supervised_class
from supervisors.timers import Ticker, tell_after, tell_at

__all__ = ["DEFAULT_LIVENESS_INTERVAL", "GiveUpCallback", "Supervisor", "supervisor_child"]

logger = logging.getLogger(__name__)

DEFAULT_LIVENESS_INTERVAL = 1.0
"""Seconds between liveness pings, when any child has a ``deadline``."""

GiveUpCallback = Callable[[ExitReason], None]
"""Registered by the host on the root supervisor; called (on the supervisor's thread) once it
has given up and stopped its children."""

_ALIVE = (ChildState.STARTING, ChildState.RUNNING, ChildState.STOPPING)
_PINGED = (ChildState.STARTING, ChildState.RUNNING)


@dataclass(frozen=True, slots=True)
class _Ping:
    """A liveness ping out to a child: its answer, when it was sent, and its timer's token."""

    answer: pykka.Future[Any]
    sent_at: float
    token: int


@dataclass(slots=True, eq=False)
class _Child:
    """The supervisor's private record of one child (touched only on its thread)."""

    spec: ChildSpec
    index: int
    entry: Entry
    state: ChildState = ChildState.STOPPED
    instance: int | None = None
    ref: pykka.ActorRef[Any] | None = None
    ever_started: bool = False
    removed: bool = False
    restarts: tuple[float, ...] = ()
    backoff_token: int | None = None
    ping: _Ping | None = None

    @property
    def id(self) -> str:
        return self.spec.id


class Supervisor(pykka.ThreadingActor):
    """An OTP supervisor as a pykka actor.

    ``flags``: strategy and restart intensity; ``children``: specs in start order;
    ``name``: shown in events and logs; ``clock``: injected monotonic clock and sleep;
    ``listeners``: called with every ``SupervisionEvent`` (also those of supervisors below);
    ``on_give_up``: the host's callback when this supervisor, as the root, gives up;
    ``liveness_interval``: seconds between liveness pings (``None``: only on
    ``CheckLiveness``; a hang is then reported ``deadline`` after the first ping it leaves
    unanswered); ``draw``: random numbers in [0, 1) for backoff jitter;
    ``table``: the addressing table to fill (``SupervisorHandle`` passes one).
    """

    _lifeline_ready_on_start: ClassVar[bool] = False

    def __init__(
        self,
        flags: SupervisorFlags | None = None,
        children: Sequence[ChildSpec] = (),
        *,
        name: str = "supervisor",
        clock: MonotonicClock | None = None,
        listeners: Sequence[Listener] = (),
        on_give_up: GiveUpCallback | None = None,
        liveness_interval: float | None = DEFAULT_LIVENESS_INTERVAL,
        draw: Callable[[], float] = random.random,
        table: ChildTable | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        super().__init__()
        flags = SupervisorFlags() if flags is None else flags
        if not isinstance(flags, SupervisorFlags):
            raise SpecError("must be SupervisorFlags", field="flags", value=flags,
                            reason="invalid_flags")
        specs = validate_children(children, flags.strategy)
        ids = [spec.id for spec in specs]
        if table is None:
            table = ChildTable(name, ids, max_pending)
        elif [entry.child_id for entry in table] != ids:
            raise SpecError("does not match the children", field="table", value=table,
                            reason="invalid_table")
        if liveness_interval is not None:
            liveness_interval = check_number(liveness_interval, "liveness_interval",
                                             "invalid_liveness_interval", minimum=0.0, strict=True)
        self._name = name
        self._flags = flags
        self._clock: MonotonicClock = SystemMonotonicClock() if clock is None else clock
        self._listeners: list[Listener] = list(listeners)
        self._on_give_up = on_give_up
        self._liveness_interval = liveness_interval
        self._draw = draw
        self._lifeline_table = table  # read by the subclass a parent starts us through
        self._children = [
            _Child(spec, index, table.entry(spec.id)) for index, spec in enumerate(specs)
        ]
        self._by_id = {child.id: child for child in self._children}
        self._restarts: tuple[float, ...] = ()
        self._to_start: set[int] = set()
        self._group_ops: dict[int, list[_Child]] = {}
        self._initial = True
        self._giving_up: SupervisorGaveUp | None = None
        self._shut_down = False
        self._instances = itertools.count(1)
        self._tokens = itertools.count(1)
        self._ops = itertools.count(1)
        self._pings = itertools.count(1)
        self._ticker: Ticker | None = None

    # -- pykka hooks ---------------------------------------------------------------------

    def on_start(self) -> None:
        self._to_start = {child.index for child in self._children}
        if self._liveness_interval is not None and any(
            child.spec.deadline is not None for child in self._children
        ):
            self._ticker = Ticker(self._clock, self._liveness_interval, self.actor_ref,
                                  CheckLiveness(), name=f"{self._name}-liveness")
            self._ticker.start()
        self._advance()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, GiveUp) and self._giving_up is not None:
            raise self._giving_up
        if isinstance(message, WhichChildren | CountChildren | Subscribe | NestedEvent):
            return self._answer(message)
        if isinstance(message, ChildUp | ChildDown | RestartDue | GroupStopped | CheckLiveness
                      | PingExpired):
            if self._giving_up is None:  # after deciding to give up, reports change nothing
                self._handle(message)
                self._advance()
            return None
        return super().on_receive(message)

    def _answer(
        self, message: WhichChildren | CountChildren | Subscribe | NestedEvent
    ) -> Any:
        if isinstance(message, WhichChildren):
            return self._which_children()
        if isinstance(message, CountChildren):
            return self._count_children()
        if isinstance(message, Subscribe):
            self._listeners.append(message.listener)
        else:
            self._publish(message.event)
        return None

    def _handle(
        self,
        message: ChildUp | ChildDown | RestartDue | GroupStopped | CheckLiveness | PingExpired,
    ) -> None:
        if isinstance(message, ChildUp):
            self._on_up(message)
        elif isinstance(message, ChildDown):
            self._on_down(message)
        elif isinstance(message, RestartDue):
            self._on_restart_due(message)
        elif isinstance(message, GroupStopped):
            self._on_group_stopped(message)
        elif isinstance(message, PingExpired):
            self._on_ping_expired(message)
        else:
            self._check_liveness()

    def on_stop(self) -> None:
        self._shutdown(ExitReason(ExitKind.SHUTDOWN))

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        reason = ExitReason(ExitKind.CRASHED, exception_value)
        self._shutdown(reason)
        has_parent = getattr(self, "_lifeline_link", None) is not None
        target = EscalationTarget.PARENT if has_parent else EscalationTarget.HOST
        self._publish(Escalated(self._name, target, reason, self._clock.monotonic()))
        if target is EscalationTarget.HOST and self._on_give_up is not None:
            try:
                self._on_give_up(reason)
            except BaseException:  # host code on our thread: a SystemExit here exits nothing
                logger.exception("Supervisor: %s; on_give_up callback raised", self._name)

    # -- reports from children -----------------------------------------------------------

    def _on_up(self, message: ChildUp) -> None:
        child = self._by_id.get(message.child_id)
        if child is None or child.instance != message.instance or (
            child.state is not ChildState.STARTING
        ):
            logger.debug("Supervisor: %s; ignored stale %r", self._name, message)
            return
        child.state = ChildState.RUNNING
        now = self._clock.monotonic()
        event: SupervisionEvent
        if child.ever_started or child.restarts:  # also after a failed first start (RESTART)
            event = ChildRestarted(self._name, child.id, message.instance, now)
        else:
            event = ChildStarted(self._name, child.id, message.instance, now)
        child.ever_started = True
        logger.info("Supervisor: %s; Started: %s (instance %d)", self._name, child.id,
                    message.instance, extra={"supervisor": self._name, "child_id": child.id})
        self._publish(event)

    def _on_down(self, message: ChildDown) -> None:
        child = self._by_id.get(message.child_id)
        if child is None or child.instance != message.instance or child.state not in _ALIVE:
            logger.debug("Supervisor: %s; ignored stale %r", self._name, message)
            return
        reason = message.reason
        if child.state is ChildState.STOPPING:
            if reason.kind is ExitKind.NORMAL:
                reason = ExitReason(ExitKind.SHUTDOWN)
            self._gone(child, message.instance, reason, "shutdown_error")
        elif child.state is ChildState.STARTING:
            self._start_failed(child, reason)
        else:
            self._child_died(child, reason)

    def _on_restart_due(self, message: RestartDue) -> None:
        child = self._by_id.get(message.child_id)
        if child is not None and child.backoff_token == message.token:
            child.backoff_token = None

    def _on_group_stopped(self, message: GroupStopped) -> None:
        members = self._group_ops.pop(message.op, [])
        killed = dict(message.killed)
        for child in members:
            if child.state is ChildState.STOPPING:
                instance = child.instance or 0
                kind = ExitKind.KILLED if killed.get(child.id) == instance else ExitKind.SHUTDOWN
                self._gone(child, instance, ExitReason(kind), "shutdown_error")
        for child in members:
            if child.state is not ChildState.RESTARTING:
                continue
            if child.spec.restart is Restart.TEMPORARY:
                self._retire(child)
            else:
                self._schedule(child)

    # -- decisions -----------------------------------------------------------------------

    def _gone(self, child: _Child, instance: int, reason: ExitReason, context: str) -> None:
        """``instance`` of ``child`` no longer runs: forget it until its restart, and say so."""
        child.state = ChildState.RESTARTING
        child.ref = None
        child.ping = None
        self._exited(child, instance, reason, context)

    def _exited(self, child: _Child, instance: int, reason: ExitReason, context: str) -> None:
        if reason.abnormal:
            self._report(logging.ERROR, context, child.id, reason)
        self._publish(ChildExited(self._name, child.id, instance, reason,
                                  self._clock.monotonic()))

    def _child_died(self, child: _Child, reason: ExitReason) -> None:
        self._gone(child, child.instance or 0, reason, "child_terminated")
        if not should_restart(child.spec.restart, reason):
            self._retire(child)
            return
        if not self._count_restart(child, reason):
            return
        live_ids = [c.id for c in self._children if not c.removed]
        group = restart_group(self._flags.strategy, live_ids, child.id)
        members = [child]
        to_stop: list[StopItem] = []
        for other_id in group:
            other = self._by_id[other_id]
            if other is child:
                continue
            if other.state in (ChildState.RUNNING, ChildState.STARTING) and other.ref:
                other.state = ChildState.STOPPING
                to_stop.append(self._stop_item(other, other.ref))
                members.append(other)
            elif other.state is ChildState.STOPPED:
                other.state = ChildState.RESTARTING
                members.append(other)
            elif other.state is ChildState.RESTARTING and other.index not in self._to_start:
                members.append(other)
        members.sort(key=lambda c: c.index)
        if not to_stop:
            for member in members:
                self._schedule(member)
            return
        op = next(self._ops)
        self._group_ops[op] = members
        items = sorted(to_stop, key=lambda item: self._by_id[item.child_id].index)
        threading.Thread(
            target=stop_in_reverse, args=(items, self.actor_ref, op),
            name=f"{self._name}-stop-{op}", daemon=True,
        ).start()

    def _start_failed(self, child: _Child, reason: ExitReason) -> None:
        self._gone(child, child.instance or 0, reason, "start_error")
        if self._initial and child.spec.start_failure is StartFailure.ABORT:
            # OTP: a child that fails to start while the supervisor starts fails the supervisor.
            self._give_up("start_error", child, reason)
            return
        # A failed restart, or a first start under StartFailure.RESTART: counted as a crash.
        if self._count_restart(child, reason):
            self._schedule(child)

    def _count_restart(self, child: _Child, reason: ExitReason) -> bool:
        """Record a restart; False (and give up) once intensity is exceeded."""
        now = self._clock.monotonic()
        check = add_restart(self._restarts, now, intensity=self._flags.intensity,
                            period=self._flags.period)
        self._restarts = check.restarts
        child.restarts = add_restart(child.restarts, now, intensity=self._flags.intensity,
                                     period=self._flags.period).restarts
        if not check.exceeded:
            return True
        self._publish(IntensityReached(self._name, self._flags.intensity, self._flags.period,
                                       child.id, now))
        self._give_up("reached_max_restart_intensity", child, reason)
        return False

    def _give_up(self, context: str, child: _Child, reason: ExitReason) -> None:
        self._giving_up = SupervisorGaveUp(self._name, context=context, child_id=child.id,
                                           cause=reason.error)
        self._report(logging.ERROR, "shutdown", child.id, context)
        self.actor_ref.tell(GiveUp())  # raised from a tell, so that this actor dies

    def _schedule(self, child: _Child) -> None:
        child.state = ChildState.RESTARTING
        backoff = child.spec.backoff
        if backoff is not None and child.restarts:
            delay = backoff.delay(len(child.restarts), self._draw())
            if delay > 0:
                token = next(self._tokens)
                child.backoff_token = token
                tell_after(self._clock, delay, self.actor_ref, RestartDue(child.id, token),
                           name=f"{self._name}-backoff-{child.id}")
        self._to_start.add(child.index)

    def _retire(self, child: _Child) -> None:
        child.state = ChildState.STOPPED
        child.ref = None
        if child.spec.restart is Restart.TEMPORARY:
            child.removed = True  # OTP deletes a temporary child's spec once it has exited
        self._to_start.discard(child.index)
        child.entry.shut()

    # -- carrying out ----------------------------------------------------------------------

    def _advance(self) -> None:
        """Start the next child due, in spec order, one at a time."""
        while (
            self._giving_up is None
            and not self._shut_down
            and not self._group_ops
            and self._to_start
            and not self._child_starting()
        ):
            child = self._next_due()
            if child is None:
                break
            self._to_start.discard(child.index)
            self._start(child)
        if (
            self._initial
            and self._giving_up is None
            and all(self._children[index].backoff_token is not None for index in self._to_start)
            and not self._group_ops
            and not self._child_starting()
        ):
            self._initial = False
            report_up = getattr(self, "_lifeline_report_up", None)
            if report_up is not None:
                report_up()

    def _next_due(self) -> _Child | None:
        """The first child to start, in spec order, that waits for no backoff.

        A child waiting for its backoff holds back the children after it (they depend on it
        under ``rest_for_one``/``one_for_all``), except under ``one_for_one``, where siblings
        are independent: a router supervisor waiting minutes for its recovery attempt must
        not keep a crashed sibling down that long.
        """
        for index in sorted(self._to_start):
            child = self._children[index]
            if child.backoff_token is None:
                return child
            if self._flags.strategy is not Strategy.ONE_FOR_ONE:
                return None
        return None

    def _child_starting(self) -> bool:
        """Whether a child is between its start and its ``ChildUp`` (one at a time)."""
        return any(child.state is ChildState.STARTING for child in self._children)

    def _start(self, child: _Child) -> None:
        if child.instance is not None:
            child.entry.close(child.instance)  # whatever the old instance left is kept
        instance = next(self._instances)
        child.instance = instance
        child.state = ChildState.STARTING
        child.ping = None
        link = Link(self.actor_ref, child.id, instance, child.entry)
        kwargs = {**child.spec.kwargs, LINK_KEYWORD: link}
        try:
            child.ref = supervised_class(child.spec.start).start(*child.spec.args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the constructor raised: a start failure
            # (even a SystemExit: it would otherwise escape to pykka, which stops every actor)
            self._start_failed(child, ExitReason(ExitKind.START_FAILED, exc))

    def _check_liveness(self) -> None:
        """Ping each child with a deadline that answered its last ping; time the new one."""
        now = self._clock.monotonic()
        for child in self._children:
            deadline, ref = child.spec.deadline, child.ref
            if deadline is None or ref is None or child.state not in _PINGED:
                continue
            if child.ping is not None and not _answered(child.ping.answer):
                continue  # one ping at a time; its own timer judges it
            token = next(self._pings)
            child.ping = _Ping(ref.ask(LIVENESS_PING, block=False), now, token)
            tell_at(self._clock, hung_at(now, deadline), self.actor_ref,
                    PingExpired(child.id, token), name=f"{self._name}-deadline-{child.id}")

    def _on_ping_expired(self, message: PingExpired) -> None:
        child = self._by_id.get(message.child_id)
        if child is None or child.state not in _PINGED:
            return
        ping, deadline = child.ping, child.spec.deadline
        if ping is None or ping.token != message.token or deadline is None:
            return  # a ping to an instance already replaced
        if not _answered(ping.answer) and is_hung(ping.sent_at, self._clock.monotonic(),
                                                  deadline):
            self._hung(child)

    def _hung(self, child: _Child) -> None:
        if child.ref is not None:
            abandon(self._stop_item(child, child.ref))
        reason = ExitReason(ExitKind.HUNG)
        if child.state is ChildState.STARTING:
            self._start_failed(child, reason)
        else:
            self._child_died(child, reason)

    def _stop_item(self, child: _Child, ref: pykka.ActorRef[Any]) -> StopItem:
        shutdown = child.spec.shutdown if child.spec.shutdown is not None else 0.0
        return StopItem(child.id, child.instance or 0, ref, shutdown, child.entry)

    def _shutdown(self, reason: ExitReason) -> None:
        """Stop every child, last first, waiting up to each one's ``shutdown``."""
        if self._shut_down:
            return
        self._shut_down = True
        if self._ticker is not None:
            self._ticker.stop()
        refuse_all(self.actor_inbox,
                   pykka.ActorDeadError(f"supervisor {self._name!r} is shutting down"))
        for child in reversed(self._children):
            if child.state in _ALIVE and child.ref is not None:
                item = self._stop_item(child, child.ref)
                kind = ExitKind.SHUTDOWN if stop_child(item) else ExitKind.KILLED
                child.ref = None
                self._exited(child, item.instance, ExitReason(kind), "shutdown_error")
            child.state = ChildState.STOPPED
        for child in self._children:
            child.entry.shut()
        if reason.abnormal:
            self._report(logging.ERROR, "shutdown", None, reason)
        else:
            logger.info("Supervisor: %s; shut down", self._name,
                        extra={"supervisor": self._name})
        self._publish(SupervisorStopped(self._name, reason, self._clock.monotonic()))

    # -- introspection and events ----------------------------------------------------------

    def _which_children(self) -> tuple[ChildInfo, ...]:
        return tuple(
            ChildInfo(
                id=child.id,
                state=child.state,
                instance=child.instance if child.state in _ALIVE else None,
                type=child.spec.type,
                actor_class=child.spec.start.__name__,
            )
            for child in self._children
            if not child.removed
        )

    def _count_children(self) -> ChildCounts:
        present = [child for child in self._children if not child.removed]
        return ChildCounts(
            specs=len(present),
            active=sum(1 for child in present if child.state is ChildState.RUNNING),
            supervisors=sum(1 for child in present if child.spec.type is ChildType.SUPERVISOR),
            workers=sum(1 for child in present if child.spec.type is ChildType.WORKER),
        )

    def _publish(self, event: SupervisionEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except BaseException:  # even a SystemExit: pykka would stop every actor for it
                logger.exception("Supervisor: %s; event listener raised on %r", self._name,
                                 event)
        link: Link | None = getattr(self, "_lifeline_link", None)
        if link is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                link.supervisor.tell(NestedEvent(event))

    def _report(self, level: int, context: str, child_id: str | None, reason: object) -> None:
        """Log in OTP's supervisor report shape."""
        logger.log(
            level, "Supervisor: %s; Context: %s; Child: %s; Reason: %s",
            self._name, context, child_id, reason,
            extra={"supervisor": self._name, "context": context, "child_id": child_id,
                   "reason": reason},
        )

    def __str__(self) -> str:
        return f"Supervisor {self._name!r} ({self.actor_urn})"


def _answered(future: pykka.Future[Any]) -> bool:
    try:
        future.get(timeout=0)
    except pykka.Timeout:
        return False
    except Exception:  # noqa: BLE001 - any answer, even an error, is a sign of life
        return True
    return True


def supervisor_child(
    id: str,
    flags: SupervisorFlags,
    children: Sequence[ChildSpec],
    *,
    restart: Restart = Restart.PERMANENT,
    shutdown: float | None = None,
    backoff: RestartBackoff | None = None,
    start_failure: StartFailure = StartFailure.ABORT,
    **options: Any,
) -> ChildSpec:
    """A ``ChildSpec`` for a nested supervisor (``type=SUPERVISOR``, named ``id``).

    ``restart``, ``shutdown``, ``backoff`` and ``start_failure`` are the spec's; ``options``
    go to ``Supervisor`` (``clock``, ``listeners``, ``liveness_interval``, …). A nested
    supervisor's start fails when one of its children fails its first start under
    ``StartFailure.ABORT``, or when it gives up before it has started them all.
    """
    kwargs = {"flags": flags, "children": tuple(children), "name": id, **options}
    return ChildSpec(id=id, start=Supervisor, kwargs=kwargs, restart=restart,
                     shutdown=shutdown, type=ChildType.SUPERVISOR, backoff=backoff,
                     start_failure=start_failure)
