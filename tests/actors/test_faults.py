"""Rule family: actor fault injection (``actors.faults``) — what fires where, how often, for how
long, what each kind does at the point, and how a real pykka actor honours the contract.

Time is a ``ManualClock`` starting at monotonic 1000.0; every duration here is a binary
fraction, so the clock's sums are exact. Threads wait on events, never on sleeps.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.faults import (
    ACTOR_POINTS,
    KIND_POINTS,
    ActorName,
    CrashNow,
    FaultBoard,
    FaultKind,
    FaultPoint,
    FaultsDisabled,
    InjectedCrash,
    InjectedError,
    InjectedFault,
    InjectedStartFailure,
    InvalidFault,
    corrupt,
)
from quotation.errors import FormatError
from quotation.parsing import parse_tickers, parse_ws_message
from tests.fakes import ManualClock
from tests.quotation.examples import WS_TICKER, changed

pytestmark = pytest.mark.timeout(10)

CHUNK = 4096
"""The boards' memory_growth chunk in these tests."""

WAIT = 5.0
"""Real seconds a test waits for another thread before failing."""

# One (actor, point, extra inject() arguments) per kind, where that kind applies.
WHERE: dict[FaultKind, tuple[ActorName, FaultPoint, dict[str, Any]]] = {
    FaultKind.RAISE: (ActorName.SMART_ROUTER, FaultPoint.REQUEST, {}),
    FaultKind.CRASH: (ActorName.SMART_ROUTER, FaultPoint.REQUEST, {}),
    FaultKind.HANG: (ActorName.REST_FALLBACK, FaultPoint.REQUEST, {}),
    FaultKind.DELAY: (ActorName.WS_FALLBACK, FaultPoint.WS_MESSAGE, {"seconds": 0.5}),
    FaultKind.CORRUPT: (ActorName.SMART_ROUTER, FaultPoint.NORMALIZE, {}),
    FaultKind.FAIL_START: (ActorName.HEALTH_PROBE, FaultPoint.START, {}),
    FaultKind.MEMORY_GROWTH: (ActorName.HEALTH_PROBE, FaultPoint.PROBE, {}),
}


@pytest.fixture
def board(clock: ManualClock) -> Iterator[FaultBoard]:
    made = FaultBoard(enabled=True, clock=clock, memory_chunk_bytes=CHUNK)
    yield made
    made.clear_all()  # releases any hang a failed test left behind


def _fires(board: FaultBoard, actor: ActorName, point: FaultPoint) -> bool:
    return board.check(actor, point) is not None


# -- the closed sets and the arguments -------------------------------------------------------


def test_the_closed_sets_hold_exactly_the_issues_names() -> None:
    assert [a.value for a in ActorName] == [
        "smart_router", "rest_fallback", "ws_fallback", "health_probe"]
    assert [k.value for k in FaultKind] == [
        "raise", "crash", "hang", "delay", "corrupt", "fail_start", "memory_growth"]
    assert [p.value for p in FaultPoint] == [
        "start", "request", "normalize", "probe", "ws_message"]
    assert set(ACTOR_POINTS) == set(ActorName)
    assert set(KIND_POINTS) == set(FaultKind)
    assert all(FaultPoint.START in points for points in ACTOR_POINTS.values())


def test_inject_takes_an_enum_member_or_its_string_value(board: FaultBoard) -> None:
    by_name = board.inject("smart_router", "crash", point="request")
    by_member = board.inject(ActorName.SMART_ROUTER, FaultKind.CRASH, point=FaultPoint.REQUEST)
    for injection in (by_name, by_member):
        assert (injection.actor, injection.kind, injection.point) == (
            ActorName.SMART_ROUTER, FaultKind.CRASH, FaultPoint.REQUEST)


