"""The facade's router circuit breaker (lifeline.breaker) end to end against the simulator.

Config from test_system's, with ``probe_interval`` 0.3 s (the breaker's first cooldown) and
``no_success_timeout`` 30 s. The health probe is struck at its own ``probe`` point for the
whole test (a probe that fails itself blames nothing, so the level stays 0/1, and it never
reaches the router's ``request`` point): the router fault's ``fired`` count is then the
host's requests that reached the router, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from actors.faults import Injection
from actors.messages import Source
from lifeline import Level, MarketDataSystem
from tests.lifeline.system_support import started_system
from tests.lifeline.test_system import DEADLINE, config_for, timed, wait_until
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

ETH = "KRW-ETH"
"""Asked for candles: never answered from a cache, so every read reaches an actor."""
COOLDOWN = 0.3


@pytest.fixture
def system(sim_factory: Any) -> Iterator[MarketDataSystem]:
    sim: Simulator = sim_factory(seed=1, rate_limit=None)
    config = config_for(sim)
    config = replace(config, fallback=replace(config.fallback, probe_interval=COOLDOWN,
                                              no_success_timeout=30.0))
    with started_system(config) as started:
        yield started


def breaker(system: MarketDataSystem) -> dict[str, Any]:
    view = system.status().to_dict()["router_breaker"]
    assert isinstance(view, dict)
    return view


def probe_blinded(system: MarketDataSystem) -> None:
    """The probe fails itself from now on; returns once it has (a probe already past its
    point before the injection has then finished with the router)."""
    blind = system.faults.inject("health_probe", "raise", point="probe")
    wait_until(lambda: blind.fired >= 1)


def open_breaker(system: MarketDataSystem) -> Injection:
    """Two candles requests the router fails: the breaker opens; the router's injection."""
    fault = system.faults.inject("smart_router", "raise", point="request")
    for _ in range(2):
        answer = system.get_candles(ETH, "1m", count=3)
        assert answer.source is Source.REST_FALLBACK
    assert fault.fired == 2
    assert breaker(system)["state"] == "open"
    assert breaker(system)["failures"] == 2
    return fault


def test_two_raising_requests_open_the_breaker_and_the_third_skips_the_router(
    system: MarketDataSystem
) -> None:
    probe_blinded(system)
    assert breaker(system) == {"state": "closed", "failures": 0, "open_until": None}
    fault = open_breaker(system)
    answer, took = timed(lambda: system.get_candles(ETH, "1m", count=3))
    assert answer.source is Source.REST_FALLBACK
    assert answer.level is system.level
    assert answer.level <= Level.DEGRADED
    assert answer.data
    assert took < DEADLINE
    assert fault.fired == 2  # the router was not asked
    assert breaker(system)["state"] == "open"


def test_after_the_cooldown_one_trial_goes_to_the_router_and_success_closes_it(
    system: MarketDataSystem
) -> None:
    probe_blinded(system)
    fault = open_breaker(system)
    first_until = breaker(system)["open_until"]
    wait_until(lambda: breaker(system)["state"] == "half_open")
    answer = system.get_candles(ETH, "1m", count=3)  # the trial: the fault still on
    assert answer.source is Source.REST_FALLBACK
    assert fault.fired == 3  # it went to the router
    reopened = breaker(system)
    assert reopened["state"] == "open"
    assert reopened["failures"] == 3
    assert reopened["open_until"] - first_until >= 2 * COOLDOWN - 0.05  # the longer delay
    fault.clear()
    assert system.get_candles(ETH, "1m", count=3).source is Source.REST_FALLBACK  # still open
    wait_until(lambda: breaker(system)["state"] == "half_open")
    answer = system.get_candles(ETH, "1m", count=3)  # the trial, the fault cleared
    assert answer.source is Source.SMART_ROUTER_REST
    assert breaker(system) == {"state": "closed", "failures": 0, "open_until": None}
    assert system.get_candles(ETH, "1m", count=3).source is Source.SMART_ROUTER_REST
