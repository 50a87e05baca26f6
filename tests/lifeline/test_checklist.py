"""The status checklist (issue 10 item 7): each item from real small inputs (a closed port,
the simulator's port, a disk threshold above the free space, the loggers' levels), and the
whole list gathered from a running system against the simulator."""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.messages import RestHealth, WsHealth
from lifeline.checklist import (
    ITEMS,
    Checklist,
    Mark,
    disk_item,
    host_port,
    log_directory,
    log_level_item,
    process_item,
    rate_limit_item,
    rest_item,
    symbols_item,
    tcp_item,
    ws_item,
)
from lifeline.escalation import ESCALATED_LOGGERS
from lifeline.operator import format_status
from tests.lifeline.system_support import matrix_config, started_system, ws_health
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def test_a_closed_port_fails_and_the_simulators_port_is_ok(sim: Simulator) -> None:
    port = closed_port()
    bad = tcp_item([("REST", "127.0.0.1", sim.port), ("WebSocket", "127.0.0.1", port)], 1.0)
    assert bad.mark is Mark.FAIL and bad.name == "hosts"
    assert f"WebSocket 127.0.0.1:{port} unreachable (ConnectionRefusedError" in bad.detail
    good = tcp_item([("REST", *host_port(sim.base_url)), ("WebSocket", *host_port(sim.ws_url))])
    assert good.mark is Mark.OK, good
    assert good.detail.startswith(f"REST 127.0.0.1:{sim.port} ")


def test_host_port_takes_the_schemes_port_when_none_is_given() -> None:
    assert host_port("https://api.upbit.com/v1") == ("api.upbit.com", 443)
    assert host_port("wss://api.upbit.com/websocket/v1") == ("api.upbit.com", 443)
    assert host_port("ws://127.0.0.1:8080/ws") == ("127.0.0.1", 8080)


def test_disk_below_the_threshold_warns_and_above_is_ok(tmp_path: Path) -> None:
    free_mb = shutil.disk_usage(tmp_path).free // (1 << 20)
    assert disk_item(tmp_path, free_mb + 1_000_000).mark is Mark.WARN
    ok = disk_item(tmp_path, 0)
    assert ok.mark is Mark.OK and str(tmp_path) in ok.detail and "MiB free of" in ok.detail
    assert disk_item(tmp_path / "missing", 0).mark is Mark.FAIL


def test_the_log_directory_is_a_file_handlers_else_the_current_one(tmp_path: Path) -> None:
    owner = logging.getLogger("tests.checklist.owner")
    handler = logging.FileHandler(tmp_path / "logs" / "run.log", delay=True)
    owner.addHandler(handler)
    try:
        assert log_directory([owner]) == tmp_path / "logs"
    finally:
        owner.removeHandler(handler)
        handler.close()
    assert log_directory([owner]) == Path.cwd()


@pytest.fixture
def logger_levels() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in ESCALATED_LOGGERS}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("logger_levels")
def test_the_log_level_shows_the_escalation() -> None:
    for name in ESCALATED_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    calm = log_level_item()
    assert calm.mark is Mark.OK and calm.detail == "lifeline INFO, actors INFO, quotation INFO"
    logging.getLogger("actors").setLevel(logging.DEBUG)
    loud = log_level_item()
    assert loud.mark is Mark.WARN and "actors DEBUG" in loud.detail


def rest(**changes: Any) -> RestHealth:
    base = RestHealth(now=100.0, last_success_at=None, last_failure_at=None,
                      consecutive_failures=0, last_error=None, banned_until=None,
                      paused_groups=())
    return dataclasses.replace(base, **changes)


def test_the_rest_fallback_item_names_its_last_error_and_a_ban() -> None:
    assert rest_item(rest()).detail == "standing by, no request yet"
    assert rest_item(rest(last_success_at=98.0)).detail == "last answer 2.0 s ago"
    failing = rest_item(rest(consecutive_failures=2, last_error="ReadTimeout"))
    assert failing.mark is Mark.FAIL and "last error: ReadTimeout" in failing.detail
    banned = rest_item(rest(banned_until=130.0))
    assert banned.mark is Mark.FAIL and "for 30 s more" in banned.detail
    assert rest_item(None, "Timeout").detail == "no answer (Timeout)"


