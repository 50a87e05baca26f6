"""One Upbit REST budget across processes and hosts: the rate limiter kept in Redis.

:class:`RedisRateLimiter` is a :class:`~quotation.rest.ratelimit.RateLimiter` (pass it as
``RestClient(limiter=...)``) whose slots, 429 pauses and 418 ban live in Redis, so every
host on one egress IP that points at the same Redis and ``prefix`` shares one budget per
Upbit group, as Upbit counts per IP. The semantics are the process limiter's:

* A group of limit ``n`` has ``n`` slots. ``acquire`` takes one (one atomic Lua script:
  expire, count, take) before the request is sent; the answer gives it back and it is free
  again ``window + margin`` seconds *after that answer*. Two requests on one slot thus reach
  Upbit more than a window apart, whichever hosts sent them. A slot taken by a host that dies
  before answering is free again ``in_flight_lease`` seconds after it was taken.
* ``Remaining-Req: sec=k`` caps the group's capacity at the largest ``sec`` seen plus one,
  and holds free slots beyond ``k`` for a window (other users of the IP); a header naming
  another group charges that group too (the alias itself is learnt per process).
* HTTP 429 → :meth:`RedisRateLimiter.on_rate_limited` pauses the group **for every host**
  (``backoff.delay(n)`` after the n-th 429 in a row, counted across hosts; a success
  anywhere resets the count). HTTP 418 → :meth:`RedisRateLimiter.on_banned` bans every group
  **for every host** until the time Upbit said (and this process keeps the ban locally too,
  should Redis go away during it).

Time in the scripts is Redis's own ``TIME`` (``time_source="redis"``, the default), so
hosts on different machines need no synchronised clocks; ``time_source="clock"`` uses the
injected clock's wall time instead (tests on a fake clock). Waits are slept on the injected
clock; a wait for an in-flight slot polls Redis every ``poll_interval`` seconds.

When Redis is unreachable
-------------------------
Every Redis call is bounded (``redis_timeout``, no client retries). When a call fails the
limiter falls back to a local :class:`~quotation.rest.ratelimit.RateLimiter` with a
**conservative share** of the budget: ``max(1, floor(limit × fallback_share))`` per group,
``fallback_share`` = 0.2 by default (2 of Upbit's 10 requests/s: up to five hosts falling
back together stay within the budget). It tries Redis again at most every
``reconnect_interval`` seconds (one caller probes, the others stay local meanwhile) and is
shared again from the first call that succeeds; the slots it took locally and that are not
free yet are then written into the shared budget (no burst of local + shared slots in one
window at the switch back); the other way, the shared slots this host used and that are
not free yet count against the local share from the fall back on. A permit keeps the
limiter it came from. A
limiter that was never able to reach Redis works the same way (local share) and says so in
:attr:`RedisRateLimiter.shared`.

``redis`` (the ``shared`` extra) is imported only when a :class:`RedisRateLimiter` is built:
``quotation`` imports without it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import threading
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from quotation.backoff import Backoff
from quotation.clock import Clock
from quotation.errors import Banned, InvalidValue, RateLimited
from quotation.redact import redact_url
from quotation.rest.ratelimit import (
    RATE_LIMIT_BACKOFF,
    GroupStatus,
    LimiterStatus,
    Permit,
    RateLimiter,
)
from quotation.rest.remaining_req import RemainingReq
from quotation.values import check

if TYPE_CHECKING:
    import redis

__all__ = ["DEFAULT_FALLBACK_SHARE", "RedisRateLimiter", "RedisUnavailable"]

logger = logging.getLogger(__name__)

DEFAULT_FALLBACK_SHARE = 0.2
"""The share of each group's budget a host uses while Redis is unreachable: 2 of Upbit's 10
requests/s, so up to five hosts falling back at once stay within the per-IP budget."""

_EPSILON = 1e-9
_STATE_TTL_MS = 3_600_000
"""A group's pause/429-count/``sec`` hash and the ban are dropped an hour after their last
write (a pause or ban is never longer than that: Upbit's bans are minutes)."""

_BAN_TTL_MS = 30 * 86_400_000
"""The longest a 418 ban's key lives in Redis (30 days), however long the ban: ``PEXPIRE``
takes an integer, and a ban without end (``on_banned(math.inf)``) has none."""

_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

_HOLD = """
-- This host's slots taken on its local share while Redis was away, not free yet: ARGV[first..]
-- are the seconds until each is, written as cooling entries MEMBER1, MEMBER2, ... (a later
-- call moves them); the members past them up to `most` are gone (freed since).
local function hold(key, ttl, member, most, first)
  local held = #ARGV - first + 1
  for i = 1, held do
    redis.call('ZADD', key, now + tonumber(ARGV[first + i - 1]), member .. i)
  end
  for i = held + 1, most do
    redis.call('ZREM', key, member .. i)
  end
  if held > 0 then redis.call('PEXPIRE', key, ttl) end
end
"""

_ACQUIRE = _NOW + _HOLD + """
-- KEYS: inflight, cooling, state, ban; ARGV: now|'', limit, token, lease, slots ttl ms,
-- local member prefix, local most, seconds until each local slot is free...
local limit = tonumber(ARGV[2])
local ban_until = tonumber(redis.call('HGET', KEYS[4], 'until') or '-1')
local ban_duration = redis.call('HGET', KEYS[4], 'duration') or '0'
local st = redis.call('HMGET', KEYS[3], 'paused_until', 'best_sec')
local paused = tonumber(st[1] or '-1')
local best = tonumber(st[2] or '-1')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
hold(KEYS[2], ARGV[5], ARGV[6], tonumber(ARGV[7]), 8)
local capacity = limit
if best >= 0 and best + 1 < capacity then capacity = best + 1 end
local used = redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2])
local wait_slot = 0
if used >= capacity then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if first[2] then wait_slot = tonumber(first[2]) - now else wait_slot = -1 end
end
local wait_ban = ban_until - now
local wait_pause = paused - now
if wait_ban > 0 or wait_pause > 0 or wait_slot ~= 0 then
  return {'wait', tostring(wait_ban), tostring(wait_pause), tostring(wait_slot), ban_duration}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {'ok', '0', '0', '0', ban_duration}
"""

_RELEASE = _NOW + """
-- KEYS: inflight, cooling, state (the permit's group); inflight, cooling, state (the group
-- the answer's header named, the same keys when it named the permit's)
-- ARGV: now|'', token, cooldown, success 0|1, sec (-1: none), target limit, slots ttl ms
local free_at = now + tonumber(ARGV[3])
local ttl = ARGV[7]
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], free_at, ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
if KEYS[5] ~= KEYS[2] then
  redis.call('ZADD', KEYS[5], free_at, ARGV[2] .. ':charged')
  redis.call('PEXPIRE', KEYS[5], ttl)
end
local sec = tonumber(ARGV[5])
if sec >= 0 then
  redis.call('HSET', KEYS[6], 'last_sec', sec)
  local best = tonumber(redis.call('HGET', KEYS[6], 'best_sec') or '-1')
  if sec > best then
    redis.call('HSET', KEYS[6], 'best_sec', sec)
    best = sec
  end
  redis.call('PEXPIRE', KEYS[6], STATE_TTL)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  local capacity = tonumber(ARGV[6])
  if best + 1 < capacity then capacity = best + 1 end
  local excess = capacity - redis.call('ZCARD', KEYS[4]) - redis.call('ZCARD', KEYS[5]) - sec
  for i = 1, excess do
    redis.call('ZADD', KEYS[5], free_at, ARGV[2] .. ':held:' .. i)
  end
  redis.call('PEXPIRE', KEYS[5], ttl)
end
if ARGV[4] == '1' then
  redis.call('HDEL', KEYS[3], 'failures')
  redis.call('HDEL', KEYS[6], 'failures')
end
return 1
""".replace("STATE_TTL", str(_STATE_TTL_MS))

_HOLD_LOCAL = _NOW + _HOLD + """
-- KEYS: cooling; ARGV: now|'', slots ttl ms, local member prefix, local most, seconds...
hold(KEYS[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), 5)
return 1
"""

_RATE_LIMITED = _NOW + """
-- KEYS: state; ARGV: now|'', retry_after (-1: none), delay after the 1st, 2nd, ... 429
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local index = math.min(failures, #ARGV - 2)
local pause = tonumber(ARGV[index + 2])
local retry_after = tonumber(ARGV[2])
if retry_after > pause then pause = retry_after end
local until_ = now + pause
local old = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '-1')
if old > until_ then until_ = old end
redis.call('HSET', KEYS[1], 'paused_until', tostring(until_))
redis.call('PEXPIRE', KEYS[1], STATE_TTL)
return {tostring(until_ - now), failures}
""".replace("STATE_TTL", str(_STATE_TTL_MS))

_BANNED = _NOW + """
-- KEYS: ban; ARGV: now|'', duration
local duration = tonumber(ARGV[2])
local until_ = now + duration
local old = tonumber(redis.call('HGET', KEYS[1], 'until') or '-1')
if until_ > old then
  redis.call('HSET', KEYS[1], 'until', tostring(until_), 'duration', ARGV[2])
  -- PEXPIRE takes an integer: a ban without end (inf) or of years keeps its key 30 days
  local ttl = math.ceil(duration * 1000) + 1000
  if not (ttl < BAN_TTL) then ttl = BAN_TTL end
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1000, ttl)))
else
  until_ = old
end
return tostring(until_ - now)
""".replace("BAN_TTL", str(_BAN_TTL_MS))

_STATUS = _NOW + """
-- KEYS: inflight, cooling, state, ban; ARGV: now|''
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local st = redis.call('HMGET', KEYS[3], 'paused_until', 'failures', 'best_sec', 'last_sec')
local ban_until = tonumber(redis.call('HGET', KEYS[4], 'until') or '-1')
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]),
        tostring(tonumber(st[1] or '-1') - now), st[2] or '0', st[3] or '-1', st[4] or '',
        tostring(ban_until - now)}
"""


class RedisUnavailable(ConnectionError):
    """Redis could not be reached within ``redis_timeout``, or refused a script (any
    ``redis.RedisError``: a key of the wrong type, out of memory, a read-only replica): the
    limiter then falls back. Internal: callers of the limiter never see it, nor a raw
    ``redis`` exception."""


class _RedisPermit(Permit):
    """A permit whose slot is held in Redis under ``token``."""

    __slots__ = ("token",)

    def __init__(self, limiter: RedisRateLimiter, group: str, requested: str, token: str) -> None:
        super().__init__(limiter, group, requested)
        self.token = token


def _share(limit: int, share: float) -> int:
    return max(1, math.floor(limit * share + _EPSILON))


class RedisRateLimiter(RateLimiter):
    """Per-group Upbit budgets kept in Redis, shared by every process that uses ``prefix``.

    The arguments of :class:`~quotation.rest.ratelimit.RateLimiter` mean the same here.
    ``redis_url`` (``redis://host:port/db``) and ``prefix`` (keys are ``PREFIX:ratelimit:…``)
    name the shared budget; ``redis_timeout`` bounds every Redis call (connect and
    answer); ``fallback_share`` is the share of each group's limit used while Redis is
    unreachable, retried every ``reconnect_interval`` seconds; ``in_flight_lease`` frees
    a slot whose answer never came (its host died); ``poll_interval`` paces a wait for
    in-flight slots; ``time_source`` is ``"redis"`` (Redis's ``TIME``) or ``"clock"``
    (the injected clock's wall time, for tests on a fake clock).
    """

    def __init__(
        self,
        redis_url: str,
        clock: Clock | None = None,
        per_second: int = 10,
        *,
        prefix: str = "lifeline",
        window: float = 1.0,
        margin: float = 0.05,
        limits: Mapping[str, int] | None = None,
        backoff: Backoff = RATE_LIMIT_BACKOFF,
        redis_timeout: float = 0.25,
        fallback_share: float = DEFAULT_FALLBACK_SHARE,
        reconnect_interval: float = 1.0,
        in_flight_lease: float = 30.0,
        poll_interval: float = 0.02,
        time_source: Literal["redis", "clock"] = "redis",
    ) -> None:
        super().__init__(
            clock, per_second, window=window, margin=margin, limits=limits, backoff=backoff
        )
        if not isinstance(redis_url, str) or not redis_url.startswith(
                ("redis://", "rediss://", "unix://")):
            shown = redact_url(redis_url) if isinstance(redis_url, str) else redis_url
            raise InvalidValue(
                f"redis_url must be a redis://, rediss:// or unix:// URL, got {shown!r}",
                field="redis_url", value=shown,
            )
        if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
            raise InvalidValue(
                f"prefix must be a non-empty word, got {prefix!r}", field="prefix", value=prefix
            )
        check("redis_timeout", redis_timeout, above=0)
        check("fallback_share", fallback_share, above=0, at_most=1)
        check("reconnect_interval", reconnect_interval, above=0)
        check("in_flight_lease", in_flight_lease, above=0)
        check("poll_interval", poll_interval, above=0)
        if time_source not in ("redis", "clock"):
            raise InvalidValue(
                f"time_source must be 'redis' or 'clock', got {time_source!r}",
                field="time_source", value=time_source,
            )
        # The `shared` extra, imported only when used: quotation imports without it.
        import redis as redis_module  # noqa: PLC0415
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        # Any RedisError, not only the connection's: a ResponseError (WRONGTYPE, OOM,
        # READONLY, ...) must not reach the caller raw either; it means the local share.
        self._redis_errors: tuple[type[Exception], ...] = (redis_module.RedisError, OSError)
        try:
            self._redis: redis.Redis = redis_module.Redis.from_url(
                redis_url,
                socket_timeout=redis_timeout,
                socket_connect_timeout=redis_timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                health_check_interval=0,
            )
        except ValueError as exc:  # redis-py's parse: a port that is no number, out of range
            raise InvalidValue(
                f"redis_url {redact_url(redis_url)!r} is malformed: {exc}",
                field="redis_url", value=redact_url(redis_url),
            ) from None
        self._url = redis_url
        self._shown_url = redact_url(redis_url)  # logs and errors never show its password
        self._prefix = f"{prefix}:ratelimit"
        self._fallback_share = fallback_share
        self._reconnect_interval = reconnect_interval
        self._lease = in_flight_lease
        self._poll = poll_interval
        self._time_source = time_source
        self._slots_ttl_ms = max(1, math.ceil((in_flight_lease + self._cooldown) * 1000))
        self._delays = [
            repr(backoff.delay(n)) for n in range(1, 40)
        ]  # the 40th 429 in a row and later pause as long as the 39th (30 s by default)
        self._local = RateLimiter(
            self._clock,
            _share(per_second, fallback_share),
            window=window,
            margin=margin,
            limits={name: _share(limit, fallback_share) for name, limit in self._limits.items()},
            backoff=backoff,
        )
        self._scripts = {
            name: self._redis.register_script(text)
            for name, text in (
                ("acquire", _ACQUIRE), ("release", _RELEASE), ("rate_limited", _RATE_LIMITED),
                ("banned", _BANNED), ("status", _STATUS), ("hold", _HOLD_LOCAL),
            )
        }
        self._host = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._tokens = itertools.count(1)
        self._state_lock = threading.Lock()
        self._shared = True
        self._closed = False
        self._retry_at = -math.inf
        self._probing = False
        self._seen: set[str] = set()
        self._local_member = f"{self._host}:local:"
        self._holding: set[str] = set()  # groups whose local slots Redis may still hold
        # This host's shared slots not free yet, group -> token -> free at (this clock's
        # monotonic; inf while in flight): the local share counts them when Redis goes away.
        self._own: dict[str, dict[str, float]] = {}
        self._adopted: set[tuple[str, str]] = set()  # in flight in the local share's count

    # -- where the budget lives ----------------------------------------------

    @property
    def redis_url(self) -> str:
        return self._url

    @property
    def fallback(self) -> RateLimiter:
        """The local limiter (the conservative share) used while Redis is unreachable."""
        return self._local

    @property
    def shared(self) -> bool:
        """``True`` while the budget is Redis's; ``False`` after a failed Redis call until
        one succeeds again."""
        with self._state_lock:
            return self._shared

    def close(self) -> None:
        """Close the Redis connections for good: used after, the limiter is the local share
        (redis-py would otherwise open a new connection on the next call, and nobody would
        close that one)."""
        with self._state_lock:
            self._closed = True
            self._shared = False
        self._redis.close()

    def _try_redis(self) -> bool:
        """Whether this call should use Redis: yes while shared; while not, one caller per
        ``reconnect_interval`` probes it."""
        with self._state_lock:
            if self._shared:
                return True
            now = self._clock.monotonic()
            if self._closed:
                return False
            if self._probing or now < self._retry_at:
                return False
            self._probing = True
            return True

    def _succeeded(self) -> bool:
        """Redis answered; ``True`` if that ends a fallback (the budget is shared again)."""
        with self._state_lock:
            if self._closed:  # a call that was under way when close() came
                return False
            back = not self._shared
            if back:
                logger.warning("rate limiter: Redis at %s is back, the budget is shared again",
                               self._shown_url)
            self._shared = True
            self._probing = False
            return back

    def _failed(self, exc: BaseException) -> bool:
        """A Redis call failed; ``True`` if that starts a fallback."""
        with self._state_lock:
            gone = self._shared
            if gone:
                logger.error(
                    "rate limiter: Redis at %s unreachable or failing (%s: %s); each group "
                    "falls back to %.0f%% of its budget on this host", self._shown_url,
                    type(exc).__name__, exc, self._fallback_share * 100,
                )
            self._shared = False
            self._probing = False
            self._retry_at = self._clock.monotonic() + self._reconnect_interval
            return gone

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """One script call; :class:`RedisUnavailable` (and the fallback) on a Redis failure."""
        now = "" if self._time_source == "redis" else repr(self._clock.time())
        if self._closed:
            with self._state_lock:  # (acquire's retry goes local only once not shared)
                self._shared = False
                self._probing = False
            raise RedisUnavailable("the limiter is closed")
        try:
            result = self._scripts[name](keys=keys, args=[now, *args])
        except self._redis_errors as exc:
            if self._failed(exc):
                self._adopt_own_slots()
            raise RedisUnavailable(f"Redis at {self._shown_url}: {exc}") from exc
        except BaseException:  # not Redis's (a bug, an interrupt): end the probe, raise it
            with self._state_lock:
                self._probing = False
            raise
        if self._succeeded():
            self._hold_local_slots()
        return result

    def _local_held(self, group: str) -> list[str]:
        """Seconds until each of this host's local-share slots of ``group`` is free again:
        a cooling one what is left of its cool-down, one still in flight the lease (moved
        to its real end by this host's next acquire of the group once it is answered)."""
        local = self._local
        with local._cond:  # the fallback is this limiter's own: its state, read under its lock
            budget = local._budgets.get(group)
            if budget is None:
                return []
            now = local.clock.monotonic()
            budget.settle(now)
            held = [self._lease] * budget.in_flight
            for free_at, count in budget.cooling:
                held.extend([free_at - now] * count)
        return [repr(seconds) for seconds in held]

    def _note_own(self, group: str, token: str, free_at: float) -> None:
        with self._state_lock:
            slots = self._own.setdefault(group, {})
            if len(slots) > 2 * self._limit(group) + 16:  # amortised O(1): at most the
                now = self._clock.monotonic()             # capacity are not free yet
                for gone in [t for t, at in slots.items() if at <= now]:
                    del slots[gone]
            slots[token] = free_at

    def _forget_own(self, group: str, token: str) -> None:
        with self._state_lock:
            self._own.get(group, {}).pop(token, None)

    def _charge_local(
        self, slots: list[tuple[str, str, float]], *, charge: bool, success: bool = False
    ) -> None:
        """Shared slots ``(group, token, free at)`` answered: one the local share adopted in
        flight cools down there like its own (always, or it would stay taken); another is
        charged to it (no slot given) when ``charge`` (Redis is away). ``success`` resets
        the local share's 429 count too (a success anywhere resets it)."""
        local = self._local
        with local._cond:  # the fallback is this limiter's own: its state, under its lock
            if not charge and not self._adopted:  # shared, none adopted: the 429 count only
                if success:  # of budgets the local share has (a new one starts at 0)
                    for group, _token, _free_at in slots:
                        existing = local._budgets.get(group)
                        if existing is not None:
                            existing.failures = 0
                return  # no budget made for each group used: _local_held stays a dict miss
            now = local.clock.monotonic()
            for group, token, free_at in slots:
                budget = local._budget(group)
                if success:
                    budget.failures = 0
                if (group, token) in self._adopted:
                    self._adopted.discard((group, token))
                    budget.give_back(free_at)
                elif charge and free_at > now:
                    budget.charge(now, free_at)
            local._cond.notify_all()

    def _adopt_own_slots(self) -> None:
        """Redis just went away: the shared slots this host used and that are not free yet
        count against its local share — 4 shared then 2 local in one window would be more
        than the share. A cooling one holds a local slot until it is free; one still in
        flight is in flight for the local share too, until its answer (then cools down)."""
        with self._state_lock:
            own, self._own = self._own, {}
        local = self._local
        with local._cond:
            now = local.clock.monotonic()
            for group, slots in own.items():
                budget = local._budget(group)
                # in flight first, then the latest to cool: what holds longest keeps a slot
                for token, free_at in sorted(slots.items(), key=lambda item: -item[1]):
                    if not math.isinf(free_at):
                        budget.charge(now, free_at)
                        continue
                    budget.settle(now)
                    if budget.free > 0:
                        budget.take()
                        self._adopted.add((group, token))
                    else:  # every local slot is taken already: hold one a cool-down longer
                        budget.charge(now, now + self._cooldown)

    def _local_most(self, group: str, held: list[str]) -> int:
        return max(_share(self._limit(group), self._fallback_share), len(held))

    def _hold_local_slots(self) -> None:
        """Back in Redis: write every slot this host took on its local share and that is not
        free yet into the shared budget, so no host (this one included) takes it again in the
        same window — 2 local + 10 shared would be 12 a window from one IP."""
        with self._local._cond:
            groups = sorted(self._local._budgets)
        for group in groups:
            held = self._local_held(group)
            if not held:
                continue
            try:
                self._run("hold", [self._keys(group)[1]],
                          [self._slots_ttl_ms, self._local_member,
                           self._local_most(group, held), *held])
            except RedisUnavailable:
                return
            with self._state_lock:
                self._holding.add(group)

    def _keys(self, group: str) -> list[str]:
        base = f"{self._prefix}:g:{group}"
        return [f"{base}:inflight", f"{base}:cooling", f"{base}:state"]

    @property
    def _ban_key(self) -> str:
        return f"{self._prefix}:ban"

    def _limit(self, group: str) -> int:
        return self._limits.get(group, self._per_second)

    # -- taking a slot -------------------------------------------------------

    def _acquire(self, group: str, timeout: float | None) -> Permit | RateLimited | Banned:
        clock = self._clock
        requested = group.lower()
        deadline = None if timeout is None else clock.monotonic() + max(0.0, timeout)
        while True:
            now = clock.monotonic()
            left = None if deadline is None else max(0.0, deadline - now)
            local_ban = self._local.banned_until()
            if not self._try_redis():
                return self._local_acquire(requested, left)
            with self._cond:
                name = self._aliases.get(requested, requested)
            self._seen.add(name)
            token = f"{self._host}:{next(self._tokens)}"
            held = self._local_held(name)
            with self._state_lock:
                track = bool(held) or name in self._holding
            try:
                verdict, ban, pause, slot, duration = self._run(
                    "acquire", [*self._keys(name), self._ban_key],
                    [self._limit(name), token, repr(self._lease), self._slots_ttl_ms,
                     self._local_member, self._local_most(name, held) if track else 0, *held],
                )
            except RedisUnavailable:
                continue
            if track:
                with self._state_lock:
                    if held:
                        self._holding.add(name)
                    else:
                        self._holding.discard(name)
            ban_wait = max(0.0, float(ban), 0.0 if local_ban is None else local_ban - now)
            pause_wait = max(0.0, float(pause))
            slot_wait = float(slot)
            if verdict == b"ok" and ban_wait <= _EPSILON:
                self._note_own(name, token, math.inf)
                return _RedisPermit(self, name, requested, token)
            if verdict == b"ok":  # banned locally (a 418 while Redis was away): give it back
                self._give_back(name, token)
            in_flight = slot_wait < 0
            wait = max(ban_wait, pause_wait, 0.0 if in_flight else slot_wait)
            if in_flight and wait <= _EPSILON:
                wait = self._poll
            if deadline is not None and now + wait > deadline + _EPSILON:
                if in_flight and ban_wait <= 0 and pause_wait <= 0 and deadline - now > _EPSILON:
                    clock.sleep(deadline - now)
                    continue
                return self._shared_refusal(
                    name, now, ban_wait, pause_wait, wait, float(duration), in_flight
                )
            logger.debug("rate limiter (redis): group %s waits %.3f s", name, wait)
            clock.sleep(wait)

    def _local_acquire(self, group: str, timeout: float | None) -> Permit | RateLimited | Banned:
        try:
            return self._local.acquire(group, timeout=timeout)
        except (RateLimited, Banned) as refusal:
            return refusal

    def _give_back(self, group: str, token: str) -> None:
        self._forget_own(group, token)
        keys = self._keys(group)
        with contextlib.suppress(RedisUnavailable):
            self._run("release", [*keys, *keys],
                      [token, "0", "0", "-1", self._limit(group), self._slots_ttl_ms])

    def _shared_refusal(  # noqa: PLR0917 - one wait per cause, as the process limiter's
        self, group: str, now: float, ban_wait: float, pause_wait: float, wait: float,
        duration: float, in_flight: bool,
    ) -> RateLimited | Banned:
        if ban_wait > 0 and ban_wait >= pause_wait:
            local_until = self._local.banned_until()
            return Banned(
                f"REST calls are banned (HTTP 418, shared) for another {ban_wait:.1f} s",
                until=max(now + ban_wait, local_until or -math.inf),
                duration=duration or ban_wait,
            )
        if pause_wait > 0:
            return RateLimited(
                f"group {group!r} is paused after HTTP 429 (shared) for another "
                f"{pause_wait:.2f} s",
                group=group,
                retry_after=pause_wait,
            )
        return RateLimited(
            f"no request slot for group {group!r} within the timeout (shared rate limit)",
            group=group,
            retry_after=self._cooldown if in_flight else wait,
        )

    # -- giving it back ------------------------------------------------------

    def _release(self, permit: Permit, remaining: RemainingReq | None, success: bool) -> None:
        if not isinstance(permit, _RedisPermit):  # pragma: no cover - local permits go local
            raise TypeError("a permit of another limiter")
        target = permit.group
        if remaining is not None and remaining.group != permit.group:
            target = remaining.group
            with self._cond:
                if self._aliases.get(permit.requested) != target:
                    logger.info("rate limiter: %r requests count against group %r",
                                permit.requested, target)
                self._aliases[permit.requested] = target
        sec = -1 if remaining is None or remaining.sec is None else remaining.sec
        free_at = self._clock.monotonic() + self._cooldown
        answered = [(permit.group, permit.token, free_at)]
        self._note_own(permit.group, permit.token, free_at)
        if target != permit.group:
            answered.append((target, f"{permit.token}:charged", free_at))
            self._note_own(target, f"{permit.token}:charged", free_at)
        was_shared = self.shared
        charge = False
        try:
            self._run(
                "release", [*self._keys(permit.group), *self._keys(target)],
                [permit.token, repr(self._cooldown), "1" if success else "0", sec,
                 self._limit(target), self._slots_ttl_ms],
            )
        except RedisUnavailable:
            # The slot stays taken in Redis until its lease ends: the conservative side.
            logger.debug("rate limiter: release of %s not recorded (Redis away)", permit.token)
            charge = not was_shared  # else the fallback that began here adopted it already
        self._charge_local(answered, charge=charge, success=success)

    # -- what the server told us ----------------------------------------------

    def on_rate_limited(self, group: str, *, retry_after: float | None = None) -> float:
        """An HTTP 429 for ``group``: pause it for every host; return the pause in seconds.

        Recorded locally too; while Redis is away only the local pause applies.
        """
        local = self._local.on_rate_limited(group, retry_after=retry_after)
        with self._cond:
            name = self._aliases.get(group.lower(), group.lower())
        try:
            pause, failures = self._run(
                "rate_limited", [self._keys(name)[2]],
                [-1.0 if retry_after is None else retry_after, *self._delays],
            )
        except RedisUnavailable:
            return local
        logger.warning(
            "rate limiter: HTTP 429 on group %s (%d in a row, all hosts), pausing it %.2f s "
            "for every host", name, int(failures), float(pause),
        )
        return float(pause)

    def on_banned(self, duration: float) -> float:
        """An HTTP 418: ban every group on every host for ``duration`` seconds; return the
        ban's end (monotonic, this process's clock)."""
        until = self._local.on_banned(duration)
        now = self._clock.monotonic()
        try:
            wait = float(self._run("banned", [self._ban_key], [repr(max(0.0, duration))]))
        except RedisUnavailable:
            return until
        return max(until, now + wait)

    # -- reading -------------------------------------------------------------

    def banned_until(self) -> float | None:
        """The monotonic end of the ban in force (shared or local), or ``None``."""
        local = self._local.banned_until()
        if not self._try_redis():
            return local
        now = self._clock.monotonic()
        try:
            wait = float(self._run("status", [*self._keys("_"), self._ban_key], [])[6])
        except RedisUnavailable:
            return local
        shared = now + wait if wait > 0 else None
        if shared is None:
            return local
        return shared if local is None else max(shared, local)

    def status(self) -> LimiterStatus:
        """Each group this limiter used, as Redis sees it (the local share's while Redis
        is away)."""
        if not self._try_redis():
            return self._local.status()
        now = self._clock.monotonic()
        groups: dict[str, GroupStatus] = {}
        banned: float | None = None
        local_ban = self._local.banned_until()  # a 418 heard while Redis was away
        try:
            for name in sorted(self._seen) or ["_"]:
                in_flight, cooling, pause, failures, best, last, ban = self._run(
                    "status", [*self._keys(name), self._ban_key], []
                )
                ban_wait = float(ban)
                banned = now + ban_wait if ban_wait > 0 else None
                if local_ban is not None:
                    banned = local_ban if banned is None else max(banned, local_ban)
                if name == "_":
                    break
                limit = self._limit(name)
                capacity = min(limit, int(best) + 1) if int(best) >= 0 else limit
                pause_wait = float(pause)
                paused = now + pause_wait if pause_wait > 0 else None
                available = max(0, capacity - int(in_flight) - int(cooling))
                groups[name] = GroupStatus(
                    group=name,
                    limit=limit,
                    capacity=capacity,
                    available=0 if banned or paused else available,
                    in_flight=int(in_flight),
                    paused_until=paused,
                    consecutive_rate_limits=int(failures),
                    last_sec=int(last) if last else None,
                )
        except RedisUnavailable:
            return self._local.status()
        return LimiterStatus(now=now, banned_until=banned, groups=MappingProxyType(groups))
