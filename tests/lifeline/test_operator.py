"""``lifeline run`` and ``lifeline status`` as subprocesses against the simulator (issue 10):
``/metrics`` and ``/status`` scraped over real HTTP before, during and after a backbone
outage (REST black-holed, WebSocket refused: Level 2 without host reads), then SIGTERM
and an orderly exit 0 within ``operator.shutdown_timeout``."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lifeline.checklist import ITEMS
from lifeline.metrics import METRIC_NAMES
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parent.parent.parent
SHUTDOWN = 10.0
WAIT = 30.0
"""Real seconds to wait for a level, the process's start, its exit (2 shared cores)."""


SECRET = "s3cret-Op"


def _config(sim: Simulator) -> dict[str, Any]:
    """Shortened timings against ``sim`` (as :func:`system_support.matrix_config`)."""
    return {
        "upbit": {
            # credentials in the URL (a proxy's, say): never in the log or /status
            "rest": {"base_url": sim.base_url.replace("://", f"://lifeline:{SECRET}@", 1),
                     "connect_timeout": 0.5, "read_timeout": 0.5,
                     "total_timeout": 1.0, "call_deadline": 1.2},
            "websocket": {"url": sim.ws_url, "connect_timeout": 1.0,
                          "backoff": {"initial": 0.05, "multiplier": 2.0, "cap": 0.2,
                                      "jitter": "none"},
                          "liveness": {"ping_interval": 0.5, "pong_timeout": 0.5,
                                       "idle_timeout": 1.5}},
        },
        "fallback": {"probe_interval": 0.2, "failure_threshold": 3, "no_success_timeout": 3.0,
                     "recovery_interval": 0.6, "recovery_successes": 2,
                     "router_timeout": 0.2, "request_deadline": 1.5, "max_stale_age": 30.0},
        "supervision": {"router": {"intensity": 5, "period": 1.5}},
        "operator": {"listen": "127.0.0.1:0", "shutdown_timeout": SHUTDOWN},
    }


def _lifeline(*args: str) -> list[str]:
    return [sys.executable, "-m", "lifeline.cli", *args]


class Running:
    """A ``lifeline run`` subprocess; its stdout lines are read by a thread into a queue."""

    def __init__(self, config: Path, log: Path) -> None:
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            _lifeline("run", "--config", str(config)), cwd=REPO, stdout=subprocess.PIPE,
            stderr=self._log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def url(self) -> str:
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, "lifeline run exited before serving"
                continue
            found = re.match(r"lifeline run: serving (http://\S+)$", line)
            if found:
                return found.group(1)
        raise AssertionError("lifeline run printed no address")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # only the process this test started, by its handle
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def running(sim_factory: Callable[..., Simulator], tmp_path: Path
            ) -> Iterator[tuple[Running, Simulator, Path]]:
    sim = sim_factory(seed=1, auto_trade=False, rate_limit=None)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_config(sim)), encoding="utf-8")
    run = Running(config, tmp_path / "run.log")
    try:
        yield run, sim, tmp_path / "run.log"
    finally:
        sim.faults.black_hole(False, path_prefix="/v1/")
        sim.ws.set_accepting(True)
        run.kill()


def _get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.headers.get("Content-Type", ""), answer.read().decode()


def _status(base: str) -> dict[str, Any]:
    kind, body = _get(f"{base}/status")
    assert kind == "application/json"
    data: dict[str, Any] = json.loads(body)
    return data


def _level_metric(base: str) -> float:
    _, text = _get(f"{base}/metrics")
    found = re.search(r"^lifeline_level (\S+)$", text, re.M)
    assert found, text
    return float(found.group(1))


def _wait_level(base: str, level: int) -> dict[str, Any]:
    end = time.monotonic() + WAIT
    data = _status(base)
    while data["level"] != level and time.monotonic() < end:
        time.sleep(0.2)  # polling another process's state over HTTP: nothing to wait on
        data = _status(base)
    assert data["level"] == level, data
    return data


