"""A drill scenario (``scenarios/*.yaml``) parsed strictly into frozen dataclasses.

The format is documented in ``scenarios/README.md``; in short::

    name: crash-loop
    description: the router crashes on every request; Level 2, then back
    load: {threads: 4, markets: [KRW-BTC, KRW-ETH], pause: 0.25, subscribe: trade}
    config: {fallback: {memory_limit_mb: 16}}        # optional: keys the scenario relies on
    phases:
      - {name: normal, duration: 2.0, expect: {level: 0}}
      - name: crash loop
        duration: 5.0
        faults: [{actor: smart_router, kind: crash, point: request}]
        expect: {level: 2, detect_within: 3.0}
      - {name: recovery, duration: 5.0, expect: {level: 0, recover_within: 4.0}}

An unknown key, a wrong type or an impossible value raises :class:`ScenarioError` naming the
key path (``phases[1].faults[0].kind``) and the value given, as a bad ``config.yaml`` does.
:func:`check_fits` refuses a scenario whose timings cannot hold under a config (its recovery
bound ``recovery_interval × (recovery_successes + 1) + probe_interval``) and names the key to
change.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.faults import FaultBoard, InvalidFault
from lifeline.config import COMPONENT_ERRORS, LifelineConfig
from lifeline.config_schema import ConfigError, from_mapping, shown
from lifeline.config_yaml import read_yaml
from lifeline.drill.faults import SIMULATOR_FAULTS
from lifeline.errors import LifelineError
from lifeline.settings import FallbackSettings, FaultSettings
from lifeline.subscriptions import StreamKind
from quotation.errors import InvalidRequest
from quotation.rest.validation import validate_market

__all__ = [
    "MAX_LEVEL",
    "Expect",
    "FaultStep",
    "LoadSpec",
    "Phase",
    "Scenario",
    "ScenarioError",
    "apply_overrides",
    "check_fits",
    "load_scenario",
    "parse_scenario",
    "recovery_bound",
]

MAX_LEVEL = 3
SIMULATOR = "simulator"
"""The ``target`` of a fault step against the embedded simulator."""


class ScenarioError(LifelineError):
    """A scenario is wrong: ``path`` is its key path (``phases[1].faults[0].kind``), ``file``
    the file it was read from (if any; it leads the message)."""

    def __init__(self, path: str, message: str, *, file: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.file = file

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.file}: {text}" if self.file else text


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """The synthetic trading host: ``threads`` threads cycling through ticker, order book,
    trades and candle reads over ``markets``, ``pause`` seconds between two calls of a
    thread, and one realtime subscription of kind ``subscribe`` (``None``: none)."""

    threads: int = 4
    markets: tuple[str, ...] = ("KRW-BTC", "KRW-ETH")
    pause: float = 0.25
    subscribe: str | None = "trade"


@dataclass(frozen=True, slots=True)
class FaultStep:
    """One fault switched on at its phase's start and cleared at its end."""

    target: str
    """An actor (``smart_router`` …) or ``simulator``."""
    kind: str
    options: tuple[tuple[str, Any], ...] = ()
    """The step's other keys (actor: ``point``, ``count``, ``duration``, ``seconds``;
    simulator: per kind, :data:`lifeline.drill.faults.SIMULATOR_FAULTS`)."""

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)


@dataclass(frozen=True, slots=True)
class Expect:
    """What must hold in a phase (``None``: not checked)."""

    level: int | None = None
    """With faults (or before any): the highest level in the phase equals it; a phase
    without faults after one with faults: the level it ends at equals it, never above the
    level it started at."""
    detect_within: float | None = None
    """Seconds from the phase's start (its faults on) to the first level change."""
    recover_within: float | None = None
    """Seconds from the phase's start (the faults before it cleared) to Level 0 for good."""
    max_failed: int | None = None
    """Most host calls that may fail (raise, or overrun ``request_deadline``)."""
    max_flaps: int = 0
    """Level changes against the phase's direction (down while faults are on, up after)."""


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    duration: float
    faults: tuple[FaultStep, ...] = ()
    expect: Expect = field(default_factory=Expect)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    phases: tuple[Phase, ...]
    load: LoadSpec = field(default_factory=LoadSpec)
    config: tuple[tuple[str, Any], ...] = ()
    """``fallback`` keys this scenario sets over the config it runs under."""
    file: str | None = None

    @property
    def duration(self) -> float:
        return sum(phase.duration for phase in self.phases)


