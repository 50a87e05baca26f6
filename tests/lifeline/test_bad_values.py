"""One way to say "this value is wrong" (issue 7 item 3) in ``lifeline`` too: each class's
impossible constructor number is refused by ``quotation.values.check``, an ``InvalidValue``
naming the argument and the value given, before anything is started."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import pytest

from lifeline.checklist import Checklist
from lifeline.demo import demo_scenario
from lifeline.drill.scenario import ScenarioError
from lifeline.escalation import LogEscalation
from lifeline.keeper import HostCallbacks
from lifeline.last_good import LastKnownGood
from lifeline.selfcheck import SelfCheck
from quotation.errors import InvalidValue
from tests.fakes import ManualClock

pytestmark = pytest.mark.timeout(10)

NO_SYSTEM = cast(Any, None)
"""The checks run before the system is touched."""


def _self_check(**numbers: float) -> SelfCheck:
    return SelfCheck(ManualClock(), {"router": lambda: "ok"}, at=None,
                     alert=lambda *_: None, **numbers)


def _escalation(window: float) -> LogEscalation:
    return LogEscalation(ManualClock(), schedule=lambda *_: None, window=window)


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [
        (lambda: Checklist(NO_SYSTEM, interval=0.0), "interval", 0.0),
        (lambda: Checklist(NO_SYSTEM, timeout=-1.0), "timeout", -1.0),
        (lambda: Checklist(NO_SYSTEM, interval=math.nan), "interval", math.nan),
        (lambda: _self_check(deadline=0.0), "deadline", 0.0),
        (lambda: _self_check(poll=math.inf), "poll", math.inf),
        (lambda: _escalation(0.0), "window", 0.0),
        (lambda: _escalation(-300.0), "window", -300.0),
        (lambda: HostCallbacks(limit=0), "limit", 0),
        (lambda: HostCallbacks(limit=cast(Any, 2.5)), "limit", 2.5),
        (lambda: LastKnownGood(max_pages=1), "max_pages", 1),
        (lambda: LastKnownGood(max_series=0), "max_series", 0),
    ],
)
def test_an_impossible_constructor_number_is_an_invalid_value_naming_it(
    build: Callable[[], object], field: str, value: float
) -> None:
    with pytest.raises(InvalidValue) as caught:
        build()
    assert caught.value.field == field
    got = caught.value.value
    assert got == value or (math.isnan(value) and isinstance(got, float) and math.isnan(got))
    assert str(caught.value).startswith(f"{field} must be ")


@pytest.mark.parametrize(("scale", "complaint"), [
    (0.0, "time_scale must be > 0, got 0.0"),
    (4.5, "time_scale must be <= 4, got 4.5"),
    (math.nan, "time_scale must be a number, got nan"),
])
def test_the_demos_time_scale_is_checked_by_the_same_rule(scale: float, complaint: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        demo_scenario(scale)
    assert (caught.value.path, str(caught.value)) == ("time_scale", f"time_scale: {complaint}")
