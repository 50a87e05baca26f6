"""REST fault injection for the simulator: what to do wrong, to which requests, for how long.

All faults are off until asked for, can be switched at any time from any thread
(or over HTTP, see :meth:`FaultController.configure`), and may be scoped to a
path prefix such as ``/v1/ticker``. For each request the server asks
:meth:`FaultController.plan` once and carries the returned :class:`FaultPlan` out:

=============  ==================================================================
fault          effect
=============  ==================================================================
latency        sleep ``seconds`` before answering
black_hole     accept the request and never answer, until lifted or the server stops
ban_418        answer 418 with Upbit's ban body until ``seconds`` have passed
storm_429      answer 429 ``Too many API requests.`` to the next ``count`` (or all)
error          answer ``status`` to the next ``count`` requests or a seeded ``fraction``
malformed      send broken JSON (or, ``truncated``, the first half of the real body)
drift          add unknown fields and remove optional/deprecated ones (:data:`DRIFT_REMOVED`)
trickle        send status and headers at once (``Content-Length`` set), then the body
               ``chunk_bytes`` at a time every ``interval`` seconds, to the next
               ``count`` (or all) answers
=============  ==================================================================

Order when several apply: black hole, latency, 418, 429, error; body faults
apply to answers that would otherwise succeed. Trickle is about delivery, not
content: whatever the answer turns out to be (a 200, a fault's 418/429/5xx, a
rate-limit 429), its body goes out slowly. An answer already trickling keeps its
pace when the fault is switched off; it ends early only when the client goes
away or the server stops.
"""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from quotation.clock import Clock, SystemClock
from quotation.values import check

__all__ = [
    "DRIFT_ADDED",
    "DRIFT_REMOVED",
    "BodyFault",
    "FaultController",
    "FaultPlan",
]

DRIFT_ADDED: Mapping[str, object] = {"sim_drift_note": "field added by drift", "sim_drift_level": 1}
"""Extra fields put into every object of a drifted answer."""

DRIFT_REMOVED: tuple[str, ...] = (
    "trade_date_kst",
    "trade_time_kst",
    "candle_date_time_kst",
    "highest_52_week_date",
    "lowest_52_week_date",
    "first_day_of_period",
    "market_event",
)
"""Optional or redundant fields a drifted answer leaves out (the canonical model tolerates it)."""


