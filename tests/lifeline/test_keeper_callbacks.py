"""The LevelKeeper's host callbacks run on a delivery thread of their own: a hanging one holds
up neither level detection nor the keeper's effects, sees every change in order once it
returns, costs a bounded queue (oldest dropped, counted) and does not hold up stopping. And
"keep probing with backoff" at Level 3: the keeper's probe pace, reset by any good probe or
level change (all on a fake clock; threads wait on events, never on sleeps)."""

from __future__ import annotations

import threading

import pytest

from actors.messages import FallbackReport, ProbeReport
from actors.routing import Channel
from lifeline.health import ChannelDegraded, ProbeResult
from lifeline.keeper import HOST_CHANGES_QUEUED, HostCallbacks, LevelKeeper
from lifeline.levels import PROBE_BACKOFF_CAP, Level, LevelChange, probe_backoff
from tests.fakes import BlockingCallback, ManualClock
from tests.lifeline.test_levels import RULES

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0
"""Real seconds a test waits for another thread before failing."""

N0, N1, N2, N3 = Level.NORMAL, Level.DEGRADED, Level.FALLBACK, Level.LAST_RESORT


class Effects:
    """The keeper's ``effects``: records each change; ``activated`` once it enters 2 or 3
    (where the system tells the WebSocket fallback to Activate)."""

    def __init__(self) -> None:
        self.changes: list[tuple[Level, Level]] = []
        self.activated = threading.Event()

    def __call__(self, change: LevelChange) -> None:
        self.changes.append((change.old, change.new))
        if change.old <= N1 < change.new:
            self.activated.set()


def test_a_hanging_host_callback_holds_up_neither_the_level_nor_the_activation() -> None:
    """Fails before (callbacks on the keeper's thread): the keeper hangs in the callback of
    0 -> 1, so settle() times out, the level stays 1 and nothing is activated."""
    clock = ManualClock(mono=0.0)
    effects = Effects()
    keeper = LevelKeeper(RULES, clock, effects=effects)
    host = BlockingCallback(hold=WAIT * 4, wait=WAIT)
    keeper.add_host_callback(host)
    keeper.start()
    try:
        keeper.observe(ChannelDegraded(0.5, Channel.WEBSOCKET, True))  # 0 -> 1
        assert host.entered.wait(WAIT)  # the host callback now hangs on 0 -> 1
        for at in (1.0, 2.0, 3.0):  # three failed probes: the router is out
            keeper.observe(ProbeResult(at, False))
        assert keeper.settle(WAIT)
        assert keeper.level is N2
        assert effects.activated.wait(WAIT)
        assert effects.changes == [(N0, N1), (N1, N2)]
        assert host.seen == []  # still hanging
        host.release()
        assert host.wait_for(2) == [(N0, N1), (N1, N2)]  # every change, in order
        assert keeper.host_callbacks.dropped == 0
    finally:
        host.release()
        keeper.stop(WAIT)


def test_the_queue_keeps_the_latest_changes_and_counts_those_it_dropped() -> None:
    callbacks = HostCallbacks(limit=3)
    host = BlockingCallback(hold=WAIT * 4, wait=WAIT)
    callbacks.add(host)
    callbacks.start()
    changes = [LevelChange(Level(n % 2), Level((n + 1) % 2), f"change {n}", float(n))
               for n in range(7)]
    try:
        callbacks.put(changes[0])
        assert host.entered.wait(WAIT)  # taken up by the delivery thread: hangs there
        for change in changes[1:]:
            callbacks.put(change)  # never blocks
        assert callbacks.queued == 3
        assert callbacks.dropped == 3  # changes 1, 2, 3
        host.release()
        seen = host.wait_for(4)
    finally:
        host.release()
        callbacks.stop(WAIT)
    assert seen == [(c.old, c.new) for c in (changes[0], *changes[4:])]
    assert HOST_CHANGES_QUEUED == 256


def test_a_raising_host_callback_is_logged_and_the_next_one_still_gets_the_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    callbacks = HostCallbacks()
    got = BlockingCallback(hold=WAIT * 4, wait=WAIT)
    got.release()

    def broken(change: LevelChange) -> None:
        raise RuntimeError("the host's bug")

    callbacks.add(broken)
    callbacks.add(got)
    callbacks.start()
    try:
        callbacks.put(LevelChange(N0, N2, "out", 1.0))
        assert got.wait_for(1) == [(N0, N2)]
    finally:
        callbacks.stop(WAIT)
    assert any("level-change callback failed" in r.message for r in caplog.records)