@pytest.mark.parametrize(("arguments", "field", "value"), [
    ({"actor": "router"}, "actor", "router"),
    ({"actor": 3}, "actor", 3),
    ({"actor": "SMART_ROUTER"}, "actor", "SMART_ROUTER"),
    ({"kind": "explode"}, "kind", "explode"),
    ({"kind": None}, "kind", None),
    ({"point": "nowhere"}, "point", "nowhere"),
    ({"point": "probe"}, "point", "probe"),  # the router has no probe point
    ({"actor": "health_probe", "point": "request"}, "point", "request"),
    ({"kind": "corrupt", "point": "request"}, "point", "request"),  # no payload there
    ({"kind": "fail_start", "point": "request"}, "point", "request"),
    ({"kind": "raise", "point": "start"}, "point", "start"),  # a failing start is fail_start
    ({"actor": "health_probe", "kind": "corrupt"}, "kind", "corrupt"),  # no point fits
    ({"kind": "delay"}, "seconds", None),
    ({"kind": "delay", "seconds": 0}, "seconds", 0),
    ({"kind": "delay", "seconds": -1.0}, "seconds", -1.0),
    ({"kind": "delay", "seconds": float("inf")}, "seconds", float("inf")),
    ({"kind": "delay", "seconds": "1"}, "seconds", "1"),
    ({"kind": "raise", "seconds": 1.0}, "seconds", 1.0),  # seconds is delay's alone
    ({"count": 0}, "count", 0),
    ({"count": -1}, "count", -1),
    ({"count": 1.5}, "count", 1.5),
    ({"count": True}, "count", True),
    ({"duration": 0}, "duration", 0),
    ({"duration": -0.5}, "duration", -0.5),
    ({"duration": float("inf")}, "duration", float("inf")),
    ({"duration": "5"}, "duration", "5"),
])
def test_a_bad_argument_is_an_invalid_fault_naming_the_argument_and_value(
    board: FaultBoard, arguments: dict[str, Any], field: str, value: object
) -> None:
    call: dict[str, Any] = {"actor": "smart_router", "kind": "raise"} | arguments
    actor, kind = call.pop("actor"), call.pop("kind")
    with pytest.raises(InvalidFault) as raised:
        board.inject(actor, kind, **call)
    assert raised.value.field == field
    assert raised.value.value == value
    message = str(raised.value)
    assert field in message
    assert value is None or repr(value) in message
    assert isinstance(raised.value, ValueError)
    assert board.active() == ()


def test_a_nan_duration_is_refused_too(board: FaultBoard) -> None:
    with pytest.raises(InvalidFault) as raised:
        board.inject("smart_router", "raise", duration=float("nan"))
    assert raised.value.field == "duration"


def test_the_memory_chunk_size_is_checked_when_the_board_is_built() -> None:
    with pytest.raises(InvalidFault) as raised:
        FaultBoard(enabled=True, memory_chunk_bytes=0)
    assert (raised.value.field, raised.value.value) == ("memory_chunk_bytes", 0)


# -- a disabled board ------------------------------------------------------------------------


def test_a_board_is_disabled_unless_enabled_is_asked_for() -> None:
    assert FaultBoard().enabled is False


def test_a_disabled_board_refuses_inject_saying_how_to_turn_it_on() -> None:
    board = FaultBoard(enabled=False)
    with pytest.raises(FaultsDisabled, match=r"set faults\.enabled: true"):
        board.inject("smart_router", "crash", point="request")
    board.clear_all()
    assert board.active() == ()


def test_a_disabled_board_answers_every_check_with_none() -> None:
    board = FaultBoard(enabled=False)
    for actor, points in ACTOR_POINTS.items():
        for point in points:
            assert board.check(actor, point) is None
            assert board.at(actor, point, {"k": 1}) == {"k": 1}


# -- which points an injection matches -------------------------------------------------------


