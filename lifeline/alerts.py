"""Alerts for the operator: the log and the webhooks of ``LIFELINE_ALERT_WEBHOOKS``.

An :class:`Alerter` takes events — a level change (with its reason and cause), a supervisor
giving up (``Escalated`` of ``router_sup`` or root), a REST ban (HTTP 418) seen on the shared
limiter, a failed self-check — and

1. de-duplicates them: the same ``(kind, cause, level)`` within ``dedup_window`` seconds of
   the last one sent is suppressed and counted; at the end of the window the latest
   suppressed one is sent with the count (``suppressed``), so a flapping system sends one
   alert per key per window and the operator's last message is never older than the
   window;
2. logs what passes (logger ``lifeline.alerts``: ERROR for Level 3, a ban, root giving up
   and a failed self-check; WARNING for the rest; a suppressed repeat at DEBUG);
3. queues it for each webhook that may send now: a token bucket per webhook (``burst``
   alerts, one more every ``per_seconds / burst`` seconds) and no rest after a failure.
   An alert a webhook may not send is held back and counted; once the webhook may send
   again, the latest held-back alert goes out with the count (``held_back``).

Nothing here blocks the caller (the keeper's or a supervisor's thread): the caller only
takes a lock, appends to a bounded queue (``queue_size``; when full the oldest item is
dropped and counted) and logs. ONE daemon sender thread posts the JSON body with
``requests`` (connect ``timeout``, read ``timeout``, ``total`` for the whole exchange; the
body of the answer is not read). A webhook that fails (an error status, a refused
connection, a timeout) rests for ``rest_after_failure`` seconds: one POST per rest to a dead
or hanging webhook, its first failure of a burst logged at WARNING, the next ones at DEBUG,
its recovery at INFO. All windows are on the injected clock.

Webhook URLs carry secrets (Slack's are bearer tokens in the path). They are read once, at
construction, and never logged, printed or put in an error message: a webhook is named by
its position, ``webhook #2``; a failure is logged with its exception's class, never its text
(``requests`` puts the URL in it); ``urllib3``'s DEBUG records that would show a webhook's
path are dropped by a filter while the alerter runs.

The body is Slack-compatible: ``{"text": ...}`` plus the structured fields ``kind``,
``level``, ``old``, ``new``, ``cause``, ``reason``, ``at`` (ISO 8601 UTC), ``host``,
``system``, ``suppressed`` and ``held_back``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from urllib3.util import Timeout

from lifeline.errors import LifelineError
from lifeline.levels import Level, LevelChange
from quotation.clock import Clock
from quotation.redact import REDACTED
from supervisors import Escalated, EscalationTarget, SupervisionEvent

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "Alert",
    "AlertKind",
    "Alerter",
    "AlerterStats",
    "InvalidWebhook",
    "TokenBucket",
    "parse_webhooks",
]

logger = logging.getLogger(__name__)

ENVIRONMENT_VARIABLE = "LIFELINE_ALERT_WEBHOOKS"
"""Comma-separated http(s) URLs the alerts are posted to (none: the log only)."""
DEDUP_WINDOW = 60.0
"""Seconds a repeated ``(kind, cause, level)`` is suppressed after the last one sent."""
BURST = 6
PER_SECONDS = 60.0
"""A webhook sends at most ``BURST`` alerts per ``PER_SECONDS`` (token bucket)."""
TIMEOUT = 3.0
"""Seconds to connect, and to wait for each read of the answer."""
TOTAL = 5.0
"""Seconds one POST may take in all."""
REST_AFTER_FAILURE = 30.0
"""Seconds a failed webhook is left alone (its alerts held back and counted meanwhile)."""
QUEUE_SIZE = 100
"""Posts waiting for the sender thread; beyond that the oldest is dropped (counted)."""
STOP_WAIT = 1.0
"""Real seconds ``stop()`` waits for the sender thread (a system's shutdown is not held up
by a hanging webhook for longer)."""
POLL_SECONDS = 0.05
"""Real seconds between the sender thread's readings of the injected clock while idle."""


class InvalidWebhook(LifelineError):
    """A webhook in ``LIFELINE_ALERT_WEBHOOKS`` is not an http(s) URL; ``position`` (1-based)
    names it, never its text."""

    def __init__(self, position: int, problem: str) -> None:
        super().__init__(f"webhook #{position} in {ENVIRONMENT_VARIABLE}: {problem}")
        self.position = position


class AlertKind(Enum):
    """What an alert is about."""

    LEVEL_CHANGE = "level_change"
    ESCALATION = "escalation"
    BAN = "ban"
    SELF_CHECK = "self_check"


