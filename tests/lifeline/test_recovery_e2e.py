"""Recovery attempts and the Level 2 <-> 3 hysteresis end to end, against the simulator on
the fault matrix's shortened timings (:func:`tests.lifeline.system_support.matrix_config`).

* memory growth: Level 2; the keeper's recovery attempt restarts the router (a leaking router
  answering its probes is not trusted before that); Level 0 once the fault is gone.
* a loaded Level 2 (the router out, the REST fallback slowed by a delay fault, many host
  threads): the probe reads the fallback's published health instead of queuing behind the
  host's requests, so a busy-but-working fallback never reads as failing: no Level 3.
* an idle Level 2 (no host reads) in a backbone outage reaches Level 3: the probe makes its
  own REST check when nobody else calls the fallback.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lifeline import Level, LevelChange, MarketDataSystem
from lifeline.tree import ROUTER_SUP, SMART_ROUTER
from tests.lifeline.system_support import (
    WAIT,
    HostLoad,
    Levels,
    matrix_config,
    recovery_bound,
    started_system,
    until,
    warm,
)
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(90)

ROUTER_RESTARTS = f"{ROUTER_SUP}/{SMART_ROUTER}"
LOADED_THREADS = 8
"""Host threads on a loaded Level 2 (twice the fault matrix's)."""
LOADED_HOLD = 3.0
"""Real seconds a loaded Level 2 is watched for a flap to 3 (15 probe intervals)."""


def _attempts_at_trust(system: MarketDataSystem) -> list[int]:
    """The keeper's recovery attempts so far, recorded at each change back to 0/1."""
    seen: list[int] = []

    def on_change(change: LevelChange) -> None:
        if change.old >= Level.FALLBACK > change.new:
            seen.append(system._keeper.recovery_attempts)

    system.on_level_change(on_change)
    return seen


def test_memory_growth_is_level_2_and_the_recovery_attempt_restarts_the_router(
    sim_factory: Callable[..., Simulator]
) -> None:
    sim = sim_factory(seed=1, rate_limit=None)
    config = matrix_config(sim, memory_limit_mb=8)
    with started_system(config) as system:
        levels = Levels(system)
        warm(system, sim)
        assert levels.wait_for(Level.NORMAL, WAIT), levels.changes()
        trusted_after = _attempts_at_trust(system)
        restarts_before = system.status().restarts.get(ROUTER_RESTARTS, 0)

        leak = system.faults.inject("smart_router", "memory_growth", point="request")
        assert levels.wait_for(Level.FALLBACK, WAIT), levels.changes()
        out = levels.changes()[-1]
        assert (out.new, out.cause and out.cause.value) == (Level.FALLBACK, "memory_growth")
        # The leaking router answers its probes, yet the keeper restarts it on schedule.
        assert until(lambda: system.status().recovery_attempts >= 1, WAIT), system.status()
        assert until(lambda: system.status().restarts.get(ROUTER_RESTARTS, 0)
                     > restarts_before, WAIT), system.status().restarts
        leak.clear()
        assert levels.wait_for(Level.NORMAL, recovery_bound(config) * 4 + WAIT), (
            levels.changes())
        status = system.status()
    assert trusted_after and all(n >= 1 for n in trusted_after), (
        f"trusted again before any recovery attempt: {trusted_after}")
    assert status.recovery_attempts >= 1
    assert status.level is Level.NORMAL


def test_a_loaded_level_2_with_a_slow_rest_fallback_does_not_flap_to_3(
    sim_factory: Callable[..., Simulator]
) -> None:
    sim = sim_factory(seed=1, rate_limit=None)
    config = matrix_config(sim)
    with started_system(config) as system:
        levels = Levels(system)
        warm(system, sim)
        assert levels.wait_for(Level.NORMAL, WAIT), levels.changes()
        # Longer than the probe's deadline (probe_interval, 0.2 s): a health ask queued
        # behind even one host request would miss it.
        system.faults.inject("rest_fallback", "delay", point="request", seconds=0.3)
        system.faults.inject("smart_router", "raise", point="request")
        assert levels.wait_for(Level.FALLBACK, WAIT), levels.changes()
        load = HostLoad(system, threads=LOADED_THREADS).start()
        try:
            until(lambda: False, LOADED_HOLD)  # the window watched: any change to 3 fails
        finally:
            hung = load.stop()
        worst = max([change.new for change in levels.changes()], default=Level.NORMAL)
        answered = sum(call.source == "rest_fallback" for call in load.calls)
    assert hung == []
    assert answered > 0, "the slowed REST fallback answered nothing: not busy-but-working"
    assert worst is Level.FALLBACK, levels.changes()


def test_an_idle_level_2_reaches_level_3_in_a_backbone_outage(
    sim_factory: Callable[..., Simulator]
) -> None:
    sim = sim_factory(seed=1, rate_limit=None)
    config = matrix_config(sim)
    with started_system(config) as system:
        levels = Levels(system)
        warm(system, sim)
        assert levels.wait_for(Level.NORMAL, WAIT), levels.changes()
        sim.faults.black_hole(path_prefix="/v1/")
        sim.ws.set_accepting(False)
        sim.ws.drop_all()
        try:
            reached = levels.wait_for(Level.LAST_RESORT, WAIT)
        finally:
            sim.faults.black_hole(False, path_prefix="/v1/")
            sim.ws.set_accepting(True)
        assert reached, levels.changes()
        assert levels.wait_for(Level.NORMAL, recovery_bound(config) * 4 + WAIT), (
            levels.changes())
