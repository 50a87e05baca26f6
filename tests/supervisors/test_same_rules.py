"""What ``supervisors`` restates because it may not import ``quotation`` (the import rule,
``tests/test_architecture.py``) stays the same rule as the original: its range check
(``supervisors.spec.check_number``) accepts and refuses exactly what ``quotation.values.check``
does, and the one ``Backoff`` is what a ``ChildSpec`` takes for its restart delay."""

from __future__ import annotations

import math

import pytest

from quotation.backoff import RESTART_BACKOFF, Backoff, Jitter
from quotation.errors import InvalidValue
from quotation.values import check
from supervisors import SpecError
from supervisors.spec import ChildSpec, RestartBackoff, check_number
from tests.supervisors.scripted import ScriptedChild

pytestmark = pytest.mark.timeout(10)

VALUES: tuple[object, ...] = (
    -1, -0.5, 0, 0.0, 1e-9, 0.5, 1, 2, 10**6, math.inf, -math.inf, math.nan,
    True, False, "1", None, [1],
)
BOUNDS = ((0.0, True), (0.0, False), (1.0, False), (1.0, True), (-1.0, False))
"""(minimum, strict): strict is ``check(above=minimum)``, else ``check(at_least=minimum)``."""


def _supervisors_accepts(value: object, minimum: float, strict: bool) -> bool:
    try:
        check_number(value, "x", "invalid_x", minimum=minimum, strict=strict)
    except SpecError as exc:
        assert (exc.field, exc.value) == ("x", value)
        return False
    return True


def _quotation_accepts(value: object, minimum: float, strict: bool) -> bool:
    # check_number leaves infinity to its callers (a shutdown of math.inf waits forever).
    try:
        if strict:
            check("x", value, finite=False, above=minimum)
        else:
            check("x", value, finite=False, at_least=minimum)
    except InvalidValue as exc:
        assert (exc.field, exc.value) == ("x", value)
        return False
    return True


@pytest.mark.parametrize(("minimum", "strict"), BOUNDS)
def test_supervisions_range_check_accepts_exactly_what_quotations_does(
    minimum: float, strict: bool
) -> None:
    supervisors = [v for v in VALUES if _supervisors_accepts(v, minimum, strict)]
    quotation = [v for v in VALUES if _quotation_accepts(v, minimum, strict)]
    assert supervisors == quotation
    assert supervisors  # the bounds leave something to accept


@pytest.mark.parametrize("backoff", [
    RESTART_BACKOFF,
    Backoff(initial=0.5, cap=8.0, jitter=Jitter.FULL),
])
def test_a_child_spec_takes_the_one_backoff_for_its_restart_delay(backoff: Backoff) -> None:
    assert isinstance(backoff, RestartBackoff)
    spec = ChildSpec(id="a", start=ScriptedChild, backoff=backoff)
    assert spec.backoff is backoff
    assert [spec.backoff.delay(n, 0.0) for n in (1, 2)] == [backoff.delay(n, 0.0) for n in (1, 2)]
