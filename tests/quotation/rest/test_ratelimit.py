"""The shared rate limiter: slots, cooldown after the answer, header corrections, 429, 418.

Time is a fake clock: every wait is asserted exactly, nothing sleeps for real.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotation.backoff import Backoff
from quotation.errors import Banned, InvalidValue, RateLimited
from quotation.rest.ratelimit import Permit, RateLimiter, process_limiter
from quotation.rest.remaining_req import RemainingReq
from tests.fakes import ManualClock
from upbit_sim.limits import RateLimitPolicy, ServerRateLimiter, Verdict

COOLDOWN = 1.05  # window 1.0 + margin 0.05, the defaults


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(mono=100.0)


@pytest.fixture
def limiter(clock: ManualClock) -> RateLimiter:
    return RateLimiter(clock)


def take(limiter: RateLimiter, group: str, n: int) -> list[Permit]:
    return [limiter.acquire(group, timeout=0) for _ in range(n)]


def sleeps_after_acquire(
    limiter: RateLimiter, clock: ManualClock, group: str = "ticker"
) -> list[float]:
    """Acquire ``group``, waiting as long as it takes; then every sleep on the clock so far."""
    limiter.acquire(group)
    return clock.sleeps


# -- slots and cooldown ---------------------------------------------------------


def test_ten_requests_of_a_group_start_at_once_and_the_eleventh_does_not(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    permits = take(limiter, "ticker", 10)
    assert len(permits) == 10
    assert limiter.try_acquire("ticker") is None
    assert clock.sleeps == []


def test_a_slot_is_free_again_window_plus_margin_after_its_answer(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    permits = take(limiter, "ticker", 10)
    clock.advance(0.2)
    for permit in permits:
        permit.release(success=True)
    assert sleeps_after_acquire(limiter, clock) == [pytest.approx(COOLDOWN)]


def test_the_cooldown_starts_when_the_answer_arrives_not_when_the_request_left(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(clock, per_second=1)
    permit = limiter.acquire("ticker")
    clock.advance(0.7)  # a slow answer
    permit.release(success=True)
    assert sleeps_after_acquire(limiter, clock) == [pytest.approx(COOLDOWN)]


def test_while_every_slot_is_in_flight_a_non_blocking_acquire_fails_at_once(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(clock, per_second=2)
    take(limiter, "candles", 2)
    with pytest.raises(RateLimited) as caught:
        limiter.acquire("candles", timeout=0)
    assert caught.value.group == "candles"
    assert clock.sleeps == []


def test_groups_have_independent_budgets(limiter: RateLimiter) -> None:
    take(limiter, "ticker", 10)
    assert limiter.try_acquire("ticker") is None
    assert limiter.try_acquire("candles") is not None
    assert limiter.try_acquire("crix-trades") is not None


def test_a_group_limit_can_be_set_per_group(clock: ManualClock) -> None:
    limiter = RateLimiter(clock, limits={"origin": 1})
    take(limiter, "origin", 1)
    assert limiter.try_acquire("origin") is None
    assert len(take(limiter, "ticker", 10)) == 10


def test_a_wait_that_would_end_after_the_timeout_fails_at_once_with_the_wait(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    for permit in take(limiter, "ticker", 10):
        permit.release(success=True)
    with pytest.raises(RateLimited) as caught:
        limiter.acquire("ticker", timeout=0.5)
    assert caught.value.retry_after == pytest.approx(COOLDOWN)
    assert clock.sleeps == []


def test_a_wait_that_fits_the_timeout_is_slept_exactly(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    for permit in take(limiter, "ticker", 10):
        permit.release(success=True)
    limiter.acquire("ticker", timeout=2.0)
    assert clock.sleeps == [pytest.approx(COOLDOWN)]


def test_a_permit_used_as_a_context_manager_is_released_on_exit(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(clock, per_second=1)
    with limiter.acquire("market") as permit:
        held = not permit.released
    assert held
    assert permit.released
    permit.release()  # idempotent
    assert limiter.status().groups["market"].in_flight == 0


def test_a_release_from_another_thread_wakes_a_caller_waiting_for_an_in_flight_slot(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(clock, per_second=1)
    first = limiter.acquire("ticker")
    got: list[Permit] = []
    waiter = threading.Thread(target=lambda: got.append(limiter.acquire("ticker", timeout=30)))
    waiter.start()
    try:
        # The waiter cannot get a slot while the first request is in flight.
        waiter.join(0.2)
        assert waiter.is_alive()
        first.release(success=True)
    finally:
        waiter.join(10)
    assert len(got) == 1
    assert clock.sleeps == [pytest.approx(COOLDOWN)]


class StrictServer:
    """The simulator's own limit: at most ``limit`` accepted arrivals in any 1.0 s, never a ban.

    Answers are decided in arrival order; each carries ``sec`` = room left.
    """

    def __init__(self, limit: int) -> None:
        # ban_after is out of reach: the simulations count 429s, a ban would end them.
        policy = RateLimitPolicy(per_second=limit, window=1.0, ban_after=1_000_000)
        self._limits = ServerRateLimiter(policy)

    def arrive(self, at: float) -> int | None:
        """``sec`` after accepting a request arriving ``at``, or ``None`` for a 429."""
        decision = self._limits.check("client", "ticker", at)
        return decision.remaining if decision.verdict is Verdict.ALLOW else None


@dataclass
class SimulatedRequest:
    """One request of a simulation: when it left, reached the server and got its answer."""

    send: float
    arrival: float
    done: float
    permit: Permit
    decided: bool = False  # whether a server judged the arrival (never without a server)
    sec: int | None = None  # the server's Remaining-Req ``sec``; None once decided: a 429

    @property
    def refused(self) -> bool:
        return self.decided and self.sec is None


def _simulate(
    seed: int,
    workers: int,
    requests: int,
    max_latency: float,
    *,
    server: StrictServer | None = None,
    per_second: int = 10,
) -> list[SimulatedRequest]:
    """Workers loop acquire → request → release on the fake clock; returns every request.

    Each request reaches the server at a random moment between its send and its
    answer, the way loopback or scheduling jitter could place it. Without a
    ``server`` every answer is a success without a header; with one, the server
    decides arrivals in arrival order and answers with ``sec``, or a 429 when over.
    """
    rng = random.Random(seed)
    clock = ManualClock(mono=0.0)
    limiter = RateLimiter(clock, per_second=per_second)
    pending: list[SimulatedRequest] = []
    answered: list[SimulatedRequest] = []
    sent = 0
    while sent < requests or pending:
        now = clock.monotonic()
        if server is not None:
            # Decide every arrival up to now, in arrival order, before any answer.
            for request in sorted(pending, key=lambda entry: entry.arrival):
                if not request.decided and request.arrival <= now:
                    request.sec = server.arrive(request.arrival)
                    request.decided = True
        for request in sorted(pending, key=lambda entry: entry.done):
            if request.done > now:
                continue
            pending.remove(request)
            answered.append(request)
            if not request.decided:
                request.permit.release(success=True)
            elif request.sec is None:
                request.permit.release(RemainingReq("ticker", sec=0))
                limiter.on_rate_limited("ticker")
            else:
                request.permit.release(RemainingReq("ticker", sec=request.sec), success=True)
        while sent < requests and len(pending) < workers:
            permit = limiter.try_acquire("ticker")
            if permit is None:
                break
            latency = rng.uniform(0.0, max_latency)
            arrival = now + rng.uniform(0.0, latency)
            pending.append(SimulatedRequest(now, arrival, now + latency, permit))
            sent += 1
        clock.advance(rng.uniform(0.0005, 0.02))
    return answered


def _simulate_with_headers(
    seed: int, workers: int, requests: int, max_latency: float, server_limit: int, configured: int
) -> tuple[list[tuple[float, float]], float]:
    """:func:`_simulate` against a :class:`StrictServer` allowing ``server_limit`` a second.

    Returns (send time, arrival) of every refused request and the first answer's time.
    """
    answered = _simulate(
        seed, workers, requests, max_latency,
        server=StrictServer(server_limit), per_second=configured,
    )  # fmt: skip
    refused = [(request.send, request.arrival) for request in answered if request.refused]
    return refused, min((request.done for request in answered), default=float("inf"))


# Each property below runs 25 simulations (pure computation on a fake clock).
simulations = settings(max_examples=25, deadline=None)
SEEDS = st.integers(0, 2**32)
MAX_LATENCIES = st.sampled_from([0.001, 0.05, 0.4])  # answers within 1 ms, 50 ms, 400 ms


@simulations
@given(seed=SEEDS, workers=st.integers(1, 12), max_latency=MAX_LATENCIES)
def test_no_one_second_window_of_server_arrivals_ever_holds_more_than_ten(
    seed: int, workers: int, max_latency: float
) -> None:
    arrivals = sorted(request.arrival for request in _simulate(seed, workers, 120, max_latency))
    assert len(arrivals) == 120
    window: deque[float] = deque()
    for arrival in arrivals:
        window.append(arrival)
        while arrival - window[0] > 1.0:
            window.popleft()
        assert len(window) <= 10


@simulations
@given(seed=SEEDS, server_limit=st.integers(1, 10), max_latency=MAX_LATENCIES)
def test_a_sequential_caller_with_a_limit_set_too_high_never_gets_a_429(
    seed: int, server_limit: int, max_latency: float
) -> None:
    refused, _ = _simulate_with_headers(seed, 1, 60, max_latency, server_limit, configured=50)
    assert refused == []


@simulations
@given(
    seed=SEEDS,
    workers=st.integers(2, 12),
    server_limit=st.integers(1, 10),
    max_latency=MAX_LATENCIES,
)
def test_with_a_limit_set_too_high_only_requests_sent_before_the_first_answer_can_get_a_429(
    seed: int, workers: int, server_limit: int, max_latency: float
) -> None:
    refused, first_answer = _simulate_with_headers(
        seed, workers, 60, max_latency, server_limit, configured=50
    )
    assert all(send < first_answer for send, _ in refused)


@simulations
@given(seed=SEEDS, workers=st.integers(1, 12), max_latency=MAX_LATENCIES)
def test_with_the_right_limit_and_headers_no_request_ever_gets_a_429(
    seed: int, workers: int, max_latency: float
) -> None:
    refused, _ = _simulate_with_headers(seed, workers, 120, max_latency, 10, configured=10)
    assert refused == []


# -- corrections from the Remaining-Req header ----------------------------------------


def test_sec_zero_waits_the_window_out_even_with_slots_left(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    permit = limiter.acquire("ticker")
    permit.release(RemainingReq("ticker", sec=0), success=True)
    assert limiter.try_acquire("ticker") is None
    assert sleeps_after_acquire(limiter, clock) == [pytest.approx(COOLDOWN)]


def test_sec_k_lets_only_k_more_start_before_the_window_ends(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    limiter.acquire("ticker").release(RemainingReq("ticker", sec=3), success=True)
    assert len(take(limiter, "ticker", 3)) == 3
    assert limiter.try_acquire("ticker") is None
    assert sleeps_after_acquire(limiter, clock) == [pytest.approx(COOLDOWN)]


def test_a_sec_above_what_is_free_changes_nothing(limiter: RateLimiter) -> None:
    limiter.acquire("ticker").release(RemainingReq("ticker", sec=9), success=True)
    assert len(take(limiter, "ticker", 9)) == 9
    assert limiter.try_acquire("ticker") is None


def test_a_header_naming_another_group_charges_it_and_teaches_the_alias(
    limiter: RateLimiter,
) -> None:
    permit = limiter.acquire("trades")
    permit.release(RemainingReq("crix-trades", sec=9), success=True)
    assert limiter.resolve("trades") == "crix-trades"
    assert limiter.acquire("trades", timeout=0).group == "crix-trades"
    status = limiter.status().groups["crix-trades"]
    assert status.available == 8
    assert status.last_sec == 9


def test_a_header_without_sec_only_returns_the_slot(limiter: RateLimiter) -> None:
    limiter.acquire("ticker").release(RemainingReq("ticker"), success=True)
    assert limiter.status().groups["ticker"].available == 9


def test_a_server_limit_below_the_configured_one_is_learned_from_sec(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(clock, per_second=50)
    limiter.acquire("ticker").release(RemainingReq("ticker", sec=2), success=True)
    assert limiter.status().groups["ticker"].capacity == 3
    assert len(take(limiter, "ticker", 2)) == 2
    assert limiter.try_acquire("ticker") is None


def test_a_capacity_that_shrank_below_what_is_out_waits_for_enough_slots_to_return(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(clock, per_second=50)
    permits = take(limiter, "ticker", 5)
    permits[0].release(RemainingReq("ticker", sec=1), success=True)  # capacity 2, 4 still out
    for permit in permits[1:]:
        permit.release(success=True)
    assert limiter.try_acquire("ticker") is None
    assert sleeps_after_acquire(limiter, clock) == [pytest.approx(COOLDOWN)]
    assert limiter.status().groups["ticker"].in_flight == 1
    assert limiter.try_acquire("ticker") is not None
    assert limiter.try_acquire("ticker") is None


def test_a_larger_sec_later_lets_the_capacity_grow_back_to_the_configured_limit(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(clock, per_second=10)
    limiter.acquire("ticker").release(RemainingReq("ticker", sec=3), success=True)
    assert limiter.status().groups["ticker"].capacity == 4
    clock.advance(5)
    limiter.acquire("ticker").release(RemainingReq("ticker", sec=9), success=True)
    assert limiter.status().groups["ticker"].capacity == 10
    clock.advance(5)
    limiter.acquire("ticker").release(RemainingReq("ticker", sec=40), success=True)
    assert limiter.status().groups["ticker"].capacity == 10


# -- 429 and 418 --------------------------------------------------------------------


def test_a_429_pauses_only_that_group_with_exponential_backoff(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    assert limiter.on_rate_limited("ticker") == pytest.approx(1.0)
    assert limiter.try_acquire("ticker") is None
    assert limiter.try_acquire("candles") is not None
    assert sleeps_after_acquire(limiter, clock) == [pytest.approx(1.0)]
    assert limiter.on_rate_limited("ticker") == pytest.approx(2.0)
    assert limiter.on_rate_limited("ticker") == pytest.approx(4.0)


def test_the_429_backoff_is_capped(clock: ManualClock) -> None:
    limiter = RateLimiter(clock, backoff=Backoff(initial=1.0, multiplier=2.0, cap=3.0))
    pauses = [limiter.on_rate_limited("ticker") for _ in range(4)]
    # Pauses do not stack: each is measured from now, and the longest wins.
    assert pauses == [pytest.approx(1.0), pytest.approx(2.0), pytest.approx(3.0), 3.0]


def test_a_success_resets_the_429_backoff(limiter: RateLimiter, clock: ManualClock) -> None:
    limiter.on_rate_limited("ticker")
    limiter.on_rate_limited("ticker")
    limiter.acquire("ticker").release(RemainingReq("ticker", sec=9), success=True)
    assert limiter.status().groups["ticker"].consecutive_rate_limits == 0
    clock.advance(10)
    assert limiter.on_rate_limited("ticker") == pytest.approx(1.0)


def test_a_failed_answer_does_not_reset_the_429_backoff(limiter: RateLimiter) -> None:
    limiter.on_rate_limited("ticker")
    limiter.acquire("ticker", timeout=5).release(success=False)
    assert limiter.status().groups["ticker"].consecutive_rate_limits == 1


def test_a_retry_after_from_the_server_lengthens_the_pause(limiter: RateLimiter) -> None:
    assert limiter.on_rate_limited("ticker", retry_after=7.0) == pytest.approx(7.0)


def test_a_429_pause_longer_than_the_timeout_fails_at_once_naming_the_group(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    limiter.on_rate_limited("orderbook")
    with pytest.raises(RateLimited) as caught:
        limiter.acquire("orderbook", timeout=0.5)
    assert caught.value.group == "orderbook"
    assert caught.value.retry_after == pytest.approx(1.0)
    assert clock.sleeps == []


def test_a_418_pauses_every_group_until_the_ban_ends(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    until = limiter.on_banned(30.0)
    assert until == pytest.approx(clock.monotonic() + 30.0)
    for group in ("ticker", "candles", "market", "never-seen"):
        with pytest.raises(Banned) as caught:
            limiter.acquire(group, timeout=5)
        assert caught.value.until == pytest.approx(until)
        assert caught.value.duration == 30.0
    assert clock.sleeps == []
    assert sleeps_after_acquire(limiter, clock, "candles") == [pytest.approx(30.0)]
    assert limiter.banned_until() is None


def test_a_shorter_second_ban_does_not_shorten_the_first(limiter: RateLimiter) -> None:
    first = limiter.on_banned(60.0)
    assert limiter.on_banned(5.0) == first


def test_status_reports_headroom_pauses_and_the_ban(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    take(limiter, "ticker", 3)
    limiter.on_rate_limited("candles")
    status = limiter.status()
    assert status.groups["ticker"].available == 7
    assert status.groups["ticker"].in_flight == 3
    assert status.groups["candles"].available == 0
    assert status.groups["candles"].paused_until == pytest.approx(clock.monotonic() + 1.0)
    assert status.banned_until is None


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"per_second": 0}, "per_second", 0),
        ({"per_second": 2.5}, "per_second", 2.5),
        ({"window": 0.0}, "window", 0.0),
        ({"window": float("inf")}, "window", float("inf")),
        ({"margin": -0.1}, "margin", -0.1),
        ({"limits": {"x": 0}}, "limits['x']", 0),
    ],
)
def test_an_impossible_limiter_configuration_is_refused_naming_the_field(
    kwargs: dict[str, object], field: str, value: object
) -> None:
    with pytest.raises(InvalidValue) as caught:
        RateLimiter(ManualClock(), **kwargs)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.value) == (field, value)


def test_the_process_limiter_is_one_instance() -> None:
    assert process_limiter() is process_limiter()