def test_no_point_matches_every_point_of_that_actor_and_no_other_actor(
    board: FaultBoard,
) -> None:
    board.inject("ws_fallback", "delay", seconds=0.25)
    for actor in ActorName:
        for point in FaultPoint:
            assert _fires(board, actor, point) == (
                actor is ActorName.WS_FALLBACK and point in ACTOR_POINTS[actor])


def test_no_point_matches_only_the_points_where_the_kind_applies(board: FaultBoard) -> None:
    board.inject("smart_router", "corrupt")
    fired = {p for p in FaultPoint if _fires(board, ActorName.SMART_ROUTER, p)}
    assert fired == {FaultPoint.NORMALIZE, FaultPoint.WS_MESSAGE}


def test_fail_start_with_no_point_strikes_only_at_start(board: FaultBoard) -> None:
    board.inject("smart_router", "fail_start")
    fired = {p for p in FaultPoint if _fires(board, ActorName.SMART_ROUTER, p)}
    assert fired == {FaultPoint.START}


def test_a_given_point_matches_only_that_point_of_that_actor(board: FaultBoard) -> None:
    board.inject("smart_router", "raise", point="normalize")
    fired = {(a, p) for a in ActorName for p in FaultPoint if _fires(board, a, p)}
    assert fired == {(ActorName.SMART_ROUTER, FaultPoint.NORMALIZE)}


def test_the_newest_matching_injection_fires_and_only_it_spends_a_count(
    board: FaultBoard,
) -> None:
    delay = board.inject("smart_router", "delay", point="request", seconds=0.5)
    crash = board.inject("smart_router", "crash", point="request", count=1)
    first = board.check(ActorName.SMART_ROUTER, FaultPoint.REQUEST)
    second = board.check(ActorName.SMART_ROUTER, FaultPoint.REQUEST)
    assert first is not None and first.injection is crash
    assert second is not None and second.injection is delay
    assert (crash.fired, delay.fired) == (1, 1)


# -- the lifecycle, for every kind -----------------------------------------------------------


@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda k: k.value)
def test_count_faults_fire_exactly_count_times_then_stop(
    board: FaultBoard, kind: FaultKind
) -> None:
    actor, point, extra = WHERE[kind]
    injection = board.inject(actor, kind, point=point, count=3, **extra)
    hits = [board.check(actor, point) for _ in range(5)]
    assert [hit is not None for hit in hits] == [True, True, True, False, False]
    assert {hit.kind for hit in hits if hit is not None} == {kind}
    assert injection.fired == 3
    assert injection.active is False
    assert board.active() == ()


@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda k: k.value)
def test_duration_faults_fire_until_the_duration_is_over_and_not_at_its_end(
    board: FaultBoard, clock: ManualClock, kind: FaultKind
) -> None:
    actor, point, extra = WHERE[kind]
    injection = board.inject(actor, kind, point=point, duration=5.0, **extra)
    assert board.active()[0].ends_at == 1005.0
    clock.advance(4.75)
    assert (_fires(board, actor, point), injection.active) == (True, True)
    clock.advance(0.25)  # exactly 5.0 s after the injection: it has ended
    assert (injection.active, _fires(board, actor, point)) == (False, False)
    assert board.active() == ()


@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda k: k.value)
def test_clear_ends_a_fault_at_once_and_twice_is_harmless(
    board: FaultBoard, kind: FaultKind
) -> None:
    actor, point, extra = WHERE[kind]
    injection = board.inject(actor, kind, point=point, **extra)
    assert [_fires(board, actor, point) for _ in range(4)] == [True] * 4
    injection.clear()
    injection.clear()
    assert not _fires(board, actor, point)
    assert (injection.active, injection.fired) == (False, 4)


@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda k: k.value)
def test_clear_all_ends_every_fault_at_once(board: FaultBoard, kind: FaultKind) -> None:
    actor, point, extra = WHERE[kind]
    injections = [board.inject(actor, kind, point=point, **extra) for _ in range(3)]
    board.clear_all()
    assert not _fires(board, actor, point)
    assert [i.active for i in injections] == [False] * 3
    assert board.active() == ()


