"""Alerts (issue 10 item 6) and log escalation (item 7): a local HTTP server is the webhook
receiver; de-duplication, rate limits and the debug window run on a ManualClock."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pykka
import pytest

from lifeline import LifelineConfig, MarketDataSystem
from lifeline.alerts import STOP_WAIT, Alerter, AlertKind, InvalidWebhook, parse_webhooks
from lifeline.escalation import ESCALATED_LOGGERS, LogEscalation
from lifeline.levels import Cause, Level, LevelChange
from supervisors import Escalated, EscalationTarget, ExitKind, ExitReason
from tests.fakes import ManualClock, RecordingServer, serving
from tests.lifeline.system_support import Levels
from tests.lifeline.test_system import config_for
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)

SECRET = "T000SECRET/B000SECRET/xoxb-secret-token"
WAIT = 5.0
"""Real seconds a test waits for something that should come at once."""


class Receiver(RecordingServer):
    """A webhook: records every POSTed JSON body, answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.RequestHandlerClass = _WebhookHandler
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.arrived = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/{SECRET}"

    def wait_for(self, count: int, timeout: float = WAIT) -> list[dict[str, Any]]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.bodies) >= count, timeout):
                raise AssertionError(f"expected {count} alerts, got {self.bodies}")
            return list(self.bodies)


class _WebhookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.arrived:
            self.server.bodies.append(body)
            self.server.arrived.notify_all()
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def receiving(status: int = 200) -> Iterator[Receiver]:
    """A running :class:`Receiver` answering ``status``."""
    receiver = Receiver(status)
    with serving(receiver):
        yield receiver


