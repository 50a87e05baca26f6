"""What the facade hands the host: the data, where it came from, at which level, how old.

``age`` is seconds since the EXCHANGE produced the data (``clock.time() - produced_at``,
never negative; ``None`` when the reply carried no exchange time, e.g. an empty one), not
since we cached it. ``stale`` is True only for last known good data served at Level 3 (or
when every live source failed): such data is never presented as fresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from actors.messages import Reply, Source
from lifeline.levels import Level
from quotation.clock import Clock

__all__ = ["Answer", "AnswerSource", "SharedSource", "age_of", "answer_of", "new_answer"]

T = TypeVar("T")


class SharedSource(str):
    """``shared/<the publisher's source>`` (``feed.mode: shared``, a follower's answer): a
    string, with ``value`` (the string) and ``publisher`` (the part after ``shared/``) as a
    :class:`~actors.messages.Source` has."""

    __slots__ = ()
    PREFIX: Final = "shared/"

    @classmethod
    def of(cls, publisher: str) -> SharedSource:
        return cls(cls.PREFIX + publisher)

    @property
    def value(self) -> str:
        return str(self)

    @property
    def publisher(self) -> str:
        return self[len(self.PREFIX):]


AnswerSource = Source | SharedSource
"""Where an answer or an update came from: this host's own tree (:class:`Source`) or the
shared feed's publisher (:class:`SharedSource`)."""


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """One answer to a host's read (see the module docstring)."""

    data: T
    source: AnswerSource
    level: Level
    age: float | None
    stale: bool = False


_new = object.__new__
_SETTERS = tuple(Answer.__dict__[name].__set__
                 for name in ("data", "source", "level", "age", "stale"))


def new_answer(data: T, source: AnswerSource, level: Level, age: float | None, stale: bool
               ) -> Answer[T]:
    """``Answer(data, source, level, age, stale)``, built for the hot path: the slots are
    filled directly, without the frozen dataclass's per-field ``object.__setattr__``
    (the same immutable value; about half the cost)."""
    answer: Answer[Any] = _new(Answer)
    set_data, set_source, set_level, set_age, set_stale = _SETTERS
    set_data(answer, data)
    set_source(answer, source)
    set_level(answer, level)
    set_age(answer, age)
    set_stale(answer, stale)
    return answer


def age_of(produced_at: float | None, clock: Clock) -> float | None:
    """Seconds since ``produced_at`` (UTC epoch seconds) on ``clock``, at least 0; None-safe."""
    if produced_at is None:
        return None
    return max(0.0, clock.time() - produced_at)


def answer_of(reply: Reply, level: Level, clock: Clock, *, stale: bool = False
              ) -> Answer[list[object]]:
    """The host's answer for an actor's ``reply`` served at ``level``."""
    return new_answer(list(reply.data), reply.source, level,
                      age_of(reply.produced_at, clock), stale)