def test_count_and_duration_together_end_at_whichever_comes_first(
    board: FaultBoard, clock: ManualClock
) -> None:
    by_count = board.inject("smart_router", "raise", point="request", count=1, duration=5.0)
    by_time = board.inject("rest_fallback", "raise", point="request", count=9, duration=5.0)
    assert _fires(board, ActorName.SMART_ROUTER, FaultPoint.REQUEST)
    assert not _fires(board, ActorName.SMART_ROUTER, FaultPoint.REQUEST)
    assert _fires(board, ActorName.REST_FALLBACK, FaultPoint.REQUEST)
    clock.advance(5.0)
    assert not _fires(board, ActorName.REST_FALLBACK, FaultPoint.REQUEST)
    assert (by_count.fired, by_time.fired) == (1, 1)


def test_active_is_an_immutable_snapshot(board: FaultBoard) -> None:
    injection = board.inject("smart_router", "raise", point="request", count=2, duration=8.0)
    board.check(ActorName.SMART_ROUTER, FaultPoint.REQUEST)
    snapshot = board.active()
    assert isinstance(snapshot, tuple)
    (fault,) = snapshot
    assert (fault.id, fault.actor, fault.kind, fault.point) == (
        injection.id, ActorName.SMART_ROUTER, FaultKind.RAISE, FaultPoint.REQUEST)
    assert (fault.remaining, fault.ends_at, fault.fired, fault.seconds) == (1, 1008.0, 1, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fault.fired = 5  # type: ignore[misc]
    board.check(ActorName.SMART_ROUTER, FaultPoint.REQUEST)
    assert fault.fired == 1
    assert board.active() == ()


# -- what each kind does at the point --------------------------------------------------------


def test_raise_raises_an_injected_fault_naming_actor_point_and_kind(board: FaultBoard) -> None:
    injection = board.inject("smart_router", "raise", point="request")
    with pytest.raises(InjectedFault) as raised:
        board.at(ActorName.SMART_ROUTER, FaultPoint.REQUEST)
    error = raised.value
    assert (error.actor, error.point, error.kind, error.injection_id) == (
        ActorName.SMART_ROUTER, FaultPoint.REQUEST, FaultKind.RAISE, injection.id)
    assert "smart_router.request" in str(error)


def test_crash_raises_an_injected_crash_that_is_not_an_injected_fault(
    board: FaultBoard,
) -> None:
    board.inject("rest_fallback", "crash", point="request")
    with pytest.raises(InjectedCrash) as raised:
        board.at(ActorName.REST_FALLBACK, FaultPoint.REQUEST)
    assert not isinstance(raised.value, InjectedFault)  # `except InjectedFault` never hides it
    assert isinstance(raised.value, InjectedError)
    again = CrashNow.of(raised.value).error()
    assert again is not raised.value
    assert (again.actor, again.point, again.kind, again.injection_id) == (
        raised.value.actor, raised.value.point, FaultKind.CRASH, raised.value.injection_id)


def test_fail_start_raises_an_injected_start_failure(board: FaultBoard) -> None:
    board.inject("health_probe", "fail_start")
    with pytest.raises(InjectedStartFailure):
        board.at(ActorName.HEALTH_PROBE, FaultPoint.START)


def test_delay_sleeps_exactly_its_seconds_on_the_injected_clock_then_goes_on(
    board: FaultBoard, clock: ManualClock
) -> None:
    board.inject("ws_fallback", "delay", point="ws_message", seconds=0.375, count=2)
    message = {"type": "ticker"}
    for _ in range(3):
        assert board.at(ActorName.WS_FALLBACK, FaultPoint.WS_MESSAGE, message) is message
    assert clock.sleeps == [0.375, 0.375]


def test_corrupt_spoils_a_payload_so_normalization_fails_with_format_error(
    board: FaultBoard,
) -> None:
    board.inject("smart_router", "corrupt", count=2)
    rest = [changed(WS_TICKER, market=WS_TICKER["code"])]
    assert parse_tickers(rest) and parse_ws_message(WS_TICKER)  # sound before
    spoiled_rest = board.at(ActorName.SMART_ROUTER, FaultPoint.NORMALIZE, rest)
    spoiled_ws = board.at(ActorName.SMART_ROUTER, FaultPoint.WS_MESSAGE, WS_TICKER)
    with pytest.raises(FormatError):
        parse_tickers(spoiled_rest)
    with pytest.raises(FormatError):
        parse_ws_message(spoiled_ws)
    assert parse_tickers(rest) and parse_ws_message(WS_TICKER)  # the originals are untouched


def test_corrupt_cuts_text_and_bytes_to_broken_json_and_fills_an_empty_list() -> None:
    text = json.dumps(WS_TICKER)
    for payload in (text, text.encode()):
        with pytest.raises(ValueError):
            json.loads(corrupt(payload))
    assert corrupt([]) == [{}]
    with pytest.raises(FormatError):
        parse_tickers(corrupt([]))


def test_corrupt_refuses_a_payload_it_cannot_spoil() -> None:
    with pytest.raises(TypeError, match="int"):
        corrupt(42)


def test_memory_growth_holds_one_chunk_per_hit_until_cleared(board: FaultBoard) -> None:
    injection = board.inject("health_probe", "memory_growth", count=3)
    for _ in range(5):
        board.at(ActorName.HEALTH_PROBE, FaultPoint.PROBE)
    assert injection.active is False  # spent: it grows no more...
    assert (injection.held_bytes, board.held_bytes) == (3 * CHUNK, 3 * CHUNK)  # ...but holds
    injection.clear()
    assert board.held_bytes == 0


def test_memory_growth_is_let_go_when_its_duration_is_over(
    board: FaultBoard, clock: ManualClock
) -> None:
    board.inject("smart_router", "memory_growth", point="request", duration=2.0)
    board.at(ActorName.SMART_ROUTER, FaultPoint.REQUEST)
    board.at(ActorName.SMART_ROUTER, FaultPoint.REQUEST)
    assert board.held_bytes == 2 * CHUNK
    clock.advance(2.0)
    assert board.active() == ()
    assert board.held_bytes == 0


def test_at_hands_the_payload_back_unchanged_when_nothing_fires(board: FaultBoard) -> None:
    board.inject("rest_fallback", "corrupt")
    payload = [{"market": "KRW-BTC"}]
    assert board.at(ActorName.SMART_ROUTER, FaultPoint.NORMALIZE, payload) is payload
    assert board.at(ActorName.SMART_ROUTER, FaultPoint.REQUEST) is None


# -- hangs block a real thread ---------------------------------------------------------------


def _hang_in_thread(board: FaultBoard, done: threading.Event) -> threading.Thread:
    def run() -> None:
        board.at(ActorName.REST_FALLBACK, FaultPoint.REQUEST)
        done.set()

    thread = threading.Thread(target=run, name="hung-actor", daemon=True)
    thread.start()
    return thread


def test_a_hang_blocks_the_actor_thread_until_the_injection_is_cleared(
    board: FaultBoard,
) -> None:
    injection = board.inject("rest_fallback", "hang", point="request", count=1)
    done = threading.Event()
    thread = _hang_in_thread(board, done)
    assert board.wait_hanging(1, WAIT)
    assert injection.active is False  # the count is spent, the hang goes on
    assert not done.is_set()
    assert board.hanging == 1
    injection.clear()
    assert done.wait(WAIT)
    thread.join(WAIT)
    assert board.hanging == 0


def test_clear_all_releases_every_hung_thread(board: FaultBoard) -> None:
    board.inject("rest_fallback", "hang", point="request")
    done = [threading.Event() for _ in range(3)]
    threads = [_hang_in_thread(board, event) for event in done]
    assert board.wait_hanging(3, WAIT)
    board.clear_all()
    assert all(event.wait(WAIT) for event in done)
    for thread in threads:
        thread.join(WAIT)


def test_a_hang_ends_when_its_duration_is_over_on_the_injected_clock(
    board: FaultBoard, clock: ManualClock
) -> None:
    injection = board.inject("rest_fallback", "hang", point="request", duration=30.0)
    done = threading.Event()
    thread = _hang_in_thread(board, done)
    assert board.wait_hanging(1, WAIT)
    clock.advance(29.5)
    assert board.active() != ()
    assert not done.is_set()
    clock.advance(0.5)  # the hung thread re-reads the clock within HANG_POLL_SECONDS
    assert done.wait(WAIT)
    thread.join(WAIT)
    assert injection.active is False


# -- threads ---------------------------------------------------------------------------------


def test_threads_checking_a_count_injection_fire_it_exactly_count_times_in_all(
    board: FaultBoard,
) -> None:
    injection = board.inject("smart_router", "raise", point="request", count=250)
    threads, checks = 8, 100
    start = threading.Barrier(threads)
    fired = [0] * threads

    def run(index: int) -> None:
        start.wait(WAIT)
        for _ in range(checks):
            if board.check(ActorName.SMART_ROUTER, FaultPoint.REQUEST) is not None:
                fired[index] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
    assert sum(fired) == 250
    assert injection.fired == 250
    assert injection.active is False


# -- the contract, carried out by a real pykka actor -----------------------------------------


class _Router(pykka.ThreadingActor):
    """A minimal actor following the module's contract at its start and request points."""

    def __init__(self, faults: FaultBoard, failed: threading.Event) -> None:
        super().__init__()
        self.faults = faults
        self.failed = failed

    def on_start(self) -> None:
        self.faults.at(ActorName.SMART_ROUTER, FaultPoint.START)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, CrashNow):
            raise message.error()
        try:
            self.faults.at(ActorName.SMART_ROUTER, FaultPoint.REQUEST)
        except InjectedCrash as crash:
            self.actor_ref.tell(CrashNow.of(crash))
            raise
        return "ticker"

    def on_failure(self, *exc_info: object) -> None:
        self.failed.set()


