"""Connecting to Redis with bounded timeouts, and turning Redis' errors into ours.

``redis`` (the ``shared`` extra) is imported here, lazily, when a connection is made:
``import lifeline`` works without it, and ``mode: local`` never touches it.

Every call the feed makes goes through :func:`call`, so a dead or silent server is a
:class:`~lifeline.feed.errors.FeedUnavailable` within ``socket_timeout`` (plus the
command's own blocking time), never a hang and never a ``redis`` exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from lifeline.feed.errors import FeedCommandError, FeedError, FeedUnavailable
from quotation.redact import redact_url

if TYPE_CHECKING:
    import redis

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_SOCKET_TIMEOUT", "call", "connect"]

DEFAULT_CONNECT_TIMEOUT = 1.0
"""Seconds to open a TCP connection to Redis."""
DEFAULT_SOCKET_TIMEOUT = 1.0
"""Seconds any one reply may take, on top of a blocking command's own block time."""

_T = TypeVar("_T")


def connect(url: str, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
            socket_timeout: float = DEFAULT_SOCKET_TIMEOUT) -> redis.Redis:
    """A client for ``url`` (``redis://host:port/db``) with bounded timeouts.

    No connection is made yet (redis-py connects on the first command); replies stay
    ``bytes``. redis-py retries nothing: a fenced write whose reply was lost may have run,
    and running it again would duplicate its entries; the caller decides.
    ``FeedError`` if the ``redis`` package is missing or the URL is bad.
    """
    try:
        import redis  # noqa: PLC0415 (the optional 'shared' extra)
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise FeedError(
            "the shared feed needs the 'redis' package: pip install 'lifeline[shared]'"
        ) from None
    from redis.backoff import NoBackoff  # noqa: PLC0415 (optional extra)
    from redis.retry import Retry  # noqa: PLC0415 (optional extra)

    try:
        return redis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            retry_on_timeout=False,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
            health_check_interval=0,
        )
    except ValueError as exc:
        shown = redact_url(url)
        raise FeedError(f"bad redis_url {shown!r}: {str(exc).replace(url, shown)}") from None


def call(operation: str, command: Callable[[], _T]) -> _T:
    """``command()``, with Redis' errors turned into :class:`FeedUnavailable` (unreachable,
    timed out) or :class:`FeedCommandError` (an error reply); ours pass through."""
    import redis.exceptions as rx  # noqa: PLC0415 (optional extra)

    try:
        return command()
    except FeedError:
        raise
    except (rx.ConnectionError, rx.TimeoutError, OSError) as exc:
        raise FeedUnavailable(
            f"redis unavailable during {operation}: {type(exc).__name__}: {exc}",
            operation=operation,
        ) from exc
    except rx.RedisError as exc:
        raise FeedCommandError(
            f"redis refused {operation}: {type(exc).__name__}: {exc}", operation=operation,
        ) from exc