@contextmanager
def hanging_webhook() -> Iterator[str]:
    """A URL whose server accepts connections and never answers (closed at the end)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, name="hanging-webhook", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hang/{SECRET}"
    finally:
        done.set()
        thread.join(WAIT)
        for connection in held:
            connection.close()
        listener.close()


@contextmanager
def running(alerter: Alerter, banned_until: Callable[[], float | None] | None = None
            ) -> Iterator[Alerter]:
    alerter.start(banned_until)
    try:
        yield alerter
    finally:
        alerter.stop()


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll ``condition`` (no event to wait on: the sender thread's counts) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def change(old: Level, new: Level, clock: ManualClock, cause: Cause = Cause.PROBE_FAILURES,
           reason: str = "3 failed probes in a row") -> LevelChange:
    return LevelChange(old, new, reason, clock.monotonic(), cause)


def alerter_for(clock: ManualClock, *urls: str, **options: Any) -> Alerter:
    return Alerter(clock, urls, host="test-host", system="sys-1", **options)


def test_a_level_change_reaches_the_webhook_as_slack_json_with_structured_fields() -> None:
    clock = ManualClock()
    with receiving() as hook, running(alerter_for(clock, hook.url)) as alerter:
        alerter.level_changed(change(Level.NORMAL, Level.FALLBACK, clock))
        [body] = hook.wait_for(1)
    assert body["text"] == ("[lifeline sys-1 on test-host] level 0 -> 2 (fallback): "
                            "3 failed probes in a row")
    assert {k: v for k, v in body.items() if k != "text"} == {
        "kind": "level_change", "level": 2, "old": 0, "new": 2, "cause": "probe_failures",
        "reason": "3 failed probes in a row", "at": "2026-03-11T12:00:00.000Z",
        "host": "test-host", "system": "sys-1", "suppressed": 0, "held_back": 0}


def test_a_supervisor_giving_up_and_a_new_rest_ban_are_alerts() -> None:
    clock = ManualClock()
    ban: list[float | None] = [None]
    with receiving() as hook, \
            running(alerter_for(clock, hook.url, level=lambda: Level.LAST_RESORT),
                    banned_until=lambda: ban[0]) as alerter:
        alerter.supervision_event(Escalated("root", EscalationTarget.HOST,
                                            ExitReason(ExitKind.CRASHED), clock.monotonic()))
        first = hook.wait_for(1)[0]
        ban[0] = clock.monotonic() + 60
        second = hook.wait_for(2)[1]
    assert (first["kind"], first["cause"], first["level"]) == ("escalation", "root", 3)
    assert "supervisor root gave up: crashed" in first["text"]
    assert (second["kind"], second["cause"]) == ("ban", "http_418")
    assert "HTTP 418" in second["text"] and "60 s" in second["text"]


def test_failing_and_hanging_webhooks_neither_raise_nor_hold_up_the_good_one() -> None:
    clock = ManualClock()
    timeout, total = 0.4, 0.6
    with hanging_webhook() as hang, receiving(500) as failing, \
            receiving() as good, \
            running(alerter_for(clock, hang, failing.url, good.url, timeout=timeout,
                                total=total)) as alerter:
        began = time.monotonic()
        alerter.level_changed(change(Level.NORMAL, Level.FALLBACK, clock))
        returned = time.monotonic() - began
        good.wait_for(1, timeout=total + 2.0)
        first = time.monotonic() - began
        wait_until(lambda: alerter.stats().failed == 2)
        began = time.monotonic()
        alerter.level_changed(change(Level.FALLBACK, Level.LAST_RESORT, clock,
                                     Cause.FALLBACKS_FAILED, "REST fallback failing"))
        good.wait_for(2)
        second = time.monotonic() - began
        wait_until(lambda: alerter.stats().sent == 2)
        stats = alerter.stats()
    assert returned < 0.05  # the caller (the keeper's thread) only queues
    assert first < total + 1.0  # behind the hanging one: at most its total bound
    assert second < timeout  # the failed webhooks rest: nothing in front of the good one
    assert (stats.sent, stats.failed, stats.held_back) == (2, 2, 2)


def test_stop_is_not_held_up_by_a_post_to_a_hanging_webhook() -> None:
    clock = ManualClock()
    with hanging_webhook() as hang:
        alerter = alerter_for(clock, hang, timeout=3.0, total=5.0)
        alerter.start()
        alerter.level_changed(change(Level.NORMAL, Level.FALLBACK, clock))
        wait_until(lambda: alerter.stats().raised == 1)
        began = time.monotonic()
        alerter.stop()
        assert time.monotonic() - began < STOP_WAIT + 0.5


def test_a_repeated_alert_is_sent_once_per_window_then_with_the_count_of_repeats() -> None:
    clock = ManualClock()
    with receiving() as hook, \
            running(alerter_for(clock, hook.url, dedup_window=60.0, burst=100)) as alerter:
        for _ in range(5):
            alerter.level_changed(change(Level.NORMAL, Level.FALLBACK, clock))
            clock.advance(10)
        alerter.level_changed(change(Level.NORMAL, Level.DEGRADED, clock,
                                     Cause.ROUTER_RESTARTED, "restarted"))
        first, other = hook.wait_for(2)  # FIFO: nothing else was queued before `other`
        assert (first["new"], first["suppressed"], other["new"]) == (2, 0, 1)
        assert alerter.stats().suppressed == 4
        clock.advance(10)  # 60 s after the first: its window ends, the repeats are summed up
        summary = hook.wait_for(3)[2]
        assert (summary["new"], summary["suppressed"]) == (2, 4)
        assert "repeated 4 more times in 60 s" in summary["text"]
        alerter.level_changed(change(Level.NORMAL, Level.FALLBACK, clock))  # a new window
        assert alerter.stats().suppressed == 5
        clock.advance(60)
        hook.wait_for(4)
        alerter.level_changed(change(Level.NORMAL, Level.DEGRADED, clock,
                                     Cause.ROUTER_RESTARTED, "restarted"))
        last = hook.wait_for(5)
        assert [(b["new"], b["suppressed"]) for b in last[3:]] == [(2, 1), (1, 0)]
        assert alerter.stats().raised == 8


def test_a_webhook_sends_at_most_its_burst_and_then_one_summary_per_token() -> None:
    clock = ManualClock()
    causes = list(Cause)
    with receiving() as hook, \
            running(alerter_for(clock, hook.url, burst=6, per_seconds=60.0)) as alerter:
        for cause in causes[:10]:
            alerter.level_changed(change(Level.NORMAL, Level.FALLBACK, clock, cause))
        sent = hook.wait_for(6)
        stats = alerter.stats()
        assert (stats.raised, stats.suppressed, stats.held_back) == (10, 0, 4)
        assert [b["cause"] for b in sent] == [c.value for c in causes[:6]]
        clock.advance(9)
        alerter.level_changed(change(Level.NORMAL, Level.FALLBACK, clock, causes[10]))
        assert alerter.stats().held_back == 5
        clock.advance(1)  # one token back (6 per 60 s): the latest held back goes out
        summary = hook.wait_for(7)[6]
        assert (summary["cause"], summary["held_back"]) == (causes[10].value, 5)
        assert "(+5 alerts held back for this webhook)" in summary["text"]
        wait_until(lambda: alerter.stats().sent == 7)


def test_the_queue_drops_its_oldest_posts_when_full() -> None:
    clock = ManualClock()
    causes = list(Cause)
    with receiving() as hook:
        alerter = alerter_for(clock, hook.url, queue_size=2, burst=100)
        for cause in causes[:5]:  # not started yet: nothing leaves the queue
            alerter.level_changed(change(Level.NORMAL, Level.FALLBACK, clock, cause))
        assert alerter.stats().dropped == 3
        with running(alerter):
            bodies = hook.wait_for(2)
    assert [b["cause"] for b in bodies] == [c.value for c in causes[3:5]]


def test_webhook_urls_never_reach_the_log_a_repr_or_an_error(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3's DEBUG records name the path they POST to
    clock = ManualClock()
    with hanging_webhook() as hang, receiving(500) as failing, \
            receiving() as good, \
            running(alerter_for(clock, good.url, failing.url, hang, timeout=0.2,
                                total=0.3)) as alerter:
        alerter.level_changed(change(Level.NORMAL, Level.FALLBACK, clock))
        good.wait_for(1)
        failing.wait_for(1)
        wait_until(lambda: alerter.stats().failed == 2)
        shown = repr(alerter)
    assert alerter.stats().failed == 2
    with pytest.raises(InvalidWebhook) as bad:
        parse_webhooks(f"{good.url}, ftp://hooks.example/{SECRET}")
    assert bad.value.position == 2
    assert "webhook #2" in caplog.text and "webhook #3" in caplog.text
    for text in (caplog.text, shown, str(bad.value)):
        assert "SECRET" not in text and "secret" not in text


@pytest.mark.parametrize("value, problem", [
    ("https://hooks.example/a,file:///etc/passwd", "webhook #2 in LIFELINE_ALERT_WEBHOOKS: "
     "the scheme must be http or https"),
    ("https:///no-host", "webhook #1 in LIFELINE_ALERT_WEBHOOKS: no host"),
])
def test_a_bad_webhook_is_named_by_its_position(value: str, problem: str) -> None:
    with pytest.raises(InvalidWebhook, match=problem):
        Alerter.from_environment(ManualClock(), {"LIFELINE_ALERT_WEBHOOKS": value})


def test_without_webhooks_alerts_go_to_the_log_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lifeline.alerts")
    clock = ManualClock()
    alerter = Alerter.from_environment(clock, {"LIFELINE_ALERT_WEBHOOKS": " , "},
                                       host="h", system="s")
    assert alerter.webhooks == 0
    alerter.level_changed(change(Level.FALLBACK, Level.LAST_RESORT, clock,
                                 Cause.FALLBACKS_FAILED, "REST fallback failing"))
    alerter.level_changed(change(Level.LAST_RESORT, Level.NORMAL, clock,
                                 Cause.ROUTER_TRUSTED, "router trusted again"))
    records = [(r.levelname, r.getMessage()) for r in caplog.records
               if r.name == "lifeline.alerts"]
    assert records == [
        ("ERROR", "ALERT level 2 -> 3 (last_resort): REST fallback failing"),
        ("WARNING", "ALERT level 3 -> 0 (normal): router trusted again"),
    ]
    kinds = {r.__dict__["alert_kind"] for r in caplog.records if r.name == "lifeline.alerts"}
    assert kinds == {AlertKind.LEVEL_CHANGE.value}


# -- log escalation ------------------------------------------------------------------------


class Timers:
    """``schedule(at, action)`` as the keeper's ``call_at``; ``run_due`` fires what is due."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.pending: list[tuple[float, Callable[[], None]]] = []

    def schedule(self, at: float, action: Callable[[], None]) -> None:
        self.pending.append((at, action))

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        now = self.clock.monotonic()
        due = [item for item in self.pending if item[0] <= now]
        self.pending = [item for item in self.pending if item[0] > now]
        for _, action in due:
            action()


