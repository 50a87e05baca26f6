"""One way to say "bad value": ``check`` refuses impossible settings with ``InvalidValue``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from quotation.errors import InvalidValue, QuotationError
from quotation.models import Trade
from quotation.values import check, check_all
from quotation.websocket.cache import StreamCache
from quotation.websocket.dedup import TradeDeduper
from quotation.websocket.delivery import BatchDispatcher
from quotation.websocket.gapworker import GapFillWorker
from quotation.websocket.pacing import RateWindow
from tests.fakes import ManualClock

pytestmark = pytest.mark.timeout(5)


def refusal(field: str, value: object, **bounds: float | bool) -> InvalidValue:
    with pytest.raises(InvalidValue) as caught:
        check(field, value, **bounds)  # type: ignore[arg-type]
    return caught.value


# -- bounds ---------------------------------------------------------------------------------


def test_above_is_strict_and_at_least_and_at_most_are_inclusive() -> None:
    check("timeout", 1e-9, above=0)
    check("retries", 0, at_least=0)
    check("fraction", 1.0, at_least=0, at_most=1)
    assert refusal("timeout", 0, above=0).value == 0
    assert refusal("retries", -1, at_least=0).value == -1
    assert refusal("fraction", 1.5, at_most=1).value == 1.5


def test_a_value_without_bounds_only_has_to_be_a_finite_number() -> None:
    check("offset", -1e300)
    assert refusal("offset", "5").value == "5"
    assert refusal("offset", None).value is None


# -- what is not a number -------------------------------------------------------------------


@pytest.mark.parametrize("finite", [True, False])
def test_nan_is_always_refused(finite: bool) -> None:
    error = refusal("window", math.nan, finite=finite)
    assert error.field == "window"
    assert math.isnan(error.value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinity_is_refused_unless_the_field_allows_it(value: float) -> None:
    assert refusal("read_timeout", value).value == value
    check("max_age", math.inf, above=0, finite=False)


def test_an_allowed_infinity_still_has_to_be_within_the_bounds() -> None:
    assert refusal("max_age", -math.inf, above=0, finite=False).value == -math.inf


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_never_a_number(value: bool, integer: bool) -> None:
    assert refusal("pool_size", value, integer=integer).value is value


def test_an_integer_field_refuses_a_float_even_a_whole_one() -> None:
    check("pool_size", 3, at_least=1, integer=True)
    assert refusal("pool_size", 3.0, at_least=1, integer=True).value == 3.0
    assert refusal("pool_size", 0, at_least=1, integer=True).value == 0


# -- what the error says --------------------------------------------------------------------


def test_the_message_names_the_field_the_bound_and_the_value() -> None:
    assert str(refusal("read_timeout", -1, above=0)) == "read_timeout must be > 0, got -1"
    assert str(refusal("margin", -0.5, at_least=0)) == "margin must be >= 0, got -0.5"
    assert str(refusal("spread", 2, at_most=0.5)) == "spread must be <= 0.5, got 2"
    assert str(refusal("pool_size", 1.5, integer=True)) == (
        "pool_size must be an integer, got 1.5"
    )
    assert str(refusal("read_timeout", math.inf)) == "read_timeout must be finite, got inf"


def test_invalid_value_is_a_quotation_error_and_a_value_error() -> None:
    error = refusal("window", -1, above=0)
    assert isinstance(error, QuotationError)
    assert isinstance(error, ValueError)


@dataclass(frozen=True, slots=True)
class _Timeouts:
    connect: float = 1.0
    read: float = 2.0


def test_check_all_names_the_first_bad_attribute() -> None:
    check_all(_Timeouts(), ("connect", "read"), above=0)
    with pytest.raises(InvalidValue) as caught:
        check_all(_Timeouts(read=0.0), ("connect", "read"), above=0)
    assert (caught.value.field, caught.value.value) == ("read", 0.0)


# -- the components use it ------------------------------------------------------------------


class _NoTrades:
    def get_trades(self, market: str, *, count: int = 1, cursor: int | None = None) -> list[Trade]:
        return []


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: StreamCache(max_trades=0), "max_trades"),
        (lambda: StreamCache(max_candles=-1), "max_candles"),
        (lambda: StreamCache(max_gaps=0), "max_gaps"),
        (lambda: TradeDeduper(0), "capacity"),
        (lambda: BatchDispatcher(capacity=0), "capacity"),
        (lambda: GapFillWorker(_NoTrades(), clock=ManualClock(), capacity=0), "capacity"),
        (lambda: GapFillWorker(_NoTrades(), clock=ManualClock(), page_size=0), "page_size"),
        (lambda: GapFillWorker(_NoTrades(), clock=ManualClock(), max_pages=0), "max_pages"),
        (lambda: RateWindow(0, 1.0), "max_events"),
        (lambda: RateWindow(5, math.inf), "window"),
    ],
)
def test_every_websocket_component_refuses_an_impossible_size_naming_it(
    build: Callable[[], object], field: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        build()
    assert caught.value.field == field
