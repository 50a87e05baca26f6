"""The fault steps of a drill: switch a fault on against an actor or the simulator, and the
``clear()`` that switches it off again.

Actor faults go through the system's fault board (``system.faults.inject``: kinds and points of
:mod:`actors.faults`); their clear ends that one injection. Simulator faults use the
simulator's own controls (:mod:`upbit_sim.faults`, :mod:`upbit_sim.ws.controls`)::

    simulator fault  options (default)                 what it does
    http_5xx         status (503), fraction (1.0)      REST answers status to that fraction
    storm_429                                          REST answers 429 to every request
    ban_418          seconds (3.0)                     REST answers 418 (banned) for seconds
    black_hole                                         REST accepts and never answers
    latency          seconds (0.5)                     REST answers seconds late
    ws_close         every (0.3)                       WebSocket sockets closed every s
    ws_refuse                                          WebSocket handshakes refused, sockets
                                                       dropped
    ws_silent                                          WebSocket sends nothing (pings unanswered)
    ws_malformed     count (5), every (0.1)            count malformed frames every s
    field_drift                                        REST answers gain/lose optional fields
    backbone                                           black_hole and ws_refuse together

REST faults apply under ``/v1/`` (the quotation API, not the simulator's controls). A
``ban_418`` cleared early is lifted at the simulator; the client keeps the ban it was told
until it ends, as it would against Upbit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from upbit_sim.ws.injection import MalformedKind

if TYPE_CHECKING:
    from lifeline.drill.scenario import FaultStep
    from lifeline.system import MarketDataSystem
    from upbit_sim import Simulator

__all__ = ["REPEAT_JOIN", "SIMULATOR_FAULTS", "Clear", "SimulatorFault", "apply_step", "repeat"]

logger = logging.getLogger(__name__)

Clear = Callable[[], None]
_PREFIX = "/v1/"
REPEAT_JOIN = 5.0
"""Real seconds a repeating fault's thread gets to end once cleared."""

Option = tuple[type, float, float | None]
"""An option's type (int or float), its lower bound (exclusive for floats, inclusive for
ints) and its upper bound (inclusive; ``None``: none)."""


@dataclass(frozen=True, slots=True)
class SimulatorFault:
    """One simulator fault: its options and how to switch it on (returns its clear)."""

    options: Mapping[str, Option]
    apply: Callable[[Simulator, dict[str, Any]], Clear]


def repeat(action: Callable[[], object], every: float) -> Clear:
    """Do ``action`` now and every ``every`` real seconds until the returned clear()."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                action()
            except Exception:  # a control that failed once: log it, keep the rhythm
                logger.exception("drill: a repeated simulator fault failed")
            stop.wait(every)

    thread = threading.Thread(target=run, name="drill-fault-repeat", daemon=True)
    thread.start()

    def clear() -> None:
        stop.set()
        thread.join(REPEAT_JOIN)

    return clear


def _http_5xx(sim: Simulator, o: dict[str, Any]) -> Clear:
    sim.faults.fail_fraction(o.get("fraction", 1.0), o.get("status", 503), path_prefix=_PREFIX)
    return lambda: sim.faults.fail_fraction(0)


def _storm_429(sim: Simulator, o: dict[str, Any]) -> Clear:
    sim.faults.storm_429(None, path_prefix=_PREFIX)
    return lambda: sim.faults.clear("storm_429")


def _ban_418(sim: Simulator, o: dict[str, Any]) -> Clear:
    sim.faults.ban_418(o.get("seconds", 3.0), path_prefix=_PREFIX)
    return lambda: sim.faults.ban_418(0)


def _black_hole(sim: Simulator, o: dict[str, Any]) -> Clear:
    sim.faults.black_hole(path_prefix=_PREFIX)
    return lambda: sim.faults.black_hole(False, path_prefix=_PREFIX)


def _latency(sim: Simulator, o: dict[str, Any]) -> Clear:
    sim.faults.set_latency(o.get("seconds", 0.5), path_prefix=_PREFIX)
    return lambda: sim.faults.set_latency(0)


def _ws_close(sim: Simulator, o: dict[str, Any]) -> Clear:
    return repeat(sim.ws.close_all, o.get("every", 0.3))


def _ws_refuse(sim: Simulator, o: dict[str, Any]) -> Clear:
    sim.ws.set_accepting(False)
    sim.ws.drop_all()
    return lambda: sim.ws.set_accepting(True)


def _ws_silent(sim: Simulator, o: dict[str, Any]) -> Clear:
    sim.ws.set_silent(True)
    return lambda: sim.ws.set_silent(False)


def _ws_malformed(sim: Simulator, o: dict[str, Any]) -> Clear:
    count = o.get("count", 5)
    return repeat(lambda: sim.ws.inject_malformed(count, MalformedKind.GARBAGE),
                   o.get("every", 0.1))


def _field_drift(sim: Simulator, o: dict[str, Any]) -> Clear:
    sim.faults.field_drift(True)
    return lambda: sim.faults.field_drift(False)


def _backbone(sim: Simulator, o: dict[str, Any]) -> Clear:
    rest, ws = _black_hole(sim, o), _ws_refuse(sim, o)

    def clear() -> None:
        rest()
        ws()

    return clear


_F = float
SIMULATOR_FAULTS: Mapping[str, SimulatorFault] = MappingProxyType({
    "http_5xx": SimulatorFault({"status": (int, 500, 599), "fraction": (_F, 0.0, 1.0)},
                               _http_5xx),
    "storm_429": SimulatorFault({}, _storm_429),
    "ban_418": SimulatorFault({"seconds": (_F, 0.0, 600.0)}, _ban_418),
    "black_hole": SimulatorFault({}, _black_hole),
    "latency": SimulatorFault({"seconds": (_F, 0.0, 60.0)}, _latency),
    "ws_close": SimulatorFault({"every": (_F, 0.0, 60.0)}, _ws_close),
    "ws_refuse": SimulatorFault({}, _ws_refuse),
    "ws_silent": SimulatorFault({}, _ws_silent),
    "ws_malformed": SimulatorFault({"count": (int, 1, 1000), "every": (_F, 0.0, 60.0)},
                                   _ws_malformed),
    "field_drift": SimulatorFault({}, _field_drift),
    "backbone": SimulatorFault({}, _backbone),
})
"""Simulator fault name → its options and how to switch it on (module docstring)."""


def apply_step(step: FaultStep, system: MarketDataSystem, sim: Simulator) -> Clear:
    """Switch ``step`` on now; returns the clear() that switches it off."""
    options = dict(step.options)
    if step.target == "simulator":
        return SIMULATOR_FAULTS[step.kind].apply(sim, options)
    injection = system.faults.inject(step.target, step.kind, **options)
    return injection.clear
