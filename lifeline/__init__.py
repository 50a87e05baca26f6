"""Lifeline, the application a trading host and an operator touch.

Modules: ``config`` (``config.yaml`` into frozen dataclasses), ``config_schema``
(the strict loader that names the key path of a bad value) and ``settings`` (the exit
strategy's ``fallback``, ``supervision`` and ``faults`` keys), ``cli`` (the
``lifeline`` command: ``demo``, ``sim``, ``check-config``) and ``demo`` (the
rehearsal against the embedded simulator), ``health`` (what is observed of the router and
the fallbacks) and ``levels`` (the failure levels: :class:`Level`, :class:`LevelChange` and
their pure rules), ``tree`` (the supervision tree from config), ``keeper`` (the
LevelKeeper), ``subscriptions`` (realtime callbacks: :class:`Subscription`, :class:`Update`),
``answer``, ``errors``, ``last_good`` and ``system`` (the :class:`MarketDataSystem` facade).
"""

import logging

from lifeline.answer import Answer
from lifeline.config import LifelineConfig, load_config, parse_config
from lifeline.config_schema import ConfigError
from lifeline.errors import MarketDataUnavailable
from lifeline.levels import Level, LevelChange
from lifeline.subscriptions import Subscription, Update
from lifeline.system import MarketDataSystem

__all__ = [
    "Answer",
    "ConfigError",
    "Level",
    "LevelChange",
    "LifelineConfig",
    "MarketDataSystem",
    "MarketDataUnavailable",
    "Subscription",
    "Update",
    "load_config",
    "parse_config",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
"""The library never configures logging (only the ``lifeline`` CLI does): without a
handler of the host's, nothing of ours reaches stderr."""