def test_rate_limits_pause_warns_and_a_ban_fails() -> None:
    assert rate_limit_item({}, (), None).detail == "no group used yet"
    ok = rate_limit_item({"ticker": 9, "candles": 10}, (), None)
    assert ok.mark is Mark.OK and ok.detail == "candles 10, ticker 9"
    paused = rate_limit_item({"ticker": 0}, ("ticker",), None)
    assert paused.mark is Mark.WARN and "ticker 0 paused" in paused.detail
    assert rate_limit_item({"ticker": 0}, (), 42.0).mark is Mark.FAIL


def test_lifeline_status_shows_the_rate_limits_once() -> None:
    # `lifeline status` printed the live headroom and the checklist's item, read at
    # different moments (e.g. ticker 5 beside ticker 9): the item alone says it now
    data: dict[str, Any] = {
        "level": 0, "level_name": "normal", "mode": "local", "running": True,
        "limiter": {"headroom": {"ticker": 5}, "banned_until": None},
        "checklist": {"age": 1.0, "items": {
            "rate_limits": {"status": "ok", "detail": "ticker 9"}}}}
    shown = format_status(data)
    assert "ticker 5" not in shown and re.search(r"rate_limits +ticker 9", shown), shown
    assert "ban: none" in shown
    del data["checklist"]  # no checklist (not checked yet): the live line stays
    assert "rate limit headroom: ticker 5" in format_status(data)


def test_memory_warns_at_80_percent_of_the_limit_and_fails_above() -> None:
    assert process_item(500.0, 3.0, 1024).mark is Mark.OK
    assert process_item(900.0, None, 1024).mark is Mark.WARN
    over = process_item(1100.0, 12.0, 1024)
    assert over.mark is Mark.FAIL and over.detail == "RSS 1100 MiB of 1024 MiB limit, CPU 12%"


def test_core_symbols_show_each_age_and_a_stale_or_failed_read() -> None:
    ages = {"ticker/KRW-BTC": 0.5, "ticker/KRW-ETH": None}
    ok = symbols_item(("KRW-BTC", "KRW-ETH"), ages, source="smart_router/rest", stale=False)
    assert ok.mark is Mark.OK and ok.detail.startswith("KRW-BTC 0.5 s, KRW-ETH -")
    assert symbols_item(("KRW-BTC",), ages, source="last_known_good", stale=True
                        ).mark is Mark.WARN
    failed = symbols_item(("KRW-BTC",), ages, source=None, stale=False, problem="Unavailable")
    assert failed.mark is Mark.FAIL and "read failed: Unavailable" in failed.detail


@pytest.mark.timeout(60)
def test_the_checklist_of_a_running_system_has_every_item_off_the_request_path(
        sim_factory: Callable[..., Simulator]) -> None:
    sim = sim_factory(seed=1, rate_limit=None)
    with started_system(matrix_config(sim)) as system:
        checklist = Checklist(system, interval=60.0)
        assert checklist.snapshot() == {"age": None, "items": {}}  # nothing checked yet
        items = {item.name: item for item in checklist.refresh()}
        assert tuple(items) == ITEMS
        for name in ("rest_fallback", "ws_fallback", "core_symbols", "hosts"):
            assert items[name].mark is Mark.OK, items[name]
        assert items["ws_fallback"].detail == "standing by (activated at Level 2/3)"
        snapshot = checklist.snapshot()
        assert set(snapshot["items"]) == set(ITEMS) and snapshot["age"] is not None

        health: WsHealth = ws_health(system)
        assert ws_item(health).mark is Mark.OK
        down = dataclasses.replace(health, active=True, symbols=("KRW-BTC",), connection=(
            dataclasses.replace(health.connection, subscriptions=1, last_error="refused")))
        assert ws_item(down).mark is Mark.FAIL and "last error: refused" in ws_item(down).detail
