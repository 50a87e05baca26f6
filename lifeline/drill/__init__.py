"""Fault drills: run a scenario against the embedded simulator under load and measure it.

::

    from lifeline.drill import load_scenario, run_drill
    result = run_drill(load_scenario("scenarios/level2-crash-loop.yaml"),
                       load_config("scenarios/drill-config.yaml"))
    result.ok; result.phases[1].detection_s; result.to_dict()

Modules: ``result`` (what a run measured, and its JSON form), ``report`` (text tables),
``progress`` (the live status line), ``plot`` (a PNG timeline; the ``plot`` extra),
``scenario`` (the scenario YAML, strictly parsed), ``load`` (the synthetic trading host),
``faults`` (fault steps against the actors and the simulator) and ``runner`` (``run_drill``).
"""

from lifeline.drill.result import DrillResult
from lifeline.drill.runner import DrillError, run_drill
from lifeline.drill.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

__all__ = [
    "DrillError",
    "DrillResult",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
    "run_drill",
]
