"""The one exception tree of the ``supervisors`` package.

::

    SupervisorError              base of everything raised here
    ├── SpecError                an invalid child spec or supervisor flags (``field``, ``value``,
    │                            ``reason`` in OTP's words: ``invalid_intensity``,
    │                            ``duplicate_child_id``, …)
    ├── UnknownChild             no child with that id under this supervisor (``child_id``)
    ├── ChildAborted             a child raised a ``BaseException`` that is not an ``Exception``
    │                            (``SystemExit``, ``KeyboardInterrupt``, …): it was stopped as
    │                            crashed (``child_id``, ``error``)
    ├── ChildUnavailable         a message could not be delivered (``child_id``)
    │   ├── ChildRestarting      the child is being restarted and its buffer is full, or the
    │   │                        supervisor above it is itself restarting
    │   └── ChildNotRunning      the child is stopped and will not be restarted (or its
    │                            supervisor has shut down)
    └── SupervisorGaveUp         restart intensity exceeded (or a child failed to start while the
                                 supervisor was starting): the supervisor stopped its children;
                                 this is the reason its parent (or the host callback) receives

Every error carries its context as attributes, so callers never parse messages.
"""

from __future__ import annotations

__all__ = [
    "ChildAborted",
    "ChildNotRunning",
    "ChildRestarting",
    "ChildUnavailable",
    "SpecError",
    "SupervisorError",
    "SupervisorGaveUp",
    "UnknownChild",
]


class SupervisorError(Exception):
    """Base class of every error raised by the ``supervisors`` package."""


class SpecError(SupervisorError):
    """An invalid child spec or supervisor flags.

    ``field`` is the path of the bad field (``"intensity"``, ``"children[1].id"``), ``value``
    what was given, and ``reason`` OTP's name for the fault (``"invalid_intensity"``).
    """

    def __init__(self, message: str, *, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}: {message} (got {value!r}; {reason})")
        self.field = field
        self.value = value
        self.reason = reason


class UnknownChild(SupervisorError):
    """No child with ``child_id`` under this supervisor."""

    def __init__(self, child_id: str) -> None:
        super().__init__(f"no child with id {child_id!r}")
        self.child_id = child_id


class ChildAborted(SupervisorError):
    """Child ``child_id`` raised ``error``, a ``BaseException`` that is not an ``Exception``.

    pykka would answer it by stopping every actor in the process; a supervised child is
    stopped as crashed instead, and this is what pykka sees in its place (and what the caller
    of an ``ask`` that caused it receives). It is raised ``from error``.
    """

    def __init__(self, child_id: str, error: BaseException) -> None:
        super().__init__(f"child {child_id!r} aborted on {error!r}")
        self.child_id = child_id
        self.error = error


class ChildUnavailable(SupervisorError):
    """A message for ``child_id`` was not delivered; the caller decides whether to retry."""

    def __init__(self, message: str, *, child_id: str) -> None:
        super().__init__(message)
        self.child_id = child_id


class ChildRestarting(ChildUnavailable):
    """The child is restarting and cannot take the message now (buffer full, or its
    supervisor is restarting too). Retrying later may succeed."""


class ChildNotRunning(ChildUnavailable):
    """The child is stopped and will not be restarted, or its supervisor has shut down."""


class SupervisorGaveUp(SupervisorError):
    """Supervisor ``supervisor`` stopped its children and gave up.

    ``context`` is OTP's word for why (``"reached_max_restart_intensity"`` or
    ``"start_error"``), ``child_id`` the child whose exit decided it, ``cause`` that child's
    error if it had one.
    """

    def __init__(
        self,
        supervisor: str,
        *,
        context: str,
        child_id: str | None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(f"supervisor {supervisor!r} gave up: {context} (child {child_id!r})")
        self.supervisor = supervisor
        self.context = context
        self.child_id = child_id
        self.cause = cause
