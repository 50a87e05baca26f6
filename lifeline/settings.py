"""The exit strategy's settings: ``fallback``, ``supervision`` and ``faults`` in ``config.yaml``.

Every default is stated once, here (``supervision``'s differ from OTP's ``intensity 1,
period 5``, the defaults of :class:`supervisors.SupervisorFlags`):

======================================  ==============================================
key                                     default
======================================  ==============================================
``fallback.symbols``                    ``(KRW-BTC, KRW-ETH)``
``fallback.probe_market``               ``KRW-BTC``
``fallback.probe_interval``             ``1.0`` s
``fallback.failure_threshold``          ``3`` consecutive failed probes → Level 2
``fallback.no_success_timeout``         ``300.0`` s without a successful probe → Level 2
``fallback.recovery_interval``          ``300.0`` s between recovery attempts
``fallback.recovery_successes``         ``3`` healthy probes in a row before trusting
``fallback.router_timeout``             ``0.5`` s before the fallback is asked too
``fallback.request_deadline``           ``3.0`` s: every call returns or raises by then
``fallback.max_stale_age``              ``60.0`` s: Level 3 serves data up to this age
``fallback.memory_limit_mb``            ``1024``
``supervision.root``                    ``one_for_one``, intensity ``3``, period ``10.0``
``supervision.router``                  ``one_for_one``, intensity ``5``, period ``10.0``
``supervision.fallbacks``               ``one_for_one``, intensity ``5``, period ``10.0``
``faults.enabled``                      ``False`` (actor fault injection; off in production)
``operator.listen``                     ``127.0.0.1:9464`` (``lifeline run``'s HTTP server)
``operator.shutdown_timeout``           ``10.0`` s for the orderly exit of ``lifeline run``
``operator.debug_window``               ``300.0`` s at DEBUG after entering Level 2 or 3
``operator.daily_check``                ``"00:00"`` KST (UTC+9) daily self-check; ``off``
``operator.min_free_disk_mb``           ``512`` MiB free where logs go, else a warning
``feed.mode``                           ``local`` (one host, its own tree; ``shared``: many
                                        hosts on one feed over Redis, issue 11)
``feed.redis_url``                      ``redis://127.0.0.1:6379/0`` (``shared`` only)
``feed.stream_prefix``                  ``lifeline``: every Redis key starts with it
``feed.leader_ttl``                     ``5.0`` s a publisher's lease lasts unrenewed
``feed.stream_maxlen``                  ``10000`` entries kept per stream (approximate)
======================================  ==============================================

Impossible values raise :class:`quotation.errors.InvalidValue` naming the field (the config
loader reports it at the full key path, ``fallback.probe_interval``); a rule between two keys
is a :class:`CombinationError` naming the first key as the field, the other in its message and
in ``depends_on`` (the loader skips the rule when that other key is itself wrong):

* ``router_timeout < request_deadline`` (the fallback must be asked before the deadline);
* ``recovery_interval >= probe_interval`` and, more generally,
  ``recovery_interval >= recovery_successes * probe_interval`` (an attempt needs that long to
  prove the router healthy before the next one would start);
* ``no_success_timeout >= probe_interval`` (a healthy router is probed only once per interval).

``no_success_timeout`` below ``failure_threshold * probe_interval`` is allowed: the two are
independent Level 2 triggers, and the shorter one simply fires first.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from quotation.errors import InvalidRequest, InvalidValue
from quotation.redact import redact_url
from quotation.rest.validation import validate_market
from quotation.values import check
from supervisors.spec import Strategy, SupervisorFlags

__all__ = [
    "FALLBACKS_FLAGS",
    "ROOT_FLAGS",
    "ROUTER_FLAGS",
    "CombinationError",
    "FallbackSettings",
    "FaultSettings",
    "FeedMode",
    "FeedSettings",
    "OperatorSettings",
    "SupervisionSettings",
    "split_listen",
]

class CombinationError(InvalidValue):
    """Two or more keys that are each possible but not together: ``field`` is the first
    (where the loader reports it), ``depends_on`` the others' field names. The config loader
    skips the rule when one of those was itself wrong (it would be about a stand-in default)."""

    def __init__(self, message: str, *, field: str, value: object,
                 depends_on: tuple[str, ...]) -> None:
        super().__init__(message, field=field, value=value)
        self.depends_on = depends_on


ROOT_FLAGS = SupervisorFlags(Strategy.ONE_FOR_ONE, intensity=3, period=10.0)
"""The root supervisor's default flags (its own give-up is Level 3)."""
ROUTER_FLAGS = SupervisorFlags(Strategy.ONE_FOR_ONE, intensity=5, period=10.0)
"""``router_sup``'s default flags (restarts here are Level 1, its escalation Level 2)."""
FALLBACKS_FLAGS = SupervisorFlags(Strategy.ONE_FOR_ONE, intensity=5, period=10.0)
"""``fallback_sup``'s default flags."""