_TOP = {"name", "description", "load", "config", "phases"}
_LOAD = {"threads", "markets", "pause", "subscribe"}
_PHASE = {"name", "duration", "faults", "expect"}
_EXPECT = {"level", "detect_within", "recover_within", "max_failed", "max_flaps"}
_ACTOR_KEYS = {"actor", "kind", "point", "count", "duration", "seconds"}
MAX_PHASES = 20
MAX_THREADS = 32
MAX_DURATION = 600.0


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and parse a scenario file; every :class:`ScenarioError` names the file."""
    name = os.fspath(path)
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        raise ScenarioError(exc.path, str(exc).removeprefix(f"{name}: "), file=name) from None
    try:
        return parse_scenario(data, file=name)
    except ScenarioError as exc:
        exc.file = name
        raise


def parse_scenario(data: object, *, file: str | None = None) -> Scenario:
    """A :class:`Scenario` from decoded YAML; :class:`ScenarioError` names the bad key path."""
    top = _mapping(data, "", _TOP, required=("name", "phases"))
    raw_phases = _list(top["phases"], "phases")
    if not raw_phases:
        raise ScenarioError("phases", "must list at least one phase")
    if len(raw_phases) > MAX_PHASES:
        raise ScenarioError("phases", f"at most {MAX_PHASES} phases, got {len(raw_phases)}")
    phases = tuple(_phase(raw, f"phases[{i}]") for i, raw in enumerate(raw_phases))
    seen: dict[str, int] = {}
    for i, phase in enumerate(phases):
        if phase.name in seen:
            raise ScenarioError(f"phases[{i}].name",
                                f"repeats phases[{seen[phase.name]}].name {phase.name!r}")
        seen[phase.name] = i
    total = sum(phase.duration for phase in phases)
    if total > MAX_DURATION:
        raise ScenarioError("phases", f"last {total:g} s in all, more than {MAX_DURATION:g} s")
    config = _overrides(top.get("config"), "config")
    return Scenario(
        name=_text(top["name"], "name"),
        description=_text(top.get("description", ""), "description", empty=True),
        phases=phases,
        load=_load(top.get("load"), "load"),
        config=config,
        file=file,
    )


def recovery_bound(config: LifelineConfig) -> float:
    """The issue's bound on fault cleared → Level 0:
    ``recovery_interval × (recovery_successes + 1) + probe_interval``."""
    fb = config.fallback
    return fb.recovery_interval * (fb.recovery_successes + 1) + fb.probe_interval


def apply_overrides(scenario: Scenario, config: LifelineConfig) -> LifelineConfig:
    """``config`` with the scenario's ``config`` keys set and fault injection on (a drill
    injects faults); :class:`ScenarioError` naming ``config.fallback.<key>`` if a key cannot
    hold with the rest of the config."""
    config = dataclasses.replace(config, faults=FaultSettings(enabled=True))
    if not scenario.config:
        return config
    merged = {name: list(value) if isinstance(value, tuple) else value
              for name, value in _fields(config.fallback).items()}
    merged.update({key.removeprefix("fallback."): value for key, value in scenario.config})
    try:
        fallback = from_mapping(FallbackSettings, merged, "config.fallback",
                                errors=COMPONENT_ERRORS)
    except ConfigError as exc:
        raise ScenarioError(exc.path, str(exc).removeprefix(f"{exc.path}: "),
                            file=scenario.file) from None
    return dataclasses.replace(config, fallback=fallback)


def check_fits(scenario: Scenario, config: LifelineConfig) -> None:
    """Refuse at once a scenario whose timings cannot hold under ``config``: a
    ``recover_within`` below the config's recovery bound, or a limit longer than its phase."""
    bound = recovery_bound(config)
    fb = config.fallback
    formula = (f"fallback.recovery_interval {fb.recovery_interval:g} x "
               f"(fallback.recovery_successes {fb.recovery_successes} + 1) + "
               f"fallback.probe_interval {fb.probe_interval:g}")
    for i, phase in enumerate(scenario.phases):
        expect, where = phase.expect, f"phases[{i}]"
        recover = expect.recover_within
        if recover is not None and recover < bound:
            raise ScenarioError(
                f"{where}.expect.recover_within",
                f"{recover:g} s cannot hold under this config: its recovery bound is "
                f"{bound:g} s ({formula}); shorten fallback.recovery_interval in the config "
                f"(or raise recover_within)", file=scenario.file)
        for key, value in (("recover_within", recover), ("detect_within", expect.detect_within)):
            if value is not None and value > phase.duration:
                raise ScenarioError(
                    f"{where}.expect.{key}",
                    f"{value:g} s is longer than the phase ({where}.duration "
                    f"{phase.duration:g} s): shorten {key} or lengthen the phase",
                    file=scenario.file)
        if recover is not None and not any(p.faults for p in scenario.phases[:i]):
            raise ScenarioError(f"{where}.expect.recover_within",
                                "no earlier phase has faults to recover from",
                                file=scenario.file)
        if recover is not None and phase.faults:
            raise ScenarioError(f"{where}.expect.recover_within",
                                "applies to a phase without faults (the one after them)",
                                file=scenario.file)


