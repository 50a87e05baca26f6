"""Rule family: the health probe (``actors.health_probe``) — what it counts, how long it waits,
when it ticks, what each injected fault does to it, and that it leaves no thread behind.

Time is a ``ManualClock`` starting at monotonic 1000.0 (blocking where the ticker runs, so
each tick is an ``advance``); a probed target that "takes" some time advances the clock
itself. Every duration is a binary fraction, so the clock's sums are exact. Threads wait on
events, never on sleeps; the only real waits are bounded ones on events and futures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest

from actors.faults import (
    ActorName,
    FaultBoard,
    FaultKind,
    FaultPoint,
    InjectedCrash,
)
from actors.health_probe import HealthProbe, NoVerdict, ProcessSample, sample_process
from actors.messages import FallbackReport, Probe, ProbeReport
from quotation.errors import Banned, InvalidValue, ServerError
from quotation.rest import RestClient, RestConfig
from quotation.rest.ratelimit import RateLimiter
from tests.fakes import ManualClock
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(15)

WAIT = 5.0
"""Real seconds a test waits for another thread before failing."""

T0 = 1_000.0
"""The clocks' monotonic start."""


# -- fakes: small classes implementing the callables' interfaces ------------------------------


class Hang:
    """A scripted step: block until ``release``; ``entered`` is set when a call reaches it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def __call__(self) -> None:
        self.entered.set()
        self._released.wait(WAIT * 2)


class Takes:
    """A scripted step: the answer takes ``seconds`` on the clock, then comes (or raises)."""

    def __init__(self, seconds: float, error: Exception | None = None) -> None:
        self.seconds = seconds
        self.error = error


Step = object  # "ok", True/False, an Exception, Takes, Hang


class Scripted:
    """A target (``probe_router``, ``probe_rest`` or ``check_ws``) answering from a script;
    once the script is used up it repeats ``then``."""

    def __init__(self, clock: ManualClock, *steps: Step, then: Step = "ok") -> None:
        self._clock = clock
        self._steps = list(steps)
        self._then = then
        self._lock = threading.Lock()
        self.calls = 0
        self.threads: list[threading.Thread] = []

    def __call__(self) -> object:
        with self._lock:
            self.calls += 1
            self.threads.append(threading.current_thread())
            step = self._steps.pop(0) if self._steps else self._then
        if isinstance(step, Hang):
            return step()
        if isinstance(step, Takes):
            self._clock.advance(step.seconds)
            step = step.error if step.error is not None else "ok"
        if isinstance(step, Exception):
            raise step
        return step


class Reports:
    """The ``report`` callable: keeps every report; tests wait for the n-th."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._reports: list[ProbeReport] = []

    def __call__(self, report: ProbeReport) -> None:
        with self._cond:
            self._reports.append(report)
            self._cond.notify_all()

    def wait_for(self, count: int) -> list[ProbeReport]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._reports) >= count, WAIT):
                raise AssertionError(f"expected {count} reports, got {self._reports}")
            return list(self._reports)

    @property
    def all(self) -> list[ProbeReport]:
        with self._cond:
            return list(self._reports)


class Sampler:
    """A ``sampler``: answers what the test set (RSS bytes, CPU seconds so far)."""

    def __init__(self, rss_mb: float = 100.0, cpu_seconds: float = 1.0) -> None:
        self.rss_mb = rss_mb
        self.cpu_seconds = cpu_seconds

    def __call__(self) -> ProcessSample:
        return ProcessSample(int(self.rss_mb * (1 << 20)), self.cpu_seconds)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    made = ManualClock(mono=T0)
    yield made
    made.close()


@pytest.fixture
def ticking_clock() -> Iterator[ManualClock]:
    made = ManualClock(mono=T0, blocking=True)
    yield made
    made.close()  # wakes a ticker still asleep, so it ends


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


Start = Callable[..., pykka.ActorRef[HealthProbe]]


@pytest.fixture
def start(clock: ManualClock, reports: Reports) -> Start:
    """Start a probe with the fakes; keyword arguments override the defaults."""

    def started(**overrides: Any) -> pykka.ActorRef[HealthProbe]:
        arguments: dict[str, Any] = {
            "probe_router": Scripted(clock), "report": reports, "interval": None,
            "deadline": 2.0, "clock": clock, "sampler": Sampler(),
        }
        arguments.update(overrides)
        return HealthProbe.start(**arguments)

    return started