@dataclass(frozen=True, slots=True)
class FallbackSettings:
    """When to leave the smart router, how to serve without it, and when to go back."""

    symbols: tuple[str, ...] = ("KRW-BTC", "KRW-ETH")
    """Trading symbols the WebSocket fallback keeps live (non-empty, no duplicates)."""
    probe_market: str = "KRW-BTC"
    """The market the health probe asks for."""
    probe_interval: float = 1.0
    """Seconds between health probes."""
    failure_threshold: int = 3
    """Consecutive failed probes that mean Level 2."""
    no_success_timeout: float = 300.0
    """Seconds without a successful probe that mean Level 2."""
    recovery_interval: float = 300.0
    """Seconds between recovery attempts."""
    recovery_successes: int = 3
    """Healthy probes in a row before the router is trusted again."""
    router_timeout: float = 0.5
    """Seconds before the same request also goes to the fallback."""
    request_deadline: float = 3.0
    """Seconds: every call returns or raises by then."""
    max_stale_age: float = 60.0
    """Seconds: Level 3 serves last known good data up to this age, else a typed error."""
    memory_limit_mb: int = 1024
    """Process memory in megabytes (MiB) beyond which the router counts as failed."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbols", _symbols(self.symbols))
        _market("probe_market", self.probe_market)
        for name in ("probe_interval", "no_success_timeout", "recovery_interval",
                     "router_timeout", "request_deadline", "max_stale_age"):
            check(name, getattr(self, name), above=0)
        for name in ("failure_threshold", "recovery_successes", "memory_limit_mb"):
            check(name, getattr(self, name), at_least=1, integer=True)
        self._check_combinations()

    def _check_combinations(self) -> None:
        _ordered("router_timeout", self.router_timeout, "<",
                 f"request_deadline ({self.request_deadline!r})",
                 holds=self.router_timeout < self.request_deadline,
                 depends_on=("request_deadline",))
        _ordered("recovery_interval", self.recovery_interval, ">=",
                 f"probe_interval ({self.probe_interval!r})",
                 holds=self.recovery_interval >= self.probe_interval,
                 depends_on=("probe_interval",))
        proof = self.recovery_successes * self.probe_interval
        _ordered("recovery_interval", self.recovery_interval, ">=",
                 f"recovery_successes * probe_interval ({self.recovery_successes} * "
                 f"{self.probe_interval!r} = {proof!r}: the probes that prove the router "
                 "healthy)",
                 holds=self.recovery_interval >= proof,
                 depends_on=("recovery_successes", "probe_interval"))
        _ordered("no_success_timeout", self.no_success_timeout, ">=",
                 f"probe_interval ({self.probe_interval!r})",
                 holds=self.no_success_timeout >= self.probe_interval,
                 depends_on=("probe_interval",))


@dataclass(frozen=True, slots=True)
class SupervisionSettings:
    """Restart flags of the three supervisors of the exit strategy's tree."""

    root: SupervisorFlags = ROOT_FLAGS
    router: SupervisorFlags = ROUTER_FLAGS
    fallbacks: SupervisorFlags = FALLBACKS_FLAGS


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """Actor fault injection (crash, hang, slow, bad data, start failure) for drills."""

    enabled: bool = False
    """Off in production."""

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise InvalidValue(f"enabled must be true or false, got {self.enabled!r}",
                               field="enabled", value=self.enabled)


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """The long-running host process, ``lifeline run`` (:mod:`lifeline.operator`)."""

    listen: str = "127.0.0.1:9464"
    """``host:port`` (``[v6]:port``) of ``/metrics`` and ``/status``; port 0 = a free one. A
    non-loopback host only when written here (``lifeline run`` then logs a warning: the two
    pages need no credentials)."""
    shutdown_timeout: float = 10.0
    """Seconds from SIGINT/SIGTERM to the process's exit: the HTTP server, then the system."""
    debug_window: float = 300.0
    """Seconds the ``lifeline``, ``actors`` and ``quotation`` loggers log at DEBUG after the
    last change to Level 2 or 3 (:mod:`lifeline.escalation`)."""

    daily_check: str | bool | int | None = "00:00"
    """``HH:MM`` in Korea Standard Time (UTC+9, no daylight saving) of the daily self-check
    (:mod:`lifeline.selfcheck`); ``off`` / ``false`` / ``null``: none. Held as the ``HH:MM``
    string or ``None`` once checked."""
    min_free_disk_mb: int = 512
    """The status checklist warns when the log directory has less free space (MiB)."""

    def __post_init__(self) -> None:
        split_listen(self.listen)
        check("shutdown_timeout", self.shutdown_timeout, above=0)
        check("debug_window", self.debug_window, above=0)
        check("min_free_disk_mb", self.min_free_disk_mb, at_least=0, integer=True)
        object.__setattr__(self, "daily_check", _daily_check(self.daily_check))


