"""``config.yaml``: parsed once, strictly, into frozen dataclasses.

The file's sections map onto the dataclasses the components already take, so a
key in the file is the same name as the keyword in the code::

    upbit:
      rest:        quotation.rest.client.RestConfig
      rate_limit:  RateLimitSettings  (quotation.rest.ratelimit.RateLimiter's arguments)
      websocket:   quotation.websocket.config.WebSocketConfig
                   (liveness: quotation.websocket.liveness.LivenessConfig,
                    backoff: quotation.backoff.Backoff)
    fallback:      lifeline.settings.FallbackSettings     (the exit strategy: detection,
    supervision:   lifeline.settings.SupervisionSettings   fallback, recovery, its tree
    faults:        lifeline.settings.FaultSettings         and fault injection)
    operator:      lifeline.settings.OperatorSettings      (``lifeline run``: listen,
                                                           shutdown, self-check)
    feed:          lifeline.settings.FeedSettings          (``mode: local`` or ``shared``:
                                                           many hosts on one feed, Redis)
    simulator:     upbit_sim.settings.SimulatorSettings (read by ``lifeline sim`` and
                   ``lifeline demo``; their flags override it)

A missing section or key takes the component's own default (stated once, in
the component). Unknown keys, wrong types, impossible values and impossible combinations
raise one :class:`~lifeline.config_schema.ConfigError` that carries every one of them
(``ConfigError.problems``; the loader reads on past each), each naming the full key path and
the value given there: the components name the bad field (``InvalidValue.field``,
``SpecError.field``), so ``read_timeout: .inf`` is ``upbit.rest.read_timeout`` and
``ping_interval: 0`` is ``upbit.websocket.liveness.ping_interval``.

Upbit's fixed WebSocket limits (``connect_limits``, ``message_limits``) are not
keys: they are facts about the exchange, not tuning. ``upbit.websocket.subscriptions``
may be given (a list of ``{type, codes, ...}`` as
:class:`~quotation.websocket.subscription.Subscription`)
but normally stays empty: the WebSocket fallback subscribes from code, and a client
without subscriptions stays idle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lifeline.config_schema import ConfigError, from_mapping
from lifeline.config_yaml import read_yaml
from lifeline.settings import (
    FallbackSettings,
    FaultSettings,
    FeedSettings,
    OperatorSettings,
    SupervisionSettings,
)
from quotation.clock import Clock
from quotation.errors import InvalidRequest, InvalidValue
from quotation.rest.client import RestConfig
from quotation.rest.ratelimit import RateLimiter
from quotation.websocket.config import WebSocketConfig
from supervisors.errors import SpecError
from upbit_sim.settings import SimulatorSettings

__all__ = [
    "COMPONENT_ERRORS",
    "LifelineConfig",
    "RateLimitSettings",
    "SimulatorSettings",
    "UpbitSettings",
    "load_config",
    "parse_config",
]


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """The process-wide REST rate limiter (one budget per Upbit group)."""

    per_second: int = 10
    """Requests per group per window (Upbit: 10 per second per IP for every quotation group)."""
    window: float = 1.0
    """The sliding window, seconds."""
    margin: float = 0.05
    """Extra seconds kept between window edges against network and scheduling jitter."""

    def __post_init__(self) -> None:
        # The limiter checks its own arguments (InvalidValue naming the keyword, which is the
        # key: upbit.rate_limit.per_second); building one here makes check-config see them.
        self.build()

    def build(self, clock: Clock | None = None) -> RateLimiter:
        """The limiter these settings describe (create one per process and share it)."""
        return RateLimiter(clock, self.per_second, window=self.window, margin=self.margin)


@dataclass(frozen=True, slots=True)
class UpbitSettings:
    """How to reach Upbit (defaults: the real Upbit hosts)."""

    rest: RestConfig = field(default_factory=RestConfig)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    websocket: WebSocketConfig = field(default_factory=WebSocketConfig)


@dataclass(frozen=True, slots=True)
class LifelineConfig:
    """The whole configuration."""

    upbit: UpbitSettings = field(default_factory=UpbitSettings)
    fallback: FallbackSettings = field(default_factory=FallbackSettings)
    supervision: SupervisionSettings = field(default_factory=SupervisionSettings)
    faults: FaultSettings = field(default_factory=FaultSettings)
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    feed: FeedSettings = field(default_factory=FeedSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)


COMPONENT_ERRORS: tuple[type[Exception], ...] = (
    InvalidValue, SpecError, InvalidRequest, ValueError, TypeError
)
"""What the components raise for an impossible value, reported as ``ConfigError``: the
settings' ``InvalidValue`` and the supervisor specs' ``SpecError`` (both name the field);
``InvalidRequest`` only for request parameters written in the file (``subscriptions``);
any other ``ValueError`` or ``TypeError`` is reported at its section."""

_FIXED: dict[type, frozenset[str]] = {
    WebSocketConfig: frozenset({"connect_limits", "message_limits"}),
}
"""Fields that are not config keys: Upbit's own limits, not something to tune."""


def parse_config(data: object) -> LifelineConfig:
    """Build the config from decoded YAML; ``ConfigError`` lists every bad key path."""
    return from_mapping(LifelineConfig, data, errors=COMPONENT_ERRORS, fixed=_FIXED)


def load_config(path: str | Path) -> LifelineConfig:
    """Read and parse a YAML config file; ``ConfigError`` (every problem in the file, in
    ``problems``) names the file (``file``).

    The file is read by :func:`lifeline.config_yaml.read_yaml`: a missing, oversized,
    non-UTF-8 or invalid file, a duplicate key and a YAML alias bomb are ``ConfigError`` too.
    """
    data = read_yaml(path)
    try:
        return parse_config(data)
    except ConfigError as exc:
        exc.file = os.fspath(path)
        raise