def _probe(ref: pykka.ActorRef[HealthProbe]) -> ProbeReport:
    report = ref.ask(Probe(), timeout=WAIT)
    assert isinstance(report, ProbeReport)
    return report


def _probe_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("health_probe-")]


def _no_probe_threads() -> None:
    for thread in _probe_threads():
        thread.join(WAIT)
    assert _probe_threads() == []


# -- counting ---------------------------------------------------------------------------------


def test_failures_in_a_row_and_the_time_since_the_last_success_are_exact(
    clock: ManualClock, start: Start, reports: Reports
) -> None:
    router = Scripted(clock, ServerError("503", status=503), ServerError("503", status=503),
                      Takes(0.5), Takes(0.25, ServerError("500", status=500)))
    ref = start(probe_router=router)

    first = _probe(ref)
    assert (first.at, first.router_ok, first.consecutive_failures) == (T0, False, 1)
    assert first.router_error == "ServerError: 503"
    assert first.since_last_success == 0.0  # measured from the start before any success
    assert first.last_success_at is None
    clock.advance(5.0)
    second = _probe(ref)
    assert (second.consecutive_failures, second.since_last_success) == (2, 5.0)
    clock.advance(5.0)
    third = _probe(ref)
    assert (third.router_ok, third.router_error, third.latency) == (True, None, 0.5)
    assert (third.consecutive_failures, third.last_success_at) == (0, T0 + 10.5)
    assert (third.at, third.since_last_success) == (T0 + 10.5, 0.0)
    clock.advance(4.0)
    fourth = _probe(ref)
    assert (fourth.router_ok, fourth.consecutive_failures, fourth.latency) == (False, 1, 0.25)
    assert fourth.since_last_success == 4.25
    assert reports.all == [first, second, third, fourth]  # every probe is reported


def test_an_answer_in_just_under_the_deadline_counts_and_one_at_the_deadline_is_late(
    clock: ManualClock, start: Start
) -> None:
    ref = start(probe_router=Scripted(clock, Takes(1.75), Takes(2.0)), deadline=2.0)
    assert _probe(ref).router_ok is True
    late = _probe(ref)
    assert (late.router_ok, late.latency, late.consecutive_failures) == (False, 2.0, 1)
    assert late.router_error == "answered after 2 s, past the 2 s deadline"


def test_a_probe_hanging_past_the_deadline_fails_and_the_next_tick_is_still_answered(
    ticking_clock: ManualClock, reports: Reports
) -> None:
    clock = ticking_clock
    hang = Hang()
    router = Scripted(clock, hang)
    HealthProbe.start(probe_router=router, report=reports, interval=1.0, clock=clock,
                      sampler=Sampler())
    clock.wait_for_sleeps(1)
    clock.advance(1.0)  # tick at 1001: the router hangs
    assert hang.entered.wait(WAIT)
    clock.advance(1.0)  # 1002: the deadline passes, and the next tick is due
    hung, behind = reports.wait_for(2)
    assert (hung.at, hung.router_ok, hung.latency) == (T0 + 2.0, False, None)
    assert hung.router_error == "no answer within 1 s"
    # the hung call is not repeated while it has not returned: that target fails at once
    assert (behind.router_ok, behind.consecutive_failures) == (False, 2)
    assert behind.router_error == "the previous probe has not returned"
    assert router.calls == 1
    hang.release()
    router.threads[0].join(WAIT)
    clock.advance(1.0)  # tick at 1003: a fresh call, answered
    healthy = reports.wait_for(3)[2]
    assert (healthy.router_ok, healthy.consecutive_failures, healthy.last_success_at) == (
        True, 0, T0 + 3.0)
    assert router.calls == 2


# -- what a report carries --------------------------------------------------------------------