class FeedMode(enum.Enum):
    """``feed.mode``: one host on its own tree, or many hosts on one feed over Redis."""

    LOCAL = "local"
    SHARED = "shared"


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _shown_url(url: object) -> object:
    """``url`` with its credentials hidden (a non-string as it is)."""
    return redact_url(url) if isinstance(url, str) else url


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """The shared feed (issue 11, ``docs/shared-feed.md``). With ``mode: local`` (the
    default) nothing else here is used and Redis is never imported nor touched."""

    mode: FeedMode = FeedMode.LOCAL
    redis_url: str = "redis://127.0.0.1:6379/0"
    """The Redis every host of the feed uses (lease, streams, the shared REST budget)."""
    stream_prefix: str = "lifeline"
    """The first part of every Redis key of the feed (no spaces)."""
    leader_ttl: float = 5.0
    """Seconds a publisher's lease lasts without a renewal (renewed every third)."""
    stream_maxlen: int = 10000
    """Entries kept per stream (``MAXLEN ~``: approximate trim)."""

    def __post_init__(self) -> None:
        if not isinstance(self.redis_url, str) or not self.redis_url.startswith(
                _REDIS_SCHEMES) or any(c.isspace() for c in self.redis_url):
            raise InvalidValue(
                "redis_url must be a redis://, rediss:// or unix:// URL, got "
                f"{_shown_url(self.redis_url)!r}", field="redis_url",
                value=_shown_url(self.redis_url))
        if (not isinstance(self.stream_prefix, str) or not self.stream_prefix
                or any(c.isspace() for c in self.stream_prefix)):
            raise InvalidValue(f"stream_prefix must be a non-empty name without spaces, got "
                               f"{self.stream_prefix!r}", field="stream_prefix",
                               value=self.stream_prefix)
        check("leader_ttl", self.leader_ttl, above=0)
        check("stream_maxlen", self.stream_maxlen, at_least=1, integer=True)


def _daily_check(value: object) -> str | None:
    """``HH:MM`` (zero-padded) or ``None`` (off), else ``InvalidValue`` naming
    ``daily_check``."""
    if value is None or value is False or value == "off":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        raise InvalidValue(
            f"daily_check must be 'HH:MM' in quotes or off (YAML reads an unquoted time "
            f"from 1:00 on as a number of minutes), got {value!r}", field="daily_check",
            value=value)
    hour, sep, minute = value.partition(":") if isinstance(value, str) else ("", "", "")
    if (not sep or not hour.isdigit() or not minute.isdigit() or len(minute) != 2
            or len(hour) > 2 or int(hour) > 23 or int(minute) > 59):
        raise InvalidValue(f"daily_check must be 'HH:MM' (00:00-23:59, Korea Standard Time) "
                           f"or off, got {value!r}", field="daily_check", value=value)
    return f"{int(hour):02d}:{minute}"


def split_listen(listen: object, field_name: str = "listen") -> tuple[str, int]:
    """``(host, port)`` of a ``host:port`` / ``[v6]:port`` string, else ``InvalidValue``."""
    if not isinstance(listen, str):
        raise InvalidValue(f"{field_name} must be a 'host:port' string, got {listen!r}",
                           field=field_name, value=listen)
    host, sep, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535 or (
            any(c.isspace() for c in host)):
        raise InvalidValue(
            f"{field_name} must be 'host:port' with a port 0-65535 (IPv6: '[::1]:9464'), "
            f"got {listen!r}", field=field_name, value=listen)
    return host, int(port)


def _market(field_name: str, code: object) -> str:
    """``code`` if it is a market code such as ``KRW-BTC``, else ``InvalidValue`` naming it."""
    try:
        return validate_market(code, parameter=field_name)
    except InvalidRequest as exc:  # a setting, not a request: the settings' error type
        raise InvalidValue(
            f"{field_name} must be an upper-case market code like 'KRW-BTC', got {code!r}",
            field=field_name, value=code,
        ) from exc


def _symbols(symbols: object) -> tuple[str, ...]:
    if isinstance(symbols, str) or not isinstance(symbols, tuple | list):
        raise InvalidValue(f"symbols must be a list of market codes, got {symbols!r}",
                           field="symbols", value=symbols)
    if not symbols:
        raise InvalidValue("symbols must name at least one market", field="symbols",
                           value=symbols)
    first: dict[str, int] = {}
    for index, code in enumerate(symbols):
        name = f"symbols[{index}]"
        _market(name, code)
        if code in first:
            raise InvalidValue(
                f"{name} repeats symbols[{first[code]}], got {code!r}",
                field=name, value=code,
            )
        first[code] = index
    return tuple(symbols)


def _ordered(name: str, value: float, sign: str, other: str, *, holds: bool,
             depends_on: tuple[str, ...]) -> None:
    """:class:`CombinationError` naming the field ``name`` and, in its message, the key(s)
    ``other`` it must be ``sign`` to (the fields ``depends_on``), unless ``holds``."""
    if not holds:
        raise CombinationError(f"{name} must be {sign} {other}, got {value!r}",
                               field=name, value=value, depends_on=depends_on)
