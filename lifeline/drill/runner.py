"""``run_drill``: one scenario against the embedded simulator, measured (a :class:`DrillResult`).

1. The scenario's ``config`` keys are applied over the config and fault injection is switched
   on; :func:`~lifeline.drill.scenario.check_fits` refuses at once a scenario whose limits
   cannot hold under it (:class:`~lifeline.drill.scenario.ScenarioError` naming the key).
2. A :class:`~upbit_sim.Simulator` starts on ``127.0.0.1`` (a free port; seed from
   ``simulator.seed``; no server-side rate limit: the client's shared limiter keeps to
   Upbit's budget) and a :class:`~lifeline.MarketDataSystem` starts against it.
3. Warm-up (at most :data:`WARMUP_TIMEOUT` s): every kind of read for every market answered,
   the router's WebSocket subscribed at the simulator, Level 0. Time 0 of the run is its end.
4. The host load starts (:mod:`lifeline.drill.load`); each phase switches its faults on at its
   start and clears them at its end (:mod:`lifeline.drill.faults`); every
   :data:`SAMPLE_INTERVAL` s a :class:`Sample` is taken and handed to ``on_sample(sample,
   phase_name)``. Alerts are counted from the ``lifeline.alerts`` log records: the run sets
   that logger to WARNING if it was above (restored after), whatever the host's levels.
5. The load stops (a call still running :data:`JOIN_SLACK` s past ``request_deadline`` is
   hung), the per-phase measurements and checks are computed (:func:`measure_phase`), and
   everything is torn down — faults, load, status poller, system, simulator — also on an
   error or ``KeyboardInterrupt``. The whole run is bounded: the scenario's duration plus
   :data:`GRACE` s (start, warm-up, teardown, each bounded); a run whose phases overrun ends
   early, its current phase failing the ``run_bound`` check.

Per-phase checks (each a :class:`Check`): ``level`` (with faults, or before any: the highest
level equals ``expect.level``; after faults: the final level equals it and the level never
rose past where the faults left it), ``detect_within``, ``recover_within``, ``max_failed``
(when expected), and always ``errors`` (the only error allowed is ``MarketDataUnavailable``
at Level 3), ``deadline`` (no call over ``request_deadline`` + :data:`DEADLINE_SLACK`, none
hung), ``flaps`` (level changes against the phase's direction at most ``expect.max_flaps``)
and ``load`` (the host made calls).

The first ``settle`` seconds after faults are cleared (``probe_interval`` + one sample
interval) still belong to them: a fault that acted just before its clear is seen at the next
probe, so a level change then is the fault's tail, not a flap of the recovery.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from lifeline.config import LifelineConfig
from lifeline.drill.faults import Clear, apply_step
from lifeline.drill.load import KINDS, Call, HostLoad, read
from lifeline.drill.result import (
    AlertMark,
    Check,
    DrillResult,
    FaultWindow,
    LevelMark,
    PhaseResult,
    Sample,
    ScenarioInfo,
)
from lifeline.drill.scenario import Phase, Scenario, apply_overrides, check_fits
from lifeline.errors import LifelineError
from lifeline.levels import LevelChange
from lifeline.system import MarketDataSystem
from quotation.clock import Clock, SystemClock
from upbit_sim import Simulator

__all__ = [
    "DEADLINE_SLACK",
    "GRACE",
    "JOIN_SLACK",
    "SAMPLE_INTERVAL",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "WARMUP_TIMEOUT",
    "DrillError",
    "OnSample",
    "measure_phase",
    "run_drill",
]

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL = 0.25
"""Seconds between two samples."""
START_TIMEOUT = 15.0
"""Real seconds the system may take to start."""
WARMUP_TIMEOUT = 15.0
"""Real seconds the warm-up may take."""
STOP_TIMEOUT = 15.0
"""Real seconds the system gets to stop (the simulator has its own 10 s)."""
GRACE = 60.0
"""Real seconds a run may take beyond its scenario's duration: start, warm-up, the load's
join, the system's and the simulator's stop, each bounded above (15 + 15 + 15 + 10 s, and
``request_deadline`` + :data:`JOIN_SLACK`)."""
DEADLINE_SLACK = 0.3
"""Real seconds a call may overrun ``request_deadline`` (thread scheduling on 2 cores)."""
JOIN_SLACK = 1.0
"""Real seconds past ``request_deadline`` the load's threads get to end once stopped."""
FALLBACK_SOURCES = frozenset({"rest_fallback", "ws_fallback", "last_known_good"})
"""Answers that show the fallback serving (``fallback_s``)."""
ALLOWED_ERROR = "MarketDataUnavailable"
"""The one error a host call may raise, and only at Level 3."""
LATE, HUNG = "DeadlineOverrun", "Hung"
"""Pseudo error types: a call that answered after its deadline, one still running at the end."""
_ALERTS_LOGGER = "lifeline.alerts"

