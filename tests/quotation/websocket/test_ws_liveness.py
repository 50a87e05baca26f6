"""Transport liveness decisions: missed pongs and silence, never data staleness."""

from __future__ import annotations

import pytest

from quotation.errors import InvalidValue
from quotation.websocket.liveness import LivenessConfig, Verdict, assess

pytestmark = pytest.mark.timeout(5)

CONFIG = LivenessConfig(ping_interval=20.0, pong_timeout=10.0, idle_timeout=45.0)


def test_fresh_connection_is_ok() -> None:
    assert assess(5.0, CONFIG, last_received=0.0, last_ping_sent=0.0, unanswered_since=None) is (
        Verdict.OK
    )


def test_ping_is_due_after_the_interval() -> None:
    verdict = assess(20.0, CONFIG, last_received=19.0, last_ping_sent=0.0, unanswered_since=None)
    assert verdict is Verdict.PING_DUE


def test_quiet_market_with_answered_pings_is_not_dead() -> None:
    # No data for 40 s, but the last pong came 1 s ago.
    verdict = assess(100.0, CONFIG, last_received=99.0, last_ping_sent=95.0, unanswered_since=None)
    assert not verdict.dead


def test_unanswered_ping_is_a_missed_pong_even_while_data_flows() -> None:
    verdict = assess(100.0, CONFIG, last_received=100.0, last_ping_sent=90.0, unanswered_since=90.0)
    assert verdict is Verdict.MISSED_PONG
    assert verdict.dead


def test_nothing_received_for_the_idle_timeout_is_silent() -> None:
    verdict = assess(100.0, CONFIG, last_received=55.0, last_ping_sent=99.0, unanswered_since=99.0)
    assert verdict is Verdict.SILENT


@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), float("nan")])
def test_config_names_the_bad_threshold_and_its_value(value: float) -> None:
    with pytest.raises(InvalidValue) as info:
        LivenessConfig(pong_timeout=value)
    assert info.value.field == "pong_timeout"
    assert info.value.value is value
