"""Starting and stopping the simulator: ports, threads, connections, the foreground CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest
import requests
import websocket

from upbit_sim import MarketEvent, Simulator

pytestmark = pytest.mark.timeout(30)


def ticker_status(base_url: str) -> int:
    response = requests.get(f"{base_url}/ticker", params={"markets": "KRW-BTC"}, timeout=10)
    return response.status_code


def simulator_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("simulator:")]


def test_start_returns_once_the_server_answers(sim_factory: Callable[..., Simulator]) -> None:
    sim = sim_factory(seed=1)
    assert ticker_status(sim.base_url) == 200


def test_urls_name_the_bound_port_on_loopback(sim_factory: Callable[..., Simulator]) -> None:
    one, two = sim_factory(seed=1), sim_factory(seed=1)
    assert one.port != two.port
    assert one.base_url == f"http://127.0.0.1:{one.port}/v1"
    assert one.ws_url == f"ws://127.0.0.1:{one.port}/websocket/v1"
    assert one.control_url == f"http://127.0.0.1:{one.port}/_sim"


def test_an_explicit_port_is_used(sim_factory: Callable[..., Simulator]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sim = sim_factory(seed=1, port=port)
    assert sim.port == port
    assert ticker_status(sim.base_url) == 200


def test_a_busy_port_fails_start_with_a_clear_error(sim_factory: Callable[..., Simulator]) -> None:
    taken = sim_factory(seed=1)
    before = simulator_threads()
    clash = Simulator(seed=2, port=taken.port)
    with pytest.raises(RuntimeError, match="failed to start"):
        clash.start()
    clash.stop()
    assert simulator_threads() == before
    assert ticker_status(taken.base_url) == 200


def test_port_is_unknown_before_start() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = Simulator(seed=1).port


def test_stop_is_idempotent_and_safe_before_start() -> None:
    never_started = Simulator(seed=1)
    never_started.stop()
    before = simulator_threads()
    sim = Simulator(seed=1)
    sim.start()
    sim.stop()
    sim.stop()
    assert simulator_threads() == before


def test_a_simulator_starts_only_once() -> None:
    with Simulator(seed=1) as sim, pytest.raises(RuntimeError, match="already started"):
        sim.start()


def test_context_manager_stops_and_refuses_connections_after() -> None:
    before = simulator_threads()
    with Simulator(seed=1) as sim:
        base_url = sim.base_url
        assert ticker_status(base_url) == 200
    assert simulator_threads() == before
    with pytest.raises(requests.exceptions.ConnectionError):
        ticker_status(base_url)


def test_stop_closes_keep_alive_connections() -> None:
    sim = Simulator(seed=1)
    sim.start()
    session = requests.Session()
    assert session.get(f"{sim.base_url}/market/all", timeout=10).status_code == 200
    sim.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{sim.base_url}/market/all", timeout=10)
    session.close()


def test_stop_closes_open_websockets() -> None:
    before = simulator_threads()
    sim = Simulator(seed=1)
    sim.start()
    client = websocket.create_connection(sim.ws_url, timeout=10, suppress_origin=True)
    try:
        sim.stop()
        with pytest.raises(
            (websocket.WebSocketConnectionClosedException, ConnectionError, OSError)
        ):
            for _ in range(10):  # a close frame may come first; then the socket is gone
                opcode, _data = client.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    client.recv()
    finally:
        client.close()
    assert simulator_threads() == before


def test_auto_trade_keeps_the_market_moving(sim_factory: Callable[..., Simulator]) -> None:
    sim = sim_factory(seed=1, auto_trade=True, trades_per_second=50.0)
    traded = threading.Event()

    def on_event(event: MarketEvent) -> None:
        traded.set()

    sim.engine.add_listener(on_event)
    assert traded.wait(10)


def test_serve_runs_in_the_foreground_until_sigterm() -> None:
    code = (
        "from upbit_sim import SimulatorSettings; from upbit_sim.cli import serve; "
        "serve(SimulatorSettings(seed=3))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        assert ticker_status(base_url) == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
