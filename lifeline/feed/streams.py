"""The feed's Redis layout: stream and snapshot names, the fenced publish, the readers,
and the hosts' symbol registration.

Keys (``prefix`` is ``feed.stream_prefix``, ``kind`` one of :class:`FeedKind`)::

    {prefix}:{kind}:{market}          stream, one entry per published item (MAXLEN ~)
    {prefix}:latest:{kind}:{market}   hash, the latest entry's fields and its stream ``id``
    {prefix}:leader                   the publisher's lease (``<token>:<owner>``, PX)
    {prefix}:leader:fence             the fencing-token counter (INCR)
    {prefix}:leader:heartbeat         hash, the leader's heartbeat (fenced, PX 2 x ttl)
    {prefix}:hosts                    zset: host id -> registration expiry (server ms)
    {prefix}:host:{host}              set: the symbols that host asks for (PX)

An entry's fields: ``d`` the model (:mod:`lifeline.feed.codec`), ``src`` the publisher's
source (``router``, ``rest_fallback``, …), ``lvl`` the publisher's level (0-3), ``tok``
the publisher's fencing token (a new token in a stream = a takeover). The entry id's
milliseconds are Redis' clock when it was written.

* :class:`FeedPublisher` writes items through the lease's fenced script: one round trip
  per call, whatever the number of items.
* :class:`FeedReader` follows several streams with one bounded ``XREAD BLOCK``, from
  where it last was (a start at ``$`` is pinned to the stream's last id at the first
  read, so nothing written between two reads is missed); a bad entry is skipped with a
  :class:`~lifeline.feed.errors.CodecError` in the batch, never raised.
* :class:`StreamFollower` runs a reader on a thread, hands entries to a sink, reports
  errors and retries while Redis is away; ``stop()`` returns within ``stop_bound``.
* :class:`Snapshots` reads the latest entry per market and kind, and recent history;
  :func:`stream_ends` the last id of any number of streams in one round trip.
* :class:`SymbolRegistry`: each host registers the symbols it asks for with a TTL it
  refreshes; the leader reads the union of the live hosts' symbols.
* :class:`Heartbeats`: the leader's heartbeat (:class:`Heartbeat`: who, its token, its
  tree's level, its last publish, when Redis wrote it on its own clock), written fenced by
  the lease, and read by followers together with the lease holder and Redis' ``TIME`` in
  one round trip (its age is on Redis' clock alone).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, cast

from lifeline.feed import codec
from lifeline.feed.codec import FeedModel
from lifeline.feed.errors import (
    CodecError,
    FeedError,
    FeedSettingsError,
    LeaseLost,
    check_setting,
)
from lifeline.feed.lease import (
    FencedWrite,
    FencedWriter,
    LeaseGrant,
    LeaseHolder,
    parse_holder,
)
from lifeline.feed.redis_io import DEFAULT_SOCKET_TIMEOUT, call
from quotation.models import Candle, CandleInterval, Orderbook, Ticker, Trade

if TYPE_CHECKING:
    import redis

__all__ = [
    "DEFAULT_STREAM_MAXLEN",
    "DEFAULT_STREAM_PREFIX",
    "BadEntry",
    "FeedEntry",
    "FeedKeys",
    "FeedKind",
    "FeedPublisher",
    "FeedReader",
    "Heartbeat",
    "Heartbeats",
    "LeaderState",
    "ReadBatch",
    "Snapshots",
    "StreamFollower",
    "SymbolRegistry",
    "kind_for",
    "stream_ends",
]

logger = logging.getLogger(__name__)

_Entries = list[tuple[bytes, dict[bytes, bytes]]]
"""Stream entries as redis-py returns them (``decode_responses=False``)."""

DEFAULT_STREAM_PREFIX: Final = "lifeline"
"""``feed.stream_prefix``."""
DEFAULT_STREAM_MAXLEN: Final = 10_000
"""``feed.stream_maxlen``: entries kept per stream (approximate trim)."""


class FeedKind(enum.Enum):
    """What a stream carries; the value is the ``{kind}`` part of its key."""

    TICKER = "ticker"
    TRADE = "trade"
    ORDERBOOK = "orderbook"
    CANDLE_1M = "candle.1m"


def kind_for(item: FeedModel) -> FeedKind:
    """The stream kind of ``item``; ``ValueError`` for a candle that is not 1-minute."""
    if isinstance(item, Ticker):
        return FeedKind.TICKER
    if isinstance(item, Trade):
        return FeedKind.TRADE
    if isinstance(item, Orderbook):
        return FeedKind.ORDERBOOK
    if isinstance(item, Candle):
        if item.interval is not CandleInterval.MINUTE_1:
            raise ValueError(f"only 1-minute candles are published, got {item.interval.value}")
        return FeedKind.CANDLE_1M
    raise TypeError(f"not a feed model: {type(item).__name__}")


@dataclass(frozen=True, slots=True)
class FeedKeys:
    """Every Redis key of one feed, from ``feed.stream_prefix``."""

    prefix: str = DEFAULT_STREAM_PREFIX

    def __post_init__(self) -> None:
        if not self.prefix or any(c.isspace() for c in self.prefix):
            raise FeedSettingsError(
                f"stream_prefix must be a non-empty name without spaces, got {self.prefix!r}",
                key="feed.stream_prefix", value=self.prefix,
            )

    def stream(self, kind: FeedKind, market: str) -> str:
        return f"{self.prefix}:{kind.value}:{market}"

    def snapshot(self, kind: FeedKind, market: str) -> str:
        return f"{self.prefix}:latest:{kind.value}:{market}"

    @property
    def leader(self) -> str:
        return f"{self.prefix}:leader"

    @property
    def heartbeat(self) -> str:
        return f"{self.prefix}:leader:heartbeat"

    @property
    def hosts(self) -> str:
        return f"{self.prefix}:hosts"

    def host(self, host_id: str) -> str:
        return f"{self.prefix}:host:{host_id}"


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One published item as a reader sees it."""

    kind: FeedKind
    market: str
    id: bytes
    """The stream entry id (``<ms>-<seq>``); a snapshot carries its entry's id."""
    item: FeedModel
    source: str
    """The publisher's source (a follower answers ``shared/<source>``)."""
    level: int
    """The publisher's level when it published."""
    token: int
    """The publisher's fencing token."""

    @property
    def published_at(self) -> float:
        """Redis' wall clock (epoch seconds) when the entry was written, from its id."""
        return int(self.id.split(b"-", 1)[0]) / 1000.0


