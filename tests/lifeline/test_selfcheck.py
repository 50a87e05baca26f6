"""The daily self-check (issue 10 item 7): its schedule on a ManualClock (00:00 KST is 15:00
UTC), and real runs against the simulator whose failures reach a local webhook receiver."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from lifeline.selfcheck import SelfCheck, next_run, system_parts
from lifeline.system import MarketDataSystem
from tests.fakes import ManualClock
from tests.lifeline.system_support import matrix_config, started_system
from tests.lifeline.test_alerts import receiving
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("after", "expected"), [
    ("2026-03-11T14:59:59", "2026-03-11T15:00:00"),   # 23:59:59 KST: tonight's midnight
    ("2026-03-11T15:00:00", "2026-03-12T15:00:00"),   # exactly at it: strictly after
    ("2026-03-11T15:00:01", "2026-03-12T15:00:00"),
    ("2026-03-31T16:00:00", "2026-04-01T15:00:00"),   # 01:00 KST on April 1: month end
    ("2026-12-31T14:30:00", "2026-12-31T15:00:00"),   # 23:30 KST Dec 31 -> Jan 1 00:00 KST
    ("2028-02-28T15:00:00", "2028-02-29T15:00:00"),   # a leap day
])
def test_next_run_is_the_next_kst_midnight(after: str, expected: str) -> None:
    assert next_run(utc(after), "00:00") == utc(expected)


def test_next_run_at_another_time_of_day() -> None:
    assert next_run(utc("2026-03-11T00:00:00"), "09:30") == utc("2026-03-11T00:30:00")


class Parts:
    """Parts that pass or fail as told, counting their calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail: str | None = None

    def part(self) -> str:
        self.calls += 1
        if self.fail is not None:
            raise ConnectionError(self.fail)
        return "fine"


def test_it_fires_at_kst_midnight_not_before_and_once_per_day() -> None:
    clock = ManualClock(wall=utc("2026-03-11T14:59:58"))
    parts, alerts = Parts(), []
    check = SelfCheck(clock, {"router": parts.part}, at="00:00",
                      alert=lambda what, detail: alerts.append((what, detail)))
    assert check.next_run_at == utc("2026-03-11T15:00:00")
    clock.advance(1.0)
    assert check.tick() is False and parts.calls == 0
    clock.advance(1.0)
    assert check.tick() is True
    assert check.wait_for_runs(1, WAIT)
    assert check.tick() is False and check.runs == 1
    assert check.next_run_at == utc("2026-03-12T15:00:00")
    clock.advance(86_400 - 1)
    assert check.tick() is False
    clock.advance(1.0)
    assert check.tick() is True and check.wait_for_runs(2, WAIT)
    assert parts.calls == 2 and alerts == []
    status = check.status()
    assert status["daily_at"] == "00:00 KST" and status["next_run"] == "2026-03-14T00:00:00+09:00"
    assert status["last"]["ok"] is True and status["last"]["parts"]["router"]["detail"] == "fine"


def test_a_late_tick_runs_once_and_keeps_the_next_day_at_midnight() -> None:
    clock = ManualClock(wall=utc("2026-03-11T14:00:00"))
    parts = Parts()
    check = SelfCheck(clock, {"router": parts.part}, at="00:00", alert=lambda *_: None)
    clock.advance(3 * 86_400)  # three midnights slept through
    assert check.tick() is True and check.wait_for_runs(1, WAIT)
    assert check.tick() is False
    assert check.next_run_at == utc("2026-03-14T15:00:00")


def test_off_never_runs() -> None:
    clock = ManualClock()
    check = SelfCheck(clock, {"router": Parts().part}, at=None, alert=lambda *_: None)
    clock.advance(10 * 86_400)
    assert check.tick() is False and check.next_run_at is None
    assert check.status()["next_run"] is None


def test_no_second_run_while_one_is_on_and_a_hung_part_fails_by_the_deadline() -> None:
    clock = ManualClock(wall=utc("2026-03-11T14:59:59"))
    release = threading.Event()
    alerts: list[tuple[str, str]] = []

    def hangs() -> str:
        release.wait(WAIT)
        return "late"

    check = SelfCheck(clock, {"websocket": hangs}, at="00:00", deadline=0.3,
                      alert=lambda what, detail: alerts.append((what, detail)))
    try:
        result = check.run_now()
        assert result is not None and not result.ok
        assert result.parts[0].detail == "no answer within 0.3 s"
        again = check.run_now()  # its thread is still out: failed at once, not started twice
        assert again is not None and again.parts[0].detail == "the previous check has not returned"
        assert [what for what, _ in alerts] == ["websocket", "websocket"]
    finally:
        release.set()


def _checked_system(system: MarketDataSystem) -> tuple[SelfCheck, list[tuple[str, str]]]:
    alerts: list[tuple[str, str]] = []

    def alert(what: str, detail: str) -> None:
        alerts.append((what, detail))
        system.self_check_failed(what, detail)

    clock = ManualClock(wall=utc("2026-03-11T14:59:59"))
    return SelfCheck(clock, system_parts(system, deadline=2.0), at="00:00", deadline=3.0,
                     alert=alert), alerts


@pytest.mark.timeout(60)
def test_a_passing_run_against_the_simulator_sends_no_alert(
        monkeypatch: pytest.MonkeyPatch, sim_factory: Callable[..., Simulator]) -> None:
    sim = sim_factory(seed=1, rate_limit=None)
    with receiving() as hook:
        monkeypatch.setenv("LIFELINE_ALERT_WEBHOOKS", hook.url)
        with started_system(matrix_config(sim)) as system:
            check, alerts = _checked_system(system)
            result = check.run_now()
            assert result is not None and result.ok, result
            assert {p.name for p in result.parts} == {"router", "rest_fallback", "websocket"}
            assert alerts == [] and system.alert_stats().raised == 0
    assert [b for b in hook.bodies if b["kind"] == "self_check"] == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", ["black_hole", "ws_refused"])
def test_a_failing_part_alerts_the_webhook(
        fault: str, monkeypatch: pytest.MonkeyPatch,
        sim_factory: Callable[..., Simulator]) -> None:
    sim = sim_factory(seed=1, rate_limit=None)
    with receiving() as hook:
        monkeypatch.setenv("LIFELINE_ALERT_WEBHOOKS", hook.url)
        with started_system(matrix_config(sim)) as system:
            check, alerts = _checked_system(system)
            try:
                if fault == "black_hole":
                    sim.faults.black_hole(path_prefix="/v1/")
                else:
                    sim.ws.set_accepting(False)
                    sim.ws.drop_all()
                result = check.run_now()
            finally:
                sim.faults.black_hole(False, path_prefix="/v1/")
                sim.ws.set_accepting(True)
            assert result is not None and not result.ok
            failed = {part.name for part in result.failed}
            assert failed == ({"router", "rest_fallback"} if fault == "black_hole"
                              else {"websocket"}), result
            bodies = hook.wait_for(1)
    body = next(b for b in bodies if b["kind"] == "self_check")
    assert body["cause"] == ", ".join(sorted(failed, key=["router", "rest_fallback",
                                                          "websocket"].index))
    assert "self-check of" in body["text"] and "failed" in body["text"]
    assert len(alerts) == 1
