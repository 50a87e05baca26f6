"""The house rules: imports run one way between the packages, and each package exports a
curated, pinned set of names.

Import direction (DESIGN.md): ``lifeline`` → ``actors``, ``supervisors``, ``quotation``,
``upbit_sim``; ``actors`` → ``quotation``; ``upbit_sim`` → ``quotation``'s vocabulary;
``supervisors`` → pykka and the standard library only; ``quotation`` → nothing of ours.
Lazy imports inside functions count the same as imports at the top.
"""

from __future__ import annotations

import ast
import importlib
import logging
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parent.parent
OURS = frozenset({"quotation", "upbit_sim", "supervisors", "actors", "lifeline"})

ALLOWED: dict[str, frozenset[str]] = {
    "quotation": frozenset(),
    "supervisors": frozenset(),
    "upbit_sim": frozenset({"quotation"}),
    "actors": frozenset({"quotation"}),
    "lifeline": frozenset({"quotation", "upbit_sim", "supervisors", "actors"}),
}
"""Which of our packages each package may import."""

SIMULATOR_VOCABULARY = (
    "quotation.models",
    "quotation.clock",
    "quotation.wire_keys",
    "quotation.websocket.subscription",  # DataType, WsFormat, ORDERBOOK_DEPTHS: the protocol's
    "quotation.values",  # the one range check for settings (InvalidValue)
    "quotation.errors.InvalidValue",  # raised directly for a setting no range describes
)
"""What the simulator may take from ``quotation``: its vocabulary, never a client."""

SUPERVISORS_THIRD_PARTY = frozenset({"pykka"})

EXPORTS: dict[str, frozenset[str]] = {
    "quotation": frozenset({
        "Banned", "BodyTooLarge", "Candle", "CandleInterval", "Change", "Clock", "FormatError",
        "IncompleteAnswer", "InvalidRequest", "InvalidValue", "Market", "Orderbook",
        "OrderbookInstrument", "OrderbookLevel", "QuotationError", "RateLimited", "RateLimiter",
        "RestClient", "RestConfig", "ServerError", "Side", "StreamType", "SubscriptionError",
        "SystemClock", "Ticker", "Trade", "TransportError", "WebSocketClient", "WebSocketConfig",
        "WebSocketError",
    }),
    "quotation.rest": frozenset({
        "UPBIT_REST_URL", "LimiterStatus", "RateLimiter", "RestClient", "RestConfig",
        "process_limiter",
    }),
    "quotation.websocket": frozenset({
        "UPBIT_WEBSOCKET_URL", "Cached", "CloseReason", "ConnectionState", "DataType",
        "KeepaliveMode", "LivenessConfig", "StreamCache", "StreamItem", "Subscription",
        "WebSocketClient", "WebSocketConfig", "WebSocketStatus", "WsFormat",
    }),
    "upbit_sim": frozenset({
        "DRIFT_ADDED", "DRIFT_REMOVED", "STREAMED_INTERVALS", "BodyFault", "Decision",
        "FaultController", "FaultPlan", "Listener", "MarketEngine", "MarketEvent", "MarketInfo",
        "RateLimitPolicy", "ServerRateLimiter", "SimCandle", "SimOrderbook", "SimOrderbookUnit",
        "SimTicker", "SimTrade", "Simulator", "SimulatorSettings", "Verdict",
    }),
    "lifeline.feed": frozenset({
        "DEFAULT_LEADER_TTL", "DEFAULT_STREAM_MAXLEN", "DEFAULT_STREAM_PREFIX", "CodecError",
        "FeedCommandError", "FeedEntry", "FeedError", "FeedKeys", "FeedKind", "FeedModel",
        "FeedPublisher", "FeedReader", "FeedSettingsError", "FeedUnavailable", "Lease",
        "LeaseGrant", "LeaseHolder", "LeaseLost", "Snapshots", "StreamFollower",
        "SymbolRegistry", "connect", "decode", "encode",
        "FeedFollower", "FollowerStatus", "Missing", "NotInFeed", "SharedSource",
        "FeedLeader", "LeaderHost", "LeaderRole", "LeaderStatus",
        "LeaderSilent", "Heartbeat", "Heartbeats", "LeaderState",
    }),
    "lifeline": frozenset({
        "Answer", "ConfigError", "Level", "LevelChange", "LifelineConfig", "MarketDataSystem",
        "MarketDataUnavailable", "Subscription", "Update", "load_config", "parse_config",
    }),
}
"""The curated public names of each package; a new export is a decision, made here too."""


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute module name imported by ``path`` (top level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def import_violations(package: str) -> list[str]:
    """``file:line imports X`` for each import ``package`` may not make."""
    wrong: list[str] = []
    for path in _modules(package):
        where = path.relative_to(ROOT)
        for line, name in _imports(path):
            top = name.split(".")[0]
            if top in OURS and top != package and top not in ALLOWED[package]:
                wrong.append(f"{where}:{line} imports {name}")
            elif (package == "upbit_sim" and top == "quotation"
                  and not name.startswith(SIMULATOR_VOCABULARY)):
                wrong.append(f"{where}:{line} imports {name} (not protocol vocabulary)")
            elif (package == "supervisors" and top not in OURS and top != "__future__"
                  and top not in sys.stdlib_module_names and top not in SUPERVISORS_THIRD_PARTY):
                wrong.append(f"{where}:{line} imports {name} (supervisors: pykka only)")
    return wrong


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_one_way_between_the_packages(package: str) -> None:
    assert import_violations(package) == []


def test_a_wrong_import_is_caught(tmp_path: Path) -> None:
    # The checker itself: a supervisors module importing quotation must be reported.
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from quotation.models import Ticker\n", encoding="utf-8")
    assert _imports(bad) == [(2, "quotation.models.Ticker")]


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_each_package_exports_exactly_its_curated_names(package: str) -> None:
    module = importlib.import_module(package)
    exported = set(module.__all__)
    assert len(module.__all__) == len(exported), "duplicate names in __all__"
    assert exported == EXPORTS[package]
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize(
    "path", [p for pkg in sorted(ALLOWED) for p in _modules(pkg) if p.name != "__init__.py"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_module_declares_what_it_exports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {
        target.id
        for node in tree.body if isinstance(node, ast.Assign)
        for target in node.targets if isinstance(target, ast.Name)
    }
    assert "__all__" in names or path.name.startswith("_"), f"{path.name} has no __all__"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_the_library_adds_only_a_null_handler_and_sets_no_level(package: str) -> None:
    for path in _modules(package):
        parts = path.relative_to(ROOT).with_suffix("").parts
        importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    top = logging.getLogger(package)
    expected = [logging.NullHandler]
    assert [type(handler) for handler in top.handlers] == expected
    assert top.level == logging.NOTSET
    below = [name for name in logging.root.manager.loggerDict
             if name.startswith(f"{package}.")]
    for name in below:
        logger = logging.getLogger(name)
        assert (logger.handlers, logger.level) == ([], logging.NOTSET), name
