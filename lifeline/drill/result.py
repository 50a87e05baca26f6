"""What one drill run measured: frozen values and their JSON form (version 1).

A :class:`DrillResult` is built by the drill runner and read by the report, the progress
line and the plot. ``to_dict()`` gives a JSON-safe dict (only ``dict``, ``list``, ``str``,
``int``, ``float``, ``bool`` and ``None``); ``from_dict()`` reads one back, exactly, and
raises :class:`ResultFormatError` naming the bad field's path (``phases[1].detection_s``)
when the dict is not a version-1 result. Times are seconds: ``t``, ``start`` and ``end``
since the run started, durations (``detection_s``, ``p50``…) as measured.

Shape::

    {"version": 1, "scenario": {...}, "config": str, "started_at": str,
     "timeline": [Sample...], "faults": [FaultWindow...], "level_changes": [LevelMark...],
     "phases": [PhaseResult...], "alerts": [AlertMark...], "ok": bool}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "VERSION",
    "AlertMark",
    "Check",
    "DrillResult",
    "FaultWindow",
    "LevelMark",
    "PhaseResult",
    "ResultFormatError",
    "Sample",
    "ScenarioInfo",
]

VERSION = 1
"""The version of the JSON shape written by :meth:`DrillResult.to_dict`."""

T = TypeVar("T")


class ResultFormatError(ValueError):
    """A dict is not a drill result of this version: ``field`` is the bad field's path
    (``phases[1].detection_s``), ``value`` what was found there."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        super().__init__(f"drill result: {field} must be {expected}, got {value!r}")
        self.field = field
        self.value = value


# --- reading helpers: each takes the field's path for its error ---------------------------

