"""The MarketDataSystem facade end to end against the simulator, on shortened timings from
config (probe_interval 0.2 s, failure_threshold 2, recovery_interval 1 s, router_timeout
0.2 s, request_deadline 1.5 s, max_stale_age 30 s): the levels it reaches, where each answer
comes from, and a stop that leaves no actor or thread behind.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import pykka
import pytest

from actors.faults import FaultsDisabled
from actors.messages import HealthRequest, Source, WsHealth
from lifeline import (
    Answer,
    Level,
    LevelChange,
    LifelineConfig,
    MarketDataSystem,
    MarketDataUnavailable,
)
from lifeline.levels import Cause
from lifeline.settings import FallbackSettings, FaultSettings
from quotation.errors import InvalidRequest
from tests.lifeline.system_support import started_system, upbit_for
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

WAIT = 15.0
"""Real seconds a test waits for a level or the threads before failing."""
BTC, ETH = "KRW-BTC", "KRW-ETH"
DEADLINE = 1.5
A = TypeVar("A", bound=Answer[Any])


def config_for(sim: Simulator) -> LifelineConfig:
    return LifelineConfig(
        upbit=upbit_for(sim),
        fallback=FallbackSettings(probe_interval=0.2, failure_threshold=2,
                                  recovery_interval=1.0, router_timeout=0.2,
                                  request_deadline=DEADLINE, max_stale_age=30.0),
        faults=FaultSettings(enabled=True),
    )


class Levels:
    """Records level changes; waits for a level with a bounded timeout."""

    def __init__(self, system: MarketDataSystem) -> None:
        self.system = system
        self.seen: list[LevelChange] = []
        self._changed = threading.Condition()
        system.on_level_change(self._on_change)

    def _on_change(self, change: LevelChange) -> None:
        with self._changed:
            self.seen.append(change)
            self._changed.notify_all()

    def _settled_at(self, level: Level) -> bool:
        last = self.seen[-1].new if self.seen else Level.NORMAL
        return self.system.level is level and last is level

    def wait_for(self, level: Level, timeout: float = WAIT) -> None:
        with self._changed:
            # Also until the change reached this listener: the keeper sets the level before it
            # runs the effects (Activate/Deactivate) and the earlier callbacks, which a test
            # then checks.
            if not self._changed.wait_for(lambda: self._settled_at(level), timeout):
                raise AssertionError(f"level {self.system.level!r}, not {level!r}, "
                                     f"after {timeout} s; changes: {self.seen}")

    def wait_reached(self, level: Level, timeout: float = WAIT) -> None:
        """Wait until a change to ``level`` reached this listener, whatever the level is now
        (callbacks run on their own thread: a level passed through in one probe report, as
        0 -> 2 -> 3, may be gone by the time its change is delivered)."""
        with self._changed:
            if not self._changed.wait_for(lambda: any(c.new is level for c in self.seen),
                                          timeout):
                raise AssertionError(f"no change to {level!r} after {timeout} s; changes: "
                                     f"{self.seen}")


@pytest.fixture
def baseline_threads() -> set[threading.Thread]:
    return set(threading.enumerate())


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator], baseline_threads: set[threading.Thread]
        ) -> Simulator:
    return sim_factory(seed=1, rate_limit=None)


@pytest.fixture
def system(sim: Simulator) -> Iterator[MarketDataSystem]:
    with started_system(config_for(sim)) as started:
        yield started


def ours(baseline: set[threading.Thread]) -> set[threading.Thread]:
    """Threads started since ``baseline``, the simulator's own (its loop and executor) aside."""
    return {thread for thread in set(threading.enumerate()) - baseline
            if not thread.name.startswith(("simulator", "asyncio_"))}


def ws_health(system: MarketDataSystem) -> WsHealth:
    tree = system._tree
    assert tree is not None
    health = tree.ws.ask(HealthRequest(), timeout=WAIT)
    assert isinstance(health, WsHealth)
    return health


def timed(call: Callable[[], A]) -> tuple[A, float]:
    began = time.monotonic()
    answer = call()
    return answer, time.monotonic() - began


def test_a_started_system_is_at_level_0_and_the_router_answers(
    system: MarketDataSystem
) -> None:
    assert system.level is Level.NORMAL
    answer = system.get_ticker([BTC, ETH])
    assert answer.source in (Source.SMART_ROUTER_REST, Source.SMART_ROUTER_WEBSOCKET)
    assert answer.level is Level.NORMAL
    assert [t.market for t in answer.data] == [BTC, ETH]
    assert answer.age is not None and answer.age >= 0
    assert answer.stale is False
    for other in (system.get_candles(BTC, "1m", count=5), system.get_trades(BTC, count=5),
                  system.get_orderbook([BTC])):
        assert other.source.startswith("smart_router/")
        assert other.data
    status = system.status().to_dict()
    assert status["level"] == 0
    assert status["mode"] == "local"
    assert set(status["children"]) == {"router_sup", "fallback_sup", "health_probe"}