@dataclass(frozen=True, slots=True)
class BadEntry:
    """An entry a reader skipped: where it was and why."""

    stream: str
    id: bytes
    error: CodecError


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """What one read returned, stream by stream in id order."""

    entries: tuple[FeedEntry, ...]
    bad: tuple[BadEntry, ...] = ()


def _fields(item: FeedModel, source: str, level: int, token: int) -> dict[str, bytes]:
    return {"d": codec.encode(item), "src": source.encode(), "lvl": b"%d" % level,
            "tok": b"%d" % token}


def _entry(kind: FeedKind, market: str, entry_id: bytes,
           fields: Mapping[bytes, bytes]) -> FeedEntry:
    """A :class:`FeedEntry` from a stream entry's (or snapshot's) fields, or CodecError."""
    try:
        data = fields[b"d"]
        source = fields[b"src"].decode()
        level = int(fields[b"lvl"])
        token = int(fields[b"tok"])
    except KeyError as exc:
        name = exc.args[0].decode() if isinstance(exc.args[0], bytes) else str(exc.args[0])
        raise CodecError(f"{kind.value} entry {entry_id!r} has no field {name!r}",
                         kind=kind.value, field=name) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"{kind.value} entry {entry_id!r}: bad envelope: {exc}",
                         kind=kind.value, field=None) from None
    item = codec.decode(data)
    if _kind_or_none(item) is not kind or item.market != market:
        raise CodecError(
            f"{kind.value} entry {entry_id!r} for {market} holds a "
            f"{codec.kind_of(item)} of {item.market}", kind=kind.value, field="market",
        )
    return FeedEntry(kind, market, entry_id, item, source, level, token)


def _kind_or_none(item: FeedModel) -> FeedKind | None:
    try:
        return kind_for(item)
    except ValueError:
        return None


class FeedPublisher:
    """The leader's writes: items to their streams and snapshots, fenced by its lease."""

    def __init__(self, client: redis.Redis, keys: FeedKeys, *,
                 maxlen: int = DEFAULT_STREAM_MAXLEN) -> None:
        self.keys = keys
        self._writer = FencedWriter(client, maxlen=maxlen)

    def publish(self, grant: LeaseGrant, items: Sequence[FeedModel], *, source: str,
                level: int) -> list[bytes]:
        """Append ``items`` (in order) and update their snapshots in one round trip; the
        entry ids. :class:`~lifeline.feed.errors.LeaseLost` and nothing written if the
        lease no longer holds ``grant``."""
        writes = []
        for item in items:
            kind = kind_for(item)
            writes.append(FencedWrite(
                self.keys.stream(kind, item.market), _fields(item, source, level, grant.token),
                self.keys.snapshot(kind, item.market),
            ))
        return self._writer.write(grant, writes)


