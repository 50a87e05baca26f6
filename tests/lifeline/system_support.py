"""Shared machinery of the fault matrix and the scenario tests (issue 9, "Must show").

A case runs one :class:`MarketDataSystem` against a fresh simulator on shortened timings
(:func:`matrix_config`), warms it (every kind of read answered once, so last known good data
exists; the router's WebSocket live), takes the thread baseline, then:

1. starts :data:`HOST_THREADS` host threads issuing mixed reads (:class:`HostLoad`) and, for a
   fallback actor's fault, a poker asking that actor directly (at Level 0 nobody else does);
2. injects the fault, waits (bounded, on level-change events) for the level the case expects,
   and keeps the load on for ``hold`` seconds more;
3. clears the fault, stops the load (every thread joined with a timeout: none hung), and
   times the way back to Level 0 against the issue's bound
   ``recovery_interval × (recovery_successes + 1) + probe_interval``;
4. checks the WebSocket fallback is idle again (its client IDLE, its connection gone at the
   simulator) and the thread count back to the baseline (bounded waits).

:func:`check_calls` then asserts the issue's rules on every recorded call. Nothing here
sleeps to synchronise: waits are on conditions with timeouts; the host threads pace their
calls with ``Event.wait`` (so the simulator and the probes, in the same process, get the GIL).
"""

from __future__ import annotations

import collections
import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pykka

from actors.faults import FaultBoard
from actors.messages import (
    Activate,
    Deactivate,
    HealthRequest,
    OrderbookRequest,
    RouterStatus,
    Source,
    TickerRequest,
    WsHealth,
)
from lifeline import Answer, Level, LevelChange, LifelineConfig, MarketDataSystem
from lifeline.answer import AnswerSource
from lifeline.config import UpbitSettings
from lifeline.errors import MarketDataUnavailable
from lifeline.settings import FallbackSettings, FaultSettings, SupervisionSettings
from lifeline.tree import Tree
from quotation.backoff import Backoff, Jitter
from quotation.rest import RestConfig
from quotation.websocket import ConnectionState, WebSocketConfig
from quotation.websocket.liveness import LivenessConfig
from supervisors import SupervisorFlags
from upbit_sim import Simulator

BTC, ETH = "KRW-BTC", "KRW-ETH"
HOST_THREADS = 4
PACE = 0.25
"""Real seconds a host thread waits between two of its calls: 4 threads stay inside Upbit's
REST budget (10/s per group) with the probes' share; far above it the shared limiter makes
the REST fallback fail its calls (Level 3 by the rules), which is not what a case tests."""
SLACK = 0.3
"""Real seconds a call may overrun ``request_deadline`` (thread scheduling on 2 cores)."""
RECOVERY_SLACK = 0.5
"""Real seconds the way back to Level 0 may overrun the issue's bound (keeper polling,
thread scheduling)."""
WAIT = 10.0
"""Real seconds a case waits for its expected level before failing."""
JOIN = 5.0
"""Real seconds a host thread gets to finish once the load stops (else: hung)."""

FALLBACK = FallbackSettings(
    probe_interval=0.2, failure_threshold=3, no_success_timeout=3.0, recovery_interval=0.6,
    recovery_successes=2, router_timeout=0.2, request_deadline=1.5, max_stale_age=30.0,
)
SUPERVISION = SupervisionSettings(
    root=SupervisorFlags(intensity=3, period=10.0),
    router=SupervisorFlags(intensity=5, period=1.5),  # a restart is Level 1 for 1.5 s
    fallbacks=SupervisorFlags(intensity=5, period=10.0),
)


def upbit_for(sim: Simulator, liveness: LivenessConfig | None = None) -> UpbitSettings:
    """``sim``'s REST and WebSocket on short timeouts and a fast, unjittered reconnect
    backoff; ``liveness`` for the WebSocket, else its default."""
    websocket = WebSocketConfig(
        url=sim.ws_url, connect_timeout=1.0,
        backoff=Backoff(initial=0.05, multiplier=2.0, cap=0.2, jitter=Jitter.NONE))
    return UpbitSettings(
        rest=RestConfig(base_url=sim.base_url, connect_timeout=0.5, read_timeout=0.5,
                        total_timeout=1.0, call_deadline=1.2),
        websocket=websocket if liveness is None else replace(websocket, liveness=liveness),
    )