def test_an_invalid_request_raises_at_once_without_touching_an_actor(
    system: MarketDataSystem
) -> None:
    injection = system.faults.inject("smart_router", "crash", point="request")
    with pytest.raises(InvalidRequest):
        system.get_ticker(["BTC"])
    with pytest.raises(InvalidRequest):
        system.get_candles(BTC, "7m")
    with pytest.raises(InvalidRequest):
        system.get_trades(BTC, count=0)
    assert injection.fired == 0  # no request reached the router
    assert system.level is Level.NORMAL


def test_a_router_that_raises_is_answered_by_the_rest_fallback_within_the_deadline(
    system: MarketDataSystem
) -> None:
    system.faults.inject("smart_router", "raise", point="request")
    for _ in range(5):
        answer, took = timed(lambda: system.get_ticker([BTC]))
        assert answer.source is Source.REST_FALLBACK
        assert took < DEADLINE
        assert answer.level <= Level.DEGRADED
        assert system.level <= Level.DEGRADED


def test_a_hung_router_is_answered_by_the_rest_fallback_after_router_timeout(
    system: MarketDataSystem
) -> None:
    system.faults.inject("smart_router", "delay", point="request", seconds=1.0, count=1)
    answer, took = timed(lambda: system.get_trades(BTC, count=3))
    assert answer.source is Source.REST_FALLBACK
    assert 0.2 <= took < DEADLINE


def test_a_router_crash_loop_goes_to_level_2_then_back_to_level_0_once_cleared(
    system: MarketDataSystem, sim: Simulator
) -> None:
    levels = Levels(system)
    system.faults.inject("smart_router", "crash", point="request")
    levels.wait_for(Level.FALLBACK)
    assert ws_health(system).active  # the keeper activated the WebSocket fallback
    for _ in range(3):
        answer, took = timed(lambda: system.get_ticker([BTC]))
        assert answer.source in (Source.REST_FALLBACK, Source.WS_FALLBACK)
        assert answer.level is Level.FALLBACK
        assert took < DEADLINE
    system.faults.clear_all()
    levels.wait_for(Level.NORMAL, timeout=1.0 * (3 + 1) + 0.2 + WAIT / 3)
    assert system.get_ticker([BTC]).source.startswith("smart_router/")
    assert [c.new for c in levels.seen][-1] is Level.NORMAL
    assert not ws_health(system).active  # deactivated on the way down


def test_a_backbone_outage_serves_last_known_good_with_its_true_age_and_stale(
    system: MarketDataSystem, sim: Simulator
) -> None:
    levels = Levels(system)
    fresh = system.get_ticker([BTC])
    sim.ws.set_accepting(False)
    sim.ws.drop_all()
    sim.faults.black_hole(path_prefix="/v1/")
    levels.wait_reached(Level.FALLBACK)  # REST may have failed its 3 checks already: 0 -> 2 -> 3
    with pytest.raises(MarketDataUnavailable) as missing:
        system.get_trades(ETH, count=7)  # nothing of it was ever kept
    assert missing.value.age is None
    answer, took = timed(lambda: system.get_ticker([BTC]))  # REST fails: kept data, stale
    assert took < DEADLINE + 0.2
    assert answer.source is Source.LAST_KNOWN_GOOD and answer.stale
    levels.wait_for(Level.LAST_RESORT)
    answer, took = timed(lambda: system.get_ticker([BTC]))
    assert took < 0.2  # no live source is tried at level 3
    assert answer.source is Source.LAST_KNOWN_GOOD
    assert answer.level is Level.LAST_RESORT
    assert answer.stale is True
    assert answer.data == fresh.data
    assert fresh.age is not None and answer.age is not None and answer.age >= fresh.age
    sim.faults.black_hole(False, path_prefix="/v1/")
    sim.ws.set_accepting(True)
    levels.wait_for(Level.NORMAL)