@pytest.fixture
def logger_levels() -> Iterator[dict[str, int]]:
    """The escalated loggers set to known levels (WARNING, NOTSET, NOTSET), put back after."""
    before = {name: logging.getLogger(name).level for name in ESCALATED_LOGGERS}
    chosen = {"lifeline": logging.NOTSET, "actors": logging.NOTSET, "quotation": logging.WARNING}
    for name, level in chosen.items():
        logging.getLogger(name).setLevel(level)
    yield chosen
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def levels() -> dict[str, int]:
    return {name: logging.getLogger(name).level for name in ESCALATED_LOGGERS}


def test_entering_level_2_raises_the_loggers_to_debug_for_the_window_then_restores_them(
        logger_levels: dict[str, int]) -> None:
    clock = ManualClock()
    timers = Timers(clock)
    escalation = LogEscalation(clock, schedule=timers.schedule, window=300.0)
    escalation.level_changed(change(Level.NORMAL, Level.DEGRADED, clock))
    assert levels() == logger_levels  # level 1 is no reason
    escalation.level_changed(change(Level.DEGRADED, Level.FALLBACK, clock))
    assert levels() == dict.fromkeys(ESCALATED_LOGGERS, logging.DEBUG)
    timers.advance(299.9)
    assert levels() == dict.fromkeys(ESCALATED_LOGGERS, logging.DEBUG)
    timers.advance(0.1)
    assert levels() == logger_levels  # exactly as before, NOTSET included
    assert escalation.active_until is None