OnSample = Callable[[Sample, str], object]


class DrillError(LifelineError):
    """The drill could not be carried out (the simulator or the system did not start, the
    warm-up did not reach Level 0): nothing was measured."""


def run_drill(scenario: Scenario, config: LifelineConfig, *, on_sample: OnSample | None = None,
              config_name: str = "built-in", clock: Clock | None = None) -> DrillResult:
    """Run ``scenario`` under ``config`` (module docstring); ``config_name`` is what the
    result says it ran under (the config file's path)."""
    effective = apply_overrides(scenario, config)
    check_fits(scenario, effective)
    return _Run(scenario, effective, config_name, on_sample, clock or SystemClock()).run()


class _Recorder(logging.Handler):
    """Level changes (on the keeper's thread) and alerts (log records of
    ``lifeline.alerts``), stamped on the run's clock."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(logging.WARNING)
        self._clock = clock
        self._lock2 = threading.Lock()
        self.changes: list[tuple[float, LevelChange]] = []
        self.alerts: list[tuple[float, str]] = []

    def level_changed(self, change: LevelChange) -> None:
        with self._lock2:
            self.changes.append((self._clock.monotonic(), change))

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "ALERT %s" and record.args:
            text = str(record.args[0]) if isinstance(record.args, tuple) else str(record.args)
            with self._lock2:
                self.alerts.append((self._clock.monotonic(), text))


class _StatusPoller:
    """Reads the restarts total off the system's status in the background (a status may
    wait up to a second for a busy supervisor: never on the sampling thread)."""

    def __init__(self, system: MarketDataSystem) -> None:
        self._system = system
        self._stop = threading.Event()
        self.restarts = self._read()
        self._thread = threading.Thread(target=self._run, name="drill-status", daemon=True)

    def _read(self) -> int:
        try:
            return sum(self._system.status().restarts.values())
        except Exception:
            logger.debug("drill: status failed", exc_info=True)
            return getattr(self, "restarts", 0)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self.restarts = self._read()

    def start(self) -> _StatusPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)


class _Run:
    def __init__(self, scenario: Scenario, config: LifelineConfig, config_name: str,
                 on_sample: OnSample | None, clock: Clock) -> None:
        self.scenario = scenario
        self.config = config
        self.config_name = config_name
        self.on_sample = on_sample
        self.clock = clock
        self.recorder = _Recorder(clock)
        self.samples: list[Sample] = []
        self.calls: list[Call] = []
        self.windows: list[FaultWindow] = []
        self.overran: int | None = None
        """The phase the run bound ended (None: it held)."""

    def run(self) -> DrillResult:
        started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        bound = self.clock.monotonic() + self.scenario.duration + GRACE
        with contextlib.ExitStack() as stack:
            sim = Simulator(seed=self.config.simulator.seed, host="127.0.0.1", port=0,
                            rate_limit=None)
            sim.start()
            stack.callback(sim.stop)
            system = MarketDataSystem(_pointed_at(self.config, sim))
            system.on_level_change(self.recorder.level_changed)
            alerts = logging.getLogger(_ALERTS_LOGGER)
            alerts.addHandler(self.recorder)
            stack.callback(alerts.removeHandler, self.recorder)
            if alerts.getEffectiveLevel() > logging.WARNING:  # counted whatever the levels
                stack.callback(alerts.setLevel, alerts.level)
                alerts.setLevel(logging.WARNING)
            try:
                system.start(timeout=START_TIMEOUT)
            except LifelineError as exc:
                raise DrillError(f"the market data system did not start: {exc}") from exc
            stack.callback(system.stop, timeout=STOP_TIMEOUT)
            self._warm(system, sim)
            poller = _StatusPoller(system).start()
            stack.callback(poller.stop)
            load = HostLoad(system, self.scenario.load, clock=self.clock)
            join = self.config.fallback.request_deadline + JOIN_SLACK
            stack.callback(load.stop, join)
            clears: list[Clear] = []
            stack.callback(_clear_all, clears)  # first out: the faults
            t0 = self.clock.monotonic()
            start_level = int(system.level)
            load.start()
            self._phases(system, sim, load, poller=poller, clears=clears, t0=t0, bound=bound)
            hung = load.stop(join)
            self.calls.extend(load.take())
            self.calls.extend(hung)
            restarts_at_end = poller.restarts
            changes = [(at - t0, change) for at, change in list(self.recorder.changes)
                       if at >= t0]
            alerts_seen = [(at - t0, text) for at, text in list(self.recorder.alerts)
                           if at >= t0]
            calls = [dataclasses.replace(c, started=c.started - t0, ended=c.ended - t0)
                     for c in self.calls]
        return self._result(started_at, start_level, changes=changes, alerts=alerts_seen,
                            calls=calls, restarts_at_end=restarts_at_end)

    # -- the run ---------------------------------------------------------------------------

    def _warm(self, system: MarketDataSystem, sim: Simulator) -> None:
        """Every kind and market answered, the router's WebSocket subscribed, Level 0."""
        end = self.clock.monotonic() + WARMUP_TIMEOUT
        markets = self.scenario.load.markets
        idle = threading.Event()
        last: list[Call] = []
        while self.clock.monotonic() < end:
            last = [read(system, kind, markets, market, self.clock)
                    for kind in KINDS for market in markets]
            if (all(not c.failed for c in last) and sim.ws.stats().subscribed >= 1
                    and int(system.level) == 0):
                return
            idle.wait(SAMPLE_INTERVAL)
        failed = [f"{c.kind}: {c.outcome}" for c in last if c.failed]
        raise DrillError(f"warm-up did not reach Level 0 with every read answered and the "
                         f"router's WebSocket live within {WARMUP_TIMEOUT:g} s (level "
                         f"{int(system.level)}; failed: {failed or 'none'})")

    def _phases(self, system: MarketDataSystem, sim: Simulator, load: HostLoad, *,
                poller: _StatusPoller, clears: list[Clear], t0: float, bound: float) -> None:
        phases = self.scenario.phases
        ends = _ends(phases)
        index, tick = 0, 1
        wait = threading.Event()
        self._begin(phases[0], system, sim, clears, 0.0)
        while index < len(phases):
            now = self.clock.monotonic()
            if now > bound:
                self.overran = index
                logger.error("drill: the run bound was reached in phase %r",
                             phases[index].name)
                return
            next_tick = tick * SAMPLE_INTERVAL
            elapsed = now - t0
            if elapsed >= next_tick and next_tick <= ends[-1] + 1e-9:
                self._sample(system, load, poller, next_tick, phases[index].name)
                tick += 1
                continue
            if elapsed >= ends[index]:
                self._end(clears, ends[index])
                index += 1
                if index < len(phases):
                    self._begin(phases[index], system, sim, clears, ends[index - 1])
                continue
            wait.wait(max(0.0, min(next_tick, ends[index]) - elapsed))

    def _begin(self, phase: Phase, system: MarketDataSystem, sim: Simulator,
               clears: list[Clear], at: float) -> None:
        for step in phase.faults:
            clears.append(apply_step(step, system, sim))
            self.windows.append(FaultWindow(f"{phase.name}: {step.kind}", step.target,
                                            step.kind, at))

    def _end(self, clears: list[Clear], at: float) -> None:
        _clear_all(clears)
        self.windows = [w if w.end is not None else dataclasses.replace(w, end=at)
                        for w in self.windows]

    def _sample(self, system: MarketDataSystem, load: HostLoad, poller: _StatusPoller,
                t: float, phase: str) -> None:
        window = load.take()
        self.calls.extend(window)
        answered = sorted(c.elapsed for c in window if not c.failed)
        sources = Counter(c.source for c in window if c.source is not None and not c.failed)
        sample = Sample(t=round(t, 6), level=int(system.level), sources=dict(sources),
                        failed=sum(1 for c in window if c.failed),
                        p50=_percentile(answered, 0.50), p99=_percentile(answered, 0.99),
                        restarts=poller.restarts)
        self.samples.append(sample)
        if self.on_sample is not None:
            self.on_sample(sample, phase)

    # -- the result ------------------------------------------------------------------------

    def _result(self, started_at: str, start_level: int, *,
                changes: list[tuple[float, LevelChange]], alerts: list[tuple[float, str]],
                calls: list[Call], restarts_at_end: int) -> DrillResult:
        phases = self.scenario.phases
        ends = _ends(phases)
        marks = tuple(LevelMark(round(t, 6), int(c.old), int(c.new), c.reason)
                      for t, c in changes)
        results = []
        faulted_before = False
        restarts_before = self.samples[0].restarts if self.samples else 0
        for i, phase in enumerate(phases):
            start, end = (ends[i - 1] if i else 0.0), ends[i]
            last = i == len(phases) - 1
            mine = [c for c in calls if start <= c.started < end or (last and c.started >= end)]
            restarts_end = next((s.restarts for s in reversed(self.samples) if s.t <= end + 1e-9),
                                restarts_before) if not last else max(
                restarts_at_end, self.samples[-1].restarts if self.samples else 0)
            result = measure_phase(
                phase, start=start, end=end, start_level=_level_at(start, start_level, marks),
                marks=marks, calls=mine, faulted_before=faulted_before,
                deadline=self.config.fallback.request_deadline,
                restarts=max(0, restarts_end - restarts_before),
                alerts=sum(1 for t, _ in alerts if start <= t < end or (last and t >= end)),
                overran=self.overran == i,
                settle=self.config.fallback.probe_interval + SAMPLE_INTERVAL)
            restarts_before = restarts_end
            faulted_before = faulted_before or bool(phase.faults)
            results.append(result)
        return DrillResult(
            scenario=ScenarioInfo(self.scenario.name, self.scenario.description,
                                  self.scenario.duration, self.scenario.file),
            config=self.config_name, started_at=started_at, timeline=tuple(self.samples),
            faults=tuple(self.windows), level_changes=marks, phases=tuple(results),
            alerts=tuple(AlertMark(round(t, 6), text) for t, text in alerts))