def test_a_report_carries_memory_cpu_and_the_shared_limiters_headroom(
    clock: ManualClock, start: Start
) -> None:
    limiter = RateLimiter(clock)
    sampler = Sampler(rss_mb=100.0, cpu_seconds=1.0)
    ref = start(limiter=limiter, sampler=sampler)  # the CPU baseline is taken at the start
    clock.advance(5.0)
    kept = [limiter.acquire("ticker") for _ in range(3)]
    kept[0].release(success=True)  # a released slot stays used for window + margin
    limiter.acquire("candles")
    sampler.rss_mb, sampler.cpu_seconds = 150.0, 1.5

    report = _probe(ref)
    assert report.rss_mb == 150.0
    assert report.cpu_percent == 10.0  # 0.5 s of CPU in 5 s
    assert [status.group for status in report.headroom] == ["candles", "ticker"]
    assert (report.available("ticker"), report.available("candles")) == (7, 9)
    assert report.available("orderbook") is None
    assert report.fallbacks == FallbackReport()  # no fallback callables: nothing checked

    sampler.cpu_seconds = 1.75
    clock.advance(2.5)
    assert _probe(ref).cpu_percent == 10.0  # measured since the last sample


def test_the_fallbacks_are_checked_with_the_router_and_a_ban_is_reported(
    clock: ManualClock, start: Start
) -> None:
    limiter = RateLimiter(clock)
    rest = Scripted(clock, "ok", Banned("418", until=T0 + 60.0, duration=60.0))
    ws = Scripted(clock, True, False, RuntimeError("socket closed"))
    ref = start(probe_rest=rest, check_ws=ws, limiter=limiter)

    assert _probe(ref).fallbacks == FallbackReport(rest_ok=True, rest_error=None,
                                                   rest_banned_until=None, ws_ok=True)
    banned = _probe(ref).fallbacks
    assert (banned.rest_ok, banned.rest_banned_until, banned.ws_ok) == (False, T0 + 60.0, False)
    assert banned.ws_error == "answered False"
    limiter.on_banned(30.0)  # the limiter's ban is reported even while REST probes pass
    down = _probe(ref).fallbacks
    assert (down.rest_ok, down.rest_banned_until) == (True, T0 + 30.0)
    assert (down.ws_ok, down.ws_error) == (False, "RuntimeError: socket closed")


def test_a_rest_check_that_judges_nothing_reports_rest_ok_none_with_its_reason(
    clock: ManualClock, start: Start
) -> None:
    rest = Scripted(clock, NoVerdict("busy: a request running for 0.1 s"), "ok")
    ref = start(probe_rest=rest)
    unjudged = _probe(ref)
    assert (unjudged.fallbacks.rest_ok, unjudged.fallbacks.rest_error) == (
        None, "busy: a request running for 0.1 s")
    assert unjudged.router_ok is True  # the router is judged as ever
    assert _probe(ref).fallbacks.rest_ok is True


def test_a_hung_fallback_check_does_not_hide_the_router(clock: ManualClock, start: Start) -> None:
    hang = Hang()
    ref = start(probe_router=Scripted(clock, Takes(0.5)), check_ws=Scripted(clock, hang))
    future = ref.ask(Probe(), block=False)
    assert hang.entered.wait(WAIT)
    clock.advance(1.5)  # 2 s after the probe began: the deadline
    report = future.get(timeout=WAIT)
    assert (report.router_ok, report.latency) == (True, 0.5)
    assert (report.fallbacks.ws_ok, report.fallbacks.ws_error) == (False, "no answer within 2 s")
    hang.release()


# -- ticks ------------------------------------------------------------------------------------


def test_ticks_come_every_interval_on_the_clock_and_a_late_ticker_skips_instead_of_bursting(
    ticking_clock: ManualClock, reports: Reports
) -> None:
    clock = ticking_clock
    HealthProbe.start(probe_router=Scripted(clock), report=reports, interval=2.0, clock=clock,
                      sampler=Sampler())
    assert clock.wait_for_sleeps(1) == [2.0]
    clock.advance(2.0)
    assert [r.at for r in reports.wait_for(1)] == [T0 + 2.0]
    assert clock.wait_for_sleeps(2)[1] == 2.0
    assert len(reports.all) == 1  # nothing until the clock moves again
    clock.advance(2.0)
    assert [r.at for r in reports.wait_for(2)] == [T0 + 2.0, T0 + 4.0]
    clock.wait_for_sleeps(3)
    clock.advance(7.0)  # 1011: ticks at 1006, 1008, 1010 were missed: one probe, not three
    assert reports.wait_for(3)[2].at == T0 + 11.0
    assert clock.wait_for_sleeps(4)[3] == 1.0  # back on the grid: next tick at 1012
    assert len(reports.all) == 3