class BodyFault(enum.Enum):
    """How a successful answer's body is spoiled."""

    MALFORMED = "malformed"
    TRUNCATED = "truncated"


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What the server must do wrong with one request (the default: nothing)."""

    latency: float = 0.0
    black_hole: bool = False
    ban_seconds: float = 0.0
    storm: bool = False
    error_status: int | None = None
    body: BodyFault | None = None
    drift: bool = False
    trickle_bytes: int = 0
    """Send the body this many bytes at a time (0: all at once)."""
    trickle_interval: float = 0.0
    """Seconds between two trickled pieces."""

    @property
    def is_clean(self) -> bool:
        return self == _CLEAN


_CLEAN = FaultPlan()


@dataclass(slots=True)
class _Rule:
    """One switched-on fault: its scope and how many more requests (``None`` = all) it takes."""

    path_prefix: str | None = None
    remaining: int | None = None
    fraction: float | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, path: str) -> bool:
        return self.path_prefix is None or path.startswith(self.path_prefix)


_KINDS = (
    "latency",
    "black_hole",
    "ban_418",
    "storm_429",
    "error",
    "malformed",
    "drift",
    "trickle",
)
_OPTIONS: dict[str, frozenset[str]] = {
    "latency": frozenset({"seconds"}),
    "ban_418": frozenset({"seconds"}),
    "black_hole": frozenset({"on"}),
    "drift": frozenset({"on"}),
    "storm_429": frozenset({"count"}),
    "error": frozenset({"status", "count", "fraction"}),
    "malformed": frozenset({"count", "truncated", "fraction"}),
    "trickle": frozenset({"chunk_bytes", "interval", "count"}),
}


class FaultController:
    """Thread-safe switchboard of the REST faults; see the module docstring."""

    def __init__(self, *, seed: int, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self._seed = seed
        self._rng = random.Random(f"faults/{seed}")
        self._lock = threading.Lock()
        self._held_changed = threading.Condition(self._lock)
        self._rules: dict[str, _Rule] = {}
        self._held = 0
        self._trickling = 0
        self._applied: dict[str, int] = dict.fromkeys(_KINDS, 0)

    # -- switching --------------------------------------------------------------------------

    def set_latency(self, seconds: float, *, path_prefix: str | None = None) -> None:
        """Delay every (matching) answer by ``seconds``; 0 switches it off."""
        check("latency.seconds", seconds, at_least=0)
        self._set(
            "latency", _Rule(path_prefix, params={"seconds": float(seconds)}) if seconds else None
        )

    def black_hole(self, on: bool = True, *, path_prefix: str | None = None) -> None:
        """Accept (matching) requests and never answer them while on."""
        self._set("black_hole", _Rule(path_prefix) if on else None)

    def ban_418(self, seconds: float, *, path_prefix: str | None = None) -> None:
        """Answer 418 (banned) for the next ``seconds``; 0 lifts it."""
        check("ban_418.seconds", seconds, at_least=0)
        until = self._clock.monotonic() + seconds
        self._set("ban_418", _Rule(path_prefix, params={"until": until}) if seconds else None)

    def storm_429(self, count: int | None = None, *, path_prefix: str | None = None) -> None:
        """Answer 429 to the next ``count`` requests (``None``: until reset)."""
        _check_count("storm_429.count", count)
        self._set("storm_429", _Rule(path_prefix, remaining=count))

    def fail_next(self, count: int, status: int = 500, *, path_prefix: str | None = None) -> None:
        """Answer ``status`` to the next ``count`` requests."""
        _check_count("error.count", count)
        _check_status(status)
        self._set("error", _Rule(path_prefix, remaining=count, params={"status": status}))

    def fail_fraction(
        self, fraction: float, status: int = 500, *, path_prefix: str | None = None
    ) -> None:
        """Answer ``status`` to a seeded random ``fraction`` of requests (0 switches it off)."""
        check("error.fraction", fraction, at_least=0, at_most=1)
        _check_status(status)
        rule = _Rule(path_prefix, fraction=fraction, params={"status": status})
        self._set("error", rule if fraction else None)

    def malformed_json(
        self,
        count: int | None = None,
        *,
        truncated: bool = False,
        fraction: float | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Spoil the next ``count`` bodies (``None``: all, or a seeded ``fraction``)."""
        _check_count("malformed.count", count)
        if fraction is not None:
            check("malformed.fraction", fraction, at_least=0, at_most=1)
        mode = BodyFault.TRUNCATED if truncated else BodyFault.MALFORMED
        self._set(
            "malformed",
            _Rule(path_prefix, remaining=count, fraction=fraction, params={"mode": mode}),
        )

    def field_drift(self, on: bool = True, *, path_prefix: str | None = None) -> None:
        """Add unknown fields and drop optional ones in every (matching) answer while on."""
        self._set("drift", _Rule(path_prefix) if on else None)

    def trickle(
        self,
        chunk_bytes: int = 1,
        interval: float = 0.5,
        *,
        count: int | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Send the next ``count`` (``None``: all) bodies ``chunk_bytes`` every ``interval`` s.

        Status and headers go out at once; ``interval`` 0 switches it off.
        """
        check("trickle.chunk_bytes", chunk_bytes, at_least=1, integer=True)
        check("trickle.interval", interval, at_least=0)
        _check_count("trickle.count", count)
        params: dict[str, Any] = {"chunk_bytes": chunk_bytes, "interval": float(interval)}
        self._set(
            "trickle", _Rule(path_prefix, remaining=count, params=params) if interval else None
        )

    def clear(self, kind: str) -> None:
        """Switch one fault off by its name (``latency``, ``black_hole``, ``error`` …)."""
        if kind not in _KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(_KINDS)}")
        self._set(kind, None)

    def reset(self) -> None:
        """Switch every fault off (held black-holed requests are then answered normally)."""
        with self._lock:
            self._rules.clear()
            self._rng = random.Random(f"faults/{self._seed}")

    def configure(self, spec: Mapping[str, Any]) -> None:
        """Apply a JSON-style spec (as ``POST /_sim/faults`` takes); the error names the bad key.

        Keys (each optional, each may carry ``path_prefix``; ``false``/``null``/0 switches off)::

            {"latency": 0.2 | {"seconds": 0.2},
             "black_hole": true,
             "ban_418": 30 | {"seconds": 30},
             "storm_429": true | {"count": 5},
             "error": {"status": 503, "count": 3} | {"status": 500, "fraction": 0.5},
             "malformed": true | {"count": 2, "truncated": true, "fraction": 0.3},
             "drift": true,
             "trickle": 0.5 | {"chunk_bytes": 1, "interval": 0.5, "count": 2}}
        """
        if not isinstance(spec, Mapping):
            raise TypeError("fault spec must be a JSON object")
        unknown = sorted(set(spec) - set(_KINDS))
        if unknown:
            raise ValueError(f"unknown fault {unknown[0]!r}; known: {', '.join(_KINDS)}")
        rehearsal = FaultController(seed=self._seed, clock=self._clock)
        for kind, raw in spec.items():  # all or nothing: a bad key leaves the faults as they were
            rehearsal._configure_one(kind, raw)
        for kind, raw in spec.items():
            self._configure_one(kind, raw)

    def _configure_one(self, kind: str, raw: Any) -> None:
        if raw is None or raw is False or (_is_number(raw) and raw == 0):
            self.clear(kind)
            return
        options: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
        unknown = sorted(set(options) - _OPTIONS[kind] - {"path_prefix"})
        if unknown:
            raise ValueError(f"unknown option {kind}.{unknown[0]}")
        prefix = options.pop("path_prefix", None)
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"{kind}.path_prefix must be a string")
        try:
            self._apply(kind, raw, options, prefix)
        except TypeError as exc:
            raise ValueError(f"{kind}: {exc}") from None

    def _apply(self, kind: str, raw: Any, options: dict[str, Any], prefix: str | None) -> None:
        if kind in ("latency", "ban_418"):
            seconds = _number(kind, "seconds", raw, options)
            if kind == "latency":
                self.set_latency(seconds, path_prefix=prefix)
            else:
                self.ban_418(seconds, path_prefix=prefix)
        elif kind in ("black_hole", "drift"):
            on = bool(options.pop("on", True))
            if kind == "black_hole":
                self.black_hole(on, path_prefix=prefix)
            else:
                self.field_drift(on, path_prefix=prefix)
        elif kind == "trickle":
            self._apply_trickle(raw, options, prefix)
        elif kind == "storm_429":
            self.storm_429(options.pop("count", None), path_prefix=prefix)
        elif kind == "error":
            status = options.pop("status", 500)
            if "fraction" in options:
                self.fail_fraction(options.pop("fraction"), status, path_prefix=prefix)
            else:
                self.fail_next(options.pop("count", 1), status, path_prefix=prefix)
        else:  # malformed
            self.malformed_json(
                options.pop("count", None),
                truncated=bool(options.pop("truncated", False)),
                fraction=options.pop("fraction", None),
                path_prefix=prefix,
            )

    def _apply_trickle(self, raw: Any, options: dict[str, Any], prefix: str | None) -> None:
        interval: Any = 0.5
        if isinstance(raw, Mapping):
            interval = options.pop("interval", 0.5)
        elif raw is not True:
            interval = _number("trickle", "interval", raw, options)
        self.trickle(
            options.pop("chunk_bytes", 1),
            interval,
            count=options.pop("count", None),
            path_prefix=prefix,
        )

    def _set(self, kind: str, rule: _Rule | None) -> None:
        with self._lock:
            if rule is None:
                self._rules.pop(kind, None)
            else:
                self._rules[kind] = rule

    # -- reading ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The switched-on faults, how many requests each has hit, held and trickling answers."""
        now = self._clock.monotonic()
        with self._lock:
            active: dict[str, Any] = {}
            for kind, rule in self._rules.items():
                entry: dict[str, Any] = {"path_prefix": rule.path_prefix}
                if rule.remaining is not None:
                    entry["remaining"] = rule.remaining
                if rule.fraction is not None:
                    entry["fraction"] = rule.fraction
                for key, value in rule.params.items():
                    if key == "until":
                        entry["seconds_left"] = round(max(0.0, value - now), 3)
                    elif isinstance(value, enum.Enum):
                        entry[key] = value.value
                    else:
                        entry[key] = value
                active[kind] = entry
            return {
                "active": active,
                "held": self._held,
                "trickling": self._trickling,
                "applied": dict(self._applied),
            }

    @property
    def held(self) -> int:
        """Requests currently held by the black hole."""
        with self._lock:
            return self._held

    def wait_for_held(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` requests are held (``False`` on timeout)."""
        with self._held_changed:
            return self._held_changed.wait_for(lambda: self._held >= count, timeout=timeout)

    @property
    def trickling(self) -> int:
        """Answers being trickled right now (status sent, body not yet complete)."""
        with self._lock:
            return self._trickling

    def wait_for_trickling(self, count: int, timeout: float) -> bool:
        """Block until exactly ``count`` answers are trickling (``False`` on timeout).

        ``wait_for_trickling(0, ...)`` waits for every trickle to end (done, or cut
        short because the client left or the server stopped).
        """
        with self._held_changed:
            return self._held_changed.wait_for(lambda: self._trickling == count, timeout=timeout)

    def plan(self, path: str) -> FaultPlan:
        """Decide the faults for one request to ``path`` (counts it against ``count`` limits)."""
        with self._lock:
            if not self._rules:
                return _CLEAN
            black_hole = self._matching("black_hole", path) is not None
            rule = self._matching("latency", path)
            latency: float = rule.params["seconds"] if rule else 0.0
            ban = self._ban_left(path)
            storm = False
            status: int | None = None
            body: BodyFault | None = None
            drift = False
            trickle_bytes = 0
            trickle_interval = 0.0
            if (rule := self._matching("trickle", path)) and self._take("trickle", rule):
                trickle_bytes = rule.params["chunk_bytes"]
                trickle_interval = rule.params["interval"]
            if not ban:
                storm = self._hits("storm_429", path)
            if not ban and not storm and (rule := self._matching("error", path)):
                status = rule.params["status"] if self._take("error", rule) else None
            if not ban and not storm and status is None:
                rule = self._matching("malformed", path)
                body = rule.params["mode"] if rule and self._take("malformed", rule) else None
                drift = self._matching("drift", path) is not None
            for kind, hit in (
                ("black_hole", black_hole),
                ("latency", latency),
                ("ban_418", ban),
                ("drift", drift),
            ):
                if hit:
                    self._applied[kind] += 1
            return FaultPlan(
                latency,
                black_hole,
                ban,
                storm,
                status,
                body,
                drift,
                trickle_bytes,
                trickle_interval,
            )

    def _matching(self, kind: str, path: str) -> _Rule | None:
        rule = self._rules.get(kind)
        return rule if rule is not None and rule.matches(path) else None

    def _hits(self, kind: str, path: str) -> bool:
        rule = self._matching(kind, path)
        return rule is not None and self._take(kind, rule)

    def _ban_left(self, path: str) -> float:
        rule = self._matching("ban_418", path)
        if rule is None:
            return 0.0
        left: float = rule.params["until"] - self._clock.monotonic()
        if left <= 0:
            del self._rules["ban_418"]
            return 0.0
        return left

    def _take(self, kind: str, rule: _Rule) -> bool:
        """Whether ``rule`` hits this request; spends one of its ``remaining`` if it does."""
        if rule.fraction is not None and self._rng.random() >= rule.fraction:
            return False
        if rule.remaining is not None:
            if rule.remaining <= 0:
                del self._rules[kind]
                return False
            rule.remaining -= 1
            if rule.remaining == 0:
                del self._rules[kind]
        self._applied[kind] += 1
        return True

    def black_hole_active(self, path: str) -> bool:
        """Whether a request to ``path`` held by the black hole must still be held."""
        with self._lock:
            rule = self._rules.get("black_hole")
            return rule is not None and rule.matches(path)

    def hold_started(self) -> None:
        with self._held_changed:
            self._held += 1
            self._held_changed.notify_all()

    def hold_ended(self) -> None:
        with self._held_changed:
            self._held -= 1
            self._held_changed.notify_all()

    def trickle_started(self) -> None:
        with self._held_changed:
            self._trickling += 1
            self._held_changed.notify_all()

    def trickle_ended(self) -> None:
        with self._held_changed:
            self._trickling -= 1
            self._held_changed.notify_all()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(kind: str, key: str, raw: Any, options: dict[str, Any]) -> float:
    value = options.pop(key, None) if isinstance(raw, Mapping) else raw
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{kind}.{key} must be a number, got {value!r}")
    return float(value)


def _check_count(name: str, value: object) -> None:
    """``None`` (every request) or a count of at least one."""
    if value is not None:
        check(name, value, at_least=1, integer=True)


def _check_status(status: object) -> None:
    check("error.status", status, at_least=400, at_most=599, integer=True)
