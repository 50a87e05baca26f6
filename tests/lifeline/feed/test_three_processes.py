"""Three host processes in ``feed.mode: shared`` on one simulator and one real Redis:
exactly one leads, all three get trades, the simulator sees one WebSocket connection;
SIGKILL the leader → a follower leads within ``leader_ttl`` + one probe interval (plus
scheduling slack), and the trades a remaining follower's subscription delivered across the
takeover are the simulator's own log: none missing, none twice; Redis stopped → the hosts
go on from their own trees (role ``local``, trades still delivered); Redis started → one
leader again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.lifeline.system_support import until as poll_until
from tests.redis_support import RedisServer
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(150)

REPO = Path(__file__).resolve().parents[3]
BTC = "KRW-BTC"
TTL = 0.9
PROBE = TTL / 3
"""A contender's acquire interval (the lease's probe)."""
SLACK = 1.5
"""Real seconds a takeover may overrun ``TTL + PROBE`` (three processes on 2 shared cores)."""
WAIT = 40.0


def until(predicate: Callable[[], bool], timeout: float = WAIT, step: float = 0.02) -> bool:
    """``system_support.until`` with this module's default wait."""
    return poll_until(predicate, timeout, step)


class Host:
    """One ``tests.lifeline.feed.shared_host`` process and what it printed."""

    def __init__(self, sim: Simulator, url: str, log: Path) -> None:
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.lifeline.feed.shared_host", sim.base_url,
             sim.ws_url, url, "tp", str(TTL)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, cwd=REPO,
            text=True)
        self.trades: list[tuple[int, str]] = []
        self.role: str | None = None
        self.leader: str | None = None
        self.host: str | None = None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,),
                                        daemon=True)
        self._reader.start()

    def _read(self, out: IO[str] | None) -> None:
        assert out is not None
        for line in out:
            event: dict[str, Any] = json.loads(line)
            if "trade" in event:
                self.trades.append((int(event["trade"]), str(event["source"])))
            else:
                self.role, self.leader, self.host = (event["role"], event["leader"],
                                                     event["host"])

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        self._log.close()


class Trader:
    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sim.engine.step_market(BTC, 1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def hosts(sim: Simulator, redis_server: RedisServer, tmp_path: Path) -> Iterator[list[Host]]:
    made = [Host(sim, redis_server.url, tmp_path / f"host{n}.log") for n in range(3)]
    try:
        yield made
    finally:
        for host in made:
            host.stop()


def leaders(hosts: list[Host]) -> list[Host]:
    return [h for h in hosts if h.role == "leader" and h.proc.poll() is None]


def test_three_host_processes_one_leader_one_websocket_and_a_clean_takeover(
        sim: Simulator, hosts: list[Host], redis_server: RedisServer) -> None:
    trader = Trader(sim)
    try:
        assert until(lambda: len(leaders(hosts)) == 1 and all(
            h.role in ("leader", "follower") for h in hosts)), [h.role for h in hosts]
        assert until(lambda: all(len(h.trades) >= 5 for h in hosts)), [
            len(h.trades) for h in hosts]
        (leader,) = leaders(hosts)
        assert all(h.leader == leader.host for h in hosts)
        assert until(lambda: sim.ws.stats().connections == 1), sim.ws.stats()
        followers = [h for h in hosts if h is not leader]
        assert all(all(s.startswith("shared/") for _, s in h.trades) for h in followers)

        leader.kill()
        killed = time.monotonic()
        assert until(lambda: len(leaders(followers)) == 1, timeout=TTL + PROBE + SLACK + 5)
        took = time.monotonic() - killed
        assert took <= TTL + PROBE + SLACK, f"the takeover took {took:.2f} s"
        (new,) = leaders(followers)
        (watcher,) = [h for h in followers if h is not new]
        print(f"takeover {took:.2f} s; trades before: {len(watcher.trades)}")
        seen = len(watcher.trades)
        assert until(lambda: len(watcher.trades) >= seen + 20)
    finally:
        trader.stop()
    last = sim.engine.trades(BTC)[-1].sequential_id
    assert until(lambda: any(sid == last for sid, _ in watcher.trades)), "last trade never came"
    sids = [sid for sid, _ in watcher.trades]
    assert len(sids) == len(set(sids)), "a trade delivered twice"
    first = sids[0]
    log = [t.sequential_id for t in sim.engine.trades(BTC) if first <= t.sequential_id <= last]
    missing = sorted(set(log) - set(sids))
    assert not missing, f"missing across the takeover: {missing} ({len(log)} traded)"
    assert sids == sorted(sids)
    sources = sorted({s for _, s in watcher.trades})
    print(f"{len(sids)} trades, first {first}, last {last}, sources {sources}")
    assert until(lambda: sim.ws.stats().connections == 1), sim.ws.stats()

    # Redis stopped: the two hosts left serve from their own trees; back: one leads again
    alive = [new, watcher]
    trader = Trader(sim)
    try:
        redis_server.stop()
        assert until(lambda: all(h.role == "local" for h in alive)), [h.role for h in alive]
        counts = [len(h.trades) for h in alive]
        assert until(lambda: all(len(h.trades) >= n + 5 for h, n in zip(alive, counts,
                                                                            strict=True)))
        assert any(not s.startswith("shared/") for _, s in watcher.trades[counts[1]:])
        redis_server.start()
        assert until(lambda: len(leaders(alive)) == 1 and all(
            h.role in ("leader", "follower") for h in alive)), [h.role for h in alive]
    finally:
        trader.stop()
