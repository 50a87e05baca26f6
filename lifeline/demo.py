"""``lifeline demo``: the whole exit strategy, end to end, in well under two minutes.

It runs the built-in timeline (:func:`demo_scenario`) on the drill engine
(:func:`lifeline.drill.runner.run_drill`): an embedded simulator, a
:class:`~lifeline.MarketDataSystem` against it under the demo's config (:func:`demo_config`:
the defaults with shortened timings, the simulator's seed from the config file),
a synthetic trading host (four threads reading tickers, candles, trades and order books of
three markets, one realtime trade subscription), and the timeline::

    normal                          nothing wrong                           Level 0
    level 1: websocket refused      the exchange refuses and drops the      Level 1
                                    router's WebSocket; it routes to REST
    level 2: router crash loop      ... and the router crashes on every     Level 2
                                    request until router_sup gives up
    level 3: rest black-holed too   the router's crash ends as the backbone Level 3
                                    goes down (REST answers nothing, the
                                    WebSocket refused): no source is left
    recovery                        every fault cleared                     back to Level 0

A live status line shows the level, the source mix, latency and restarts (plain lines when
not on a terminal); the summary table (:func:`lifeline.drill.report.summary_table`) follows.
The demo passes (exit 0) only if every phase behaved as the timeline expects: the level it
reached, detection and recovery within their limits, no failed request but the typed
``MarketDataUnavailable`` at Level 3, every call within its deadline.

``time_scale`` (``lifeline demo --time-scale``) shortens every phase by that factor (the tests
use 0.5); the limits stay as they are, so a scale at which a limit no longer fits inside its
phase is refused, naming it. ``lifeline demo --clients`` is the clients-only rehearsal
(:mod:`lifeline.demo_clients`). Without ``--log-level`` the CLI shows only CRITICAL log
records on stderr during the demo (its summary lists the alerts).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, TextIO

from lifeline.config import LifelineConfig, parse_config
from lifeline.drill.progress import Progress
from lifeline.drill.report import summary_table
from lifeline.drill.result import Sample
from lifeline.drill.runner import DrillError, run_drill
from lifeline.drill.scenario import Scenario, ScenarioError, parse_scenario
from quotation.clock import Clock, SystemClock
from quotation.errors import InvalidValue
from quotation.values import check

__all__ = ["DEMO_CONFIG", "DEMO_TIMELINE", "demo_config", "demo_scenario", "run_demo"]

DEMO_CONFIG: dict[str, Any] = {
    "upbit": {
        "rest": {"connect_timeout": 0.5, "read_timeout": 0.5, "total_timeout": 1.0,
                 "call_deadline": 1.2},
        "websocket": {"connect_timeout": 1.0,
                      "liveness": {"ping_interval": 0.5, "pong_timeout": 0.5,
                                   "idle_timeout": 1.5},
                      "backoff": {"initial": 0.05, "cap": 0.2}},
    },
    "fallback": {"probe_interval": 0.5, "no_success_timeout": 3.0, "recovery_interval": 1.0,
                 "recovery_successes": 2, "router_timeout": 0.2, "request_deadline": 1.5,
                 "max_stale_age": 30.0},
    "supervision": {"router": {"strategy": "one_for_one", "intensity": 5, "period": 1.5}},
    "operator": {"debug_window": 5.0},
}
"""The demo's config over the defaults: the shortened timings of
``scenarios/drill-config.yaml`` (detection and recovery in seconds; the defaults wait minutes
before a recovery), except ``probe_interval`` 0.5 s (not 0.2) and so ``recovery_interval``
1.0 s (at least ``recovery_successes`` probes): every probe reads a ticker, and at 0.2 s the
router's probe alone takes half of Upbit's 10/s ticker budget; right after a recovery, while
the router still reads tickers over REST, its probes then waited in the shared rate limiter
past their 0.2 s deadline and sent the system back to Level 2 (11 of 13 runs at scale 0.5)."""

_ROUTER_CRASH = {"actor": "smart_router", "kind": "crash", "point": "request"}
DEMO_TIMELINE: dict[str, Any] = {
    "name": "demo",
    "description": "normal, then Level 1, 2 and 3 one after the other, then back to Level 0",
    "load": {"threads": 4, "markets": ["KRW-BTC", "KRW-ETH", "KRW-XRP"], "pause": 0.25,
             "subscribe": "trade"},
    "phases": [
        {"name": "normal", "duration": 4.0, "expect": {"level": 0, "max_failed": 0}},
        {"name": "level 1: websocket refused", "duration": 8.0,
         "faults": [{"simulator": "ws_refuse"}],
         "expect": {"level": 1, "detect_within": 3.0, "max_failed": 0}},
        {"name": "level 2: router crash loop", "duration": 8.0,
         "faults": [{"simulator": "ws_refuse"}, _ROUTER_CRASH],
         "expect": {"level": 2, "detect_within": 3.0, "max_failed": 0}},
        {"name": "level 3: rest black-holed too", "duration": 8.0,
         "faults": [{"simulator": "backbone"}],
         "expect": {"level": 3, "detect_within": 4.0}},
        {"name": "recovery", "duration": 24.0, "expect": {"level": 0, "recover_within": 11.0}},
    ],
}
"""The built-in timeline, in the scenario format of ``scenarios/README.md`` (each phase's
faults are on for that phase only, hence repeated). Level 3 keeps no router crash: the
router is out anyway without the exchange, and a crash loop much longer than 8 s under these
timings (a recovery attempt every few seconds, each exhausting router_sup) would exceed
root's restart intensity and take the whole tree down."""