def test_a_deadline_longer_than_the_interval_or_a_probe_without_either_is_refused(
    clock: ManualClock, reports: Reports
) -> None:
    with pytest.raises(InvalidValue) as longer:
        HealthProbe(probe_router=Scripted(clock), report=reports, interval=1.0, deadline=1.5)
    assert longer.value.field == "deadline"
    with pytest.raises(InvalidValue) as neither:
        HealthProbe(probe_router=Scripted(clock), report=reports, interval=None)
    assert neither.value.field == "deadline"
    with pytest.raises(InvalidValue) as zero:
        HealthProbe(probe_router=Scripted(clock), report=reports, interval=0.0)
    assert zero.value.field == "interval"


def test_an_unknown_message_goes_back_to_the_asker_as_a_type_error_naming_it(
    start: Start
) -> None:
    ref = start()
    with pytest.raises(TypeError, match="health_probe: unknown message str"):
        ref.ask("hello", timeout=WAIT)
    assert ref.is_alive()


# -- injected faults at the probe -------------------------------------------------------------


@pytest.fixture
def board(clock: ManualClock) -> Iterator[FaultBoard]:
    made = FaultBoard(enabled=True, clock=clock, memory_chunk_bytes=32 << 20)
    yield made
    made.clear_all()


def test_an_injected_raise_fails_the_probe_itself_without_blaming_the_router(
    clock: ManualClock, start: Start, board: FaultBoard
) -> None:
    router = Scripted(clock, ServerError("503", status=503))
    ref = start(probe_router=router, faults=board, probe_rest=Scripted(clock))
    assert _probe(ref).consecutive_failures == 1
    board.inject(ActorName.HEALTH_PROBE, FaultKind.RAISE, point=FaultPoint.PROBE, count=1)
    clock.advance(3.0)
    failed = _probe(ref)
    assert (failed.router_ok, failed.router_error, failed.latency) == (None, None, None)
    assert failed.probe_error is not None and "injected raise" in failed.probe_error
    assert (failed.consecutive_failures, failed.since_last_success) == (1, 3.0)
    assert failed.fallbacks == FallbackReport()
    assert router.calls == 1  # nothing was called
    assert _probe(ref).router_ok is True


def test_an_injected_crash_kills_the_probe_whether_the_tick_was_told_or_asked(
    start: Start, board: FaultBoard
) -> None:
    board.inject(ActorName.HEALTH_PROBE, FaultKind.CRASH, point=FaultPoint.PROBE)
    told = start(faults=board)
    told.tell(Probe())
    assert told.actor_stopped.wait(WAIT)
    asked = start(faults=board)
    with pytest.raises(InjectedCrash):
        asked.ask(Probe(), timeout=WAIT)
    assert asked.actor_stopped.wait(WAIT)


def test_an_injected_hang_blocks_the_probe_so_it_answers_nothing_until_cleared(
    start: Start, board: FaultBoard, reports: Reports
) -> None:
    hang = board.inject(ActorName.HEALTH_PROBE, FaultKind.HANG, point=FaultPoint.PROBE,
                        count=1)
    ref = start(faults=board)
    ref.tell(Probe())
    assert board.wait_hanging(1, WAIT)
    with pytest.raises(pykka.Timeout):  # as a supervisor's liveness ping would find it
        ref.ask(Probe(), timeout=0.1)
    hang.clear()
    assert [r.router_ok for r in reports.wait_for(2)] == [True, True]


def test_an_injected_delay_starts_the_probe_that_much_later_on_the_clock(
    clock: ManualClock, start: Start, board: FaultBoard
) -> None:
    board.inject(ActorName.HEALTH_PROBE, FaultKind.DELAY, point=FaultPoint.PROBE, seconds=3.0)
    ref = start(faults=board, probe_router=Scripted(clock, Takes(0.5)))
    report = _probe(ref)
    assert (report.at, report.router_ok, report.latency) == (T0 + 3.5, True, 0.5)


def test_an_injected_start_failure_stops_the_probe_before_it_starts_a_ticker(
    ticking_clock: ManualClock, reports: Reports, board: FaultBoard
) -> None:
    board.inject(ActorName.HEALTH_PROBE, FaultKind.FAIL_START)
    ref = HealthProbe.start(probe_router=Scripted(ticking_clock), report=reports, interval=1.0,
                            clock=ticking_clock, faults=board, sampler=Sampler())
    assert ref.actor_stopped.wait(WAIT)
    assert _probe_threads() == []
    assert ticking_clock.sleeps == []