def test_stop_leaves_no_actor_and_no_thread_behind(
    sim: Simulator, baseline_threads: set[threading.Thread]
) -> None:
    system = MarketDataSystem.from_config(config_for(sim))
    try:
        system.start()
        system.faults.inject("smart_router", "crash", point="request", count=1)
        system.get_ticker([BTC])
        Levels(system).wait_for(Level.NORMAL)
    finally:
        system.stop()
    assert pykka.ActorRegistry.get_all() == []
    deadline = time.monotonic() + WAIT
    while (left := ours(baseline_threads)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, sorted(thread.name for thread in left)


def test_faults_are_unreachable_while_disabled(sim: Simulator) -> None:
    system = MarketDataSystem.from_config(replace(config_for(sim), faults=FaultSettings()))
    with pytest.raises(FaultsDisabled):
        system.faults.inject("smart_router", "crash")


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s")
        time.sleep(0.02)


def test_status_nests_the_tree_with_states_and_restarts_and_dumps_as_json(
    system: MarketDataSystem
) -> None:
    system.faults.inject("smart_router", "crash", point="request", count=1)
    system.get_ticker([BTC])  # answered by the REST fallback; the router dies and restarts

    def router_restarted() -> bool:
        children = system.status().to_dict()["children"]
        router = children["router_sup"]["children"]["smart_router"]
        return bool(router["restarts"] == 1 and router["state"] == "running")

    wait_until(router_restarted)
    status = json.loads(json.dumps(system.status().to_dict()))
    children = status["children"]
    assert list(children) == ["router_sup", "fallback_sup", "health_probe"]
    assert {child["state"] for child in children.values()} == {"running"}
    assert list(children["router_sup"]["children"]) == ["smart_router"]
    assert list(children["fallback_sup"]["children"]) == ["rest_fallback", "ws_fallback"]
    assert children["fallback_sup"]["children"]["ws_fallback"] == {
        "state": "running", "restarts": 0, "children": {}}
    assert children["health_probe"]["children"] == {}
    assert status["restarts"] == {"router_sup/smart_router": 1}


def test_a_websocket_dropped_at_the_router_is_level_1_degraded_until_it_is_back(
    system: MarketDataSystem, sim: Simulator
) -> None:
    levels = Levels(system)
    wait_until(lambda: system.get_ticker([BTC]).source is Source.SMART_ROUTER_WEBSOCKET)
    sim.ws.set_accepting(False)
    sim.ws.drop_all()
    levels.wait_for(Level.DEGRADED)
    change = levels.seen[-1]
    assert change.cause is Cause.CHANNEL_DEGRADED
    assert "websocket" in change.reason
    answer = system.get_ticker([BTC])  # REST only, still the router
    assert answer.source is Source.SMART_ROUTER_REST
    assert answer.level is Level.DEGRADED
    sim.ws.set_accepting(True)
    levels.wait_for(Level.NORMAL)
    assert levels.seen[-1].cause is Cause.CHANNEL_RECOVERED
    assert [c.new for c in levels.seen] == [Level.DEGRADED, Level.NORMAL]


def test_stop_ends_a_hang_injected_without_duration_so_every_actor_stops(
    sim: Simulator, baseline_threads: set[threading.Thread]
) -> None:
    system = MarketDataSystem.from_config(config_for(sim))
    try:
        system.start()
        hang = system.faults.inject("smart_router", "hang", point="request")  # no duration
        answer = system.get_candles(BTC, "1m", count=3)  # the router hangs; REST answers
        assert answer.source is Source.REST_FALLBACK
        assert hang.fired == 1
    finally:
        began = time.monotonic()
        system.stop()
    assert time.monotonic() - began < 5.0  # not held up by the hung router
    assert pykka.ActorRegistry.get_all() == []
    deadline = time.monotonic() + WAIT
    while (left := ours(baseline_threads)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, sorted(thread.name for thread in left)


class FailingBuild(MarketDataSystem):
    """A system whose tree cannot be built (after its keeper and dispatcher started)."""

    def _build(self, parts: Any) -> Any:
        raise RuntimeError("no tree today")


def test_a_start_that_fails_after_the_keeper_started_leaves_no_thread(
    sim: Simulator, baseline_threads: set[threading.Thread]
) -> None:
    system = FailingBuild(config_for(sim))
    with pytest.raises(RuntimeError, match="no tree today"):
        system.start()
    deadline = time.monotonic() + WAIT
    while (left := ours(baseline_threads)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, sorted(thread.name for thread in left)
    system.stop()  # nothing left to stop: returns


def test_stop_without_a_tree_stops_the_keeper(sim: Simulator) -> None:
    system = MarketDataSystem.from_config(config_for(sim))
    system._keeper.start()  # e.g. a start that failed before its tree was built
    system.stop()
    assert not [t for t in threading.enumerate() if t.name == "lifeline-keeper" and t.is_alive()]