class FeedReader:
    """Follows several streams with one bounded ``XREAD``, resuming where it was.

    ``block`` is the longest a read waits for new entries (seconds); ``count`` the most
    entries per stream per read. Not thread-safe: one thread reads; :meth:`follow` and
    :meth:`unfollow` from that thread (a :class:`StreamFollower` applies them between
    reads).
    """

    def __init__(self, client: redis.Redis, keys: FeedKeys, *, block: float = 0.1,
                 count: int = 1000) -> None:
        check_setting("feed.read_block", block, above=0, at_most=10)
        check_setting("feed.read_count", count, at_least=1, integer=True)
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        self.socket_timeout: float = DEFAULT_SOCKET_TIMEOUT if timeout is None else timeout
        """The client's socket timeout: a read returns or fails within ``block`` + this."""
        if timeout is not None and block >= timeout:
            raise FeedSettingsError(
                f"block ({block} s) must be shorter than the client's socket timeout "
                f"({timeout} s), or every quiet read would time out", key="feed.read_block",
                value=block,
            )
        self.keys = keys
        self.block = block
        self._count = count
        self._client = client
        self._streams: dict[str, tuple[FeedKind, str]] = {}
        self._positions: dict[str, bytes | None] = {}
        """Last id seen per stream; ``None`` = start at the stream's end, not yet pinned."""

    def follow(self, kind: FeedKind, market: str, *, after: bytes | None = None) -> None:
        """Read ``kind`` of ``market`` from after ``after`` (an entry id; ``b"0"`` = from
        the oldest kept), or by default from what is written after the next read begins."""
        stream = self.keys.stream(kind, market)
        if stream not in self._streams:
            self._streams[stream] = (kind, market)
            self._positions[stream] = after

    def unfollow(self, kind: FeedKind, market: str) -> None:
        stream = self.keys.stream(kind, market)
        self._streams.pop(stream, None)
        self._positions.pop(stream, None)

    def positions(self) -> dict[str, bytes | None]:
        """The last id seen per stream (``None``: not pinned yet)."""
        return dict(self._positions)

    def read(self, block: float | None = None) -> ReadBatch:
        """New entries of every followed stream, waiting up to ``block`` seconds (default
        :attr:`block`) for the first; :class:`~lifeline.feed.errors.FeedUnavailable` if
        Redis is away (the positions stay, so the next read resumes)."""
        if not self._streams:
            return ReadBatch(())
        self._pin()
        wait_ms = max(1, round((self.block if block is None else block) * 1000))
        positions = {stream: pos for stream, pos in self._positions.items() if pos is not None}
        reply = cast(list[tuple[bytes, _Entries]] | None, call(
            "xread", lambda: self._client.xread(
                positions, count=self._count, block=wait_ms)))  # type: ignore[arg-type]
        entries: list[FeedEntry] = []
        bad: list[BadEntry] = []
        for raw_stream, items in reply or ():
            stream = raw_stream.decode()
            where = self._streams.get(stream)
            for entry_id, fields in items:
                self._positions[stream] = entry_id
                if where is None:
                    continue
                try:
                    entries.append(_entry(where[0], where[1], entry_id, fields))
                except CodecError as exc:
                    logger.warning("skipped a bad entry %s in %s: %s", entry_id, stream, exc)
                    bad.append(BadEntry(stream, entry_id, exc))
        return ReadBatch(tuple(entries), tuple(bad))

    def _pin(self) -> None:
        """Give each stream still at "the end" the id of its last entry now (``0-0`` if it
        is empty), in one round trip."""
        unpinned = [stream for stream, pos in self._positions.items() if pos is None]
        if unpinned:
            self._positions.update(stream_ends(self._client, unpinned, strict=True))


