"""Supervision applied from outside: the subclass a supervisor starts a plain actor through.

A supervised child is a plain pykka ``ThreadingActor`` that imports nothing from
``supervisors``. The supervisor starts it through ``supervised_class(cls)``, a subclass made
once per class, which

- opens the child's addressing entry on the new instance while it is constructed;
- reports ``ChildUp`` when ``on_start`` returns, and ``ChildDown`` with a reason when
  ``on_start`` raises (pykka calls no hook then), when ``on_failure`` runs (an unhandled
  exception in a ``tell``), or when ``on_stop`` runs (normal exit, or ``CRASHED`` if it
  raised). An exception raised while answering an ``ask`` goes back to the caller and does
  not stop a pykka actor, so it is not a death and is not reported;
- makes a ``BaseException`` that is not an ``Exception`` (``SystemExit``,
  ``KeyboardInterrupt``, ``GeneratorExit``, …) this child's crash only. Left to pykka, one
  raised while handling a message stops *every* actor in the process
  (``ActorRegistry.stop_all()``), and one raised in ``on_start`` or ``on_stop`` escapes
  pykka's handlers (a dead thread whose actor stays registered, or ``on_stop`` run twice).
  Here, raised from ``on_receive`` (a tell or an ask), it stops this instance at once: it is
  unregistered, its own ``on_failure`` runs once with the original exception, ``ChildDown``
  says ``CRASHED`` with that exception, and what waits in its inbox goes to the replacement.
  pykka is handed a ``ChildAborted`` (raised ``from`` the original) in its place, which is
  also what the caller of such an ask receives. From ``on_start``/``on_stop`` it is reported
  like any exception there, and pykka is handed a ``ChildAborted`` so its usual clean-up runs.

  ``KeyboardInterrupt`` is contained too, on purpose: Python delivers signals to the main
  thread only, and no actor runs there, so a ``KeyboardInterrupt`` on an actor thread is
  never the operator's Ctrl-C but code raising it; the host's own Ctrl-C reaches the host.
  Proxy calls (``ActorProxy``, which ``ChildHandle`` never uses) bypass ``on_receive`` and
  are not covered;
- answers the supervisor's liveness ping;
- runs on a daemon thread, so a hung instance the supervisor abandons never blocks exit.

Every report is a ``tell`` carrying the instance number, so the supervisor can ignore late
reports from instances it has already replaced.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

import pykka

from supervisors.addressing import Entry
from supervisors.errors import ChildAborted
from supervisors.events import ExitKind, ExitReason
from supervisors.messages import ChildDown, ChildUp, LivenessPing

__all__ = ["LINK_KEYWORD", "Link", "supervised_class"]

logger = logging.getLogger(__name__)

LINK_KEYWORD = "_lifeline_link"
"""The keyword argument the generated subclass takes (and removes) at construction."""


@dataclass(frozen=True, slots=True)
class Link:
    """What a supervised instance knows of its supervisor."""

    supervisor: pykka.ActorRef[Any]
    child_id: str
    instance: int
    entry: Entry

    def up(self) -> None:
        """Tell the supervisor this instance has started."""
        with contextlib.suppress(pykka.ActorDeadError):  # gone: it is stopping us too
            self.supervisor.tell(ChildUp(self.child_id, self.instance))

    def down(self, reason: ExitReason) -> None:
        """Buffer what is left in this instance's inbox, then tell the supervisor."""
        self.entry.close(self.instance)
        with contextlib.suppress(pykka.ActorDeadError):
            self.supervisor.tell(ChildDown(self.child_id, self.instance, reason))


_classes: dict[type[pykka.ThreadingActor], type[pykka.ThreadingActor]] = {}
_classes_lock = threading.Lock()