# -- the parts ---------------------------------------------------------------------------------


def _load(data: object, path: str) -> LoadSpec:
    if data is None:
        return LoadSpec()
    raw = _mapping(data, path, _LOAD)
    default = LoadSpec()
    markets = default.markets
    if "markets" in raw:
        items = _list(raw["markets"], f"{path}.markets")
        if not items:
            raise ScenarioError(f"{path}.markets", "must name at least one market")
        markets = tuple(_market(item, f"{path}.markets[{i}]") for i, item in enumerate(items))
        if len(set(markets)) != len(markets):
            raise ScenarioError(f"{path}.markets", f"repeats a market: {list(markets)}")
    subscribe = default.subscribe
    if "subscribe" in raw:
        subscribe = None if raw["subscribe"] is None else _text(raw["subscribe"],
                                                                  f"{path}.subscribe")
        if subscribe is not None:
            try:
                StreamKind.of(subscribe)
            except InvalidRequest as exc:
                raise ScenarioError(f"{path}.subscribe", f"{exc}") from None
    return LoadSpec(
        threads=_int(raw.get("threads", default.threads), f"{path}.threads", 1, MAX_THREADS),
        markets=markets,
        pause=_number(raw.get("pause", default.pause), f"{path}.pause", at_least=0.0,
                      at_most=10.0),
        subscribe=subscribe,
    )


def _phase(data: object, path: str) -> Phase:
    raw = _mapping(data, path, _PHASE, required=("name", "duration"))
    faults = tuple(_fault(item, f"{path}.faults[{i}]")
                   for i, item in enumerate(_list(raw.get("faults", []), f"{path}.faults")))
    return Phase(
        name=_text(raw["name"], f"{path}.name"),
        duration=_number(raw["duration"], f"{path}.duration", above=0.0, at_most=MAX_DURATION),
        faults=faults,
        expect=_expect(raw.get("expect"), f"{path}.expect"),
    )


def _expect(data: object, path: str) -> Expect:
    if data is None:
        return Expect()
    raw = _mapping(data, path, _EXPECT)

    def seconds(key: str) -> float | None:
        value = raw.get(key)
        return None if value is None else _number(value, f"{path}.{key}", above=0.0)

    level = raw.get("level")
    failed = raw.get("max_failed")
    return Expect(
        level=None if level is None else _int(level, f"{path}.level", 0, MAX_LEVEL),
        detect_within=seconds("detect_within"),
        recover_within=seconds("recover_within"),
        max_failed=None if failed is None else _int(failed, f"{path}.max_failed", 0, None),
        max_flaps=_int(raw.get("max_flaps", 0), f"{path}.max_flaps", 0, None),
    )


