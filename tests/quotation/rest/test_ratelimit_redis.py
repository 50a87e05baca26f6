"""The Redis-backed limiter against a real ``redis-server``: one Upbit budget across hosts.

Semantics one by one on a fake clock (``time_source="clock"``: the scripts read the test's
wall time, every wait is asserted exactly, nothing sleeps), then Redis going away and coming
back (real server stopped and started), then the burst: three host processes, one budget,
against the simulator's strict per-IP window.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from quotation.errors import Banned, InvalidValue, RateLimited
from quotation.rest import RestClient, RestConfig
from quotation.rest.ratelimit_redis import RedisRateLimiter
from quotation.rest.remaining_req import RemainingReq
from tests.fakes import ManualClock
from tests.redis_support import RedisServer, redis_server_fixture  # noqa: F401
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[3]
COOLDOWN = 1.05


def _shared(limiter: RedisRateLimiter) -> bool:
    return limiter.shared  # read anew each time (mypy would narrow the property)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(mono=100.0)


@pytest.fixture
def make(
        redis_server: RedisServer, clock: ManualClock,
) -> Iterator[Callable[..., RedisRateLimiter]]:
    """Limiters on one Redis and one fresh prefix (one shared budget), on the fake clock."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    made: list[RedisRateLimiter] = []

    def build(**kwargs: object) -> RedisRateLimiter:
        options: dict[str, object] = {"prefix": prefix, "time_source": "clock"}
        options.update(kwargs)
        limiter = RedisRateLimiter(redis_server.url, clock, **options)  # type: ignore[arg-type]
        made.append(limiter)
        return limiter

    yield build
    for limiter in made:
        limiter.close()


def test_ten_slots_per_group_per_second_shared_by_two_limiters(
        make: Callable[..., RedisRateLimiter], clock: ManualClock) -> None:
    first, second = make(), make()
    permits = [(first if i % 2 else second).acquire("ticker", timeout=0) for i in range(10)]
    assert first.try_acquire("ticker") is None
    assert second.try_acquire("ticker") is None
    other = second.try_acquire("candles")  # another group has its own budget
    assert other is not None
    other.release(success=True)
    for permit in permits:
        permit.release(success=True)
    assert first.try_acquire("ticker") is None  # cooling down since the answers
    with pytest.raises(RateLimited) as refused:
        second.acquire("ticker", timeout=0.5)
    assert refused.value.retry_after == pytest.approx(COOLDOWN, abs=1e-3)
    # acquire without a bound waits exactly the cool-down, on the clock
    permit = second.acquire("ticker")
    assert clock.sleeps == [pytest.approx(COOLDOWN, abs=1e-3)]
    permit.release(success=True)
    status = first.status().groups["ticker"]
    assert (status.limit, status.capacity, status.in_flight) == (10, 10, 0)
    assert status.available == 9  # the nine cooled down; the one just answered cools


def test_a_429_pause_is_seen_by_another_limiter_and_counted_across_them(
        make: Callable[..., RedisRateLimiter], clock: ManualClock) -> None:
    first, second = make(), make()
    assert first.on_rate_limited("ticker") == pytest.approx(1.0, abs=1e-3)
    assert second.try_acquire("ticker") is None
    with pytest.raises(RateLimited, match="paused after HTTP 429") as refused:
        second.acquire("ticker", timeout=0.5)
    assert refused.value.retry_after == pytest.approx(1.0, abs=1e-3)
    assert second.status().groups["ticker"].consecutive_rate_limits == 1
    assert second.try_acquire("orderbook") is not None  # only that group pauses
    assert second.on_rate_limited("ticker") == pytest.approx(2.0, abs=1e-3)  # the 2nd in a row
    permit = first.acquire("ticker")  # waits the pause out
    assert clock.sleeps == [pytest.approx(2.0, abs=1e-3)]
    permit.release(success=True)  # a success anywhere resets the count
    assert second.on_rate_limited("ticker", retry_after=3.0) == pytest.approx(3.0, abs=1e-3)