def stream_ends(client: redis.Redis, streams: Sequence[str], *,
                strict: bool = False) -> dict[str, bytes]:
    """The id of each stream's last entry now (``0-0``: empty or absent), for any number of
    streams in ONE round trip (a pipeline of ``XREVRANGE + - COUNT 1``; none for no
    streams), so a silent Redis costs one socket timeout whatever their number.

    :class:`~lifeline.feed.errors.FeedUnavailable` if Redis cannot be reached. A stream
    Redis refuses (a key of another type) is left out of the answer, or, with ``strict``,
    is a :class:`~lifeline.feed.errors.FeedCommandError` for the whole call."""
    names = list(dict.fromkeys(streams))
    if not names:
        return {}

    def last_ids() -> list[object]:
        pipe = client.pipeline(transaction=False)
        for stream in names:
            pipe.xrevrange(stream, "+", "-", count=1)
        return pipe.execute(raise_on_error=strict)

    ends: dict[str, bytes] = {}
    for stream, last in zip(names, call("xrevrange", last_ids), strict=True):
        if isinstance(last, Exception):
            logger.info("stream %s has no readable end: %s", stream, last)
            continue
        entries = cast(_Entries, last)
        ends[stream] = entries[0][0] if entries else b"0-0"
    return ends


class StreamFollower:
    """Runs a :class:`FeedReader` on a thread: each entry to ``sink``, each skipped bad
    entry and each Redis error to ``on_error``; while Redis is away it retries every
    ``retry_after`` seconds from the last position. A sink or on_error that raises is
    logged and the follower goes on.

    :meth:`stop` returns within :attr:`stop_bound`: the read's block plus the client's
    socket timeout (plus ``retry_after`` never: the retry wait wakes on stop).
    """

    def __init__(self, reader: FeedReader, sink: Callable[[FeedEntry], None], *,
                 on_error: Callable[[FeedError], None] | None = None,
                 retry_after: float = 0.5, name: str = "lifeline-feed-follower") -> None:
        check_setting("feed.retry_after", retry_after, above=0)  # 0: a busy loop, Redis away
        self._reader = reader
        self._sink = sink
        self._on_error = on_error
        self._retry_after = retry_after
        self.stop_bound = reader.block + reader.socket_timeout + 0.5
        self._stop = threading.Event()
        self._changed = threading.Event()  # a follow, unfollow or stop: ends an idle wait
        self._lock = threading.Lock()
        self._changes: list[tuple[bool, FeedKind, str, bytes | None]] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def follow(self, kind: FeedKind, market: str, *, after: bytes | None = None) -> None:
        """Start following a stream (applied before the next read)."""
        with self._lock:
            self._changes.append((True, kind, market, after))
        self._changed.set()

    def unfollow(self, kind: FeedKind, market: str) -> None:
        with self._lock:
            self._changes.append((False, kind, market, None))
        self._changed.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> bool:
        """Stop and join (at most :attr:`stop_bound` seconds); ``True`` if the thread ended."""
        self._stop.set()
        self._changed.set()
        if self._thread.ident is None:
            return True
        self._thread.join(self.stop_bound)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._changed.clear()
            self._apply_changes()
            if not self._reader.positions():  # nothing followed: a read would return at
                self._changed.wait(self._reader.block)  # once; wait for a follow (or stop)
                continue
            try:
                batch = self._reader.read()
            except FeedError as exc:
                self._report(exc)
                self._stop.wait(self._retry_after)
                continue
            for entry in batch.entries:
                try:
                    self._sink(entry)
                except Exception:
                    logger.exception("feed sink failed on %s %s", entry.kind.value, entry.id)
            for bad in batch.bad:
                self._report(bad.error)

    def _apply_changes(self) -> None:
        with self._lock:
            changes, self._changes = self._changes, []
        for add, kind, market, after in changes:
            if add:
                self._reader.follow(kind, market, after=after)
            else:
                self._reader.unfollow(kind, market)

    def _report(self, error: FeedError) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(error)
        except Exception:
            logger.exception("feed on_error failed on %s", error)


class Snapshots:
    """Reads the latest entry per market and kind, and a stream's recent entries."""

    def __init__(self, client: redis.Redis, keys: FeedKeys) -> None:
        self.keys = keys
        self._client = client

    def latest(self, kind: FeedKind, markets: Sequence[str]) -> dict[str, FeedEntry]:
        """The latest entry of each market that has one (one round trip); a bad snapshot
        is a :class:`~lifeline.feed.errors.CodecError`."""
        def read() -> list[dict[bytes, bytes]]:
            pipe = self._client.pipeline(transaction=False)
            for market in markets:
                pipe.hgetall(self.keys.snapshot(kind, market))
            return pipe.execute()

        found: dict[str, FeedEntry] = {}
        for market, fields in zip(markets, call("snapshot read", read), strict=True):
            if fields:
                found[market] = _entry(kind, market, fields.get(b"id", b"0-0"), fields)
        return found

    def recent(self, kind: FeedKind, market: str, count: int) -> ReadBatch:
        """The newest ``count`` entries of one stream, oldest first; bad ones skipped."""
        stream = self.keys.stream(kind, market)
        items = cast(_Entries, call(
            "xrevrange", lambda: self._client.xrevrange(stream, "+", "-", count=count)))
        entries: list[FeedEntry] = []
        bad: list[BadEntry] = []
        for entry_id, fields in reversed(items):
            try:
                entries.append(_entry(kind, market, entry_id, fields))
            except CodecError as exc:
                bad.append(BadEntry(stream, entry_id, exc))
        return ReadBatch(tuple(entries), tuple(bad))


