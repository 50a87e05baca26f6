"""A local Upbit-compatible exchange for tests, demos and benchmarks (REST and WebSocket).

::

    from upbit_sim import Simulator

    with Simulator(seed=1) as sim:
        requests.get(f"{sim.base_url}/ticker", params={"markets": "KRW-BTC"})
        sim.faults.fail_next(3, status=503)     # fault controls, also under /_sim/ over HTTP
        sim.engine.step(10)                      # ten more trades, deterministic for the seed

Modules: ``simulator`` (lifecycle), ``engine`` (markets and trades), ``history``
(synthetic daily candles before the trades), ``rest_api`` (Upbit's REST routes
and ``/_sim/``), ``faults``, ``limits`` (the server-side rate limit),
``catalogue``, ``candles``, ``orderbook``, ``records``, ``wire``, ``settings``
(where it listens, its seed: the defaults, stated once), ``cli`` (``lifeline sim``);
``ws/`` is the WebSocket side.

The server side needs aiohttp, the ``sim`` extra (``pip install 'lifeline[sim]'``): a
trading host installs no HTTP server. So :class:`Simulator` is imported on first use,
and the rest of this package (``SimulatorSettings``, which ``lifeline.config`` reads)
imports without aiohttp; without it ``from upbit_sim import Simulator`` raises
``ModuleNotFoundError`` naming ``aiohttp``.
"""

import logging
from typing import TYPE_CHECKING

from upbit_sim.catalogue import MarketInfo
from upbit_sim.engine import Listener, MarketEngine
from upbit_sim.faults import (
    DRIFT_ADDED,
    DRIFT_REMOVED,
    BodyFault,
    FaultController,
    FaultPlan,
)
from upbit_sim.limits import Decision, RateLimitPolicy, ServerRateLimiter, Verdict
from upbit_sim.records import (
    STREAMED_INTERVALS,
    MarketEvent,
    SimCandle,
    SimOrderbook,
    SimOrderbookUnit,
    SimTicker,
    SimTrade,
)
from upbit_sim.settings import SimulatorSettings

if TYPE_CHECKING:
    from upbit_sim.simulator import Simulator

__all__ = [
    "DRIFT_ADDED",
    "DRIFT_REMOVED",
    "STREAMED_INTERVALS",
    "BodyFault",
    "Decision",
    "FaultController",
    "FaultPlan",
    "Listener",
    "MarketEngine",
    "MarketEvent",
    "MarketInfo",
    "RateLimitPolicy",
    "ServerRateLimiter",
    "SimCandle",
    "SimOrderbook",
    "SimOrderbookUnit",
    "SimTicker",
    "SimTrade",
    "Simulator",
    "SimulatorSettings",
    "Verdict",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
"""The library never configures logging (only the ``lifeline`` CLI does): without a
handler of the host's, nothing of ours reaches stderr."""


def __getattr__(name: str) -> object:
    # PEP 562: the aiohttp server is imported only when someone asks for the Simulator.
    if name == "Simulator":
        from upbit_sim.simulator import Simulator  # noqa: PLC0415 - needs aiohttp

        return Simulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