def supervised_class(cls: type[pykka.ThreadingActor]) -> type[pykka.ThreadingActor]:
    """The subclass of ``cls`` that reports to its supervisor (made once, then cached).

    Start it as ``supervised_class(cls).start(*args, _lifeline_link=link, **kwargs)``.
    A class that sets ``_lifeline_ready_on_start = False`` (a nested ``Supervisor``) reports
    ``ChildUp`` itself, by calling ``_lifeline_report_up()``, once it is really ready.
    """
    with _classes_lock:
        existing = _classes.get(cls)
        if existing is None:
            existing = _classes[cls] = _make_supervised(cls)
        return existing


def _make_supervised(cls: type[pykka.ThreadingActor]) -> type[pykka.ThreadingActor]:
    base: Any = cls

    class Supervised(base):  # type: ignore[misc]
        use_daemon_thread: ClassVar[bool] = True
        _lifeline_link: Link
        _lifeline_down: bool
        _lifeline_aborted: ChildAborted | None

        def __init__(self, *args: Any, _lifeline_link: Link, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._lifeline_link = _lifeline_link
            self._lifeline_down = False
            self._lifeline_aborted = None
            _lifeline_link.entry.open(
                _lifeline_link.instance, self.actor_ref, getattr(self, "_lifeline_table", None)
            )

        def _lifeline_report_up(self) -> None:
            if not self._lifeline_down:
                self._lifeline_link.up()

        def _lifeline_report_down(self, reason: ExitReason) -> None:
            if not self._lifeline_down:
                self._lifeline_down = True
                self._lifeline_link.down(reason)

        def _lifeline_run_hook(self, hook: Callable[[], None], kind: ExitKind) -> None:
            """Run ``on_start``/``on_stop``; if it raises, report ``kind`` and re-raise it, as a
            ``ChildAborted`` if pykka would not handle it (not an ``Exception``)."""
            try:
                hook()
            except BaseException as exc:
                self._lifeline_report_down(ExitReason(kind, exc))
                if isinstance(exc, Exception):
                    raise
                raise ChildAborted(self._lifeline_link.child_id, exc) from exc

        def _lifeline_abort(self, exc: BaseException) -> ChildAborted:
            """Stop this instance now as crashed by ``exc``, whether a tell or an ask raised it
            (pykka would stop every actor); return what to raise to pykka instead."""
            aborted = ChildAborted(self._lifeline_link.child_id, exc)
            self._lifeline_aborted = aborted
            pykka.ActorRegistry.unregister(self.actor_ref)
            self.actor_stopped.set()  # pykka's loop handles no message after this one
            try:
                self.on_failure(type(exc), exc, exc.__traceback__)
            except BaseException:
                logger.exception("on_failure of %s raised", self)
            return aborted

        def on_start(self) -> None:
            self._lifeline_run_hook(super().on_start, ExitKind.START_FAILED)
            if getattr(self, "_lifeline_ready_on_start", True):
                self._lifeline_report_up()

        def on_receive(self, message: Any) -> Any:
            if isinstance(message, LivenessPing):
                return True
            try:
                return super().on_receive(message)
            except Exception:
                raise
            except BaseException as exc:
                raise self._lifeline_abort(exc) from exc

        def on_failure(
            self,
            exception_type: type[BaseException] | None,
            exception_value: BaseException | None,
            traceback: TracebackType | None,
        ) -> None:
            if self._lifeline_aborted is not None and exception_value is self._lifeline_aborted:
                return  # pykka's own call after an aborted tell: _lifeline_abort did it all
            try:
                super().on_failure(exception_type, exception_value, traceback)
            finally:
                self._lifeline_report_down(ExitReason(ExitKind.CRASHED, exception_value))

        def on_stop(self) -> None:
            self._lifeline_run_hook(super().on_stop, ExitKind.CRASHED)
            self._lifeline_report_down(ExitReason(ExitKind.NORMAL))

    Supervised.__name__ = cls.__name__
    Supervised.__qualname__ = cls.__qualname__
    Supervised.__module__ = cls.__module__
    Supervised.__doc__ = f"{cls.__qualname__}, supervised (reports its life to its supervisor)."
    made: type[pykka.ThreadingActor] = Supervised
    return made