def measure_phase(phase: Phase, *, start: float, end: float, start_level: int,
                  marks: Sequence[LevelMark], calls: Sequence[Call], faulted_before: bool,
                  deadline: float, restarts: int = 0, alerts: int = 0,
                  overran: bool = False, settle: float = 0.0) -> PhaseResult:
    """One phase's measurements and checks (module docstring) from the run's level changes
    and the calls that began in it (times in seconds since the run's start). ``settle``: in
    a phase after faults, changes in its first ``settle`` seconds are the faults' tail."""
    inside = [m for m in marks if start <= m.t < end]
    final = inside[-1].to_level if inside else start_level
    peak = max([start_level, *(m.to_level for m in inside)])
    faulted = bool(phase.faults)
    if not faulted and faulted_before:  # where the faults left it, their tail included
        start_level = max([start_level, *(m.to_level for m in inside if m.t < start + settle)])
        counted = [m for m in inside if m.t >= start + settle]
    else:
        counted = inside
    detection = inside[0].t - start if faulted and inside else None
    fallback = None
    if faulted:
        served = [c.ended for c in calls if c.source in FALLBACK_SOURCES and not c.failed]
        fallback = max(0.0, min(served) - start) if served else None
    recovery = None
    if not faulted and faulted_before and final == 0:
        downs = [m.t for m in inside if m.to_level == 0]
        recovery = downs[-1] - start if downs else 0.0
    errors: Counter[str] = Counter()
    limit = deadline + DEADLINE_SLACK
    for call in calls:
        if call.failed:
            errors[HUNG if call.outcome == "hung" else call.outcome] += 1
        elif call.elapsed > limit:
            errors[LATE] += 1
    answered = sorted(c.elapsed for c in calls if not c.failed)
    if faulted:
        flaps = sum(1 for m in inside if m.to_level < m.from_level)
    elif faulted_before:
        flaps = sum(1 for m in counted if m.to_level > m.from_level)
    else:
        flaps = len(inside)
    result = PhaseResult(
        name=phase.name, start=round(start, 6), end=round(end, 6),
        expect_level=phase.expect.level, max_level=peak, final_level=final,
        detection_s=_rounded(detection), fallback_s=_rounded(fallback),
        recovery_s=_rounded(recovery), requests=len(calls), failed=sum(errors.values()),
        errors=dict(errors),
        by_source=dict(Counter(c.source for c in calls if c.source is not None)),
        by_level=dict(Counter(c.level for c in calls)),
        p50=_percentile(answered, 0.50), p99=_percentile(answered, 0.99),
        flaps=flaps, restarts=restarts, alerts=alerts)
    checks = _checks(phase, result, calls, faulted=faulted, faulted_before=faulted_before,
                     start_level=start_level, limit=limit, overran=overran)
    return dataclasses.replace(result, checks=tuple(checks))