def _fields(raw: object, path: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ResultFormatError(path or "result", raw, "an object")
    for key in keys:
        if key not in raw:
            raise ResultFormatError(_join(path, key), None, "present")
    for key in raw:
        if key not in keys:
            raise ResultFormatError(_join(path, str(key)), raw[key], "absent (unknown field)")
    return raw


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _str(raw: object, path: str) -> str:
    if not isinstance(raw, str):
        raise ResultFormatError(path, raw, "a string")
    return raw


def _opt_str(raw: object, path: str) -> str | None:
    return None if raw is None else _str(raw, path)


def _bool(raw: object, path: str) -> bool:
    if not isinstance(raw, bool):
        raise ResultFormatError(path, raw, "true or false")
    return raw


def _int(raw: object, path: str, low: int = 0, high: int | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ResultFormatError(path, raw, "an integer")
    if raw < low or (high is not None and raw > high):
        bound = f"in {low}..{high}" if high is not None else f"at least {low}"
        raise ResultFormatError(path, raw, f"an integer {bound}")
    return raw


def _float(raw: object, path: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ResultFormatError(path, raw, "a number")
    value = float(raw)
    if not math.isfinite(value):
        raise ResultFormatError(path, raw, "a finite number")
    return value


def _opt_float(raw: object, path: str) -> float | None:
    return None if raw is None else _float(raw, path)


def _level(raw: object, path: str) -> int:
    return _int(raw, path, 0, 3)


def _counts(raw: object, path: str) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise ResultFormatError(path, raw, "an object of counts")
    return {_str(key, path): _int(value, f"{path}.{key}") for key, value in raw.items()}


def _list(raw: object, path: str, read: Callable[[object, str], T]) -> tuple[T, ...]:
    if not isinstance(raw, list):
        raise ResultFormatError(path, raw, "a list")
    return tuple(read(item, f"{path}[{index}]") for index, item in enumerate(raw))


# --- the values ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    """Which scenario ran: its name, description, planned duration (s) and file (or None)."""

    name: str
    description: str
    duration: float
    file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form."""
        return {"name": self.name, "description": self.description,
                "duration": self.duration, "file": self.file}

    @classmethod
    def from_dict(cls, raw: object, path: str = "scenario") -> ScenarioInfo:
        """Read :meth:`to_dict`'s form back; :class:`ResultFormatError` names a bad field."""
        d = _fields(raw, path, ("name", "description", "duration", "file"))
        return cls(_str(d["name"], f"{path}.name"),
                   _str(d["description"], f"{path}.description"),
                   _float(d["duration"], f"{path}.duration"),
                   _opt_str(d["file"], f"{path}.file"))


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample window of the run (every sample interval): the level at its end, answers
    per source, errors, latency percentiles (s, None: no answer) and restarts so far."""

    t: float
    level: int
    sources: Mapping[str, int] = field(default_factory=dict)
    failed: int = 0
    p50: float | None = None
    p99: float | None = None
    restarts: int = 0

    @property
    def requests(self) -> int:
        """Answers plus failures in this window."""
        return sum(self.sources.values()) + self.failed

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form."""
        return {"t": self.t, "level": self.level, "sources": dict(self.sources),
                "failed": self.failed, "p50": self.p50, "p99": self.p99,
                "restarts": self.restarts}

    @classmethod
    def from_dict(cls, raw: object, path: str = "sample") -> Sample:
        """Read :meth:`to_dict`'s form back; :class:`ResultFormatError` names a bad field."""
        d = _fields(raw, path, ("t", "level", "sources", "failed", "p50", "p99", "restarts"))
        return cls(_float(d["t"], f"{path}.t"), _level(d["level"], f"{path}.level"),
                   _counts(d["sources"], f"{path}.sources"),
                   _int(d["failed"], f"{path}.failed"),
                   _opt_float(d["p50"], f"{path}.p50"), _opt_float(d["p99"], f"{path}.p99"),
                   _int(d["restarts"], f"{path}.restarts"))


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """One injected fault: its name, target (``smart_router``… or ``simulator``), kind,
    and when it was injected and cleared (``end`` None: never cleared)."""

    name: str
    target: str
    kind: str
    start: float
    end: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form."""
        return {"name": self.name, "target": self.target, "kind": self.kind,
                "start": self.start, "end": self.end}

    @classmethod
    def from_dict(cls, raw: object, path: str = "fault") -> FaultWindow:
        """Read :meth:`to_dict`'s form back; :class:`ResultFormatError` names a bad field."""
        d = _fields(raw, path, ("name", "target", "kind", "start", "end"))
        return cls(_str(d["name"], f"{path}.name"), _str(d["target"], f"{path}.target"),
                   _str(d["kind"], f"{path}.kind"), _float(d["start"], f"{path}.start"),
                   _opt_float(d["end"], f"{path}.end"))


@dataclass(frozen=True, slots=True)
class LevelMark:
    """One level change at ``t``: from, to, and the keeper's reason."""

    t: float
    from_level: int
    to_level: int
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form (``from``/``to`` keys)."""
        return {"t": self.t, "from": self.from_level, "to": self.to_level,
                "reason": self.reason}

    @classmethod
    def from_dict(cls, raw: object, path: str = "level_change") -> LevelMark:
        """Read :meth:`to_dict`'s form back; :class:`ResultFormatError` names a bad field."""
        d = _fields(raw, path, ("t", "from", "to", "reason"))
        return cls(_float(d["t"], f"{path}.t"), _level(d["from"], f"{path}.from"),
                   _level(d["to"], f"{path}.to"), _str(d["reason"], f"{path}.reason"))


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation of a phase: its name, whether it held, and what was seen."""

    name: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}

    @classmethod
    def from_dict(cls, raw: object, path: str = "check") -> Check:
        """Read :meth:`to_dict`'s form back; :class:`ResultFormatError` names a bad field."""
        d = _fields(raw, path, ("name", "ok", "detail"))
        return cls(_str(d["name"], f"{path}.name"), _bool(d["ok"], f"{path}.ok"),
                   _str(d["detail"], f"{path}.detail"))


_PHASE_KEYS = ("name", "start", "end", "expect_level", "max_level", "final_level",
               "detection_s", "fallback_s", "recovery_s", "requests", "failed", "errors",
               "by_source", "by_level", "p50", "p99", "flaps", "restarts", "alerts", "checks")


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """What one phase measured (see the contract): timings in seconds, None when the event
    did not happen (no fault, never detected, never recovered); ``by_level`` keys are the
    levels 0..3 as ints (strings ``"0"``..``"3"`` in JSON)."""

    name: str
    start: float
    end: float
    expect_level: int | None = None
    max_level: int = 0
    final_level: int = 0
    detection_s: float | None = None
    fallback_s: float | None = None
    recovery_s: float | None = None
    requests: int = 0
    failed: int = 0
    errors: Mapping[str, int] = field(default_factory=dict)
    by_source: Mapping[str, int] = field(default_factory=dict)
    by_level: Mapping[int, int] = field(default_factory=dict)
    p50: float | None = None
    p99: float | None = None
    flaps: int = 0
    restarts: int = 0
    alerts: int = 0
    checks: tuple[Check, ...] = ()

    @property
    def ok(self) -> bool:
        """Every check of this phase held."""
        return all(check.ok for check in self.checks)

    @property
    def duration(self) -> float:
        """``end - start``."""
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form."""
        return {"name": self.name, "start": self.start, "end": self.end,
                "expect_level": self.expect_level, "max_level": self.max_level,
                "final_level": self.final_level, "detection_s": self.detection_s,
                "fallback_s": self.fallback_s, "recovery_s": self.recovery_s,
                "requests": self.requests, "failed": self.failed, "errors": dict(self.errors),
                "by_source": dict(self.by_source),
                "by_level": {str(level): n for level, n in sorted(self.by_level.items())},
                "p50": self.p50, "p99": self.p99, "flaps": self.flaps,
                "restarts": self.restarts, "alerts": self.alerts,
                "checks": [check.to_dict() for check in self.checks]}

    @classmethod
    def from_dict(cls, raw: object, path: str = "phase") -> PhaseResult:
        """Read :meth:`to_dict`'s form back; :class:`ResultFormatError` names a bad field."""
        d = _fields(raw, path, _PHASE_KEYS)
        expect = d["expect_level"]
        return cls(
            name=_str(d["name"], f"{path}.name"),
            start=_float(d["start"], f"{path}.start"),
            end=_float(d["end"], f"{path}.end"),
            expect_level=None if expect is None else _level(expect, f"{path}.expect_level"),
            max_level=_level(d["max_level"], f"{path}.max_level"),
            final_level=_level(d["final_level"], f"{path}.final_level"),
            detection_s=_opt_float(d["detection_s"], f"{path}.detection_s"),
            fallback_s=_opt_float(d["fallback_s"], f"{path}.fallback_s"),
            recovery_s=_opt_float(d["recovery_s"], f"{path}.recovery_s"),
            requests=_int(d["requests"], f"{path}.requests"),
            failed=_int(d["failed"], f"{path}.failed"),
            errors=_counts(d["errors"], f"{path}.errors"),
            by_source=_counts(d["by_source"], f"{path}.by_source"),
            by_level=_by_level(d["by_level"], f"{path}.by_level"),
            p50=_opt_float(d["p50"], f"{path}.p50"),
            p99=_opt_float(d["p99"], f"{path}.p99"),
            flaps=_int(d["flaps"], f"{path}.flaps"),
            restarts=_int(d["restarts"], f"{path}.restarts"),
            alerts=_int(d["alerts"], f"{path}.alerts"),
            checks=_list(d["checks"], f"{path}.checks", Check.from_dict),
        )


def _by_level(raw: object, path: str) -> dict[int, int]:
    counts = _counts(raw, path)
    levels: dict[int, int] = {}
    for key, n in counts.items():
        if key not in ("0", "1", "2", "3"):
            raise ResultFormatError(f"{path}.{key}", key, 'a level "0".."3"')
        levels[int(key)] = n
    return levels


@dataclass(frozen=True, slots=True)
class AlertMark:
    """One alert the run fired, at ``t``, with its text."""

    t: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form."""
        return {"t": self.t, "text": self.text}

    @classmethod
    def from_dict(cls, raw: object, path: str = "alert") -> AlertMark:
        """Read :meth:`to_dict`'s form back; :class:`ResultFormatError` names a bad field."""
        d = _fields(raw, path, ("t", "text"))
        return cls(_float(d["t"], f"{path}.t"), _str(d["text"], f"{path}.text"))


_RESULT_KEYS = ("version", "scenario", "config", "started_at", "timeline", "faults",
                "level_changes", "phases", "alerts", "ok")


@dataclass(frozen=True, slots=True)
class DrillResult:
    """One drill run: the scenario, the config it ran under (a path or ``"built-in"``),
    when it started (ISO-8601 UTC), the sampled timeline, the faults, level changes,
    per-phase results and alerts. ``ok``: every check of every phase held."""

    scenario: ScenarioInfo
    config: str
    started_at: str
    timeline: tuple[Sample, ...] = ()
    faults: tuple[FaultWindow, ...] = ()
    level_changes: tuple[LevelMark, ...] = ()
    phases: tuple[PhaseResult, ...] = ()
    alerts: tuple[AlertMark, ...] = ()

    @property
    def ok(self) -> bool:
        """Every check of every phase held."""
        return all(phase.ok for phase in self.phases)

    @property
    def checks(self) -> tuple[Check, ...]:
        """Every phase's checks, in order."""
        return tuple(check for phase in self.phases for check in phase.checks)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form (version :data:`VERSION`)."""
        return {"version": VERSION, "scenario": self.scenario.to_dict(),
                "config": self.config, "started_at": self.started_at,
                "timeline": [sample.to_dict() for sample in self.timeline],
                "faults": [fault.to_dict() for fault in self.faults],
                "level_changes": [mark.to_dict() for mark in self.level_changes],
                "phases": [phase.to_dict() for phase in self.phases],
                "alerts": [alert.to_dict() for alert in self.alerts],
                "ok": self.ok}

    @classmethod
    def from_dict(cls, raw: object) -> DrillResult:
        """Read :meth:`to_dict`'s form back; :class:`ResultFormatError` names a bad field
        (also a stored ``ok`` that disagrees with the checks)."""
        d = _fields(raw, "", _RESULT_KEYS)
        version = d["version"]
        if isinstance(version, bool) or version != VERSION:
            raise ResultFormatError("version", version, f"{VERSION}")
        result = cls(
            scenario=ScenarioInfo.from_dict(d["scenario"]),
            config=_str(d["config"], "config"),
            started_at=_str(d["started_at"], "started_at"),
            timeline=_list(d["timeline"], "timeline", Sample.from_dict),
            faults=_list(d["faults"], "faults", FaultWindow.from_dict),
            level_changes=_list(d["level_changes"], "level_changes", LevelMark.from_dict),
            phases=_list(d["phases"], "phases", PhaseResult.from_dict),
            alerts=_list(d["alerts"], "alerts", AlertMark.from_dict),
        )
        if _bool(d["ok"], "ok") != result.ok:
            raise ResultFormatError("ok", d["ok"], f"{result.ok} (what the checks say)")
        return result
