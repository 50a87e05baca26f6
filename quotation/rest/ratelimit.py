"""The process-wide REST rate limiter: one budget per Upbit rate-limit group.

Upbit limits each group (``market``, ``ticker``, ``candles``, ``crix-trades``,
``orderbook``, … as named by the ``Remaining-Req`` header) to 10 requests per
second per IP, counted on arrival in a sliding window. All callers in a process
share one IP, so they must share one :class:`RateLimiter`: two limiters for one
budget silently double the rate. :func:`process_limiter` is that one limiter:
a :class:`~quotation.rest.client.RestClient` built without a limiter uses it,
so two default clients share one budget. Pass your own instance to give a
client a budget of its own (a test, or a limiter on a fake clock).

How a budget works — slots that cool down after the answer
-----------------------------------------------------------
A group of limit ``n`` has ``n`` slots. :meth:`RateLimiter.acquire` takes a free
slot before the request is sent; :meth:`Permit.release` returns it when the
answer (or the failure) is in, and the slot becomes free again only
``window + margin`` seconds *after that answer*. The server saw the request
somewhere between our send and our receipt of the answer, so two requests that
use the same slot reach the server more than ``window`` apart, whatever the
network or thread scheduling did in between — by the pigeonhole principle no
``window`` of server arrivals can hold more than ``n`` of our requests. The
``margin`` (50 ms by default) only covers the server's own clock granularity.
On loopback this costs a few milliseconds per window: about 9.5 req/s.

Corrections from the server
---------------------------
* ``Remaining-Req: …; sec=k``: the server has room for ``k`` more, so its
  limit is at least ``k + 1``. The group's capacity is the configured limit
  but never more than the largest ``sec`` seen plus one: a limiter configured
  above the server's real limit shrinks to it after the first answer (and can
  grow back, never above the configured limit). Our own recent requests already
  hold their slots; if more than ``k`` slots are free (other processes on the
  same IP use the budget too), the extra ones are held for a window from that
  answer. ``sec=0`` thus waits the window out.
* A header naming another group than expected charges that group and teaches
  the limiter the alias (``acquire('ticker')`` then means the header's group).
* HTTP 429 → :meth:`RateLimiter.on_rate_limited` pauses that group for
  ``backoff.delay(n)`` after the n-th 429 in a row (:data:`RATE_LIMIT_BACKOFF`:
  1 s, 2 s, 4 s, … up to 30 s, no jitter); the count resets after a success.
* HTTP 418 → :meth:`RateLimiter.on_banned` pauses every group until the ban ends.

Waiting
-------
``acquire(group, timeout=…)`` blocks until a slot is free and no pause applies.
When the wait is known to end after the timeout it fails at once, without
waiting: :class:`~quotation.errors.Banned` during a ban, else
:class:`~quotation.errors.RateLimited` (``retry_after`` = the known wait).
:meth:`RateLimiter.try_acquire` returns ``None`` instead. Known waits use the
injected clock's ``sleep`` (a fake clock makes them exact and instant); only a
wait for an in-flight request to finish uses a condition variable.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType

from quotation.backoff import Backoff, Jitter
from quotation.clock import Clock, SystemClock
from quotation.errors import Banned, RateLimited
from quotation.rest.remaining_req import RemainingReq
from quotation.values import check

__all__ = [
    "RATE_LIMIT_BACKOFF",
    "GroupStatus",
    "LimiterStatus",
    "Permit",
    "RateLimiter",
    "process_limiter",
]

logger = logging.getLogger(__name__)

RATE_LIMIT_BACKOFF = Backoff(initial=1.0, multiplier=2.0, cap=30.0, jitter=Jitter.NONE)
"""The pause after the n-th 429 in a row: 1 s, 2 s, 4 s, … up to 30 s, always the same.
Upbit asks callers to stop a group for at least a second after a 429, and repeated 429s
lead to a ban (418)."""

_EPSILON = 1e-9


class _Budget:
    """The slots of one group; every method takes ``now`` and is called under the lock."""

    __slots__ = (
        "best_sec",
        "capacity",
        "cooling",
        "debt",
        "failures",
        "free",
        "in_flight",
        "last_sec",
        "limit",
        "paused_until",
    )

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """The configured most requests per window."""
        self.capacity = limit
        """The slots in use: the configured limit, or less once the server showed less room."""
        self.best_sec = -1
        self.debt = 0
        """Slots to retire as they come back, after the capacity shrank below what was out."""
        self.free = limit
        self.in_flight = 0
        self.cooling: list[tuple[float, int]] = []  # heap of (free again at, slots)
        self.paused_until = -math.inf
        self.failures = 0
        self.last_sec: int | None = None

    def settle(self, now: float) -> None:
        cooling = self.cooling
        while cooling and cooling[0][0] <= now + _EPSILON:
            count = heapq.heappop(cooling)[1]
            if self.debt:
                paid = min(self.debt, count)
                self.debt -= paid
                count -= paid
            self.free += count

    def learn(self, sec: int) -> None:
        """A ``sec`` from the server: its limit is at least ``sec + 1``.

        The capacity is the configured limit, but never more than the largest
        ``sec`` ever seen plus one. So a limiter configured above the server's
        real limit shrinks to it after the first answer, and the slot argument
        holds again; a larger ``sec`` later lets it grow back (never above the
        configured limit).
        """
        if sec <= self.best_sec:
            return
        self.best_sec = sec
        capacity = min(self.limit, sec + 1)
        delta = capacity - self.capacity
        self.capacity = capacity
        if delta < 0:
            taken = min(self.free, -delta)
            self.free -= taken
            self.debt += -delta - taken
        elif delta > 0:
            paid = min(self.debt, delta)
            self.debt -= paid
            self.free += delta - paid

    def slot_wait(self, now: float) -> float:
        """Seconds until a slot is free (``inf`` while every slot is in flight)."""
        self.settle(now)
        if self.free > 0:
            return 0.0
        if self.cooling:
            return max(0.0, self.cooling[0][0] - now)
        return math.inf

    def take(self) -> None:
        self.free -= 1
        self.in_flight += 1

    def give_back(self, free_at: float) -> None:
        self.in_flight -= 1
        heapq.heappush(self.cooling, (free_at, 1))

    def charge(self, now: float, free_at: float) -> None:
        """Count a request that was sent under another group's name against this one."""
        self.settle(now)
        if self.free > 0:
            self.free -= 1
        else:
            early = [entry for entry in self.cooling if entry[0] < free_at]
            if not early:
                return
            first = min(early)
            self.cooling.remove(first)
            if first[1] > 1:
                self.cooling.append((first[0], first[1] - 1))
            heapq.heapify(self.cooling)
        heapq.heappush(self.cooling, (free_at, 1))

    def cap_free(self, now: float, until: float, allowed: int) -> None:
        """The server says only ``allowed`` more fit its window: hold the rest until ``until``.

        Our own recent requests already hold their slots until they leave the
        server's window, so only free slots beyond ``allowed`` (other users of
        the same IP) are held — an O(1) correction.
        """
        self.settle(now)
        excess = self.free - allowed
        if excess > 0:
            self.free -= excess
            heapq.heappush(self.cooling, (until, excess))


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """One group's headroom, for health reporting."""

    group: str
    limit: int
    """The configured limit per window."""
    capacity: int
    """The limit in use: lower than ``limit`` if the server showed less room."""
    available: int
    """Slots usable right now (0 while paused or banned)."""
    in_flight: int
    paused_until: float | None
    """Monotonic end of a 429 pause, ``None`` if not paused."""
    consecutive_rate_limits: int
    last_sec: int | None
    """The last ``sec`` the server reported for this group."""


