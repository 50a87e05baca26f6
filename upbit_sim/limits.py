"""The simulator's own Upbit-like request limit: a strict sliding window per client IP and group.

At most ``per_second`` accepted requests per ``window`` seconds for each
(client, group); a request over it is refused with 429 (refused requests do not
use the budget). ``ban_after`` refusals within ``ban_window`` seconds ban the
client from every group with 418 for ``ban_seconds``, multiplied by
``ban_growth`` for each further ban (capped at ``ban_max_seconds``). Decisions
take ``now`` (a monotonic reading) so they are tested with plain numbers.
"""

from __future__ import annotations

import enum
import math
import threading
from collections import deque
from dataclasses import dataclass

from quotation.values import check, check_all

__all__ = ["Decision", "RateLimitPolicy", "ServerRateLimiter", "Verdict"]


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """Thresholds of the simulator's limit (Upbit's quotation defaults; tests shrink them)."""

    per_second: int = 10
    window: float = 1.0
    ban_after: int = 10
    """Refusals (429) within ``ban_window`` that earn a ban."""
    ban_window: float = 10.0
    ban_seconds: float = 30.0
    ban_growth: float = 2.0
    ban_max_seconds: float = 3600.0

    def __post_init__(self) -> None:
        check_all(self, ("per_second", "ban_after"), at_least=1, integer=True)
        check_all(self, ("window", "ban_window", "ban_seconds", "ban_max_seconds"), above=0)
        check("ban_growth", self.ban_growth, at_least=1)


class Verdict(enum.Enum):
    """What the limit says about one request."""

    ALLOW = 200
    LIMITED = 429
    BANNED = 418


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict, the budget left in the window (``Remaining-Req: sec=``) and any ban left."""

    verdict: Verdict
    remaining: int
    ban_seconds: float = 0.0

    @property
    def ban_whole_seconds(self) -> int:
        """The ban left, rounded up, as written in the 418 message."""
        return max(1, math.ceil(self.ban_seconds))


class ServerRateLimiter:
    """Thread-safe sliding-window limiter keyed by (client, group), with growing bans."""

    def __init__(self, policy: RateLimitPolicy | None = None) -> None:
        self.policy = policy or RateLimitPolicy()
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._refusals: dict[str, deque[float]] = {}
        self._banned_until: dict[str, float] = {}
        self._bans: dict[str, int] = {}
        self.refused_429 = 0
        """Requests this limiter answered 429 (since start or :meth:`reset`)."""
        self.refused_418 = 0
        """Requests this limiter answered 418, the one that earned a ban included."""

    def check(self, client: str, group: str, now: float) -> Decision:
        """Count one request of ``client`` in ``group`` at monotonic time ``now``."""
        policy = self.policy
        with self._lock:
            until = self._banned_until.get(client, 0.0)
            if now < until:
                self.refused_418 += 1
                return Decision(Verdict.BANNED, 0, until - now)
            window = self._windows.setdefault((client, group), deque())
            horizon = now - policy.window
            while window and window[0] <= horizon:
                window.popleft()
            if len(window) < policy.per_second:
                window.append(now)
                return Decision(Verdict.ALLOW, policy.per_second - len(window))
            refusals = self._refusals.setdefault(client, deque())
            refusals.append(now)
            while refusals and refusals[0] <= now - policy.ban_window:
                refusals.popleft()
            if len(refusals) < policy.ban_after:
                self.refused_429 += 1
                return Decision(Verdict.LIMITED, 0)
            refusals.clear()
            count = self._bans.get(client, 0) + 1
            self._bans[client] = count
            duration = min(
                policy.ban_max_seconds, policy.ban_seconds * policy.ban_growth ** (count - 1)
            )
            self._banned_until[client] = now + duration
            self.refused_418 += 1
            return Decision(Verdict.BANNED, 0, duration)

    def reset(self) -> None:
        """Forget every window, refusal and ban."""
        with self._lock:
            self._windows.clear()
            self._refusals.clear()
            self._banned_until.clear()
            self._bans.clear()
            self.refused_429 = self.refused_418 = 0