def matrix_config(sim: Simulator, **fallback: Any) -> LifelineConfig:
    """Shortened timings against ``sim``; ``fallback`` overrides :data:`FALLBACK`'s keys."""
    return LifelineConfig(
        upbit=upbit_for(sim, LivenessConfig(ping_interval=0.5, pong_timeout=0.5,
                                            idle_timeout=1.5)),
        fallback=replace(FALLBACK, **fallback),
        supervision=SUPERVISION,
        faults=FaultSettings(enabled=True),
    )


def recovery_bound(config: LifelineConfig) -> float:
    """The issue's bound on fault cleared → Level 0."""
    fb = config.fallback
    return fb.recovery_interval * (fb.recovery_successes + 1) + fb.probe_interval


# -- observing ---------------------------------------------------------------------------------


class Levels:
    """Records level changes (with real receipt times); waits for a level, bounded."""

    def __init__(self, system: MarketDataSystem) -> None:
        self.system = system
        self.seen: list[tuple[float, LevelChange]] = []
        self._changed = threading.Condition()
        system.on_level_change(self._on_change)

    def _on_change(self, change: LevelChange) -> None:
        with self._changed:
            self.seen.append((time.monotonic(), change))
            self._changed.notify_all()

    def wait_for(self, level: Level, timeout: float = WAIT) -> bool:
        """Wait until the level is ``level`` and its change reached this listener (the keeper
        sets the level before it runs the effects and the earlier callbacks)."""
        def settled() -> bool:
            last = self.seen[-1][1].new if self.seen else Level.NORMAL
            return self.system.level is level and last is level

        with self._changed:
            return self._changed.wait_for(settled, timeout)

    def wait_delivered(self, new: Level, timeout: float = WAIT) -> bool:
        """Wait until a change to ``new`` reached this listener: the keeper calls callbacks in
        the order they were registered, so every one registered before it (the system's own
        alerts and log escalation) has then run too. ``wait_for`` may return earlier: the
        level is read from the keeper's state, set before the callbacks run."""
        with self._changed:
            return self._changed.wait_for(
                lambda: any(c.new is new for _, c in self.seen), timeout)

    def max_since(self, since: float) -> Level:
        with self._changed:
            news = [c.new for at, c in self.seen if at >= since]
        return max([self.system.level, *news])

    def changes(self) -> list[LevelChange]:
        with self._changed:
            return [c for _, c in self.seen]


def tree_of(system: MarketDataSystem) -> Tree:
    tree = system._tree
    assert tree is not None, "the system is not running"
    return tree


def ws_health(system: MarketDataSystem, timeout: float = 2.0) -> WsHealth:
    health = tree_of(system).ws.ask(HealthRequest(), timeout=timeout)
    assert isinstance(health, WsHealth)
    return health


def router_status(system: MarketDataSystem, timeout: float = 2.0) -> RouterStatus:
    status = tree_of(system).router.ask(HealthRequest(), timeout=timeout)
    assert isinstance(status, RouterStatus)
    return status


def our_threads() -> collections.Counter[str]:
    """Live threads but the simulator's own (its loop and executor) and the test's, counted
    by name without its serial number (a restarted actor's thread has a new one)."""
    return collections.Counter(
        re.sub(r"[-_]?\d+$", "", t.name) for t in threading.enumerate()
        if not t.name.startswith(("simulator", "asyncio_", "load-", "poke-"))
        and "-deadline-" not in t.name)  # a supervisor's timer per liveness ping: transient


def threads_above(baseline: collections.Counter[str]) -> list[str]:
    return sorted((our_threads() - baseline).elements())