_REGISTER: Final = """
if redis.replicate_commands then redis.replicate_commands() end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('DEL', KEYS[2])
if #ARGV > 2 then
  redis.call('SADD', KEYS[2], unpack(ARGV, 3))
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('ZADD', KEYS[1], now_ms + ttl, ARGV[1])
return 1
"""
_UNION: Final = """
if redis.replicate_commands then redis.replicate_commands() end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local hosts = redis.call('ZRANGE', KEYS[1], 0, -1)
if #hosts == 0 then return {} end
local keys = {}
for i, host in ipairs(hosts) do keys[i] = ARGV[1] .. host end
return redis.call('SUNION', unpack(keys))
"""


class SymbolRegistry:
    """The symbols the hosts ask for: each host :meth:`register` s its own with ``ttl``
    (seconds; it re-registers well within it, e.g. every ``ttl / 3``); a host that stops
    (killed, cut off) drops out after ``ttl``. The leader reads :meth:`union`.
    Expiry is on Redis' clock, so the hosts' clocks need not agree."""

    def __init__(self, client: redis.Redis, keys: FeedKeys, *, ttl: float = 15.0) -> None:
        check_setting("feed.registration_ttl", ttl, above=0)
        self.keys = keys
        self.ttl = ttl
        self._register = client.register_script(_REGISTER)
        self._union = client.register_script(_UNION)
        self._client = client

    def register(self, host_id: str, symbols: Iterable[str]) -> None:
        """Replace ``host_id``'s symbols with ``symbols`` and (re)start its ``ttl``."""
        args: list[str | int] = [host_id, max(1, round(self.ttl * 1000)), *sorted(set(symbols))]
        call("register symbols", lambda: self._register(
            keys=[self.keys.hosts, self.keys.host(host_id)], args=args))

    def unregister(self, host_id: str) -> None:
        """Drop ``host_id`` at once (a clean shutdown)."""
        def drop() -> None:
            pipe = self._client.pipeline(transaction=True)
            pipe.zrem(self.keys.hosts, host_id)
            pipe.delete(self.keys.host(host_id))
            pipe.execute()

        call("unregister symbols", drop)

    def union(self) -> frozenset[str]:
        """Every symbol some live host asks for."""
        members = call("symbol union", lambda: self._union(
            keys=[self.keys.hosts], args=[self.keys.host("")]))
        return frozenset(member.decode() for member in members)


