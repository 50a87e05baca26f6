"""Is the transport alive? Keepalive and dead-socket rules, kept apart from data staleness.

Two different questions, never mixed:

* **Transport liveness** (this module): the client sends a keepalive every
  ``ping_interval`` seconds (a protocol PING frame, Upbit's text ``PING``, or
  both). The transport is *dead* when

  - a keepalive stays unanswered (no PONG frame / no ``{"status":"UP"}``) for
    ``pong_timeout`` seconds — :attr:`Verdict.MISSED_PONG`, or
  - nothing at all (no data, no PONG, no ``UP``) arrived for ``idle_timeout``
    seconds — :attr:`Verdict.SILENT` (a socket that looks open but says nothing).

  Data frames do not answer a ping: a server that streams but ignores pings is
  still reported dead, because its keepalive path is broken.
* **Data staleness** (the cache): each cached value keeps its receive time and
  callers ask its age. A quiet market is not a dead socket, so staleness never
  closes a connection.

:func:`assess` is the pure decision; the client carries it out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from quotation.errors import InvalidValue
from quotation.values import check_all

__all__ = ["KeepaliveMode", "LivenessConfig", "Verdict", "assess"]


class KeepaliveMode(enum.Enum):
    """What the client sends as a keepalive."""

    PROTOCOL = "protocol"
    """A WebSocket PING control frame; the server answers PONG. Not a message for rate limits."""
    TEXT = "text"
    """Upbit's text ``PING``; the server answers ``{"status":"UP"}``. Counts as a message."""
    BOTH = "both"


class Verdict(enum.Enum):
    """What :func:`assess` decided."""

    OK = "ok"
    PING_DUE = "ping_due"
    MISSED_PONG = "missed_pong"
    SILENT = "silent"

    @property
    def dead(self) -> bool:
        return self in (Verdict.MISSED_PONG, Verdict.SILENT)


@dataclass(frozen=True, slots=True)
class LivenessConfig:
    """Keepalive and dead-transport thresholds, seconds.

    Defaults: ping every 20 s, a ping unanswered for 10 s is a dead transport,
    and 45 s with nothing received at all is a silent socket (Upbit itself
    closes after 120 s idle).
    """

    ping_interval: float = 20.0
    pong_timeout: float = 10.0
    idle_timeout: float = 45.0
    keepalive: KeepaliveMode = KeepaliveMode.PROTOCOL

    def __post_init__(self) -> None:
        check_all(self, ("ping_interval", "pong_timeout", "idle_timeout"), above=0)
        if not isinstance(self.keepalive, KeepaliveMode):
            raise InvalidValue(f"keepalive must be a KeepaliveMode, got {self.keepalive!r}",
                               field="keepalive", value=self.keepalive)

    @property
    def tick(self) -> float:
        """How often the receive loop wakes up to check, seconds."""
        return max(0.01, min(self.ping_interval, self.pong_timeout, self.idle_timeout) / 4)


def assess(
    now: float,
    config: LivenessConfig,
    *,
    last_received: float,
    last_ping_sent: float,
    unanswered_since: float | None,
) -> Verdict:
    """Decide about one connection.

    ``last_received`` is when any frame last arrived (data, PONG or ``UP``; the
    connect time before the first one); ``last_ping_sent`` when the last
    keepalive went out (the connect time before the first); ``unanswered_since``
    when the oldest still-unanswered keepalive went out, ``None`` if all were
    answered.
    """
    if now - last_received >= config.idle_timeout:
        return Verdict.SILENT
    if unanswered_since is not None and now - unanswered_since >= config.pong_timeout:
        return Verdict.MISSED_PONG
    if now - last_ping_sent >= config.ping_interval:
        return Verdict.PING_DUE
    return Verdict.OK
