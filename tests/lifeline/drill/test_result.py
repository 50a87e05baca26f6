"""A drill result survives its JSON form exactly, and a bad one names the bad field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lifeline.drill.result import (
    AlertMark,
    Check,
    DrillResult,
    FaultWindow,
    LevelMark,
    PhaseResult,
    ResultFormatError,
    Sample,
    ScenarioInfo,
)

pytestmark = pytest.mark.timeout(10)


def a_result(*, passed: bool = True) -> DrillResult:
    """A small result with every kind of value, None and not None."""
    return DrillResult(
        scenario=ScenarioInfo("crash-loop", "the router crashes", 19.0, "scenarios/x.yaml"),
        config="built-in",
        started_at="2026-11-30T23:40:00.000000+00:00",
        timeline=(
            Sample(0.25, 0, {"smart_router/websocket": 12, "smart_router/rest": 3}, 0,
                   0.0012, 0.0081, 0),
            Sample(0.5, 2, {"rest_fallback": 9}, 1, None, None, 2),
        ),
        faults=(FaultWindow("crash loop", "smart_router", "crash", 3.0, 9.0),
                FaultWindow("black hole", "simulator", "black_hole", 9.0, None)),
        level_changes=(LevelMark(3.4, 0, 2, "router crash loop"), LevelMark(12.0, 2, 0, "")),
        phases=(
            PhaseResult("normal", 0.0, 3.0, 0, 0, 0, requests=40,
                        by_source={"smart_router/websocket": 40}, by_level={0: 40},
                        p50=0.001, p99=0.002, checks=(Check("level 0", True, "stayed 0"),)),
            PhaseResult("crash loop", 3.0, 9.0, 2, 2, 2, 0.4, 0.41, None, 100, 2,
                        {"MarketDataUnavailable": 2}, {"rest_fallback": 98}, {0: 5, 2: 95},
                        0.003, 0.05, 1, 7, 1,
                        (Check("reaches level 2", True, "at 0.4 s"),
                         Check("max_failed 0", passed, "2 failed"))),
        ),
        alerts=(AlertMark(3.5, "level 0 → 2"),),
    )


def test_a_result_round_trips_exactly_through_json() -> None:
    result = a_result()
    text = json.dumps(result.to_dict())
    assert DrillResult.from_dict(json.loads(text)) == result


def test_the_json_form_has_the_contracts_keys_and_version() -> None:
    d = a_result().to_dict()
    assert list(d) == ["version", "scenario", "config", "started_at", "timeline", "faults",
                       "level_changes", "phases", "alerts", "ok"]
    assert d["version"] == 1
    assert d["level_changes"][0] == {"t": 3.4, "from": 0, "to": 2,
                                     "reason": "router crash loop"}
    assert d["phases"][1]["by_level"] == {"0": 5, "2": 95}
    assert d["faults"][1]["end"] is None


def test_ok_is_true_only_when_every_check_of_every_phase_held() -> None:
    assert a_result().ok
    failed = a_result(passed=False)
    assert not failed.ok
    assert failed.to_dict()["ok"] is False
    assert [phase.ok for phase in failed.phases] == [True, False]
    assert len(failed.checks) == 3


def test_a_failed_result_round_trips_too() -> None:
    failed = a_result(passed=False)
    assert DrillResult.from_dict(json.loads(json.dumps(failed.to_dict()))) == failed


def bad(mutate: Any) -> ResultFormatError:
    d = copy.deepcopy(a_result().to_dict())
    mutate(d)
    with pytest.raises(ResultFormatError) as caught:
        DrillResult.from_dict(d)
    return caught.value


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d.update(version=2), "version"),
    (lambda d: d.pop("started_at"), "started_at"),
    (lambda d: d.update(extra=1), "extra"),
    (lambda d: d["scenario"].update(duration="long"), "scenario.duration"),
    (lambda d: d["timeline"][1].update(level=4), "timeline[1].level"),
    (lambda d: d["timeline"][0]["sources"].update(rest_fallback=-1),
     "timeline[0].sources.rest_fallback"),
    (lambda d: d["faults"][0].update(end=float("nan")), "faults[0].end"),
    (lambda d: d["level_changes"][0].update(to=True), "level_changes[0].to"),
    (lambda d: d["phases"][1].update(detection_s="0.4"), "phases[1].detection_s"),
    (lambda d: d["phases"][1]["by_level"].update({"4": 1}), "phases[1].by_level.4"),
    (lambda d: d["phases"][1]["checks"][0].update(ok="yes"), "phases[1].checks[0].ok"),
    (lambda d: d["alerts"].append("x"), "alerts[1]"),
    (lambda d: d.update(timeline={}), "timeline"),
    (lambda d: d.update(ok=False), "ok"),
])
def test_a_bad_field_raises_a_typed_error_naming_its_path(mutate: Any, field: str) -> None:
    error = bad(mutate)
    assert error.field == field
    assert field in str(error)


def test_a_result_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ResultFormatError, match="result must be an object"):
        DrillResult.from_dict([1, 2])