_WHAT = {
    "normal": "nothing wrong: the smart router serves (Level 0)",
    "level 1: websocket refused": "the exchange refuses and drops the router's WebSocket; "
                                  "the router routes to REST (Level 1)",
    "level 2: router crash loop": "... and the router crashes on every request until "
                                  "router_sup gives up; the fallbacks serve (Level 2)",
    "level 3: rest black-holed too": "the backbone goes down: REST answers nothing, the "
                                     "WebSocket is refused; the router cannot come back; "
                                     "last known good data, marked stale (Level 3)",
    "recovery": "every fault cleared: back to the router (Level 0)",
}


def demo_scenario(time_scale: float = 1.0) -> Scenario:
    """The built-in timeline, each phase ``time_scale`` times as long (the limits unchanged)."""
    try:
        check("time_scale", time_scale, above=0, at_most=4)
    except InvalidValue as exc:
        raise ScenarioError("time_scale", str(exc)) from None
    scenario = parse_scenario(DEMO_TIMELINE, file="built-in demo timeline")
    return dataclasses.replace(scenario, phases=tuple(
        dataclasses.replace(phase, duration=round(phase.duration * time_scale, 3))
        for phase in scenario.phases))


def demo_config(config: LifelineConfig | None = None) -> LifelineConfig:
    """:data:`DEMO_CONFIG` over the defaults, with ``config``'s ``simulator`` section (its
    seed) when given."""
    demo = parse_config(DEMO_CONFIG)
    return demo if config is None else dataclasses.replace(demo, simulator=config.simulator)


def run_demo(config: LifelineConfig | None = None, *, out: TextIO | None = None,
             time_scale: float = 1.0, tty: bool | None = None,
             clock: Clock | None = None) -> int:
    """Run the demo (module docstring); 0 when every phase behaved as expected, 1 when one
    did not or the run could not be carried out, 2 for a ``time_scale`` too short.

    ``config`` gives the simulator's seed; ``out`` defaults to standard output; ``tty``
    (default: ``out.isatty()``) chooses the live status line's mode.
    """
    stream = out if out is not None else sys.stdout
    clock = clock if clock is not None else SystemClock()
    started = clock.monotonic()

    def say(text: str = "") -> None:
        print(text, file=stream, flush=True)

    try:
        scenario = demo_scenario(time_scale)
    except ScenarioError as exc:
        say(f"lifeline demo: --time-scale {time_scale:g} does not fit the timeline: {exc}")
        return 2
    settings = demo_config(config)
    load = scenario.load
    say("lifeline demo: the exit strategy end to end against an embedded simulator "
        f"(seed {settings.simulator.seed})")
    say(f"host: {load.threads} threads reading tickers, candles, trades and order books of "
        f"{', '.join(load.markets)}; one realtime {load.subscribe} subscription")
    say(f"timeline ({scenario.duration:g} s):")
    at = 0.0
    for phase in scenario.phases:
        say(f"  {at:5.1f} s  {phase.name:<30} {_WHAT.get(phase.name, '')}")
        at += phase.duration
    say()

    progress = Progress(stream, tty=tty)
    shown: list[str] = []

    def on_sample(sample: Sample, phase: str) -> None:
        if not shown or shown[-1] != phase:
            shown.append(phase)
            progress.message(f"-- {phase}")
        progress.update(sample, phase)

    try:
        result = run_drill(scenario, settings, on_sample=on_sample,
                           config_name="built-in demo config", clock=clock)
    except ScenarioError as exc:
        progress.close()
        say(f"lifeline demo: --time-scale {time_scale:g} does not fit the timeline: {exc}")
        return 2
    except DrillError as exc:
        progress.close()
        say(f"lifeline demo: could not run: {exc}")
        return 1
    progress.close()
    say()
    say(summary_table(result))
    passed = sum(phase.ok for phase in result.phases)
    say(f"\ndemo: {'ok' if result.ok else 'FAILED'}: {passed} of {len(result.phases)} phases "
        f"as expected, in {clock.monotonic() - started:.1f} s")
    return 0 if result.ok else 1