_HEARTBEAT: Final = """
if redis.replicate_commands then redis.replicate_commands() end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local now = redis.call('TIME')
local at = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'at', at, unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return at
"""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The leader's heartbeat as written: who, with which token, how its tree is doing.

    ``written_at`` is REDIS' clock: the fenced script stamps it with ``TIME`` when it writes
    (what a beat handed to :meth:`Heartbeats.write` carries there is not sent), and a
    follower measures the age against Redis' ``TIME`` read with it (:class:`LeaderState`),
    so no host's clock enters the heartbeat's age and skew between the hosts does not
    matter."""

    owner: str
    token: int
    level: int
    """The leader's tree's level (0-3) when it was written."""
    written_at: float
    """When Redis wrote it (epoch seconds on Redis' clock, ``TIME`` in the script)."""
    last_publish_at: float | None
    """When the leader last published, on the LEADER's wall clock (``None``: not yet since
    it started): informational, never compared with another host's clock."""
    ttl: float
    """The leader's ``leader_ttl``: a follower's silence bound is this plus one interval."""
    every: float
    """Seconds between two heartbeats (``ttl / 3``)."""

    def fields(self) -> list[str]:
        """The hash's fields the writer sends, name then value (not ``at``: Redis stamps it)."""
        return ["owner", self.owner, "tok", str(self.token), "lvl", str(self.level),
                "pub", "" if self.last_publish_at is None else repr(self.last_publish_at),
                "ttl", repr(self.ttl), "every", repr(self.every)]

    @classmethod
    def parse(cls, fields: Mapping[bytes, bytes]) -> Heartbeat:
        """A heartbeat from its hash's fields; :class:`CodecError` naming a bad field."""
        name = "owner"
        try:
            owner = fields[b"owner"].decode()
            name = "tok"
            token = int(fields[b"tok"])
            name = "lvl"
            level = int(fields[b"lvl"])
            name = "at"
            written_at = float(fields[b"at"])
            name = "pub"
            pub = fields[b"pub"]
            last = float(pub) if pub else None
            name = "ttl"
            ttl = float(fields[b"ttl"])
            name = "every"
            every = float(fields[b"every"])
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise CodecError(f"heartbeat field {name!r}: {type(exc).__name__}: {exc}",
                             kind="heartbeat", field=name) from None
        return cls(owner, token, level, written_at, last, ttl, every)


@dataclass(frozen=True, slots=True)
class LeaderState:
    """The lease holder and the heartbeat, as one read saw them (one round trip)."""

    holder: LeaseHolder | None
    heartbeat: Heartbeat | None
    """``None``: none (never written, expired) or unreadable (``error`` says why)."""
    error: CodecError | None = None
    read_at: float | None = None
    """Redis' clock (``TIME``, epoch seconds) in the same round trip."""

    @property
    def heartbeat_age(self) -> float | None:
        """Seconds from the heartbeat's write to this read, both on Redis' clock (``None``:
        no heartbeat); never below 0."""
        beat, now = self.heartbeat, self.read_at
        if beat is None or now is None:
            return None
        return max(0.0, now - beat.written_at)

    @property
    def current(self) -> Heartbeat | None:
        """The heartbeat if it is the holder's (same token), else ``None``."""
        beat, holder = self.heartbeat, self.holder
        if beat is None or holder is None or beat.token != holder.token:
            return None
        return beat


class Heartbeats:
    """The leader's heartbeat ``{prefix}:leader:heartbeat``: :meth:`write` fenced by the
    lease, expiring ``2 x ttl`` after it was written (a dead leader's disappears);
    :meth:`read` with the lease holder."""

    def __init__(self, client: redis.Redis, keys: FeedKeys) -> None:
        self.keys = keys
        self._client = client
        self._script = client.register_script(_HEARTBEAT)

    def write(self, grant: LeaseGrant, beat: Heartbeat) -> Heartbeat:
        """Write ``beat`` only if the lease still holds ``grant``; else :class:`LeaseLost`
        and nothing is written. Redis stamps ``at`` with its own ``TIME`` (``beat``'s
        ``written_at`` is not sent); returns the heartbeat as written."""
        expiry_ms = max(1, round(2.0 * beat.ttl * 1000))
        args: list[str | int] = [grant.value, expiry_ms, *beat.fields()]
        done = call("heartbeat", lambda: self._script(
            keys=[grant.key, self.keys.heartbeat], args=args))
        if not isinstance(done, bytes):  # 0: the lease is not the grant's
            raise LeaseLost(f"lease {grant.key} no longer holds token {grant.token}: "
                            "heartbeat refused", key=grant.key, token=grant.token)
        return replace(beat, written_at=float(done))

    def read(self) -> LeaderState:
        """Who holds the lease and the heartbeat, with Redis' ``TIME`` (the heartbeat's age
        on Redis' clock: :attr:`LeaderState.heartbeat_age`), in one round trip (``MULTI``);
        :class:`~lifeline.feed.errors.FeedCommandError` if the lease key holds something
        that is not a lease."""
        def read() -> tuple[bytes | None, int, dict[bytes, bytes], float]:
            pipe = self._client.pipeline(transaction=True)
            pipe.get(self.keys.leader)
            pipe.pttl(self.keys.leader)
            pipe.hgetall(self.keys.heartbeat)
            pipe.time()
            value, pttl, fields, (seconds, micros) = pipe.execute()
            return value, int(pttl), fields, int(seconds) + int(micros) / 1_000_000

        value, pttl, fields, now = call("leader state", read)
        holder = None
        if value is not None:  # a foreign value: FeedCommandError, not a ValueError
            holder = parse_holder(self.keys.leader, value, pttl, operation="leader state")
        if not fields:
            return LeaderState(holder, None, read_at=now)
        try:
            return LeaderState(holder, Heartbeat.parse(fields), read_at=now)
        except CodecError as exc:
            return LeaderState(holder, None, exc, read_at=now)
