"""The REST fallback's published health: the board (thread-safe snapshot) and judge() at
every boundary, on plain numbers; and the actor publishing to it against the simulator."""

from __future__ import annotations

import threading

import pytest

from actors.messages import TickerRequest
from actors.rest_fallback import RestFallback
from actors.rest_health import RestHealthBoard, RestHealthSnapshot, Verdict, judge
from quotation.errors import InvalidRequest
from quotation.rest import RateLimiter, RestConfig
from tests.fakes import ManualClock
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

RECENT, STALL = 1.0, 3.0


def verdict(snap: RestHealthSnapshot, now: float) -> Verdict:
    return judge(snap, now, recent=RECENT, stall=STALL)[0]


class TestJudge:
    def test_idle_with_nothing_recent_asks_for_a_real_check(self) -> None:
        assert verdict(RestHealthSnapshot(), 10.0) is Verdict.CHECK
        assert verdict(RestHealthSnapshot(last_success_at=9.0), 10.0) is Verdict.CHECK

    def test_a_success_within_recent_is_ok(self) -> None:
        assert verdict(RestHealthSnapshot(last_success_at=9.001), 10.0) is Verdict.OK

    def test_a_failure_within_recent_is_failing_with_its_error(self) -> None:
        snap = RestHealthSnapshot(last_success_at=5.0, last_failure_at=9.5,
                                  consecutive_failures=2, last_error="ServerError: 503")
        assert judge(snap, 10.0, recent=RECENT, stall=STALL) == (
            Verdict.FAILING, "2 requests failed in a row: ServerError: 503")

    def test_busy_within_the_stall_limit_is_no_verdict(self) -> None:
        snap = RestHealthSnapshot(in_flight=1, oldest_in_flight_since=7.001)
        assert verdict(snap, 10.0) is Verdict.UNKNOWN

    def test_busy_for_exactly_the_stall_limit_is_failing(self) -> None:
        snap = RestHealthSnapshot(last_success_at=9.9, in_flight=1, oldest_in_flight_since=7.0)
        assert verdict(snap, 10.0) is Verdict.FAILING

    def test_busy_with_a_recent_outcome_is_judged_by_that_outcome(self) -> None:
        snap = RestHealthSnapshot(last_success_at=9.5, in_flight=1, oldest_in_flight_since=9.6)
        assert verdict(snap, 10.0) is Verdict.OK


class TestBoard:
    def test_it_tracks_outcomes_and_the_requests_in_flight(self) -> None:
        board = RestHealthBoard()
        board.begin(1.0)
        board.begin(1.5)
        assert (board.snapshot().in_flight, board.snapshot().oldest_in_flight_since) == (2, 1.0)
        board.failed(2.0, "TransportError: refused")
        board.failed(2.5, "TransportError: refused")
        snap = board.snapshot()
        assert (snap.in_flight, snap.oldest_in_flight_since, snap.consecutive_failures) == (
            0, None, 2)
        board.begin(3.0)
        board.succeeded(3.2)
        board.begin(4.0)
        board.ended()
        assert board.snapshot() == RestHealthSnapshot(
            last_success_at=3.2, last_failure_at=2.5, consecutive_failures=0,
            last_error="TransportError: refused", in_flight=0, oldest_in_flight_since=None)

    def test_readers_on_other_threads_always_see_a_whole_snapshot(self) -> None:
        board = RestHealthBoard()
        seen: list[RestHealthSnapshot] = []
        done = threading.Event()

        def read() -> None:
            while not done.is_set():
                seen.append(board.snapshot())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for n in range(2000):
            board.begin(float(n))
            board.succeeded(float(n))
        done.set()
        reader.join(5.0)
        assert not reader.is_alive()
        assert all(s.in_flight in (0, 1) for s in seen)
        assert all((s.in_flight == 0) == (s.oldest_in_flight_since is None) for s in seen)


def test_the_rest_fallback_publishes_each_request(quiet: Simulator) -> None:
    clock = ManualClock(mono=50.0)
    board = RestHealthBoard()
    ref = RestFallback.start(RestConfig(base_url=quiet.base_url), RateLimiter(),
                             clock=clock, health=board)
    try:
        ref.ask(TickerRequest(("KRW-BTC",)), timeout=10.0)
        assert board.snapshot() == RestHealthSnapshot(last_success_at=50.0)
        with pytest.raises(InvalidRequest):
            ref.ask(TickerRequest(("NOT-A-MARKET",)), timeout=10.0)
        assert board.snapshot().in_flight == 0  # the caller's mistake: no outcome
    finally:
        ref.stop()