@dataclass(frozen=True, slots=True)
class Alert:
    """One event for the operator; ``at`` is wall time (epoch seconds)."""

    kind: AlertKind
    text: str
    at: float
    level: Level | None = None
    old: Level | None = None
    new: Level | None = None
    cause: str | None = None
    reason: str | None = None
    error: bool = False
    """Logged at ERROR (else WARNING)."""

    @property
    def key(self) -> tuple[AlertKind, str | None, Level | None]:
        """What repeats are recognised by."""
        return (self.kind, self.cause, self.level)


@dataclass(frozen=True, slots=True)
class AlerterStats:
    """Counts since construction."""

    raised: int
    """Alerts taken in (suppressed repeats included)."""
    suppressed: int
    """Repeats suppressed by de-duplication."""
    held_back: int
    """Alerts a webhook could not send (rate limit or resting after a failure)."""
    dropped: int
    """Posts dropped from the full queue (the oldest first)."""
    sent: int
    """Posts a webhook answered with a 2xx."""
    failed: int
    """Posts that failed (status, connection, timeout)."""


class TokenBucket:
    """``burst`` tokens, one more every ``per_seconds / burst`` seconds (a pure rule: ``now``
    is an argument)."""

    __slots__ = ("_burst", "_every", "_last", "_tokens")

    def __init__(self, burst: int, per_seconds: float, now: float) -> None:
        if burst < 1 or per_seconds <= 0:
            raise ValueError(f"a token bucket needs burst >= 1 and per_seconds > 0, got "
                             f"{burst!r}, {per_seconds!r}")
        self._burst = burst
        self._every = per_seconds / burst
        self._tokens = float(burst)
        self._last = now

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(float(self._burst), self._tokens + (now - self._last) / self._every)
            self._last = now

    def ready(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= 1.0

    def take(self, now: float) -> bool:
        """Take a token if there is one."""
        if not self.ready(now):
            return False
        self._tokens -= 1.0
        return True


def parse_webhooks(value: str | None) -> tuple[str, ...]:
    """The webhook URLs of ``value`` (comma-separated; blanks around and empty items are
    ignored); :class:`InvalidWebhook` names the first bad one by position."""
    if not value:
        return ()
    urls = [item.strip() for item in value.split(",")]
    return tuple(_checked(position, url)
                 for position, url in enumerate((u for u in urls if u), start=1))


def _checked(position: int, url: str) -> str:
    """``url`` if it is one http(s) URL with a host; else :class:`InvalidWebhook`."""
    if not isinstance(url, str) or "," in url or url != url.strip():
        raise InvalidWebhook(position, "one URL without blanks per item")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise InvalidWebhook(position, "not a URL") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhook(position, "the scheme must be http or https")
    if not host:
        raise InvalidWebhook(position, "no host")
    return url


class _Webhook:
    """One webhook: its URL (shown nowhere), its bucket, rest and held-back alerts."""

    __slots__ = ("bucket", "failing", "held", "latest_held", "path", "position", "rest_until",
                 "url")

    def __init__(self, position: int, url: str, bucket: TokenBucket) -> None:
        self.position = position
        self.url = url
        parts = urlsplit(url)
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.bucket = bucket
        self.rest_until = float("-inf")
        self.held = 0
        self.latest_held: Alert | None = None
        self.failing = False

    @property
    def name(self) -> str:
        return f"webhook #{self.position}"

    def may_send(self, now: float) -> bool:
        return now >= self.rest_until and self.bucket.take(now)

    def __repr__(self) -> str:
        return f"<{self.name} {REDACTED}>"


@dataclass(slots=True)
class _Repeats:
    sent_at: float
    count: int = 0
    latest: Alert | None = None


class _DropWebhookPaths(logging.Filter):
    """Drops ``urllib3`` records that would show a webhook's path (they log ``POST /path``)."""

    def __init__(self, paths: Sequence[str]) -> None:
        super().__init__()
        self._paths = [path for path in paths if path not in ("", "/")]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 (a record that cannot format is not ours to judge)
            return True
        return not any(path in message for path in self._paths)


_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.connection")


class Alerter:
    """See the module docstring. ``level`` tells the current level for alerts that are not
    level changes; ``system`` and ``host`` name this process in every alert."""

    def __init__(self, clock: Clock, webhooks: Sequence[str] = (), *,
                 level: Callable[[], Level] | None = None, system: str | None = None,
                 host: str | None = None, dedup_window: float = DEDUP_WINDOW,
                 burst: int = BURST, per_seconds: float = PER_SECONDS,
                 timeout: float = TIMEOUT, total: float = TOTAL,
                 rest_after_failure: float = REST_AFTER_FAILURE,
                 queue_size: int = QUEUE_SIZE) -> None:
        webhooks = [_checked(position, url) for position, url in enumerate(webhooks, start=1)]
        self._clock = clock
        now = clock.monotonic()
        self._hooks = [_Webhook(i, url, TokenBucket(burst, per_seconds, now))
                       for i, url in enumerate(webhooks, start=1)]
        self._level = level
        self._host = host if host is not None else socket.gethostname()
        self._system = system if system is not None else f"lifeline-{os.getpid()}"
        self._dedup_window = dedup_window
        self._timeout = Timeout(connect=timeout, read=timeout, total=total)
        self._rest_after_failure = rest_after_failure
        self._lock = threading.Condition()
        self._queue: deque[tuple[_Webhook, dict[str, Any]]] = deque()
        self._queue_size = queue_size
        self._repeats: dict[tuple[AlertKind, str | None, Level | None], _Repeats] = {}
        self._counts = dict.fromkeys(AlerterStats.__slots__, 0)
        self._banned_until: Callable[[], float | None] | None = None
        self._last_ban: float | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._filter = _DropWebhookPaths([hook.path for hook in self._hooks])

    @classmethod
    def from_environment(cls, clock: Clock, environ: Mapping[str, str] | None = None,
                         **options: Any) -> Alerter:
        """An alerter posting to the webhooks of ``LIFELINE_ALERT_WEBHOOKS`` (read now)."""
        source = os.environ if environ is None else environ
        return cls(clock, parse_webhooks(source.get(ENVIRONMENT_VARIABLE)), **options)

    def __repr__(self) -> str:
        return f"<Alerter webhooks={len(self._hooks)} system={self._system!r}>"

    @property
    def webhooks(self) -> int:
        """How many webhooks alerts go to (their URLs are not shown)."""
        return len(self._hooks)

    def stats(self) -> AlerterStats:
        with self._lock:
            return AlerterStats(**self._counts)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, banned_until: Callable[[], float | None] | None = None) -> None:
        """Start the sender thread; ``banned_until`` (the shared limiter's) is watched for a
        new REST ban."""
        with self._lock:
            if self._thread is not None or self._stopped:
                return
            self._banned_until = banned_until
            self._thread = threading.Thread(target=self._run, name="lifeline-alerts",
                                            daemon=True)
        for name in _URLLIB3_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)
        self._thread.start()

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """Stop the sender thread; queued posts are dropped. Waits ``timeout`` at most: a
        post under way (bounded by ``total``) ends on the daemon thread, which then exits,
        and the ``urllib3`` filter stays until it has."""
        with self._lock:
            self._stopped = True
            thread = self._thread
            self._lock.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                return
        for name in _URLLIB3_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)

    # -- events (any thread; never blocks) ----------------------------------------------

    def level_changed(self, change: LevelChange) -> None:
        cause = None if change.cause is None else change.cause.value
        self.alert(Alert(
            AlertKind.LEVEL_CHANGE,
            f"level {int(change.old)} -> {int(change.new)} ({change.new.name.lower()}): "
            f"{change.reason}", self._wall(change.at), level=change.new, old=change.old,
            new=change.new, cause=cause, reason=change.reason,
            error=change.new >= Level.LAST_RESORT))

    def supervision_event(self, event: SupervisionEvent) -> None:
        """A supervision event of the tree: a supervisor giving up is an alert."""
        if not isinstance(event, Escalated):
            return
        root = event.target is EscalationTarget.HOST
        self.alert(Alert(
            AlertKind.ESCALATION, f"supervisor {event.supervisor} gave up: {event.reason}",
            self._wall(event.at), level=self._current(), cause=event.supervisor,
            reason=str(event.reason), error=root))

    def ban_seen(self, until: float) -> None:
        """A REST ban (HTTP 418) until ``until`` (monotonic)."""
        left = max(0.0, until - self._clock.monotonic())
        self.alert(Alert(AlertKind.BAN, f"REST banned by Upbit (HTTP 418) for {left:.0f} s",
                         self._clock.time(), level=self._current(), cause="http_418",
                         reason=f"every REST call paused for {left:.1f} s", error=True))

    def self_check_failed(self, what: str, detail: str) -> None:
        self.alert(Alert(AlertKind.SELF_CHECK, f"self-check of {what} failed: {detail}",
                         self._clock.time(), level=self._current(), cause=what, reason=detail,
                         error=True))

    def alert(self, alert: Alert) -> None:
        """De-duplicate, log, and queue ``alert`` for the webhooks that may send it."""
        now = self._clock.monotonic()
        with self._lock:
            self._counts["raised"] += 1
            repeats = self._repeats.get(alert.key)
            if repeats is None or now >= repeats.sent_at + self._dedup_window:
                self._repeats[alert.key] = _Repeats(now)
                text = self._emit(alert, 0, now)
            else:
                repeats.count += 1
                repeats.latest = alert
                self._counts["suppressed"] += 1
                count, text = repeats.count, None
        if text is not None:
            self._log(alert, text)
            return
        logger.debug("alert suppressed (repeat %d in the window): %s", count, alert.text)

    # -- the sender thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._queue and not self._stopped:
                    self._lock.wait(POLL_SECONDS)
                if self._stopped:
                    return
                item = self._queue.popleft() if self._queue else None
            if item is not None:
                self._post(*item)
            try:
                self._watch()
            except Exception:
                logger.exception("alerts: the periodic check failed")

    def _watch(self) -> None:
        """Due summaries (ends of dedup windows, webhooks able to send held-back alerts) and
        a new REST ban."""
        now = self._clock.monotonic()
        summaries: list[tuple[Alert, str]] = []
        with self._lock:
            for key, repeats in list(self._repeats.items()):
                if now < repeats.sent_at + self._dedup_window:
                    continue
                del self._repeats[key]
                if repeats.count and repeats.latest is not None:
                    self._repeats[key] = _Repeats(now)
                    summaries.append((repeats.latest,
                                      self._emit(repeats.latest, repeats.count, now)))
            for hook in self._hooks:
                latest = hook.latest_held
                if latest is not None and hook.may_send(now):
                    self._enqueue(hook, self._body(latest, latest.text, 0, hook.held))
                    hook.held, hook.latest_held = 0, None
        for alert, text in summaries:
            self._log(alert, text)
        watch = self._banned_until
        until = watch() if watch is not None else None
        if until is not None and (self._last_ban is None or until > self._last_ban):
            self._last_ban = until
            self.ban_seen(until)

    def _post(self, hook: _Webhook, body: dict[str, Any]) -> None:
        problem: str | None = None
        try:
            # requests passes a urllib3 Timeout through as it is (connect, read and total)
            with requests.post(hook.url, json=body, timeout=cast("Any", self._timeout),
                               stream=True, allow_redirects=False) as answer:
                if not 200 <= answer.status_code < 300:
                    problem = f"answered HTTP {answer.status_code}"
        except requests.RequestException as exc:
            problem = type(exc).__name__  # never its text: it holds the URL
        except Exception as exc:  # noqa: BLE001 (nothing of a webhook may end the sender)
            problem = f"unexpected {type(exc).__name__}"
        now = self._clock.monotonic()
        with self._lock:
            if problem is None:
                self._counts["sent"] += 1
                recovered, hook.failing = hook.failing, False
            else:
                self._counts["failed"] += 1
                first, hook.failing = not hook.failing, True
                hook.rest_until = now + self._rest_after_failure
        if problem is None:
            if recovered:
                logger.info("alerts: %s delivers again", hook.name)
            return
        (logger.warning if first else logger.debug)(
            "alerts: %s failed (%s); its alerts are held back for %g s", hook.name, problem,
            self._rest_after_failure)

    # -- helpers (under the lock) ----------------------------------------------------------

    def _emit(self, alert: Alert, suppressed: int, now: float) -> str:
        """Queue ``alert`` for every webhook that may send now, hold it back for the others;
        return its text (what is logged)."""
        text = alert.text
        if suppressed:
            text += f" (repeated {suppressed} more times in {self._dedup_window:g} s)"
        for hook in self._hooks:
            if hook.may_send(now):
                self._enqueue(hook, self._body(alert, text, suppressed, hook.held))
                hook.held, hook.latest_held = 0, None
            else:
                hook.held += 1
                hook.latest_held = replace(alert, text=text)
                self._counts["held_back"] += 1
        return text

    @staticmethod
    def _log(alert: Alert, text: str) -> None:
        """(Outside the lock.) The alert's log record."""
        (logger.error if alert.error else logger.warning)(
            "ALERT %s", text, extra={"alert_kind": alert.kind.value, "cause": alert.cause})

    def _enqueue(self, hook: _Webhook, body: dict[str, Any]) -> None:
        if len(self._queue) >= self._queue_size:
            self._queue.popleft()
            self._counts["dropped"] += 1
        self._queue.append((hook, body))
        self._lock.notify_all()

    def _body(self, alert: Alert, text: str, suppressed: int, held_back: int
              ) -> dict[str, Any]:
        if held_back:
            text += f" (+{held_back} alerts held back for this webhook)"
        return {
            "text": f"[lifeline {self._system} on {self._host}] {text}",
            "kind": alert.kind.value,
            "level": None if alert.level is None else int(alert.level),
            "old": None if alert.old is None else int(alert.old),
            "new": None if alert.new is None else int(alert.new),
            "cause": alert.cause,
            "reason": alert.reason,
            "at": datetime.fromtimestamp(alert.at, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "host": self._host,
            "system": self._system,
            "suppressed": suppressed,
            "held_back": held_back,
        }

    def _wall(self, monotonic_at: float) -> float:
        return self._clock.time() - max(0.0, self._clock.monotonic() - monotonic_at)

    def _current(self) -> Level | None:
        return None if self._level is None else self._level()