def test_a_418_ban_is_seen_by_another_limiter_in_every_group(
        make: Callable[..., RedisRateLimiter], clock: ManualClock) -> None:
    first, second = make(), make()
    until = first.on_banned(30.0)
    assert until == pytest.approx(clock.monotonic() + 30.0, abs=1e-3)
    for group in ("ticker", "candles", "orderbook"):
        with pytest.raises(Banned) as banned:
            second.acquire(group, timeout=5.0)
        assert banned.value.until == pytest.approx(clock.monotonic() + 30.0, abs=1e-3)
    assert second.banned_until() == pytest.approx(clock.monotonic() + 30.0, abs=1e-3)
    assert second.status().banned_until is not None
    clock.advance(30.01)
    assert second.banned_until() is None
    second.acquire("candles", timeout=0).release(success=True)


def test_remaining_req_sec_caps_the_shared_capacity(
        make: Callable[..., RedisRateLimiter], clock: ManualClock) -> None:
    first, second = make(), make()
    permit = first.acquire("ticker", timeout=0)
    permit.release(RemainingReq("ticker", sec=2), success=True)  # the server: 3 a window
    taken = [second.acquire("ticker", timeout=0) for _ in range(2)]
    assert second.try_acquire("ticker") is None  # 3 = one cooling + two in flight
    assert second.status().groups["ticker"].capacity == 3
    for p in taken:
        p.release(success=True)


def test_redis_down_means_the_conservative_share_and_back_means_shared(
        make: Callable[..., RedisRateLimiter], redis_server: RedisServer,
        clock: ManualClock) -> None:
    limiter = make(fallback_share=0.2, reconnect_interval=1.0)
    assert _shared(limiter)
    redis_server.stop()
    # Redis gone: the first call finds out and falls back to 2 of 10 slots, locally.
    local = [limiter.acquire("ticker", timeout=0) for _ in range(2)]
    assert not _shared(limiter)
    assert limiter.try_acquire("ticker") is None
    assert limiter.status() == limiter.fallback.status()
    assert limiter.status().groups["ticker"].limit == 2
    for permit in local:
        permit.release(success=True)
    redis_server.start()  # same port, empty
    assert limiter.try_acquire("ticker") is None  # not retried before reconnect_interval
    clock.advance(1.0)
    # Redis's 10 again, less the two local ones still cooling (answered 1.0 s ago)
    shared = [limiter.acquire("ticker", timeout=0) for _ in range(8)]
    assert _shared(limiter)
    assert limiter.try_acquire("ticker") is None
    clock.advance(COOLDOWN - 1.0 + 0.001)
    shared += [limiter.acquire("ticker", timeout=0) for _ in range(2)]
    assert limiter.try_acquire("ticker") is None
    for permit in shared:
        permit.release(success=True)


def test_a_redis_that_stops_answering_costs_one_bounded_call_then_the_local_share(
        make: Callable[..., RedisRateLimiter], redis_server: RedisServer) -> None:
    # SIGSTOP: the port stays open and accepts, nothing answers (a hung Redis, not a refusal).
    limiter = make(redis_timeout=0.2)
    limiter.acquire("ticker", timeout=0).release(success=True)  # connected, shared
    pid = redis_server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        permit = limiter.acquire("ticker", timeout=0)  # the script call times out: local
        assert not _shared(limiter)
        assert permit.group == "ticker"
        permit.release(success=True)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_ban_heard_while_redis_was_down_still_holds_when_it_is_back(
        make: Callable[..., RedisRateLimiter], redis_server: RedisServer,
        clock: ManualClock) -> None:
    limiter = make()
    redis_server.stop()
    limiter.on_banned(10.0)
    redis_server.start()
    clock.advance(1.0)
    with pytest.raises(Banned):
        limiter.acquire("ticker", timeout=1.0)
    assert limiter.shared


def test_bad_arguments_are_named(redis_server: RedisServer) -> None:
    with pytest.raises(InvalidValue) as bad:
        RedisRateLimiter("http://127.0.0.1:1/0")
    assert bad.value.field == "redis_url"
    with pytest.raises(InvalidValue) as bad:
        RedisRateLimiter(redis_server.url, fallback_share=0)
    assert bad.value.field == "fallback_share"


def test_quotation_imports_without_the_redis_client() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import quotation, quotation.rest, quotation.rest.ratelimit_redis as m\n"
        "try:\n    m.RedisRateLimiter('redis://127.0.0.1:1/0')\n"
        "except ImportError:\n    print('ImportError')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=20, cwd=ROOT, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "ImportError"), done.stderr