def test_injected_memory_growth_shows_in_the_reported_resident_memory(
    start: Start, board: FaultBoard
) -> None:
    ref = start(faults=board, sampler=sample_process)
    before = _probe(ref).rss_mb
    growth = board.inject(ActorName.HEALTH_PROBE, FaultKind.MEMORY_GROWTH,
                          point=FaultPoint.PROBE, count=1)
    after = _probe(ref).rss_mb
    assert before is not None and after is not None
    assert growth.held_bytes == 32 << 20
    assert after - before >= 24.0  # MiB: the 32 MiB chunk is written, so resident


# -- threads ----------------------------------------------------------------------------------


def test_stopping_the_probe_leaves_no_thread_behind(
    ticking_clock: ManualClock, reports: Reports
) -> None:
    clock = ticking_clock
    hang = Hang()
    ref = HealthProbe.start(probe_router=Scripted(clock, hang), check_ws=Scripted(clock, True),
                            report=reports, interval=1.0, clock=clock, sampler=Sampler())
    clock.wait_for_sleeps(1)
    clock.advance(1.0)
    assert hang.entered.wait(WAIT)
    clock.advance(1.0)
    reports.wait_for(1)
    ref.stop(timeout=WAIT)
    assert _probe_threads()  # the ticker asleep, the router call hung
    hang.release()  # the application's call returns by its own ask timeout
    clock.advance(1.0)  # the ticker's sleep ends; stopped, it tells nothing and ends
    _no_probe_threads()


def test_a_crashed_probe_stops_its_ticker(
    ticking_clock: ManualClock, reports: Reports, board: FaultBoard
) -> None:
    clock = ticking_clock
    board.inject(ActorName.HEALTH_PROBE, FaultKind.CRASH, point=FaultPoint.PROBE)
    ref = HealthProbe.start(probe_router=Scripted(clock), report=reports, interval=1.0,
                            clock=clock, faults=board, sampler=Sampler())
    clock.wait_for_sleeps(1)
    clock.advance(1.0)
    assert ref.actor_stopped.wait(WAIT)
    clock.advance(1.0)
    _no_probe_threads()
    assert reports.all == []


# -- against the simulator --------------------------------------------------------------------


class TickerProbe:
    """``probe_router`` bound to a real client: the ticker of one market, as the seed's probe."""

    def __init__(self, client: RestClient, market: str) -> None:
        self._client = client
        self._market = market
        self.threads: list[threading.Thread] = []

    def __call__(self) -> object:
        self.threads.append(threading.current_thread())
        return self._client.get_tickers([self._market])


@pytest.fixture
def quiet_sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    return sim_factory(seed=1, auto_trade=False, rate_limit=None)


@pytest.fixture
def probe_of(
    quiet_sim: Simulator, limiter: RateLimiter, reports: Reports
) -> Iterator[Callable[..., tuple[pykka.ActorRef[HealthProbe], TickerProbe]]]:
    """A probe (system clock) whose router probe is a real client's ticker of KRW-BTC."""
    clients: list[RestClient] = []

    def made(
        deadline: float, read_timeout: float
    ) -> tuple[pykka.ActorRef[HealthProbe], TickerProbe]:
        config = RestConfig(base_url=quiet_sim.base_url, read_timeout=read_timeout)
        clients.append(client := RestClient(config, limiter=limiter))
        router = TickerProbe(client, "KRW-BTC")
        ref = HealthProbe.start(probe_router=router, report=reports, interval=None,
                                deadline=deadline, limiter=limiter, probe_market="KRW-BTC")
        return ref, router

    yield made
    pykka.ActorRegistry.stop_all()
    for client in clients:
        client.close()