def until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` real seconds passed (for states that
    have no event to wait on: thread counts, the simulator's connection count)."""
    end = time.monotonic() + timeout
    idle = threading.Event()
    while True:
        if predicate():
            return True
        if time.monotonic() >= end:
            return False
        idle.wait(step)


# -- the host's load ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One host read made during a fault."""

    kind: str
    outcome: str
    """``answer``, ``unavailable`` or the name of any other exception raised."""
    started: float
    ended: float
    source: AnswerSource | None = None
    level: Level | None = None
    age: float | None = None
    stale: bool | None = None
    data: Any = None
    error: str | None = None

    @property
    def elapsed(self) -> float:
        return self.ended - self.started


READS: dict[str, Callable[[MarketDataSystem], Answer[Any]]] = {
    "ticker": lambda s: s.get_ticker([BTC, ETH]),
    "orderbook": lambda s: s.get_orderbook([BTC]),
    "trades": lambda s: s.get_trades(BTC, count=5),
    "candles": lambda s: s.get_candles(BTC, "1m", count=5),
}


def read(system: MarketDataSystem, kind: str) -> Call:
    began = time.monotonic()
    try:
        answer = READS[kind](system)
    except MarketDataUnavailable as exc:
        return Call(kind, "unavailable", began, time.monotonic(), error=str(exc))
    except Exception as exc:
        return Call(kind, type(exc).__name__, began, time.monotonic(), error=repr(exc))
    return Call(kind, "answer", began, time.monotonic(), answer.source, answer.level,
                answer.age, answer.stale, answer.data)


class HostLoad:
    """``threads`` host threads, each cycling through :data:`READS` until stopped."""

    def __init__(self, system: MarketDataSystem, threads: int = HOST_THREADS) -> None:
        self.system = system
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        kinds = list(READS)
        self._threads = [
            threading.Thread(target=self._run, args=(kinds[i:] + kinds[:i],),
                             name=f"load-{i}", daemon=True)
            for i in range(threads)]

    def _run(self, kinds: list[str]) -> None:
        index = 0
        while not self._stop.is_set():
            call = read(self.system, kinds[index % len(kinds)])
            index += 1
            with self._lock:
                self.calls.append(call)
            self._stop.wait(PACE)

    def start(self) -> HostLoad:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[str]:
        """Stop and join every thread; the names of those still running (hung)."""
        self._stop.set()
        end = time.monotonic() + JOIN
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        return [t.name for t in self._threads if t.is_alive()]


class Poker:
    """Asks a fallback actor directly, as the facade does at Level 2 (at Level 0 nobody
    asks it, so a fault there would never fire). For ``ws`` it first activates it.

    It asks the REST fallback for an order book: at Level 0 the host's order books come from
    the router's WebSocket snapshots, so that REST group is idle, while the ticker group
    carries the probes (the router's, and, while the REST fallback is failing, a real REST
    ticker per probe: 5/s at probe_interval 0.2 s); a ticker poker on top overran the ticker
    group's budget (10/s) and failed the router's probes: a spurious Level 3."""

    def __init__(self, system: MarketDataSystem, which: str) -> None:
        self.system = system
        self.which = which
        self.outcomes: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poke-{which}", daemon=True)

    def _handle(self) -> Any:
        tree = tree_of(self.system)
        return tree.rest if self.which == "rest" else tree.ws

    def _run(self) -> None:
        if self.which == "ws":
            self._ask(Activate((BTC, ETH)))
        request = OrderbookRequest((BTC,)) if self.which == "rest" else TickerRequest((BTC,))
        while not self._stop.is_set():
            self._ask(request)
            self._stop.wait(0.3)

    def _ask(self, message: object) -> None:
        try:
            self._handle().ask(message, timeout=0.5)
        except Exception as exc:
            self.outcomes[type(exc).__name__] += 1
        else:
            self.outcomes["ok"] += 1

    def start(self) -> Poker:
        self._thread.start()
        return self

    def stop(self) -> bool:
        """Stop; for ``ws`` deactivate the fallback again (bounded retries). Whether done."""
        self._stop.set()
        self._thread.join(JOIN)
        if self.which != "ws":
            return not self._thread.is_alive()

        def deactivated() -> bool:
            try:
                self._handle().ask(Deactivate(), timeout=1.0)
            except Exception:
                return False
            return True

        return until(deactivated, WAIT, step=0.1) and not self._thread.is_alive()


# -- one case ----------------------------------------------------------------------------------


Clear = Callable[[], None]
Inject = Callable[[MarketDataSystem, Simulator], Clear]


@dataclass(frozen=True)
class Case:
    """One row of the matrix: the fault, the level it must reach, and how to drive it."""

    id: str
    level: Level
    inject: Inject
    poke: str | None = None
    """``rest`` / ``ws``: ask that fallback directly during the fault."""
    settings: dict[str, Any] = field(default_factory=dict)
    """FallbackSettings overrides for this case."""
    hold: float = 0.7
    """Real seconds the load stays on once the level is reached."""


@dataclass
class Result:
    case: Case
    config: LifelineConfig
    calls: list[Call]
    hung: list[str]
    reached: Level
    reached_after: float | None
    recovered_after: float | None
    changes: list[LevelChange]
    restarts: dict[str, int]
    children: dict[str, Any]
    final_level: Level
    """The level once everything else was checked (recovery is only over if it is 0)."""
    ws_idle: bool
    sim_ws_connections: int
    sim_ws_sessions: list[str]
    """The simulator's open connections (``describe_sessions``), and the clients' own view
    (:func:`_clients_view`): named in the message when too many are left."""
    clients_view: str
    extra_threads: list[str]
    poke: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counter: collections.Counter[str] = collections.Counter()
        for call in self.calls:
            counter["stale" if call.stale else call.outcome] += 1
        return dict(counter)

    def summary(self) -> str:
        rec = "-" if self.recovered_after is None else f"{self.recovered_after:.2f}s"
        slowest = max((c.elapsed for c in self.calls), default=0.0)
        return (f"{self.case.id}: reached L{int(self.reached)} recovery {rec} calls "
                f"{self.counts()} slowest {slowest:.2f}s restarts {self.restarts} "
                f"poke {self.poke} changes "
                f"{[(int(c.old), int(c.new), c.reason) for c in self.changes]}")


def warm(system: MarketDataSystem, sim: Simulator) -> None:
    """Every kind read until the router's WebSocket is live at the simulator (the markets are
    hot after a few reads), so last known good data exists and the baseline has it."""
    for _ in range(4):
        for kind in READS:
            call = read(system, kind)
            assert call.outcome == "answer", call
    assert sim.ws.wait_for(lambda stats: stats.subscribed >= 1, WAIT), sim.ws.stats()


def run_case(system: MarketDataSystem, sim: Simulator, case: Case) -> Result:
    """Run ``case`` on a started, unfaulted ``system`` (see the module docstring)."""
    config = system.config
    levels = Levels(system)
    warm(system, sim)
    assert levels.wait_for(Level.NORMAL, WAIT), levels.changes()
    baseline = our_threads()
    notes: list[str] = []

    began = time.monotonic()
    load = HostLoad(system).start()
    poker = Poker(system, case.poke).start() if case.poke else None
    clear = case.inject(system, sim)
    reached_after: float | None = None
    if case.level is not Level.NORMAL:
        if levels.wait_for(case.level, WAIT):
            reached_after = time.monotonic() - began
        else:
            notes.append(f"L{int(case.level)} not reached in {WAIT}s")
    hold_until = time.monotonic() + case.hold
    until(lambda: False, max(0.0, hold_until - time.monotonic()))  # the fault window
    reached = levels.max_since(began)

    clear()
    cleared = time.monotonic()
    hung = load.stop()
    poked = poker.stop() if poker is not None else True
    if not poked:
        notes.append("the poker could not finish (fallback still busy)")
    recovered_after: float | None = None
    back = recovery_bound(config) + RECOVERY_SLACK + WAIT
    # Level 0 with every child of the tree running again (one may still wait for its restart
    # backoff, and its absence may move the level once more): the last change to 0 counts.
    if levels.wait_for(Level.NORMAL, back) and until(lambda: _all_running(system), WAIT) and (
            levels.wait_for(Level.NORMAL, back)):
        recovered_after = max(0.0, _back_to_normal_at(levels, cleared) - cleared)

    ws_idle = until(lambda: _ws_idle(system), WAIT)
    router_connected = 1  # the router's own socket may be live; the fallback's must be gone
    until(lambda: sim.ws.stats().connections <= router_connected, WAIT)
    until(lambda: not threads_above(baseline), WAIT)
    extra = threads_above(baseline)
    status = system.status()
    return Result(
        case=case, config=config, calls=list(load.calls), hung=hung, reached=reached,
        reached_after=reached_after, recovered_after=recovered_after,
        changes=levels.changes(), restarts=dict(status.restarts),
        children=dict(status.to_dict()["children"]), final_level=system.level,
        ws_idle=ws_idle,
        sim_ws_connections=sim.ws.stats().connections,
        sim_ws_sessions=sim.ws.describe_sessions(), clients_view=_clients_view(system),
        extra_threads=extra,
        poke=dict(poker.outcomes) if poker else {}, notes=notes)


def run_checked(sim_factory: Callable[..., Simulator], case: Case) -> Result:
    """Run ``case`` on a fresh simulator and system (:func:`matrix_config` with the case's
    settings), print its summary and assert :func:`check_level`, :func:`check_calls` and
    :func:`check_recovery` on it."""
    sim = sim_factory(seed=1, rate_limit=None)
    with started_system(matrix_config(sim, **case.settings)) as system:
        result = run_case(system, sim, case)
    print(result.summary())
    check_level(result)
    check_calls(result)
    check_recovery(result)
    return result


def _back_to_normal_at(levels: Levels, cleared: float) -> float:
    """When the level last became 0 (the real time the change was seen), else now."""
    for at, change in reversed(levels.seen):
        if change.new is Level.NORMAL:
            return max(at, cleared)
    return cleared  # never left Level 0


def _all_running(system: MarketDataSystem) -> bool:
    """Whether root and every child below it runs (none waiting for a restart backoff)."""
    def running(children: dict[str, Any]) -> bool:
        return all(info["state"] == "running" and running(info["children"])
                   for info in children.values())

    children = system.status().to_dict()["children"]
    return bool(children) and running(children)


def _clients_view(system: MarketDataSystem) -> str:
    """The router's and the WebSocket fallback's connection as each client sees it."""
    parts = []
    for name, ask in (("router", router_status), ("ws_fallback", ws_health)):
        try:
            conn = ask(system).connection
        except Exception as exc:  # a diagnostic: say what went wrong
            parts.append(f"{name}: no answer ({type(exc).__name__})")
            continue
        parts.append(f"{name}: {conn.state.value} connects {conn.connects} subscriptions "
                     f"{conn.subscriptions} last_close "
                     f"{None if conn.last_close is None else conn.last_close.value}")
    return "; ".join(parts)


def _ws_idle(system: MarketDataSystem) -> bool:
    try:
        health = ws_health(system, timeout=1.0)
    except Exception:
        return False
    return not health.active and health.connection.state is ConnectionState.IDLE


# -- the checks ------------------------------------------------------------------------


def check_calls(result: Result) -> None:
    """Every call of the fault window: data or a typed error within ``request_deadline``
    (none lost, none hung); ``MarketDataUnavailable`` only in a Level 3 case; Level 3 data
    fresh only from the WebSocket fallback's cache, else stale; stale data from last known
    good or an old WebSocket-fallback cache entry, with its true age."""
    fb = result.config.fallback
    calls = result.calls
    assert not result.hung, f"host threads hung: {result.hung}"
    assert calls, "no host call was made during the fault"
    slow = [c for c in calls if c.elapsed > fb.request_deadline + SLACK]
    assert not slow, f"{len(slow)} calls over request_deadline: {slow[:3]}"
    lost = [c for c in calls if c.outcome not in ("answer", "unavailable")]
    assert not lost, f"untyped outcomes: {lost[:3]}"
    if result.case.level is not Level.LAST_RESORT:
        missing = [c for c in calls if c.outcome == "unavailable"]
        assert not missing, f"MarketDataUnavailable outside Level 3: {missing[:3]}"
    live = sorted((c for c in calls if c.outcome == "answer" and not c.stale),
                  key=lambda c: c.ended)
    for call in calls:
        if call.outcome != "answer":
            continue
        assert call.data, call
        if call.level is Level.LAST_RESORT:
            assert call.stale is True or call.source is Source.WS_FALLBACK, call
        if call.stale:
            assert call.source in (Source.LAST_KNOWN_GOOD, Source.WS_FALLBACK), call
            assert call.age is not None and 0 <= call.age <= fb.max_stale_age, call
            _check_true_age(call, live)


def _check_true_age(stale: Call, live: list[Call]) -> None:
    """A stale answer is at least as old as the newest live answer of its kind before it,
    aged by the time since (its age is the exchange's, not our cache's)."""
    same = [c for c in live if c.kind == stale.kind]
    if any(stale.started < c.ended <= stale.ended for c in same):
        return  # a live answer landed during this call: which one was kept is a race
    before = [c for c in same if c.ended <= stale.started and c.age is not None]
    if not before:
        return
    last = before[-1]
    assert last.age is not None and stale.age is not None
    assert stale.age >= last.age + (stale.started - last.ended) - 0.05, (stale, last)


def check_recovery(result: Result) -> None:
    """Back to Level 0 within the bound; the WebSocket fallback idle, its socket closed at
    the simulator; the threads back to their baseline; restarts within intensity: root
    restarted its children (router_sup, fallback_sup, health_probe: each escalation below
    it) at most its intensity times, never gave up, and runs every child."""
    bound = recovery_bound(result.config) + RECOVERY_SLACK
    assert result.recovered_after is not None, f"never back to Level 0: {result.summary()}"
    assert result.recovered_after <= bound, (
        f"back to Level 0 after {result.recovered_after:.2f}s > {bound:.2f}s: "
        f"{result.summary()}")
    assert result.final_level is Level.NORMAL, (
        f"left Level 0 again after recovering: L{int(result.final_level)}: "
        f"{result.summary()}")
    assert result.ws_idle, "the WebSocket fallback is still active or connected"
    assert result.sim_ws_connections <= 1, (
        f"{result.sim_ws_connections} WebSocket connections at the simulator (only the "
        f"router's may be open): {result.sim_ws_sessions}; the clients: "
        f"{result.clients_view}")
    assert not result.extra_threads, f"threads above the baseline: {result.extra_threads}"
    assert set(result.children) == {"router_sup", "fallback_sup", "health_probe"}
    states = {child: (info["state"] if isinstance(info, dict) else info)
              for child, info in result.children.items()}
    assert all(state == "running" for state in states.values()), result.children
    root_restarts = sum(n for key, n in result.restarts.items() if key.startswith("root/"))
    assert root_restarts <= result.config.supervision.root.intensity, result.restarts


def check_level(result: Result) -> None:
    assert not result.notes, f"{result.notes}: {result.summary()}"
    assert result.reached is result.case.level, (
        f"reached L{int(result.reached)}, expected L{int(result.case.level)}: "
        f"{result.summary()}")


@contextlib.contextmanager
def started_system(config: LifelineConfig) -> Iterator[MarketDataSystem]:
    """A started system, stopped (and every actor gone) afterwards."""
    system = MarketDataSystem.from_config(config)
    system.start()
    try:
        yield system
    finally:
        try:
            board: FaultBoard = system.faults
            board.clear_all()
        finally:
            system.stop()
            pykka.ActorRegistry.stop_all(timeout=WAIT)
