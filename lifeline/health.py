"""What lifeline observes about the router and the fallbacks: the inputs of the level rules.

Each observation is a frozen, slotted dataclass carrying ``at``, the supervisor clock's
``monotonic()`` reading when it was seen. The health probe, the supervisors' listeners
and the fallback actors produce them; :func:`lifeline.levels.step` consumes them.
Nothing here decides anything: the rules live in :mod:`lifeline.levels`.

========================  ===================================================  =========
observation               from                                                 level
========================  ===================================================  =========
``RouterRestarted``       router_sup restarted the smart router (``ChildRestarted``)   1
``ChannelDegraded``       the router routes around a bad channel (or stopped to)       1
                          (:class:`actors.routing.Channel`, the router's own enum)
``RouterGaveUp``          router_sup exceeded its intensity and escalated              2
``RouterStartFailed``     the router's ``on_start`` failed (``START_FAILED``)          2
``RouterHung``            the router missed its deadline (``HUNG``)                    2
``MemorySample``          the probe's RSS reading (growth against a baseline)          2
``ProbeResult``           one health probe of the router or of a fallback          2 / 3
``FallbackHealth``        both fallbacks at once, with a REST ban's end                3
========================  ===================================================  =========
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from actors.routing import Channel

__all__ = [
    "ChannelDegraded",
    "FallbackHealth",
    "FeedLost",
    "MemorySample",
    "Observation",
    "ProbeResult",
    "ProbeTarget",
    "RouterGaveUp",
    "RouterHung",
    "RouterRestarted",
    "RouterStartFailed",
]


class ProbeTarget(Enum):
    """What one probe checked."""

    ROUTER = "router"
    REST_FALLBACK = "rest_fallback"
    WS_FALLBACK = "ws_fallback"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One health probe of ``target`` answered correctly in time (``ok``) or not."""

    at: float
    ok: bool
    target: ProbeTarget = ProbeTarget.ROUTER


@dataclass(frozen=True, slots=True)
class RouterRestarted:
    """router_sup restarted the smart router within its intensity."""

    at: float


@dataclass(frozen=True, slots=True)
class RouterGaveUp:
    """router_sup exceeded its restart intensity, stopped the router and escalated."""

    at: float


@dataclass(frozen=True, slots=True)
class RouterStartFailed:
    """The smart router failed to start (``__init__`` or ``on_start`` raised)."""

    at: float


@dataclass(frozen=True, slots=True)
class RouterHung:
    """The smart router left a liveness ping or a request unanswered past its deadline."""

    at: float


@dataclass(frozen=True, slots=True)
class ChannelDegraded:
    """The router stopped (``degraded``) or resumed (not ``degraded``) using ``channel``."""

    at: float
    channel: Channel
    degraded: bool


@dataclass(frozen=True, slots=True)
class MemorySample:
    """The process's resident memory, in MiB; growth is measured against a baseline."""

    at: float
    rss_mb: float


@dataclass(frozen=True, slots=True)
class FallbackHealth:
    """Both fallbacks at once: REST answering, REST banned until (monotonic), WebSocket up.

    ``None`` for ``rest_ok`` or ``ws_ok``: that fallback was not judged by this check (e.g.
    the REST fallback busy with a request still within ``request_deadline``). A REST check
    goes through the level rules' hysteresis (:data:`lifeline.levels.REST_FAILURES` failing
    in a row to count as failing, :data:`lifeline.levels.REST_SUCCESSES` good ones to count
    as answering again) unless ``confirmed``: known for certain (root gave up, so the
    fallbacks are stopped), taken at once.
    """

    at: float
    rest_ok: bool | None
    rest_banned_until: float | None
    ws_ok: bool | None
    confirmed: bool = False


@dataclass(frozen=True, slots=True)
class FeedLost:
    """``feed.mode: shared``: the shared feed's Redis became unreachable (``lost``) and the
    host serves from its own tree, or it is reachable again (not ``lost``)."""

    at: float
    lost: bool


Observation = (
    ProbeResult | RouterRestarted | RouterGaveUp | RouterStartFailed | RouterHung
    | ChannelDegraded | MemorySample | FallbackHealth | FeedLost
)
"""Anything the level rules take in."""