def test_probes_of_the_simulator_pass_and_its_503s_count_as_failures_in_a_row(
    quiet_sim: Simulator, probe_of: Callable[..., tuple[pykka.ActorRef[HealthProbe], Any]]
) -> None:
    # 3 s: the simulator's 503 says sec=0, so the limiter holds the next call a window
    ref, _ = probe_of(deadline=3.0, read_timeout=1.0)
    healthy = _probe(ref)
    assert (healthy.router_ok, healthy.consecutive_failures) == (True, 0)
    assert healthy.latency is not None and 0 < healthy.latency < 3.0
    assert healthy.available("ticker") is not None
    assert healthy.rss_mb is not None and healthy.rss_mb > 0
    quiet_sim.faults.fail_next(2, 503, path_prefix="/v1/ticker")
    failed = [_probe(ref), _probe(ref)]
    assert [r.consecutive_failures for r in failed] == [1, 2]
    assert [r.router_error for r in failed] == [
        "ServerError: GET /ticker: HTTP 503: Service Unavailable"] * 2
    back = _probe(ref)
    assert (back.router_ok, back.consecutive_failures) == (True, 0)
    assert back.since_last_success < 0.5  # from its answer to the report


def test_a_black_holed_simulator_fails_probes_at_the_deadline_until_it_answers_again(
    quiet_sim: Simulator, probe_of: Callable[..., tuple[pykka.ActorRef[HealthProbe], Any]]
) -> None:
    ref, router = probe_of(deadline=0.5, read_timeout=1.0)
    assert _probe(ref).router_ok is True
    quiet_sim.faults.black_hole(path_prefix="/v1/ticker")
    holed = [_probe(ref), _probe(ref)]
    assert [(r.router_ok, r.consecutive_failures) for r in holed] == [(False, 1), (False, 2)]
    assert holed[0].router_error == "no answer within 0.5 s"
    assert holed[1].since_last_success >= 0.5
    quiet_sim.faults.black_hole(False)
    router.threads[-1].join(WAIT)  # the client's read timeout ends the held call
    back = _probe(ref)
    assert (back.router_ok, back.consecutive_failures) == (True, 0)
    assert back.since_last_success < 0.5  # from its answer to the report


class Pace:
    """The ``pace`` callable: answers what the test set (a factor, or raises ``error``)."""

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor
        self.error: Exception | None = None

    def __call__(self) -> float:
        if self.error is not None:
            raise self.error
        return self.factor


def test_a_pace_stretches_the_interval_on_the_same_grid_and_a_reset_acts_within_one_interval(
    ticking_clock: ManualClock, reports: Reports
) -> None:
    """Fails before: HealthProbe took no ``pace`` (it probed every interval at every level)."""
    clock = ticking_clock
    pace = Pace(2.0)
    HealthProbe.start(probe_router=Scripted(clock), report=reports, interval=2.0, clock=clock,
                      sampler=Sampler(), pace=pace)
    sleeps = 1
    for _ in range(2):  # 1002: 2 s since the start < 2 × 2 s: skipped; 1004: probed
        clock.wait_for_sleeps(sleeps)
        clock.advance(2.0)
        sleeps += 1
    assert [r.at for r in reports.wait_for(1)] == [T0 + 4.0]
    pace.factor = 4.0  # 1006, 1008, 1010 skipped; 1012 = 1004 + 4 × 2 s: probed
    for _ in range(4):
        clock.wait_for_sleeps(sleeps)
        clock.advance(2.0)
        sleeps += 1
    assert [r.at for r in reports.wait_for(2)] == [T0 + 4.0, T0 + 12.0]
    pace.factor = 4.0
    clock.wait_for_sleeps(sleeps)
    clock.advance(2.0)  # 1014: skipped (2 s < 8 s)
    sleeps += 1
    clock.wait_for_sleeps(sleeps)
    pace.factor = 1.0  # reset (a good probe, a level change): the next grid point probes
    clock.advance(2.0)  # 1016
    sleeps += 1
    assert [r.at for r in reports.wait_for(3)] == [T0 + 4.0, T0 + 12.0, T0 + 16.0]
    pace.error = RuntimeError("broken pace")  # counts as 1: every interval
    clock.wait_for_sleeps(sleeps)
    clock.advance(2.0)  # 1018
    sleeps += 1
    pace.error, pace.factor = None, 0.5  # below 1: counts as 1
    assert reports.wait_for(4)[3].at == T0 + 18.0
    clock.wait_for_sleeps(sleeps)
    clock.advance(2.0)  # 1020
    assert [r.at for r in reports.wait_for(5)] == [T0 + a for a in (4.0, 12.0, 16.0, 18.0, 20.0)]
    assert all(s == 2.0 for s in clock.sleeps)  # on the grid: never a longer sleep