def test_a_rest_client_on_the_redis_limiter_calls_the_simulator(
        redis_server: RedisServer, sim: Simulator) -> None:
    limiter = RedisRateLimiter(redis_server.url, prefix=f"t{uuid.uuid4().hex[:8]}")
    try:
        with RestClient(RestConfig(base_url=sim.base_url), limiter=limiter) as client:
            assert [t.market for t in client.get_tickers("KRW-BTC")] == ["KRW-BTC"]
        assert limiter.status().groups["ticker"].last_sec is not None
    finally:
        limiter.close()


def _burst(sim: Simulator, redis_url: str, mode: str) -> list[dict[str, int]]:
    prefix = f"burst{uuid.uuid4().hex[:8]}"
    hosts = [
        subprocess.Popen(  # they start asking together (a barrier in Redis), not one by one
            [sys.executable, "-m", "tests.quotation.rest._burst_host", sim.base_url, mode,
             redis_url, prefix, "3"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(3)
    ]
    results = []
    try:
        for host in hosts:
            out, err = host.communicate(timeout=30)
            assert host.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for host in hosts:
            if host.poll() is None:
                host.kill()
                host.wait(5)
    return results


@pytest.mark.timeout(60)
def test_three_host_processes_at_20_per_second_get_no_429_on_one_shared_budget(
        redis_server: RedisServer, sim: Simulator) -> None:
    # Three processes, each its own RestClient and RedisRateLimiter, 20 uncached ticker
    # requests a second each for 5 s, against the simulator's strict 10-a-second window
    # per IP and group; no 429 retries, so every refusal from the simulator is counted.
    assert sim.limiter is not None
    results = _burst(sim, redis_server.url, "redis")
    print(f"\nshared budget, 3 hosts x 100 asks: {results}")
    assert (sim.limiter.refused_429, sim.limiter.refused_418) == (0, 0)  # the simulator's count
    assert sum(r["http_429"] for r in results) == 0
    assert sum(r["http_418"] for r in results) == 0
    assert sum(r["other"] for r in results) == 0
    answered = sum(r["ok"] for r in results)
    # ~9.5 a second for 5 s were answered (the budget used, not starved); the rest refused
    # locally before sending.
    assert 30 <= answered <= 60
    assert all(r["ok"] > 0 for r in results)


@pytest.mark.timeout(60)
def test_the_burst_does_get_429s_when_each_host_keeps_its_own_budget(
        redis_server: RedisServer, sim: Simulator) -> None:
    # The control: the same three hosts on process limiters of their own overrun the IP's
    # budget together — the burst test above can fail.
    assert sim.limiter is not None
    results = _burst(sim, redis_server.url, "local")
    print(f"\nown budgets, 3 hosts x 100 asks: {results}")
    assert sum(r["http_429"] + r["http_418"] for r in results) > 0
    # what the simulator itself refused (the hosts' counts also hold the local refusals of
    # a limiter paused after a 429, whose message names the 429)
    assert sim.limiter.refused_429 + sim.limiter.refused_418 > 0


def test_the_redis_urls_password_is_never_logged_or_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cret-Pa55"
    with pytest.raises(InvalidValue) as bad:
        RedisRateLimiter(f"http://alice:{secret}@127.0.0.1:1/0")
    assert secret not in str(bad.value)
    assert "http://***@127.0.0.1:1/0" in str(bad.value)
    # Port 1: nothing listens, so the first call falls back and says so at ERROR.
    limiter = RedisRateLimiter(f"redis://:{secret}@127.0.0.1:1/0", redis_timeout=0.5)
    try:
        with caplog.at_level(logging.WARNING, logger="quotation"):
            limiter.acquire("ticker", timeout=0).release(success=True)
        assert not _shared(limiter)
    finally:
        limiter.close()
    unreachable = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert unreachable, caplog.text
    assert "redis://***@127.0.0.1:1/0" in unreachable[0]
    assert secret not in caplog.text
    assert limiter.redis_url == f"redis://:{secret}@127.0.0.1:1/0"  # still connects with it


def test_a_redis_that_refuses_a_script_falls_back_instead_of_raising_a_raw_redis_error(
        make: Callable[..., RedisRateLimiter], redis_server: RedisServer) -> None:
    # A key of the wrong type under the prefix (another program's, a botched migration):
    # every script on it fails with WRONGTYPE, a redis ResponseError. The caller must get
    # a permit of the local share, never a raw redis exception.
    import redis  # noqa: PLC0415 - the `shared` extra, only for this test's raw client

    prefix = f"t{uuid.uuid4().hex[:8]}"
    raw = redis.Redis.from_url(redis_server.url)
    try:
        raw.set(f"{prefix}:ratelimit:g:ticker:inflight", "not a sorted set")
        raw.set(f"{prefix}:ratelimit:g:ticker:state", "not a hash")
        limiter = make(prefix=prefix)
        permit = limiter.acquire("ticker", timeout=0)
        assert not _shared(limiter)
        permit.release(success=True)
        assert limiter.status() == limiter.fallback.status()
    finally:
        raw.close()


def test_a_ban_without_end_is_shared_not_a_raw_redis_error(
        make: Callable[..., RedisRateLimiter]) -> None:
    # on_banned(inf) is a ban without end for the process limiter; the shared one must not
    # turn it into PEXPIRE inf (ERR value is not an integer) and a raw ResponseError.
    first, second = make(), make()
    assert first.on_banned(math.inf) == math.inf
    assert _shared(first)
    with pytest.raises(Banned):
        second.acquire("ticker", timeout=1.0)


def test_a_malformed_redis_url_is_an_invalid_value_without_its_password() -> None:
    secret = "s3cret-Pa55"
    for url in (f"redis://:{secret}@127.0.0.1:abc/0", f"redis://:{secret}@127.0.0.1:99999/0"):
        with pytest.raises(InvalidValue) as bad:
            RedisRateLimiter(url)
        assert bad.value.field == "redis_url"
        assert secret not in str(bad.value)
        assert secret not in repr(bad.value.value)


def test_slots_taken_locally_while_redis_was_down_still_count_once_it_is_back(
        make: Callable[..., RedisRateLimiter], redis_server: RedisServer,
        clock: ManualClock) -> None:
    # Redis down: host A sends on its local share (2 of 10), one answered (cooling until
    # 1.05 s after), one still in flight. Redis back 0.5 s later: within that window A's two
    # local requests and the shared ones together must stay within Upbit's 10 — for A and
    # for host B, which never lost Redis.
    host_a = make(fallback_share=0.2, reconnect_interval=0.5)
    host_b = make()
    redis_server.stop()
    answered = host_a.acquire("ticker", timeout=0)
    in_flight = host_a.acquire("ticker", timeout=0)
    answered.release(success=True)
    assert not _shared(host_a)
    redis_server.start()
    clock.advance(0.5)
    shared = [host_a.acquire("ticker", timeout=0)]  # the probe: shared again
    assert _shared(host_a)
    while (permit := host_b.try_acquire("ticker")) is not None:
        shared.append(permit)
        assert len(shared) <= 10  # a bound on the loop; the budget's check is below
    assert len(shared) + 2 == 10  # 10 a window from this IP, not 12
    for permit in shared:
        permit.release(success=True)
    # The answered local slot frees 1.05 s after its answer, on every host ...
    clock.advance(COOLDOWN - 0.5 + 0.01)
    assert host_b.status().groups["ticker"].available == 1
    # ... and the in-flight one 1.05 s after its answer, once A has seen it.
    in_flight.release(success=True)
    host_a.acquire("ticker", timeout=0).release(success=True)  # A refreshes what it holds
    clock.advance(COOLDOWN + 0.01)
    assert host_b.status().groups["ticker"].available == 10


def test_slots_taken_in_redis_still_count_on_the_local_share_once_it_is_gone(
        make: Callable[..., RedisRateLimiter], redis_server: RedisServer,
        clock: ManualClock) -> None:
    # The mirror of the switch back: a host that just sent 3 shared requests (answered,
    # cooling) and has 1 in flight loses Redis. Its local share (2) must not add requests to
    # that window: 4 + 2 from one host in 1.05 s is more than the share promises.
    limiter = make(fallback_share=0.2)
    answered = [limiter.acquire("ticker", timeout=0) for _ in range(3)]
    in_flight = limiter.acquire("ticker", timeout=0)
    for permit in answered:
        permit.release(success=True)
    redis_server.stop()
    assert limiter.try_acquire("ticker") is None  # Redis gone: local, but nothing free
    assert not _shared(limiter)
    clock.advance(COOLDOWN + 0.001)  # the three answered ones have cooled
    local = limiter.acquire("ticker", timeout=0)  # the in-flight one still holds the other
    assert limiter.try_acquire("ticker") is None
    in_flight.release(success=True)  # answered now (its release cannot reach Redis)
    local.release(success=True)
    assert limiter.try_acquire("ticker") is None
    clock.advance(COOLDOWN + 0.001)
    assert len([limiter.acquire("ticker", timeout=0) for _ in range(2)]) == 2


def test_a_shared_request_in_flight_across_an_outage_frees_its_local_slot_when_answered(
        make: Callable[..., RedisRateLimiter], redis_server: RedisServer,
        clock: ManualClock) -> None:
    # In flight when Redis went away (the local share counts it), answered once Redis is back:
    # the local share's slot is given back too, not left in flight for ever.
    limiter = make(fallback_share=0.2, reconnect_interval=0.5)
    in_flight = limiter.acquire("ticker", timeout=0)
    redis_server.stop()
    limiter.acquire("ticker", timeout=0).release(success=True)  # local: 1 of 2
    assert limiter.fallback.status().groups["ticker"].in_flight == 1
    redis_server.start()
    clock.advance(0.5)
    limiter.acquire("candles", timeout=0).release(success=True)  # the probe: shared again
    assert _shared(limiter)
    in_flight.release(success=True)
    assert limiter.fallback.status().groups["ticker"].in_flight == 0


def test_a_success_resets_the_429_count_of_the_local_share_too(
        make: Callable[..., RedisRateLimiter], redis_server: RedisServer,
        clock: ManualClock) -> None:
    # Each 429 is recorded in the local share as well (for a fall back during the pause); a
    # shared success must reset that count too, or the first 429 after Redis goes away
    # pauses for the n-th in a row (8 s after three earlier, answered ones) instead of 1 s.
    limiter = make()
    for _ in range(3):
        assert limiter.on_rate_limited("ticker") == pytest.approx(1.0, abs=1e-3)
        limiter.acquire("ticker").release(success=True)  # waits the pause out: a success
    clock.advance(COOLDOWN + 0.001)
    redis_server.stop()
    assert limiter.on_rate_limited("ticker") == pytest.approx(1.0, abs=1e-3)
    assert not _shared(limiter)


def test_a_closed_limiter_opens_no_new_redis_connection(
        make: Callable[..., RedisRateLimiter], redis_server: RedisServer) -> None:
    # close() at a system's stop; an actor that outlived the stop may still release its
    # permit or ask again. That must not open a connection nobody will close.
    import redis  # noqa: PLC0415 - the `shared` extra, only for this test's raw client

    raw = redis.Redis.from_url(redis_server.url)
    try:
        limiter = make()
        held = limiter.acquire("ticker", timeout=0)
        limiter.acquire("candles", timeout=0).release(success=True)
        limiter.close()
        before = int(raw.info("clients")["connected_clients"])
        held.release(success=True)
        limiter.acquire("ticker", timeout=0).release(success=True)  # the local share
        limiter.on_rate_limited("orderbook")
        limiter.status()
        assert not _shared(limiter)
        assert int(raw.info("clients")["connected_clients"]) == before
    finally:
        raw.close()


def test_status_shows_no_headroom_under_a_ban_heard_while_redis_was_down(
        make: Callable[..., RedisRateLimiter], redis_server: RedisServer,
        clock: ManualClock) -> None:
    limiter = make(reconnect_interval=0.5)
    limiter.acquire("ticker", timeout=0).release(success=True)
    redis_server.stop()
    limiter.on_banned(10.0)  # only this host heard it: kept locally
    redis_server.start()
    clock.advance(COOLDOWN + 0.001)
    status = limiter.status()
    assert _shared(limiter)
    assert status.banned_until == pytest.approx(clock.monotonic() + 10.0 - COOLDOWN - 0.001)
    assert status.groups["ticker"].available == 0  # the acquire would be refused: Banned