def test_stopping_the_keeper_leaves_a_hung_host_callback_behind_instead_of_waiting() -> None:
    keeper = LevelKeeper(RULES, ManualClock(mono=0.0))
    host = BlockingCallback(hold=WAIT * 4, wait=WAIT)
    keeper.add_host_callback(host)
    keeper.start()
    thread = next(t for t in threading.enumerate() if t.name == "lifeline-keeper-callbacks")
    try:
        keeper.observe(ChannelDegraded(0.5, Channel.WEBSOCKET, True))
        assert host.entered.wait(WAIT)
        keeper.stop(0.05)  # returns although the callback still hangs
        assert thread.is_alive()
        assert thread.daemon
    finally:
        host.release()
        thread.join(WAIT)
    assert not thread.is_alive()  # once the callback returns, the thread ends: stopped


def test_system_callbacks_stay_on_the_keepers_thread_before_the_host_ones() -> None:
    keeper = LevelKeeper(RULES, ManualClock(mono=0.0))
    threads: dict[str, str] = {}
    done = threading.Event()

    def own(change: LevelChange) -> None:
        threads["own"] = threading.current_thread().name

    def hosts(change: LevelChange) -> None:
        threads["host"] = threading.current_thread().name
        done.set()

    keeper.add_callback(own)
    keeper.add_host_callback(hosts)
    keeper.start()
    try:
        keeper.observe(ChannelDegraded(0.5, Channel.WEBSOCKET, True))
        assert done.wait(WAIT)
    finally:
        keeper.stop(WAIT)
    assert threads == {"own": "lifeline-keeper", "host": "lifeline-keeper-callbacks"}


# -- probing with backoff at Level 3 ----------------------------------------------------------


def _report(at: float, *, router_ok: bool = False, rest_ok: bool | None = False) -> ProbeReport:
    return ProbeReport(at=at, router_ok=router_ok, router_error=None if router_ok else "down",
                       probe_error=None, latency=None, consecutive_failures=0,
                       since_last_success=at, last_success_at=None,
                       fallbacks=FallbackReport(rest_ok=rest_ok), rss_mb=None,
                       cpu_percent=None, headroom=())


def test_probe_backoff_doubles_only_at_level_3_up_to_its_cap() -> None:
    assert PROBE_BACKOFF_CAP == 4.0
    assert [probe_backoff(N3, quiet) for quiet in range(5)] == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert probe_backoff(N3, 10_000) == 4.0
    for level in (N0, N1, N2):
        assert probe_backoff(level, 5) == 1.0
    assert probe_backoff(N3, 3, cap=2.0) == 2.0


def test_the_keeper_paces_the_probe_at_level_3_and_any_good_news_or_change_resets_it() -> None:
    """Fails before: the keeper has no probe pace (the probe ran at one interval everywhere)."""
    keeper = LevelKeeper(RULES, ManualClock(mono=0.0))
    keeper.start()
    paces: list[float] = []

    def send(report: ProbeReport) -> None:
        keeper.report(report)
        assert keeper.settle(WAIT)
        paces.append(keeper.probe_pace())

    try:
        for at in (1.0, 2.0, 3.0):  # router and REST fail: 3 at 3 s
            send(_report(at))
        assert keeper.level is N3
        for at in (4.0, 5.0, 6.0):  # nothing answers at 3: 2, 4, 4
            send(_report(at))
        send(_report(7.0, rest_ok=None))  # REST not judged: still nothing good
        send(_report(8.0, rest_ok=True))  # one good REST check: reset (still 3: hysteresis)
        assert keeper.level is N3
        send(_report(9.0))
        send(_report(10.0, router_ok=True))  # a good router probe: reset
        send(_report(11.0))
        send(_report(12.0, rest_ok=True))
        send(_report(13.0, rest_ok=True))  # 2 good checks in a row: 3 -> 2, pace 1
        assert keeper.level is N2
        send(_report(14.0))  # at 2 nothing backs off
    finally:
        keeper.stop(WAIT)
    assert paces == [1.0, 1.0, 1.0,  # reaching 3 (the entering report does not count)
                     2.0, 4.0, 4.0, 4.0,
                     1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 1.0]