@dataclass(frozen=True, slots=True)
class LimiterStatus:
    """The whole limiter at one moment."""

    now: float
    banned_until: float | None
    groups: Mapping[str, GroupStatus]


class Permit:
    """The right to send one request; release it with what the answer said.

    Usable as a context manager: leaving the block releases it (as a failure,
    without header) unless :meth:`release` was called.
    """

    __slots__ = ("_limiter", "_released", "group", "requested")

    def __init__(self, limiter: RateLimiter, group: str, requested: str) -> None:
        self._limiter = limiter
        self.group = group
        """The group the slot was taken from."""
        self.requested = requested
        """The group name the caller asked for (before aliasing)."""
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def release(self, remaining: RemainingReq | None = None, *, success: bool = False) -> None:
        """Give the slot back now that the answer is in (idempotent).

        ``remaining`` is the parsed ``Remaining-Req`` header if there was one;
        ``success`` (a 2xx answer) resets the group's 429 backoff.
        """
        if self._released:
            return
        self._released = True
        self._limiter._release(self, remaining, success)

    def __enter__(self) -> Permit:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class RateLimiter:
    """Per-group request budgets shared by every REST caller of the process (thread-safe).

    ``per_second`` requests per ``window`` seconds per group (``limits``
    overrides it for named groups); a used slot is free again ``window +
    margin`` seconds after its answer. ``backoff`` sets the pauses after 429s
    (``backoff.delay(n)`` after the n-th in a row).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        per_second: int = 10,
        *,
        window: float = 1.0,
        margin: float = 0.05,
        limits: Mapping[str, int] | None = None,
        backoff: Backoff = RATE_LIMIT_BACKOFF,
    ) -> None:
        # Field names are the keywords (and config keys): upbit.rate_limit.per_second, ...
        check("per_second", per_second, at_least=1, integer=True)
        check("window", window, above=0)
        check("margin", margin, at_least=0)
        for name, limit in (limits or {}).items():
            check(f"limits[{name!r}]", limit, at_least=1, integer=True)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._per_second = per_second
        self._cooldown = window + margin
        self._limits = {name.lower(): limit for name, limit in (limits or {}).items()}
        self._backoff = backoff
        self._cond = threading.Condition(threading.Lock())
        self._budgets: dict[str, _Budget] = {}
        self._aliases: dict[str, str] = {}
        self._banned_until = -math.inf
        self._ban_duration = 0.0

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def cooldown(self) -> float:
        """Seconds a slot stays used after its answer (``window + margin``)."""
        return self._cooldown

    def _budget(self, group: str) -> _Budget:
        budget = self._budgets.get(group)
        if budget is None:
            budget = self._budgets[group] = _Budget(self._limits.get(group, self._per_second))
        return budget

    def resolve(self, group: str) -> str:
        """The group a request expected under ``group`` really counts against (learned)."""
        with self._cond:
            return self._aliases.get(group.lower(), group.lower())

    # -- taking a slot -------------------------------------------------------

    def acquire(self, group: str, *, timeout: float | None = None) -> Permit:
        """Block until ``group`` may send one request; return its :class:`Permit`.

        ``timeout`` (seconds, ``None`` = no limit) bounds the wait. When the wait
        cannot end in time this raises at once: :class:`Banned` during a ban,
        otherwise :class:`RateLimited` with the known wait as ``retry_after``.
        """
        outcome = self._acquire(group, timeout)
        if isinstance(outcome, Permit):
            return outcome
        raise outcome

    def try_acquire(self, group: str, *, timeout: float = 0.0) -> Permit | None:
        """Like :meth:`acquire` but ``None`` instead of an error when no slot comes in time."""
        outcome = self._acquire(group, timeout)
        return outcome if isinstance(outcome, Permit) else None

    def _acquire(self, group: str, timeout: float | None) -> Permit | RateLimited | Banned:
        clock = self._clock
        requested = group.lower()
        deadline = None if timeout is None else clock.monotonic() + max(0.0, timeout)
        while True:
            with self._cond:
                now = clock.monotonic()
                name = self._aliases.get(requested, requested)
                budget = self._budget(name)
                ban_wait = max(0.0, self._banned_until - now)
                pause_wait = max(0.0, budget.paused_until - now)
                slot_wait = budget.slot_wait(now)
                wait = max(ban_wait, pause_wait, slot_wait)
                if wait <= _EPSILON:
                    budget.take()
                    return Permit(self, name, requested)
                if deadline is not None and now + wait > deadline + _EPSILON:
                    if math.isinf(wait) and deadline - now > _EPSILON:
                        # Every slot is in flight: wait for a release until the deadline.
                        self._cond.wait(deadline - now)
                        continue
                    return self._refusal(name, now, ban_wait, pause_wait, wait)
                if math.isinf(wait):
                    self._cond.wait(None if deadline is None else deadline - now)
                    continue
            logger.debug("rate limiter: group %s waits %.3f s", name, wait)
            clock.sleep(wait)

    def _refusal(
        self, group: str, now: float, ban_wait: float, pause_wait: float, wait: float
    ) -> RateLimited | Banned:
        if ban_wait > 0 and ban_wait >= pause_wait:
            return Banned(
                f"REST calls are banned (HTTP 418) for another {ban_wait:.1f} s",
                until=self._banned_until,
                duration=self._ban_duration,
            )
        if pause_wait > 0:
            return RateLimited(
                f"group {group!r} is paused after HTTP 429 for another {pause_wait:.2f} s",
                group=group,
                retry_after=pause_wait,
            )
        retry = wait if math.isfinite(wait) else self._cooldown
        return RateLimited(
            f"no request slot for group {group!r} within the timeout (local rate limit)",
            group=group,
            retry_after=retry,
        )

    # -- giving it back ------------------------------------------------------

    def _release(self, permit: Permit, remaining: RemainingReq | None, success: bool) -> None:
        with self._cond:
            now = self._clock.monotonic()
            free_at = now + self._cooldown
            budget = self._budget(permit.group)
            budget.give_back(free_at)
            target = budget
            if remaining is not None:
                actual = remaining.group
                if actual != permit.group:
                    if self._aliases.get(permit.requested) != actual:
                        logger.info(
                            "rate limiter: %r requests count against group %r",
                            permit.requested,
                            actual,
                        )
                    self._aliases[permit.requested] = actual
                    target = self._budget(actual)
                    target.charge(now, free_at)
                if remaining.sec is not None:
                    target.last_sec = remaining.sec
                    target.learn(remaining.sec)
                    target.cap_free(now, free_at, remaining.sec)
            if success:
                budget.failures = 0
                target.failures = 0
            self._cond.notify_all()

    # -- what the server told us ----------------------------------------------

    def on_rate_limited(self, group: str, *, retry_after: float | None = None) -> float:
        """An HTTP 429 for ``group``: pause it with backoff; return the pause in seconds.

        ``retry_after`` (from the answer, if it said) lengthens the pause, never shortens it.
        """
        with self._cond:
            now = self._clock.monotonic()
            name = self._aliases.get(group.lower(), group.lower())
            budget = self._budget(name)
            budget.failures += 1
            pause = self._backoff.delay(budget.failures)
            if retry_after is not None and retry_after > pause:
                pause = retry_after
            budget.paused_until = max(budget.paused_until, now + pause)
            logger.warning(
                "rate limiter: HTTP 429 on group %s (%d in a row), pausing it %.2f s",
                name,
                budget.failures,
                pause,
            )
            self._cond.notify_all()
            return budget.paused_until - now

    def on_banned(self, duration: float) -> float:
        """An HTTP 418: pause every group for ``duration`` seconds; return the ban's end."""
        with self._cond:
            now = self._clock.monotonic()
            until = now + max(0.0, duration)
            if until > self._banned_until:
                self._banned_until = until
                self._ban_duration = duration
            logger.error("rate limiter: HTTP 418, every REST call paused for %.1f s", duration)
            self._cond.notify_all()
            return self._banned_until

    # -- reading -------------------------------------------------------------

    def banned_until(self) -> float | None:
        """The monotonic end of the current ban, or ``None``."""
        with self._cond:
            now = self._clock.monotonic()
            return self._banned_until if self._banned_until > now else None

    def status(self) -> LimiterStatus:
        """A snapshot of every group seen so far (for the health probe)."""
        with self._cond:
            now = self._clock.monotonic()
            banned = self._banned_until if self._banned_until > now else None
            groups: dict[str, GroupStatus] = {}
            for name, budget in sorted(self._budgets.items()):
                budget.settle(now)
                paused = budget.paused_until if budget.paused_until > now else None
                groups[name] = GroupStatus(
                    group=name,
                    limit=budget.limit,
                    capacity=budget.capacity,
                    available=0 if banned or paused else budget.free,
                    in_flight=budget.in_flight,
                    paused_until=paused,
                    consecutive_rate_limits=budget.failures,
                    last_sec=budget.last_sec,
                )
            return LimiterStatus(now=now, banned_until=banned, groups=MappingProxyType(groups))


_process_limiter: RateLimiter | None = None
_process_lock = threading.Lock()


def process_limiter() -> RateLimiter:
    """The one limiter of this process (system clock, Upbit's defaults), made on first use.

    Every :class:`~quotation.rest.client.RestClient` built without ``limiter=``
    uses it, so all such clients share one budget per group, as Upbit counts per
    IP. It is process-global state: it lives until the process ends, and what it
    learnt — slots in use, 429 pauses, a 418 ban, group aliases — carries over
    to every later default client (across tests, too). It is never reset or
    replaced; a caller that needs isolation passes its own :class:`RateLimiter`.
    """
    global _process_limiter  # noqa: PLW0603 - the one explicit process-wide instance
    with _process_lock:
        if _process_limiter is None:
            _process_limiter = RateLimiter(SystemClock())
        return _process_limiter