def _checks(phase: Phase, r: PhaseResult, calls: Sequence[Call], *, faulted: bool,
            faulted_before: bool, start_level: int, limit: float, overran: bool
            ) -> list[Check]:
    expect = phase.expect
    checks: list[Check] = []
    if expect.level is not None:
        if faulted or not faulted_before:
            ok = r.max_level == expect.level
            detail = f"highest level {r.max_level}, expected {expect.level}"
        else:
            ok = r.final_level == expect.level and r.max_level <= start_level
            detail = (f"ended at level {r.final_level}, expected {expect.level}"
                      + ("" if r.max_level <= start_level
                         else f"; rose to {r.max_level} above {start_level}"))
        checks.append(Check("level", ok, detail))
    if expect.detect_within is not None:
        checks.append(Check(
            "detect_within", r.detection_s is not None and r.detection_s <= expect.detect_within,
            f"detected after {_secs(r.detection_s)}, limit {expect.detect_within:g} s"))
    if expect.recover_within is not None:
        checks.append(Check(
            "recover_within",
            r.recovery_s is not None and r.recovery_s <= expect.recover_within,
            f"back at level 0 after {_secs(r.recovery_s)}, limit {expect.recover_within:g} s"))
    if expect.max_failed is not None:
        checks.append(Check("max_failed", r.failed <= expect.max_failed,
                            f"{r.failed} failed, limit {expect.max_failed}"))
    wrong = Counter(c.outcome for c in calls if c.failed and c.outcome != "hung"
                    and not (c.outcome == ALLOWED_ERROR and c.level == 3))
    checks.append(Check("errors", not wrong,
                        "only MarketDataUnavailable at level 3" if not wrong else
                        "not allowed: " + ", ".join(f"{n} x {name}" for name, n in
                                                    sorted(wrong.items()))))
    late = r.errors.get(LATE, 0)
    hung = r.errors.get(HUNG, 0)
    slowest = max((c.elapsed for c in calls), default=0.0)
    checks.append(Check("deadline", not late and not hung,
                        f"slowest call {slowest:.2f} s, limit {limit:g} s; {late} late, "
                        f"{hung} hung"))
    checks.append(Check("flaps", r.flaps <= expect.max_flaps,
                        f"{r.flaps} level changes against the phase's direction, "
                        f"limit {expect.max_flaps}"))
    checks.append(Check("load", r.requests > 0, f"{r.requests} host calls"))
    if overran:
        checks.append(Check("run_bound", False, "the run's time bound ended it here"))
    return checks


# -- helpers -----------------------------------------------------------------------------------


def _pointed_at(config: LifelineConfig, sim: Simulator) -> LifelineConfig:
    """``config`` with its REST and WebSocket URLs at ``sim`` (everything else as given)."""
    upbit = config.upbit
    return dataclasses.replace(config, upbit=dataclasses.replace(
        upbit, rest=dataclasses.replace(upbit.rest, base_url=sim.base_url),
        websocket=dataclasses.replace(upbit.websocket, url=sim.ws_url)))


def _clear_all(clears: list[Clear]) -> None:
    """Run every clear (newest first), each even if one before it failed; empties the list."""
    while clears:
        clear = clears.pop()
        try:
            clear()
        except Exception:
            logger.exception("drill: clearing a fault failed")


def _ends(phases: Sequence[Phase]) -> list[float]:
    ends, total = [], 0.0
    for phase in phases:
        total += phase.duration
        ends.append(total)
    return ends


def _level_at(t: float, initial: int, marks: Sequence[LevelMark]) -> int:
    level = initial
    for mark in marks:
        if mark.t >= t:
            break
        level = mark.to_level
    return level


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ascending values; None for none."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, int(q * len(sorted_values) + 0.5) - 1))
    return round(sorted_values[rank], 6)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"