def _wait_checklist(base: str) -> dict[str, Any]:
    """``/status`` once the checklist's first refresh (its own thread) is in."""
    end = time.monotonic() + WAIT
    data = _status(base)
    while not data["checklist"]["items"] and time.monotonic() < end:
        time.sleep(0.2)  # polling another process's state over HTTP: nothing to wait on
        data = _status(base)
    assert data["checklist"]["items"], data
    return data


def test_run_serves_metrics_and_status_through_a_backbone_outage_and_exits_0_on_sigterm(
    running: tuple[Running, Simulator, Path]
) -> None:
    run, sim, log = running
    base = run.url()

    data = _wait_level(base, 0)
    assert data["running"] is True and data["mode"] == "local"
    assert set(data["children"]) == {"router_sup", "fallback_sup", "health_probe"}
    kind, text = _get(f"{base}/metrics")
    assert kind.startswith("text/plain")
    for name in METRIC_NAMES:
        assert re.search(rf"^# TYPE {name} ", text, re.M), name
    assert _level_metric(base) == 0
    assert re.search(r'^lifeline_ws_frames_total\{client="smart_router"\} ', text, re.M), text

    data = _wait_checklist(base)
    assert set(data["checklist"]["items"]) == set(ITEMS)
    assert data["self_check"]["daily_at"] == "00:00 KST" and data["self_check"]["last"] is None
    status = subprocess.run(_lifeline("status", "--url", base), capture_output=True, timeout=30,
                            check=False, cwd=REPO)
    assert status.returncode == 0, status.stderr
    shown = status.stdout.decode()
    assert shown.startswith("level 0 (normal)"), status.stdout
    assert "checklist (checked " in shown
    for name in ITEMS:
        assert re.search(rf"^  \[(ok|WARN|FAIL)\]\s* {name} +\S", shown, re.M), (name, shown)
    sim_host = f"127.0.0.1:{sim.port}"
    assert re.search(rf"\[ok\]\s* hosts +REST {sim_host} \d+ ms; WebSocket {sim_host} ", shown)
    assert re.search(r"\[ok\]\s* core_symbols +KRW-BTC \d", shown), shown
    assert "daily self-check: at 00:00 KST, next " in shown and "last run: none yet" in shown

    sim.faults.black_hole(path_prefix="/v1/")
    sim.ws.set_accepting(False)
    sim.ws.drop_all()
    # the router fails its probes (Level 2); the REST fallback, idle or read by the
    # checklist, is judged by a real call of the probe's when it had no recent request, and
    # fails too: Level 3 after three failing checks
    data = _wait_level(base, 3)
    assert data["changes"][-1]["new"] == 3
    assert _level_metric(base) == 3
    _, text = _get(f"{base}/metrics")
    assert re.search(r'^lifeline_level_changes_total\{from="\d",to="3"\} 1\.0$', text, re.M)
    assert re.search(r"^lifeline_fallback_activations_total 1\.0$", text, re.M), text
    status = subprocess.run(_lifeline("status", "--url", base), capture_output=True, timeout=30,
                            check=False, cwd=REPO)
    assert status.returncode == 0 and status.stdout.decode().startswith("level 3"), status

    sim.faults.black_hole(False, path_prefix="/v1/")
    sim.ws.set_accepting(True)
    _wait_level(base, 0)
    assert _level_metric(base) == 0

    began = time.monotonic()
    run.process.send_signal(signal.SIGTERM)
    code = run.process.wait(SHUTDOWN + 5)
    took = time.monotonic() - began
    assert code == 0, log.read_text()
    assert took <= SHUTDOWN + 2, took  # the bound, plus the interpreter's own exit
    text = log.read_text()
    assert "SIGTERM: shutting down" in text and "HTTP server stopped" in text
    assert "starting the market data system (REST http://***@127.0.0.1:" in text
    assert SECRET not in text and SECRET not in shown
    assert text.index("HTTP server stopped") < text.index("market data system stopped")


def test_status_of_nothing_listening_exits_1_with_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    done = subprocess.run(_lifeline("status", "--url", f"127.0.0.1:{port}"),
                          capture_output=True, timeout=30, check=False, cwd=REPO)
    assert done.returncode == 1
    assert done.stdout == b""
    assert len(done.stderr.decode().strip().splitlines()) == 1, done.stderr
