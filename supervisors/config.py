"""``config.yaml``: parsed once, strictly, into frozen dataclasses.

The file's sections map onto the dataclasses the components already take, so a
key in the file is the same name as the keyword in the code::

    upbit:
      rest:        quotation.rest.RestConfig
      rate_limit:  RateLimitSettings  (quotation.ratelimit.RateLimiter's arguments)
    simulator:     SimulatorSettings

A missing section or key takes the component's own default (stated once, in
the component). An unknown key, a wrong type or an impossible value raises
:class:`~supervisors.config_schema.ConfigError` naming the key path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from quotation.clock import Clock
from quotation.ratelimit import RateLimiter
from quotation.rest import RestConfig
from supervisors.config_schema import ConfigError, from_mapping

__all__ = [
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

    def build(self, clock: Clock | None = None) -> RateLimiter:
        """The limiter these settings describe (create one per process and share it)."""
        return RateLimiter(clock, self.per_second, window=self.window, margin=self.margin)


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """The local Upbit-compatible simulator used by ``lifeline sim`` and the demo."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port."""
    seed: int = 1


@dataclass(frozen=True, slots=True)
class UpbitSettings:
    """How to reach Upbit (defaults: the real Upbit hosts)."""

    rest: RestConfig = field(default_factory=RestConfig)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)


@dataclass(frozen=True, slots=True)
class LifelineConfig:
    """The whole configuration."""

    upbit: UpbitSettings = field(default_factory=UpbitSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)


def parse_config(data: object) -> LifelineConfig:
    """Build the config from decoded YAML; ``ConfigError`` names the bad key path."""
    return from_mapping(LifelineConfig, data)


def load_config(path: str | Path) -> LifelineConfig:
    """Read and parse a YAML config file."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{path}: not valid YAML: {exc}") from exc
    return parse_config(data)
