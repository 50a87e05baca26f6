"""The publisher's lease on a real Redis: one holder, renewals keep it, expiry hands it over,
and a stale holder's fenced write is refused with nothing written.

The schedule runs on a ManualClock; the expiry is Redis' own ``PX`` (ttl 0.3 s), waited for
by polling with a bound, never by a fixed sleep.
"""

from __future__ import annotations

import time

import pytest
import redis

from lifeline.feed import FeedSettingsError, FeedUnavailable, Lease, LeaseLost
from lifeline.feed.lease import FencedWrite, FencedWriter
from tests.fakes import ManualClock
from tests.redis_support import RedisServer

pytestmark = pytest.mark.timeout(30)

KEY = "test:leader"
TTL = 0.3


def _lease(client: redis.Redis, owner: str, clock: ManualClock, ttl: float = TTL) -> Lease:
    return Lease(client, KEY, owner, ttl=ttl, clock=clock)


def _acquire_within(lease: Lease, bound: float) -> float:
    """Poll ``try_acquire`` until it wins (real seconds, at most ``bound``); how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < bound:
        if lease.try_acquire() is not None:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"{lease.owner} did not acquire within {bound} s")


def test_of_two_contenders_exactly_one_holds(client: redis.Redis) -> None:
    clock = ManualClock()
    a, b = _lease(client, "a", clock, ttl=5.0), _lease(client, "b", clock, ttl=5.0)
    first, second = a.try_acquire(), b.try_acquire()
    assert first is not None and second is None
    assert a.held() and not b.held()
    holder = a.holder()
    assert holder is not None and (holder.owner, holder.token) == ("a", first.token)
    assert 0.0 < holder.ttl_left <= 5.0


def test_fencing_tokens_only_grow_across_holders(client: redis.Redis) -> None:
    clock = ManualClock()
    a, b = _lease(client, "a", clock), _lease(client, "b", clock)
    first = a.try_acquire()
    assert first is not None and a.release()
    second = b.try_acquire()
    assert second is not None and second.token > first.token
    assert b.release()
    third = a.try_acquire()
    assert third is not None and third.token > second.token


def test_the_holders_renewals_keep_the_lease_past_its_ttl(client: redis.Redis) -> None:
    clock = ManualClock()
    a, b = _lease(client, "a", clock), _lease(client, "b", clock)
    assert a.step().holding
    started = time.monotonic()
    while time.monotonic() - started < 3 * TTL:  # three ttls of real time, renewed
        clock.advance(a.renew_every)
        step = a.step()
        assert step.holding and step.next_due == pytest.approx(clock.monotonic() + a.renew_every)
        assert b.try_acquire() is None
        time.sleep(TTL / 6)
    holder = b.holder()
    assert holder is not None and holder.owner == "a"


def test_an_impossible_ttl_renewal_or_owner_is_refused_naming_the_setting() -> None:
    clock = ManualClock()
    with pytest.raises(FeedSettingsError) as caught:
        Lease(redis.Redis(), KEY, "a", ttl=0.0, clock=clock)
    assert caught.value.key == "feed.leader_ttl"
    with pytest.raises(FeedSettingsError):
        Lease(redis.Redis(), KEY, "a", ttl=1.0, renew_every=1.0, clock=clock)
    with pytest.raises(FeedSettingsError):
        Lease(redis.Redis(), KEY, "a:b", clock=clock)


def test_a_step_before_the_renewal_is_due_sends_nothing(
    client: redis.Redis, redis_server: RedisServer,
) -> None:
    clock = ManualClock()
    a = _lease(client, "a", clock, ttl=5.0)
    step = a.step()
    assert step.holding and step.next_due == pytest.approx(clock.monotonic() + 5.0 / 3)
    redis_server.stop()  # any command now fails: a step that sends one raises
    clock.advance(5.0 / 3 - 0.01)
    assert a.step().holding
    clock.advance(0.01)
    with pytest.raises(FeedUnavailable):
        a.step()
    assert a.held()  # unreachable Redis keeps the grant until its own time runs out
    clock.advance(5.0)
    assert not a.held() and a.grant is None


def test_when_the_holder_stops_renewing_the_other_acquires_after_the_ttl(
    client: redis.Redis,
) -> None:
    clock, clock_b = ManualClock(), ManualClock()  # two processes, two clocks
    a, b = _lease(client, "a", clock), _lease(client, "b", clock_b)
    grant_a = a.try_acquire()
    assert grant_a is not None and b.try_acquire() is None
    waited = _acquire_within(b, bound=10 * TTL)  # Redis' PX ends a's lease
    assert waited > 0.0
    grant_b = b.grant
    assert grant_b is not None and grant_b.token > grant_a.token
    # a's own clock: no renewal for a ttl → a no longer believes it holds
    clock.advance(TTL)
    assert not a.held()
    # and a late renewal from a (a paused process waking up) is refused: b's token is there
    with pytest.raises(LeaseLost):
        a.renew()
    assert a.grant is None and b.held()


def test_a_stale_holders_fenced_write_is_refused_and_nothing_is_written(
    client: redis.Redis,
) -> None:
    clock = ManualClock()
    a, b = _lease(client, "a", clock), _lease(client, "b", clock)
    writer = FencedWriter(client, maxlen=100)
    grant_a = a.try_acquire()
    assert grant_a is not None
    ok = writer.write(grant_a, [FencedWrite("test:s", {"d": b"1"}, "test:snap")])
    assert len(ok) == 1
    _acquire_within(b, bound=10 * TTL)  # a paused past its ttl; b took over
    with pytest.raises(LeaseLost) as caught:
        writer.write(grant_a, [FencedWrite("test:s", {"d": b"2"}, "test:snap"),
                               FencedWrite("test:s2", {"d": b"3"}, "test:snap2")])
    assert caught.value.token == grant_a.token
    assert client.xlen("test:s") == 1 and not client.exists("test:s2", "test:snap2")
    assert client.hget("test:snap", "d") == b"1"
    grant_b = b.grant
    assert grant_b is not None
    writer.write(grant_b, [FencedWrite("test:s", {"d": b"4"}, "test:snap")])
    assert client.hget("test:snap", "d") == b"4" and client.xlen("test:s") == 2


def test_release_frees_the_lease_at_once_and_only_if_ours(client: redis.Redis) -> None:
    clock = ManualClock()
    a, b = _lease(client, "a", clock, ttl=5.0), _lease(client, "b", clock, ttl=5.0)
    assert a.try_acquire() is not None
    assert not b.release()  # b holds nothing: nothing deleted
    assert a.holder() is not None
    assert a.release()
    assert b.try_acquire() is not None


def test_an_unreachable_redis_is_a_typed_error_within_the_timeout(
    client: redis.Redis, redis_server: RedisServer,
) -> None:
    redis_server.stop()
    lease = _lease(client, "a", ManualClock())
    with pytest.raises(FeedUnavailable) as caught:
        lease.try_acquire()
    assert caught.value.operation == "lease acquire"


def test_an_acquire_whose_reply_was_lost_is_adopted_at_the_next_attempt_not_after_a_ttl(
    client: redis.Redis, redis_server: RedisServer,
) -> None:
    clock = ManualClock()
    a, b = _lease(client, "a", clock, ttl=5.0), _lease(client, "b", clock, ttl=5.0)
    assert a.try_acquire() is not None and a.release()  # the script is loaded in Redis
    redis_server.pause()  # silent: a's acquire is read when Redis wakes, its reply lost
    try:
        with pytest.raises(FeedUnavailable):
            a.try_acquire()
    finally:
        redis_server.resume()
    started = time.monotonic()
    while (orphan := b.holder()) is None:
        assert time.monotonic() - started < 5.0, "Redis never ran the acquire it had read"
        time.sleep(0.02)
    assert orphan.owner == "a" and a.grant is None  # a holds it and does not know
    assert b.try_acquire() is None
    while (orphan := b.holder()) is not None and orphan.ttl_left > 4.8:  # Redis' clock runs
        assert time.monotonic() - started < 5.0
        time.sleep(0.02)
    assert orphan is not None
    clock.advance(a.acquire_every)
    grant = a.try_acquire()  # before: None until Redis expired it, a whole ttl
    assert grant is not None and grant.token == orphan.token and a.held()
    holder = b.holder()
    assert holder is not None and holder.ttl_left > 4.8  # renewed to a full ttl on adoption
    writer = FencedWriter(client, maxlen=10)
    assert len(writer.write(grant, [FencedWrite("test:s", {"d": b"1"})])) == 1


def test_a_contender_adopts_only_the_lease_it_created_itself(client: redis.Redis) -> None:
    clock = ManualClock()
    a = _lease(client, "a", clock, ttl=5.0)
    assert a.try_acquire() is not None
    # the key now holds another lease under the same owner name (another process named
    # alike, an older build): not the value this contender created
    client.set(KEY, b"99:a", px=5_000)
    assert _lease(client, "a", clock, ttl=5.0).try_acquire() is None
    with pytest.raises(LeaseLost):
        a.renew()
    assert a.try_acquire() is None
    assert client.get(KEY) == b"99:a"