@pytest.fixture
def router(board: FaultBoard) -> Iterator[tuple[pykka.ActorRef[_Router], threading.Event]]:
    failed = threading.Event()
    ref = _Router.start(board, failed)
    yield ref, failed
    if ref.is_alive():
        ref.stop(timeout=WAIT)


def test_an_injected_raise_reaches_the_caller_and_the_actor_lives_on(
    board: FaultBoard, router: tuple[pykka.ActorRef[_Router], threading.Event]
) -> None:
    ref, failed = router
    board.inject("smart_router", "raise", point="request", count=1)
    with pytest.raises(InjectedFault):
        ref.ask("get_ticker", timeout=WAIT)
    assert ref.ask("get_ticker", timeout=WAIT) == "ticker"
    assert ref.is_alive() and not failed.is_set()


def test_an_injected_crash_reaches_the_caller_and_the_actor_dies_through_on_failure(
    board: FaultBoard, router: tuple[pykka.ActorRef[_Router], threading.Event]
) -> None:
    ref, failed = router
    board.inject("smart_router", "crash", point="request", count=1)
    with pytest.raises(InjectedCrash):
        ref.ask("get_ticker", timeout=WAIT)
    assert failed.wait(WAIT)
    ref.actor_stopped.wait(WAIT)
    assert not ref.is_alive()


def test_an_injected_start_failure_keeps_the_actor_from_starting(board: FaultBoard) -> None:
    board.inject("smart_router", "fail_start", count=1)
    ref = _Router.start(board, threading.Event())
    assert ref.actor_stopped.wait(WAIT)
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("get_ticker", timeout=WAIT)