def _fault(data: object, path: str) -> FaultStep:
    if not isinstance(data, Mapping):
        raise ScenarioError(path, f"must be a mapping with 'actor' or 'simulator', "
                                  f"got {shown(data)}")
    if ("actor" in data) == ("simulator" in data):
        raise ScenarioError(path, "must name exactly one target: 'actor: <name>' or "
                                  "'simulator: <fault>'")
    if "simulator" in data:
        return _simulator_fault(data, path)
    raw = _mapping(data, path, _ACTOR_KEYS, required=("actor", "kind"))
    options = {key: raw[key] for key in ("point", "count", "duration", "seconds") if key in raw}
    for key in ("actor", "kind", "point"):
        if key in raw and not isinstance(raw[key], str):
            raise ScenarioError(f"{path}.{key}", f"must be a string, got {shown(raw[key])}")
    for key in ("count", "duration", "seconds"):
        if key in raw and (isinstance(raw[key], bool) or not isinstance(raw[key], int | float)):
            raise ScenarioError(f"{path}.{key}", f"must be a number, got {shown(raw[key])}")
    board = FaultBoard(enabled=True)  # the actors' own rules decide what can fire where
    try:
        board.inject(raw["actor"], raw["kind"], **options)
    except InvalidFault as exc:
        raise ScenarioError(f"{path}.{exc.field}", str(exc)) from None
    finally:
        board.clear_all()
    return FaultStep(raw["actor"], raw["kind"], tuple(sorted(options.items())))


def _simulator_fault(data: Mapping[Any, Any], path: str) -> FaultStep:
    kind = data["simulator"]
    if not isinstance(kind, str) or kind not in SIMULATOR_FAULTS:
        raise ScenarioError(f"{path}.simulator", f"unknown simulator fault {shown(kind)}: "
                                                 f"expected one of {', '.join(SIMULATOR_FAULTS)}")
    spec = SIMULATOR_FAULTS[kind]
    raw = _mapping(data, path, {"simulator", *spec.options})
    options: dict[str, Any] = {}
    for key, (kind_of, low, high) in spec.options.items():
        if key not in raw:
            continue
        where = f"{path}.{key}"
        if kind_of is int:
            options[key] = _int(raw[key], where, int(low), None if high is None else int(high))
        else:
            options[key] = _number(raw[key], where, above=low, at_most=high)
    return FaultStep(SIMULATOR, kind, tuple(sorted(options.items())))


def _overrides(data: object, path: str) -> tuple[tuple[str, Any], ...]:
    if data is None:
        return ()
    raw = _mapping(data, path, {"fallback"})
    fallback = _mapping(raw.get("fallback", {}), f"{path}.fallback",
                        {f.name for f in dataclasses.fields(FallbackSettings)})
    return tuple(sorted((f"fallback.{key}", value) for key, value in fallback.items()))


# -- values ------------------------------------------------------------------------------------


def _mapping(data: object, path: str, allowed: set[str],
             required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ScenarioError(path, f"must be a mapping, got {shown(data)}")
    for key in data:
        if not isinstance(key, str) or key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ScenarioError(where, f"unknown key (known: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in data:
            raise ScenarioError(f"{path}.{key}" if path else key, "is required")
    return dict(data)


def _list(data: object, path: str) -> list[Any]:
    if not isinstance(data, list):
        raise ScenarioError(path, f"must be a list, got {shown(data)}")
    return data


def _text(data: object, path: str, *, empty: bool = False) -> str:
    if not isinstance(data, str) or (not empty and not data.strip()):
        raise ScenarioError(path, f"must be a non-empty string, got {shown(data)}")
    return data


def _int(data: object, path: str, low: int, high: int | None) -> int:
    if isinstance(data, bool) or not isinstance(data, int):
        raise ScenarioError(path, f"must be an integer, got {shown(data)}")
    if data < low or (high is not None and data > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise ScenarioError(path, f"must be {bounds}, got {data}")
    return data


def _number(data: object, path: str, *, above: float | None = None,
            at_least: float | None = None, at_most: float | None = None) -> float:
    if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
        raise ScenarioError(path, f"must be a finite number, got {shown(data)}")
    value = float(data)
    if (above is not None and value <= above) or (at_least is not None and value < at_least) or (
            at_most is not None and value > at_most):
        parts = [f"> {above:g}" if above is not None else "",
                 f">= {at_least:g}" if at_least is not None else "",
                 f"<= {at_most:g}" if at_most is not None else ""]
        raise ScenarioError(path, f"must be {' and '.join(p for p in parts if p)}, "
                                  f"got {shown(data)}")
    return value


def _market(data: object, path: str) -> str:
    try:
        return validate_market(data, parameter=path)
    except InvalidRequest:
        raise ScenarioError(path, f"must be a market code like 'KRW-BTC', "
                                  f"got {shown(data)}") from None


def _fields(settings: object) -> dict[str, Any]:
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}  # type: ignore[arg-type]

