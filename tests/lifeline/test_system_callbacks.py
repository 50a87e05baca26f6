"""A trading host's level-change callback that hangs holds up nothing of the exit strategy:
against the simulator, the level still reaches 2, the WebSocket fallback is activated and the
log escalation raised; once the callback returns it gets every change, in order."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from lifeline import Level, MarketDataSystem
from tests.fakes import BlockingCallback
from tests.lifeline.system_support import started_system
from tests.lifeline.test_system import config_for, ws_health
from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

WAIT = 15.0
"""Real seconds a test waits for another thread before failing."""


class Logged(logging.Handler):
    """Sets ``seen`` once a record of ``logger`` matches ``wanted`` (on the logging thread)."""

    def __init__(self, logger: str, wanted: Callable[[logging.LogRecord], bool]) -> None:
        super().__init__(logging.DEBUG)
        self.seen = threading.Event()
        self._wanted = wanted
        self._logger = logging.getLogger(logger)

    def emit(self, record: logging.LogRecord) -> None:
        if self._wanted(record):
            self.seen.set()

    def __enter__(self) -> Logged:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        self._logger.removeHandler(self)


@pytest.fixture
def system(sim_factory: Callable[..., Simulator]) -> Iterator[MarketDataSystem]:
    with started_system(config_for(sim_factory(seed=1, rate_limit=None))) as started:
        yield started


def _level_logged(level: Level) -> Callable[[logging.LogRecord], bool]:
    return lambda record: getattr(record, "level_new", None) == int(level)


def test_a_hanging_level_callback_holds_up_neither_level_2_nor_the_fallbacks_activation(
    system: MarketDataSystem,
) -> None:
    """Fails before (callbacks on the keeper's thread): the keeper hangs in the host's
    callback of 0 -> 1, so 1 -> 2 is never taken in, nothing activated, nothing escalated."""
    host = BlockingCallback(hold=WAIT * 2, wait=WAIT)
    system.on_level_change(host)
    try:
        with Logged("lifeline.keeper", _level_logged(Level.DEGRADED)) as degraded:
            system.faults.inject("smart_router", "crash", point="request", count=1)
            assert degraded.seen.wait(WAIT)  # 0 -> 1: a restart within intensity
        assert host.entered.wait(WAIT)  # the host's callback now hangs on 0 -> 1
        escalated = Logged("lifeline.escalation",
                           lambda record: record.getMessage().startswith("log escalation"))
        with escalated:
            system.faults.inject("smart_router", "crash", point="request")  # a crash loop
            assert escalated.seen.wait(WAIT)  # logged after the effects ran: Activate done
        assert system.level >= Level.FALLBACK
        assert ws_health(system).active  # the keeper activated the WebSocket fallback
        assert host.seen == []  # still hanging
        host.release()
        seen = host.wait_for(2)
        kept = [(change.old, change.new) for change in system.status().changes]
        assert seen[:2] == [(Level.NORMAL, Level.DEGRADED), (Level.DEGRADED, Level.FALLBACK)]
        assert seen == kept[:len(seen)]  # every change, in order
        assert system.status().to_dict()["callbacks_dropped"] == 0
    finally:
        host.release()
