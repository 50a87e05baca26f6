"""The publisher's lease in Redis: one holder at a time, fenced writes, an injected clock.

The lease is one key whose value is ``<token>:<owner>``:

* **acquire** (:meth:`Lease.try_acquire`): one Lua script that, only if the key is absent,
  takes the next fencing token (``INCR <key>:fence``, so tokens only grow, across holders
  and restarts of the holders) and ``SET key <token>:<owner> NX PX ttl``, and records in
  ``<key>:claim`` (same ``PX``) which contender instance created that value (a random
  nonce per :class:`Lease`). An acquire whose reply was lost (Redis silent, then awake) left
  a lease its contender does not know it holds: at its next attempt the script finds the
  key holding exactly the value this instance created and hands it back (``PEXPIRE`` to a
  full ``ttl``), so the takeover costs one ``acquire_every``, not a whole ``ttl``. Nothing
  else is adopted: another contender's lease, or one under the same owner name created by
  another instance, is never taken;
* **renew** (:meth:`Lease.renew`): ``PEXPIRE key ttl`` only if the key still holds our
  value (compare-and-pexpire), else :class:`~lifeline.feed.errors.LeaseLost`;
* **release** (:meth:`Lease.release`): ``DEL key`` only if it still holds our value;
* **fenced write** (:class:`FencedWriter`): the publisher's writes (``XADD`` with
  ``MAXLEN ~`` and the latest snapshot's ``HSET``) in one script that first checks that
  the key still holds the caller's value, so a stale holder (paused, partitioned, its
  lease expired and taken) writes nothing: :class:`~lifeline.feed.errors.LeaseLost`.

Redis' ``PX`` decides when a lease ends; the holder's own view (:meth:`Lease.held`) is
conservative: the lease counts from the moment the acquire or renew was *sent*, on the
injected clock, so the holder stops believing it leads no later than Redis expires it.
:meth:`Lease.step` is the schedule: renew every ``renew_every`` (``ttl / 3``) while held,
try to acquire every ``acquire_every`` while not; it returns the time its next step is
due, so a thread or actor runs it on any clock. A contender takes over at most ``ttl +
acquire_every`` after the holder's last renewal.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from lifeline.feed.errors import FeedCommandError, FeedSettingsError, LeaseLost, check_setting
from lifeline.feed.redis_io import call
from quotation.clock import Clock, SystemClock

if TYPE_CHECKING:
    import redis

__all__ = [
    "DEFAULT_LEADER_TTL",
    "FencedWrite",
    "FencedWriter",
    "Lease",
    "LeaseGrant",
    "LeaseHolder",
    "LeaseStep",
    "parse_holder",
]

logger = logging.getLogger(__name__)

DEFAULT_LEADER_TTL: Final = 5.0
"""``feed.leader_ttl``: seconds a publisher's lease lasts without renewal."""

