"""Streams on a real Redis: the fenced publish, readers in order and resuming, bounded
trimming, bad entries skipped, a bounded stop, Redis dying mid-read, snapshots, and the
hosts' symbol registration."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from redis.client import Pipeline

from lifeline.feed import (
    CodecError,
    FeedCommandError,
    FeedEntry,
    FeedError,
    FeedKeys,
    FeedKind,
    FeedPublisher,
    FeedReader,
    FeedSettingsError,
    FeedUnavailable,
    Lease,
    LeaseLost,
    Snapshots,
    StreamFollower,
    SymbolRegistry,
    encode,
)
from lifeline.feed.lease import LeaseGrant
from lifeline.feed.streams import stream_ends
from quotation.models import Candle, CandleInterval, Change, Side, Ticker, Trade
from tests.fakes import ManualClock
from tests.redis_support import RedisServer

pytestmark = pytest.mark.timeout(30)

KEYS = FeedKeys("t")
AT = datetime(2026, 3, 11, 12, 0, 0, 250000, tzinfo=UTC)


class CountingRedis(redis.Redis):
    """A real client on another client's pool (the same Redis, the same timeouts) that
    counts its round trips, per thread: each command sent alone, and each pipeline's
    ``execute`` (one round trip whatever the commands queued in it)."""

    def __init__(self, made: redis.Redis) -> None:
        super().__init__(connection_pool=made.connection_pool)
        self._counting = threading.Lock()
        self._trips: dict[int, list[str]] = {}

    def note(self, what: str) -> None:
        with self._counting:
            self._trips.setdefault(threading.get_ident(), []).append(what)

    def trips(self) -> list[str]:
        """The round trips made so far on the calling thread, in order."""
        with self._counting:
            return list(self._trips.get(threading.get_ident(), ()))

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.note(str(args[0]))
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return _CountingPipeline(self, transaction, shard_hint)


class _CountingPipeline(Pipeline):
    def __init__(self, counter: CountingRedis, transaction: bool, shard_hint: Any) -> None:
        super().__init__(counter.connection_pool, counter.response_callbacks, transaction,
                         shard_hint)
        self._counter = counter

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        self._counter.note(f"pipeline of {len(self.command_stack)}")
        return super().execute(raise_on_error)


def _trade(n: int, market: str = "KRW-BTC") -> Trade:
    return Trade(market, 1000 + n, AT + timedelta(milliseconds=n), 100.0 + n, 0.5, Side.ASK,
                 99.0, 1.0, 1.0, Change.RISE)


def _grant(client: redis.Redis) -> LeaseGrant:
    grant = Lease(client, KEYS.leader, "pub", ttl=30.0, clock=ManualClock()).try_acquire()
    assert grant is not None
    return grant


def test_keys_follow_the_documented_layout() -> None:
    keys = FeedKeys("lifeline")
    assert keys.stream(FeedKind.TRADE, "KRW-BTC") == "lifeline:trade:KRW-BTC"
    assert keys.snapshot(FeedKind.CANDLE_1M, "KRW-ETH") == "lifeline:latest:candle.1m:KRW-ETH"
    assert (keys.leader, keys.hosts, keys.host("h1")) == (
        "lifeline:leader", "lifeline:hosts", "lifeline:host:h1")


def test_a_reader_sees_published_items_in_order_with_the_publishers_source_and_level(
    client: redis.Redis,
) -> None:
    publisher = FeedPublisher(client, KEYS)
    grant = _grant(client)
    reader = FeedReader(client, KEYS, block=0.05)
    reader.follow(FeedKind.TRADE, "KRW-BTC")
    assert reader.read().entries == ()  # pins the stream's end before anything is published
    ids = publisher.publish(grant, [_trade(n) for n in range(50)], source="router", level=1)
    ids += publisher.publish(grant, [_trade(50)], source="rest_fallback", level=2)
    seen: list[FeedEntry] = []
    for _ in range(10):
        seen += reader.read().entries
        if len(seen) >= 51:
            break
    assert [e.item for e in seen] == [_trade(n) for n in range(51)]
    assert [e.id for e in seen] == ids
    assert (seen[0].source, seen[0].level, seen[0].token) == ("router", 1, grant.token)
    assert (seen[-1].source, seen[-1].level) == ("rest_fallback", 2)
    assert abs(seen[0].published_at - time.time()) < 60  # Redis' clock, from the id


def test_items_published_between_two_reads_are_not_missed(client: redis.Redis) -> None:
    # "$" would miss them; the reader pins the stream's last id at its first read.
    publisher, grant = FeedPublisher(client, KEYS), _grant(client)
    publisher.publish(grant, [_trade(0)], source="router", level=0)
    reader = FeedReader(client, KEYS, block=0.05)
    reader.follow(FeedKind.TRADE, "KRW-BTC")
    reader.read()
    publisher.publish(grant, [_trade(1)], source="router", level=0)
    publisher.publish(grant, [_trade(2)], source="router", level=0)
    assert [e.item for e in reader.read().entries] == [_trade(1), _trade(2)]


def test_a_reader_follows_several_streams_and_resumes_from_its_last_id(
    client: redis.Redis, redis_server: RedisServer,
) -> None:
    publisher, grant = FeedPublisher(client, KEYS), _grant(client)
    reader = FeedReader(client, KEYS, block=0.05)
    reader.follow(FeedKind.TRADE, "KRW-BTC", after=b"0")
    reader.follow(FeedKind.TRADE, "KRW-ETH", after=b"0")
    publisher.publish(grant, [_trade(0), _trade(1, "KRW-ETH"), _trade(2)],
                      source="router", level=0)
    first = reader.read().entries
    assert sorted((e.market, e.item.sequential_id) for e in first) == [  # type: ignore[union-attr]
        ("KRW-BTC", 1000), ("KRW-BTC", 1002), ("KRW-ETH", 1001)]
    publisher.publish(grant, [_trade(3)], source="router", level=0)
    again = [e.item for e in reader.read().entries]
    assert again == [_trade(3)]


def test_trimming_keeps_about_maxlen_entries(client: redis.Redis) -> None:
    publisher, grant = FeedPublisher(client, KEYS, maxlen=100), _grant(client)
    for start in range(0, 2000, 100):
        publisher.publish(grant, [_trade(n) for n in range(start, start + 100)],
                          source="router", level=0)
    length = client.xlen(KEYS.stream(FeedKind.TRADE, "KRW-BTC"))
    assert 100 <= length < 300  # MAXLEN ~ trims whole macro nodes (100 entries by default)


def test_a_stale_publisher_writes_nothing(client: redis.Redis) -> None:
    publisher, grant = FeedPublisher(client, KEYS), _grant(client)
    client.delete(KEYS.leader)  # the lease expired and ...
    newer = _grant(client)      # ... another holder took it
    with pytest.raises(LeaseLost):
        publisher.publish(grant, [_trade(0)], source="router", level=0)
    assert not client.exists(KEYS.stream(FeedKind.TRADE, "KRW-BTC"))
    publisher.publish(newer, [_trade(0)], source="router", level=0)
    assert client.xlen(KEYS.stream(FeedKind.TRADE, "KRW-BTC")) == 1


def test_stream_ends_reads_the_last_id_of_every_stream_in_one_round_trip(
    client: redis.Redis,
) -> None:
    publisher, grant = FeedPublisher(client, KEYS), _grant(client)
    ids = publisher.publish(grant, [_trade(0), _trade(1), _trade(2, "KRW-ETH")],
                            source="router", level=0)
    btc, eth = (KEYS.stream(FeedKind.TRADE, m) for m in ("KRW-BTC", "KRW-ETH"))
    empty, wrong = KEYS.stream(FeedKind.TRADE, "KRW-XRP"), KEYS.stream(FeedKind.TRADE, "KRW-SOL")
    client.set(wrong, b"not a stream")
    counting = CountingRedis(client)
    assert stream_ends(counting, []) == {}
    assert counting.trips() == []  # nothing to read: no round trip
    ends = stream_ends(counting, [btc, eth, empty, wrong])
    assert ends == {btc: ids[1], eth: ids[2], empty: b"0-0"}  # the refused key left out
    assert counting.trips() == ["pipeline of 4"]
    with pytest.raises(FeedCommandError):
        stream_ends(counting, [btc, wrong], strict=True)


def test_stream_ends_of_many_streams_on_a_silent_redis_is_one_round_trip_and_one_error(
    client: redis.Redis, redis_server: RedisServer,
) -> None:
    streams = [KEYS.stream(FeedKind.TRADE, f"KRW-C{n}") for n in range(8)]
    counting = CountingRedis(client)
    assert stream_ends(counting, streams) == dict.fromkeys(streams, b"0-0")
    redis_server.pause()  # SIGSTOP: the port accepts, nothing answers
    try:
        with pytest.raises(FeedUnavailable) as silent:
            stream_ends(counting, streams)
    finally:
        redis_server.resume()
    assert silent.value.operation == "xrevrange"
    assert counting.trips() == ["pipeline of 8", "pipeline of 8"]


def test_a_bad_entry_is_reported_and_the_reader_goes_on(client: redis.Redis) -> None:
    publisher, grant = FeedPublisher(client, KEYS), _grant(client)
    reader = FeedReader(client, KEYS, block=0.05)
    reader.follow(FeedKind.TRADE, "KRW-BTC", after=b"0")
    stream = KEYS.stream(FeedKind.TRADE, "KRW-BTC")
    publisher.publish(grant, [_trade(0)], source="router", level=0)
    client.xadd(stream, {"d": b"X1\xc1", "src": b"router", "lvl": b"0", "tok": b"1"})
    client.xadd(stream, {"src": b"router"})
    publisher.publish(grant, [_trade(1)], source="router", level=0)
    batch = reader.read()
    assert [e.item for e in batch.entries] == [_trade(0), _trade(1)]
    assert [type(b.error) for b in batch.bad] == [CodecError, CodecError]
    assert batch.bad[1].error.field == "d"


def test_an_entry_of_another_market_or_kind_in_a_stream_is_a_bad_entry(
    client: redis.Redis,
) -> None:
    reader = FeedReader(client, KEYS, block=0.05)
    reader.follow(FeedKind.TRADE, "KRW-BTC", after=b"0")
    client.xadd(KEYS.stream(FeedKind.TRADE, "KRW-BTC"),
                {"d": encode(_trade(0, "KRW-ETH")), "src": b"r", "lvl": b"0", "tok": b"1"})
    batch = reader.read()
    assert batch.entries == () and batch.bad[0].error.field == "market"


def test_the_latest_snapshot_is_the_last_published_item_per_market_and_kind(
    client: redis.Redis,
) -> None:
    publisher, grant = FeedPublisher(client, KEYS), _grant(client)
    ticker = Ticker("KRW-BTC", 1.0, 1.0, 1.0, 1.0, 1.0, Change.EVEN, 0.0, 0.0, 0.0, 0.0, 0.0,
                    0.0, 0.0, 0.0, 0.0, 1.0, None, 1.0, None, AT, AT)
    candle = Candle("KRW-BTC", CandleInterval.MINUTE_1, AT, 1.0, 2.0, 0.5, 1.5, 3.0, 4.0, AT)
    ids = publisher.publish(grant, [ticker, replace(ticker, trade_price=2.0), candle,
                                    _trade(0), _trade(1)], source="router", level=1)
    snapshots = Snapshots(client, KEYS)
    latest = snapshots.latest(FeedKind.TICKER, ["KRW-BTC", "KRW-XRP"])
    assert list(latest) == ["KRW-BTC"]
    assert latest["KRW-BTC"].item == replace(ticker, trade_price=2.0)
    assert (latest["KRW-BTC"].id, latest["KRW-BTC"].source) == (ids[1], "router")
    assert snapshots.latest(FeedKind.CANDLE_1M, ["KRW-BTC"])["KRW-BTC"].item == candle
    recent = snapshots.recent(FeedKind.TRADE, "KRW-BTC", 10)
    assert [e.item for e in recent.entries] == [_trade(0), _trade(1)]


def test_only_one_minute_candles_are_published(client: redis.Redis) -> None:
    publisher, grant = FeedPublisher(client, KEYS), _grant(client)
    candle = Candle("KRW-BTC", CandleInterval.MINUTE_5, AT, 1.0, 2.0, 0.5, 1.5, 3.0, 4.0, AT)
    with pytest.raises(ValueError, match="1-minute"):
        publisher.publish(grant, [candle], source="router", level=0)


# -- the follower thread -----------------------------------------------------------------


def test_a_follower_delivers_entries_in_order_and_stops_within_its_bound(
    client: redis.Redis,
) -> None:
    publisher, grant = FeedPublisher(client, KEYS), _grant(client)
    got: list[FeedEntry] = []
    enough = threading.Event()

    def sink(entry: FeedEntry) -> None:
        got.append(entry)
        if len(got) == 20:
            enough.set()

    follower = StreamFollower(FeedReader(client, KEYS, block=0.1), sink)
    follower.follow(FeedKind.TRADE, "KRW-BTC", after=b"0")
    follower.start()
    try:
        for n in range(20):
            publisher.publish(grant, [_trade(n)], source="router", level=0)
        assert enough.wait(5.0)
    finally:
        started = time.monotonic()
        assert follower.stop()
        stopped_in = time.monotonic() - started
    assert [e.item for e in got] == [_trade(n) for n in range(20)]
    assert not follower.running
    assert stopped_in <= follower.stop_bound


def test_redis_stopped_mid_read_is_a_typed_error_not_a_hang(
    client: redis.Redis, redis_server: RedisServer,
) -> None:
    reader = FeedReader(client, KEYS, block=0.4)
    reader.follow(FeedKind.TRADE, "KRW-BTC", after=b"0")
    reader.read(block=0.01)
    errors: list[FeedError] = []
    failed = threading.Event()

    def on_error(error: FeedError) -> None:
        errors.append(error)
        failed.set()

    follower = StreamFollower(reader, lambda entry: None, on_error=on_error,
                              retry_after=0.1)
    follower.start()
    try:
        time.sleep(0.1)  # let it block inside XREAD
        redis_server.stop()
        assert failed.wait(5.0)
    finally:
        assert follower.stop()
    assert isinstance(errors[0], FeedUnavailable) and errors[0].operation in {"xread",
                                                                              "xrevrange"}
    with pytest.raises(FeedUnavailable):
        reader.read(block=0.01)


def test_a_follower_resumes_after_redis_comes_back(
    client: redis.Redis, redis_server: RedisServer,
) -> None:
    got: list[FeedEntry] = []
    arrived = threading.Event()
    errors: list[FeedError] = []
    def sink(entry: FeedEntry) -> None:
        got.append(entry)
        arrived.set()

    follower = StreamFollower(FeedReader(client, KEYS, block=0.1), sink,
                              on_error=errors.append, retry_after=0.05)
    follower.follow(FeedKind.TRADE, "KRW-BTC", after=b"0")
    follower.start()
    try:
        redis_server.stop()
        deadline = time.monotonic() + 5.0
        while not errors and time.monotonic() < deadline:
            time.sleep(0.02)
        assert errors
        redis_server.start()
        publisher, grant = FeedPublisher(client, KEYS), _grant(client)
        publisher.publish(grant, [_trade(7)], source="router", level=0)
        assert arrived.wait(5.0)
    finally:
        assert follower.stop()
    assert [e.item for e in got] == [_trade(7)]


def test_a_sink_that_raises_does_not_stop_the_follower(client: redis.Redis) -> None:
    publisher, grant = FeedPublisher(client, KEYS), _grant(client)
    got: list[FeedEntry] = []
    second = threading.Event()

    def sink(entry: FeedEntry) -> None:
        got.append(entry)
        if len(got) == 1:
            raise RuntimeError("the host's callback broke")
        second.set()

    follower = StreamFollower(FeedReader(client, KEYS, block=0.05), sink)
    follower.follow(FeedKind.TRADE, "KRW-BTC", after=b"0")
    follower.start()
    try:
        publisher.publish(grant, [_trade(0), _trade(1)], source="router", level=0)
        assert second.wait(5.0)
    finally:
        assert follower.stop()


# -- symbol registration ----------------------------------------------------------------


def test_the_leader_reads_the_union_of_the_live_hosts_symbols(client: redis.Redis) -> None:
    registry = SymbolRegistry(client, KEYS, ttl=30.0)
    registry.register("h1", ["KRW-BTC", "KRW-ETH"])
    registry.register("h2", ["KRW-ETH", "KRW-XRP"])
    assert registry.union() == {"KRW-BTC", "KRW-ETH", "KRW-XRP"}
    registry.register("h1", ["KRW-BTC"])  # replaces, does not add
    assert registry.union() == {"KRW-BTC", "KRW-ETH", "KRW-XRP"}
    registry.register("h2", [])
    assert registry.union() == {"KRW-BTC"}
    registry.unregister("h1")
    assert registry.union() == frozenset()


def test_a_host_that_stops_refreshing_drops_out_after_its_ttl(client: redis.Redis) -> None:
    short = SymbolRegistry(client, KEYS, ttl=0.2)
    long = SymbolRegistry(client, KEYS, ttl=30.0)
    short.register("gone", ["KRW-DOGE"])
    long.register("alive", ["KRW-BTC"])
    assert long.union() == {"KRW-BTC", "KRW-DOGE"}
    deadline = time.monotonic() + 5.0
    while long.union() != {"KRW-BTC"}:
        assert time.monotonic() < deadline, "the silent host never dropped out"
        time.sleep(0.05)
    assert client.zrange(KEYS.hosts, 0, -1) == [b"alive"]


def test_a_read_block_as_long_as_the_socket_timeout_is_refused(client: redis.Redis) -> None:
    with pytest.raises(FeedSettingsError) as caught:
        FeedReader(client, KEYS, block=0.5)  # the fixture's client times out at 0.5 s
    assert caught.value.key == "feed.read_block"