def test_a_second_escalation_inside_the_window_extends_it(
        logger_levels: dict[str, int]) -> None:
    clock = ManualClock()
    timers = Timers(clock)
    escalation = LogEscalation(clock, schedule=timers.schedule, window=300.0)
    escalation.level_changed(change(Level.NORMAL, Level.FALLBACK, clock))
    timers.advance(200)
    escalation.level_changed(change(Level.FALLBACK, Level.LAST_RESORT, clock))
    assert escalation.active_until == clock.monotonic() + 300.0
    timers.advance(100)  # the first window's end: extended, still DEBUG
    assert levels() == dict.fromkeys(ESCALATED_LOGGERS, logging.DEBUG)
    timers.advance(199.9)
    assert levels() == dict.fromkeys(ESCALATED_LOGGERS, logging.DEBUG)
    timers.advance(0.1)
    assert levels() == logger_levels


def test_restore_ends_the_escalation_at_once_and_keeps_a_level_chosen_meanwhile(
        logger_levels: dict[str, int]) -> None:
    clock = ManualClock()
    timers = Timers(clock)
    escalation = LogEscalation(clock, schedule=timers.schedule, window=300.0)
    escalation.level_changed(change(Level.NORMAL, Level.LAST_RESORT, clock))
    logging.getLogger("actors").setLevel(logging.ERROR)  # an operator's choice in the window
    escalation.restore()
    assert levels() == {**logger_levels, "actors": logging.ERROR}
    timers.advance(300)  # the timer finds nothing to do
    assert levels() == {**logger_levels, "actors": logging.ERROR}


# -- wired into the system -----------------------------------------------------------------


def test_a_bad_webhook_in_the_environment_fails_the_system_at_construction(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFELINE_ALERT_WEBHOOKS", f"ftp://hooks.example/{SECRET}")
    with pytest.raises(InvalidWebhook) as bad:
        MarketDataSystem(LifelineConfig())
    assert "webhook #1" in str(bad.value) and "SECRET" not in str(bad.value)


@pytest.mark.timeout(60)
def test_a_system_going_to_level_2_alerts_the_webhook_and_logs_at_debug_until_it_stops(
        monkeypatch: pytest.MonkeyPatch, sim_factory: Callable[..., Simulator],
        logger_levels: dict[str, int]) -> None:
    sim = sim_factory(seed=1, rate_limit=None)
    with receiving() as hook:
        monkeypatch.setenv("LIFELINE_ALERT_WEBHOOKS", hook.url)
        system = MarketDataSystem.from_config(config_for(sim))
        seen = Levels(system)
        system.start()
        try:
            system.faults.inject("smart_router", "crash", point="request")
            assert seen.wait_delivered(Level.FALLBACK)  # the escalation callback ran first
            assert levels() == dict.fromkeys(ESCALATED_LOGGERS, logging.DEBUG)
            with hook.arrived:
                assert hook.arrived.wait_for(
                    lambda: any(b["new"] == 2 for b in hook.bodies), WAIT)
        finally:
            system.faults.clear_all()
            system.stop()
            pykka.ActorRegistry.stop_all(timeout=WAIT)
    entered = next(b for b in hook.bodies if b["new"] == 2)
    assert entered["kind"] == "level_change" and entered["level"] == 2
    assert levels() == logger_levels  # stop() ends the escalation
    assert system.alert_stats().raised >= 1