_ACQUIRE: Final = """
local held = redis.call('GET', KEYS[1])
if held then
  if redis.call('GET', KEYS[3]) == ARGV[3] .. '|' .. held then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call('PEXPIRE', KEYS[3], ARGV[2])
    return -tonumber(string.match(held, '^(%d+):'))
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
local value = token .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2])
redis.call('SET', KEYS[3], ARGV[3] .. '|' .. value, 'PX', ARGV[2])
return token
"""
_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if redis.call('GET', KEYS[2]) == ARGV[3] .. '|' .. ARGV[1] then
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if redis.call('GET', KEYS[2]) == ARGV[2] .. '|' .. ARGV[1] then redis.call('DEL', KEYS[2]) end
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_FENCED_WRITE: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local maxlen = ARGV[2]
local nfields = tonumber(ARGV[3])
local ids = {}
local arg = 4
for i = 2, #KEYS, 2 do
  local fields = {}
  for j = 1, 2 * nfields do fields[j] = ARGV[arg + j - 1] end
  arg = arg + 2 * nfields
  local id = redis.call('XADD', KEYS[i], 'MAXLEN', '~', maxlen, '*', unpack(fields))
  if ARGV[arg] == '1' then
    redis.call('HSET', KEYS[i + 1], 'id', id, unpack(fields))
  end
  arg = arg + 1
  ids[#ids + 1] = id
end
return ids
"""


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """The lease as its holder holds it: the fencing ``token`` and the key's ``value``."""

    key: str
    token: int
    owner: str
    acquired_at: float
    """The holder's clock (monotonic) when the winning acquire was sent."""

    @property
    def value(self) -> str:
        """What the lease key holds while this grant is current: ``<token>:<owner>``."""
        return f"{self.token}:{self.owner}"


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """The lease as Redis holds it now: whose it is and how long it has left."""

    token: int
    owner: str
    ttl_left: float
    """Seconds until Redis expires it without a renewal."""


@dataclass(frozen=True, slots=True)
class LeaseStep:
    """What one :meth:`Lease.step` left: the grant if held, and when the next step is due."""

    grant: LeaseGrant | None
    next_due: float
    """The clock's monotonic time at which to call ``step`` again."""

    @property
    def holding(self) -> bool:
        return self.grant is not None


@dataclass(frozen=True, slots=True)
class FencedWrite:
    """One entry for :meth:`FencedWriter.write`: ``XADD stream`` and, if ``snapshot``, ``HSET
    snapshot id <entry id> <fields>``. Every write of one call has the same field names."""

    stream: str
    fields: Mapping[str, bytes]
    snapshot: str | None = None


def parse_holder(key: str, value: bytes, pttl: int, *, operation: str) -> LeaseHolder:
    """The :class:`LeaseHolder` of the lease ``key`` holding ``value`` (``<token>:<owner>``)
    with ``pttl`` ms left; :class:`FeedCommandError` naming the key if the value is not a
    lease's (another program's key, an operator's ``SET``): never a ``ValueError`` into the
    leader's loop or a follower's read."""
    token, sep, owner = value.decode(errors="replace").partition(":")
    try:
        number = int(token)
    except ValueError:
        number = 0
    if not sep or not owner or number < 1:
        raise FeedCommandError(f"the lease key {key} holds {value[:64]!r}, not "
                               "<token>:<owner>: a foreign key", operation=operation)
    return LeaseHolder(number, owner, max(0, pttl) / 1000.0)


class Lease:
    """One contender for the lease ``key`` (see the module docstring).

    ``owner`` names this contender (unique per process: host, pid, a random part);
    ``ttl`` is ``feed.leader_ttl``; ``renew_every`` (default ``ttl / 3``) and
    ``acquire_every`` (default ``renew_every``) pace :meth:`step` on ``clock``.
    Not thread-safe: one thread (or actor) drives it.
    """

    def __init__(self, client: redis.Redis, key: str, owner: str, *,
                 ttl: float = DEFAULT_LEADER_TTL, renew_every: float | None = None,
                 acquire_every: float | None = None, clock: Clock | None = None) -> None:
        check_setting("feed.leader_ttl", ttl, above=0)
        renew = ttl / 3.0 if renew_every is None else renew_every
        check_setting("feed.renew_every", renew, above=0)
        if not renew < ttl:  # a rule between two settings
            raise FeedSettingsError(
                f"feed.renew_every must be < feed.leader_ttl ({ttl}), got {renew!r}",
                key="feed.renew_every", value=renew,
            )
        if acquire_every is not None:
            check_setting("feed.acquire_every", acquire_every, above=0)
        if ":" in owner or not owner:
            raise FeedSettingsError(f"a lease owner is a non-empty name without ':', got "
                                    f"{owner!r}", key="feed.owner", value=owner)
        self.key = key
        self.fence_key = f"{key}:fence"
        self.claim_key = f"{key}:claim"
        self._nonce = secrets.token_hex(8)
        """This instance's mark in ``claim_key``: which lease value it created."""
        self.owner = owner
        self.ttl = ttl
        self.renew_every = renew
        self.acquire_every = renew if acquire_every is None else acquire_every
        self._ttl_ms = max(1, round(ttl * 1000))
        self._client = client
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._grant: LeaseGrant | None = None
        self._valid_from = 0.0
        """When the last successful acquire or renew was sent (the holder's clock)."""

    @property
    def grant(self) -> LeaseGrant | None:
        """The grant while this contender believes it holds the lease (see :meth:`held`)."""
        return self._grant if self.held() else None

    def held(self) -> bool:
        """Held, as far as this contender can tell without asking Redis: it acquired or
        renewed less than ``ttl`` ago (counted from when it asked)."""
        return (self._grant is not None
                and self._clock.monotonic() < self._valid_from + self.ttl)

    def try_acquire(self) -> LeaseGrant | None:
        """Take the lease if nobody holds it: the new grant, else ``None``."""
        sent = self._clock.monotonic()
        token = int(call("lease acquire", lambda: self._acquire(
            keys=[self.key, self.fence_key, self.claim_key],
            args=[self.owner, self._ttl_ms, self._nonce])))
        if token == 0:
            return None
        self._grant = LeaseGrant(self.key, abs(token), self.owner, sent)
        self._valid_from = sent
        if token < 0:
            logger.warning("lease %s: %s takes back the lease with token %d that an acquire "
                           "whose reply was lost gave it", self.key, self.owner, -token)
        else:
            logger.info("lease %s acquired by %s with token %d", self.key, self.owner, token)
        return self._grant

    def renew(self) -> LeaseGrant:
        """Extend the lease by ``ttl`` if it is still ours; else :class:`LeaseLost` (and
        this contender no longer holds it). :class:`FeedUnavailable` keeps the grant until
        its own time runs out."""
        grant = self._grant
        if grant is None:
            raise LeaseLost(f"lease {self.key} is not held by {self.owner}",
                            key=self.key, token=0)
        sent = self._clock.monotonic()
        renewed = int(call("lease renew", lambda: self._renew(
            keys=[self.key, self.claim_key], args=[grant.value, self._ttl_ms, self._nonce])))
        if not renewed:
            self._grant = None
            logger.warning("lease %s lost by %s (token %d)", self.key, self.owner, grant.token)
            raise LeaseLost(f"lease {self.key} no longer holds token {grant.token}",
                            key=self.key, token=grant.token)
        self._valid_from = sent
        return grant

    def release(self) -> bool:
        """Give the lease up if it is still ours (so a contender need not wait ``ttl``);
        ``True`` if it was deleted. Forgets the grant either way."""
        grant, self._grant = self._grant, None
        if grant is None:
            return False
        return bool(call("lease release", lambda: self._release(
            keys=[self.key, self.claim_key], args=[grant.value, self._nonce])))

    def holder(self) -> LeaseHolder | None:
        """Who holds the lease now according to Redis (``None``: nobody)."""
        def read() -> tuple[bytes | None, int]:
            pipe = self._client.pipeline(transaction=True)
            pipe.get(self.key)
            pipe.pttl(self.key)
            value, pttl = pipe.execute()
            return value, int(pttl)

        value, pttl = call("lease holder", read)
        if value is None:
            return None
        return parse_holder(self.key, value, pttl, operation="lease holder")

    def step(self) -> LeaseStep:
        """One scheduled action: renew if held and due, acquire if not held; the result
        says when the next is due. :class:`FeedUnavailable` propagates (the grant stays
        until its own time runs out); a lost lease is not an error here."""
        now = self._clock.monotonic()
        if self._grant is not None and not self.held():
            logger.warning("lease %s expired for %s without a renewal", self.key, self.owner)
            self._grant = None
        if self._grant is None:
            self.try_acquire()
        elif now >= self._valid_from + self.renew_every:
            with contextlib.suppress(LeaseLost):  # the grant is gone; acquire next step
                self.renew()
        if self._grant is not None:
            return LeaseStep(self._grant, self._valid_from + self.renew_every)
        return LeaseStep(None, now + self.acquire_every)


class FencedWriter:
    """The publisher's writes on ``client``, fenced by the lease (the script is registered
    once; redis-py sends it by its SHA and loads it again after a Redis restart)."""

    def __init__(self, client: redis.Redis, *, maxlen: int) -> None:
        check_setting("feed.stream_maxlen", maxlen, at_least=1, integer=True)
        self.maxlen = maxlen
        self._script = client.register_script(_FENCED_WRITE)

    def write(self, grant: LeaseGrant, writes: Sequence[FencedWrite]) -> list[bytes]:
        """Write ``writes`` in one round trip only if the lease still holds ``grant``: the
        new entry ids in order, else :class:`LeaseLost` and nothing is written. Streams are
        trimmed to about ``maxlen`` entries (``MAXLEN ~``)."""
        if not writes:
            return []
        names = list(writes[0].fields)
        keys: list[str] = [grant.key]
        args: list[str | bytes | int] = [grant.value, self.maxlen, len(names)]
        for write in writes:
            if list(write.fields) != names:
                raise ValueError(f"every fenced write needs the fields {names}, got "
                                 f"{list(write.fields)}")
            keys += [write.stream, write.snapshot or write.stream]
            for name in names:
                args += [name, write.fields[name]]
            args.append("1" if write.snapshot else "0")
        ids = call("fenced write", lambda: self._script(keys=keys, args=args))
        if ids == 0:
            raise LeaseLost(f"lease {grant.key} no longer holds token {grant.token}: "
                            f"{len(writes)} entries refused", key=grant.key, token=grant.token)
        return list(ids)
