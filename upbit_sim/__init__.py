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
"""

import logging

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

