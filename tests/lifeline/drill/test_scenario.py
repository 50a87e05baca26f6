"""Scenario YAML: strict parsing (each error names its key path) and the refusal of timings
that cannot hold under a config."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from lifeline.config import LifelineConfig, load_config
from lifeline.drill.scenario import (
    ScenarioError,
    apply_overrides,
    check_fits,
    load_scenario,
    parse_scenario,
    recovery_bound,
)

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
DRILL_CONFIG = SCENARIOS / "drill-config.yaml"

GOOD: dict[str, Any] = {
    "name": "crash-loop",
    "description": "the router crashes on every request",
    "load": {"threads": 2, "markets": ["KRW-BTC", "KRW-ETH"], "pause": 0.1,
             "subscribe": "trade"},
    "phases": [
        {"name": "normal", "duration": 1.0, "expect": {"level": 0}},
        {"name": "crash loop", "duration": 3.0,
         "faults": [{"actor": "smart_router", "kind": "crash", "point": "request"},
                    {"simulator": "http_5xx", "status": 502, "fraction": 0.5}],
         "expect": {"level": 2, "detect_within": 2.0, "max_failed": 0}},
        {"name": "recovery", "duration": 4.0, "expect": {"level": 0, "recover_within": 3.0}},
    ],
}


def spoiled(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    change(data)
    return data


def error_of(data: object) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data)
    return caught.value


def test_a_good_scenario_parses_into_its_phases_faults_and_expectations() -> None:
    scenario = parse_scenario(GOOD)
    assert scenario.name == "crash-loop"
    assert scenario.duration == 8.0
    assert scenario.load.threads == 2 and scenario.load.markets == ("KRW-BTC", "KRW-ETH")
    crash, errors = scenario.phases[1].faults
    assert (crash.target, crash.kind, crash.option("point")) == ("smart_router", "crash",
                                                                 "request")
    assert (errors.target, errors.kind, errors.option("status")) == ("simulator", "http_5xx",
                                                                     502)
    assert scenario.phases[1].expect.detect_within == 2.0
    assert scenario.phases[2].expect.recover_within == 3.0


@pytest.mark.parametrize(("change", "path"), [
    (lambda d: d.update(nmae="x"), "nmae"),
    (lambda d: d.pop("phases"), "phases"),
    (lambda d: d.update(phases=[]), "phases"),
    (lambda d: d["load"].update(threads="4"), "load.threads"),
    (lambda d: d["load"].update(threads=0), "load.threads"),
    (lambda d: d["load"].update(markets=["btc"]), "load.markets[0]"),
    (lambda d: d["load"].update(subscribe="candles"), "load.subscribe"),
    (lambda d: d["phases"][0].update(duration="1s"), "phases[0].duration"),
    (lambda d: d["phases"][0].update(duration=0), "phases[0].duration"),
    (lambda d: d["phases"][2].update(name="normal"), "phases[2].name"),
    (lambda d: d["phases"][0]["expect"].update(level=4), "phases[0].expect.level"),
    (lambda d: d["phases"][0]["expect"].update(levle=0), "phases[0].expect.levle"),
    (lambda d: d["phases"][1]["expect"].update(max_failed=-1), "phases[1].expect.max_failed"),
    (lambda d: d["phases"][1]["faults"][0].update(kind="explode"), "phases[1].faults[0].kind"),
    (lambda d: d["phases"][1]["faults"][0].update(actor="router"),
     "phases[1].faults[0].actor"),
    (lambda d: d["phases"][1]["faults"][0].update(kind="corrupt", point="request"),
     "phases[1].faults[0].point"),
    (lambda d: d["phases"][1]["faults"][0].update(seconds=0.5), "phases[1].faults[0].seconds"),
    (lambda d: d["phases"][1]["faults"][0].update(count="3"), "phases[1].faults[0].count"),
    (lambda d: d["phases"][1]["faults"][0].update(simulator="black_hole"),
     "phases[1].faults[0]"),
    (lambda d: d["phases"][1]["faults"][1].update(simulator="meteor"),
     "phases[1].faults[1].simulator"),
    (lambda d: d["phases"][1]["faults"][1].update(status=200), "phases[1].faults[1].status"),
    (lambda d: d["phases"][1]["faults"][1].update(seconds=1), "phases[1].faults[1].seconds"),
    (lambda d: d.update(config={"fallback": {"probe_intervall": 1}}),
     "config.fallback.probe_intervall"),
    (lambda d: d.update(config={"upbit": {}}), "config.upbit"),
])
def test_each_mistake_is_a_scenario_error_naming_its_key_path(change: Any, path: str) -> None:
    error = error_of(spoiled(change))
    assert error.path == path
    assert str(error).startswith(f"{path}:")


def test_a_scenario_that_is_not_a_mapping_is_refused() -> None:
    assert "must be a mapping" in str(error_of(["phases"]))


def test_the_file_leads_the_message_of_a_bad_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nphases:\n  - {name: a, duration: 1, expect: {level: 7}}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.path == "phases[0].expect.level"
    assert str(caught.value).startswith(f"{path}: phases[0].expect.level:")


def test_a_file_that_is_not_yaml_is_a_scenario_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(str(path))


def test_recover_within_below_the_configs_recovery_bound_is_refused_naming_the_key() -> None:
    config = load_config(DRILL_CONFIG)
    bound = recovery_bound(config)
    assert bound == pytest.approx(2.0)
    data = spoiled(lambda d: d["phases"][2]["expect"].update(recover_within=1.5))
    with pytest.raises(ScenarioError) as caught:
        check_fits(parse_scenario(data), config)
    assert caught.value.path == "phases[2].expect.recover_within"
    assert "shorten fallback.recovery_interval" in str(caught.value)


def test_the_default_configs_recovery_bound_refuses_every_shipped_scenario() -> None:
    scenario = load_scenario(SCENARIOS / "level2-crash-loop.yaml")
    with pytest.raises(ScenarioError) as caught:
        check_fits(scenario, LifelineConfig())
    assert "recovery bound is 1201 s" in str(caught.value)


@pytest.mark.parametrize(("change", "path"), [
    (lambda d: d["phases"][1]["expect"].update(detect_within=3.5),
     "phases[1].expect.detect_within"),
    (lambda d: d["phases"][2]["expect"].update(recover_within=4.5),
     "phases[2].expect.recover_within"),
    (lambda d: d["phases"][0]["expect"].update(recover_within=0.5),
     "phases[0].expect.recover_within"),
])
def test_a_limit_the_phase_cannot_show_is_refused(change: Any, path: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        check_fits(parse_scenario(spoiled(change)), load_config(DRILL_CONFIG))
    assert caught.value.path == path


def test_config_keys_of_a_scenario_are_applied_and_fault_injection_switched_on() -> None:
    data = spoiled(lambda d: d.update(config={"fallback": {"memory_limit_mb": 16}}))
    config = apply_overrides(parse_scenario(data), load_config(DRILL_CONFIG))
    assert config.fallback.memory_limit_mb == 16
    assert config.fallback.probe_interval == 0.2  # the rest as the file says
    assert config.faults.enabled


def test_a_config_key_that_breaks_a_rule_of_the_config_names_its_path() -> None:
    data = spoiled(lambda d: d.update(config={"fallback": {"router_timeout": 5.0}}))
    with pytest.raises(ScenarioError) as caught:
        apply_overrides(parse_scenario(data), load_config(DRILL_CONFIG))
    assert caught.value.path == "config.fallback.router_timeout"


def test_every_shipped_scenario_parses_and_fits_the_drill_config() -> None:
    config = load_config(DRILL_CONFIG)
    files = sorted(p for p in SCENARIOS.glob("*.yaml") if p.name != "drill-config.yaml")
    assert len(files) == 8
    for path in files:
        scenario = load_scenario(path)
        check_fits(scenario, apply_overrides(scenario, config))
        assert scenario.duration <= 25.0, path
        assert dataclasses.replace(scenario).phases == scenario.phases
