"""config.yaml is parsed strictly: unknown keys and wrong types name their key path."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from lifeline.config import COMPONENT_ERRORS, RateLimitSettings, load_config, parse_config
from lifeline.config_schema import ConfigError, from_mapping
from quotation.backoff import Backoff, Jitter
from quotation.rest.client import RestConfig
from quotation.websocket.config import WebSocketConfig
from quotation.websocket.liveness import KeepaliveMode, LivenessConfig
from quotation.websocket.subscription import DataType, Subscription, WsFormat
from supervisors.spec import Strategy, SupervisorFlags

pytestmark = pytest.mark.timeout(10)

REPO = Path(__file__).resolve().parent.parent.parent


def test_the_shipped_config_yaml_parses_into_the_components_defaults() -> None:
    config = load_config(REPO / "config.yaml")
    assert config.upbit.rest.base_url == "https://api.upbit.com/v1"
    assert config.upbit.rate_limit.per_second == 10
    assert config == parse_config({})


def test_an_unknown_key_is_an_error_naming_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"upbit": {"rest": {"read_timout": 5}}})
    assert caught.value.path == "upbit.rest.read_timout"


def test_a_wrong_type_is_an_error_naming_its_path_and_value() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"upbit": {"rate_limit": {"per_second": "ten"}}})
    assert caught.value.path == "upbit.rate_limit.per_second"
    assert caught.value.value == "ten"


def test_an_impossible_value_is_refused_by_the_component_naming_the_full_key_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"upbit": {"rest": {"read_timeout": -1}}})
    assert caught.value.path == "upbit.rest.read_timeout"
    assert caught.value.value == -1
    assert str(caught.value) == "upbit.rest.read_timeout: read_timeout must be > 0, got -1.0"


@pytest.mark.parametrize(
    ("key", "value"), [("per_second", 0), ("window", -1.0), ("margin", -0.5)]
)
def test_an_impossible_rate_limit_is_refused_when_the_file_is_checked(
    key: str, value: float
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"upbit": {"rate_limit": {key: value}}})
    assert caught.value.path == f"upbit.rate_limit.{key}"
    assert caught.value.value == value


def test_the_shipped_websocket_section_is_the_clients_defaults_with_every_key_shown() -> None:
    config = load_config(REPO / "config.yaml")
    assert config.upbit.websocket == WebSocketConfig()
    section = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["upbit"][
        "websocket"
    ]
    fixed = {"connect_limits", "message_limits"}
    assert set(section) == {f.name for f in dataclasses.fields(WebSocketConfig)} - fixed
    assert set(section["liveness"]) == {f.name for f in dataclasses.fields(LivenessConfig)}
    assert set(section["backoff"]) == {f.name for f in dataclasses.fields(Backoff)}


def test_the_shipped_rest_and_limiter_sections_show_every_key() -> None:
    upbit = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["upbit"]
    assert set(upbit["rest"]) == {f.name for f in dataclasses.fields(RestConfig)}
    assert set(upbit["rate_limit"]) == {f.name for f in dataclasses.fields(RateLimitSettings)}


def test_websocket_keys_parse_into_the_clients_config() -> None:
    config = parse_config(
        {
            "upbit": {
                "websocket": {
                    "url": "ws://127.0.0.1:8080/websocket/v1",
                    "format": "SIMPLE",
                    "connect_timeout": 2,
                    "subscriptions": [
                        {"type": "trade", "codes": ["KRW-BTC", "KRW-ETH"]},
                        {"type": "orderbook", "codes": ["KRW-BTC"], "depth": 15, "level": 0},
                        {"type": "candle.1m", "codes": ["KRW-BTC"], "is_only_realtime": True},
                    ],
                    "liveness": {"ping_interval": 5, "pong_timeout": 2.5, "keepalive": "both"},
                    "backoff": {"initial": 0.1, "cap": 5},
                    "delivery_capacity": 10,
                    "gap_fill_page_size": 500,
                }
            }
        }
    )
    ws = config.upbit.websocket
    assert ws.url == "ws://127.0.0.1:8080/websocket/v1"
    assert ws.format is WsFormat.SIMPLE
    assert ws.connect_timeout == 2.0
    assert ws.subscriptions == (
        Subscription(DataType.TRADE, ("KRW-BTC", "KRW-ETH")),
        Subscription(DataType.ORDERBOOK, ("KRW-BTC",), depth=15, level=0.0),
        Subscription(DataType.CANDLE_1M, ("KRW-BTC",), is_only_realtime=True),
    )
    assert ws.liveness == LivenessConfig(
        ping_interval=5.0, pong_timeout=2.5, keepalive=KeepaliveMode.BOTH
    )
    # The keys not given keep the client's reconnect backoff (its full jitter too).
    assert ws.backoff == Backoff(initial=0.1, cap=5.0, jitter=Jitter.FULL)
    assert (ws.delivery_capacity, ws.gap_fill_page_size) == (10, 500)
    assert ws.connect_limits == WebSocketConfig().connect_limits  # Upbit's, untouched


def test_a_backoff_section_given_in_part_keeps_the_rest_of_the_reconnect_backoff() -> None:
    config = parse_config(
        {"upbit": {"websocket": {"backoff": {"jitter": "spread", "spread": 0.2}}}}
    )
    assert config.upbit.websocket.backoff == Backoff(
        initial=0.5, multiplier=2.0, cap=30.0, jitter=Jitter.SPREAD, spread=0.2
    )
    assert parse_config({"upbit": {"websocket": {"backoff": None}}}) == parse_config({})


@pytest.mark.parametrize(
    ("section", "path", "value"),
    [
        ({"connect_timeout": -1}, "connect_timeout", -1),
        ({"url": "https://api.upbit.com"}, "url", "https://api.upbit.com"),
        ({"format": "XML"}, "format", "XML"),
        ({"delivery_capacity": 0}, "delivery_capacity", 0),
        ({"delivery_capacity": "many"}, "delivery_capacity", "many"),
        ({"gap_fill_page_size": 501}, "gap_fill_page_size", 501),
        ({"liveness": {"ping_interval": 0}}, "liveness.ping_interval", 0),
        ({"liveness": {"keepalive": "udp"}}, "liveness.keepalive", "udp"),
        ({"backoff": {"initial": 1.0, "cap": 0.5}}, "backoff.cap", 0.5),
        ({"backoff": {"jitter": "random"}}, "backoff.jitter", "random"),
        ({"backoff": {"spread": 0.1}}, "backoff.spread", 0.1),  # spread needs jitter: spread
        ({"subscriptions": [{"type": "trade", "codes": ["krw-btc"]}]},
         "subscriptions[0].codes", ["krw-btc"]),
        ({"subscriptions": [{"type": "trades", "codes": ["KRW-BTC"]}]},
         "subscriptions[0].type", "trades"),
        ({"subscriptions": [{"type": "trade", "codes": ["KRW-BTC"]},
                            {"type": "trade", "codes": ["KRW-ETH"]}]},
         "subscriptions", None),
        ({"ping_interval": 5}, "ping_interval", 5),
    ],
)
def test_a_bad_websocket_value_is_an_error_naming_its_key(
    section: dict[str, object], path: str, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"upbit": {"websocket": section}})
    assert caught.value.path == f"upbit.websocket.{path}"
    if value is not None:
        assert caught.value.value == value


def test_upbits_fixed_websocket_limits_are_not_config_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {"upbit": {"websocket": {"connect_limits": [{"max_events": 50, "window": 1.0}]}}}
        )
    assert caught.value.path == "upbit.websocket.connect_limits"
    assert "fixed" in str(caught.value)


# -- every impossible number names its full key path -----------------------------------------


def _numeric_keys(cls: type, path: str) -> list[tuple[str, type]]:
    """(key path, int or float) for every number key of ``cls``, nested sections included."""
    hints = typing.get_type_hints(cls)
    keys: list[tuple[str, type]] = []
    for key in dataclasses.fields(cls):
        hint = hints[key.name]
        if hint in (int, float):
            keys.append((f"{path}.{key.name}", hint))
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            keys.extend(_numeric_keys(hint, f"{path}.{key.name}"))
    return keys


NUMERIC_KEYS = [
    *_numeric_keys(RestConfig, "upbit.rest"),
    *_numeric_keys(RateLimitSettings, "upbit.rate_limit"),
    *_numeric_keys(WebSocketConfig, "upbit.websocket"),
]
"""Every number key of the three Upbit sections: a field added later is covered at once."""

IMPOSSIBLE = [(path, -1) for path, _ in NUMERIC_KEYS] + [
    (path, math.inf) for path, kind in NUMERIC_KEYS if kind is float
]


def _nested(path: str, value: object) -> dict[str, object]:
    *sections, key = path.split(".")
    data: dict[str, object] = {key: value}
    for section in reversed(sections):
        data = {section: data}
    return data


def test_the_number_keys_cover_every_section_and_nested_section() -> None:
    paths = {path for path, _ in NUMERIC_KEYS}
    assert {"upbit.rest.read_timeout", "upbit.rest.pool_size", "upbit.rate_limit.per_second",
            "upbit.websocket.gap_fill_page_size", "upbit.websocket.liveness.ping_interval",
            "upbit.websocket.backoff.initial"} <= paths


@pytest.mark.parametrize(("path", "value"), IMPOSSIBLE)
def test_an_impossible_number_is_a_config_error_at_its_full_key_path_with_its_value(
    path: str, value: float
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_nested(path, value))
    assert caught.value.path == path
    assert caught.value.value == value


def test_an_infinite_read_timeout_in_the_file_is_refused(tmp_path: Path) -> None:
    # RestConfig once took it, and then every call failed with OverflowError.
    config = tmp_path / "config.yaml"
    config.write_text("upbit:\n  rest:\n    read_timeout: .inf\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert (caught.value.path, caught.value.value) == ("upbit.rest.read_timeout", math.inf)


def test_a_bad_base_url_names_its_key_and_shows_only_its_value() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"upbit": {"rest": {"base_url": "api.upbit.com", "pool_size": 4}}})
    assert (caught.value.path, caught.value.value) == ("upbit.rest.base_url", "api.upbit.com")


# -- a supervisor spec inside a config -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestartSection:
    """A supervisor's restart flags as a config section gives them (``supervisor:``)."""

    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = 1
    period: float = 5.0

    def __post_init__(self) -> None:
        SupervisorFlags(self.strategy, self.intensity, self.period)


@dataclass(frozen=True, slots=True)
class HostConfig:
    """A config file with one supervisor section."""

    supervisor: RestartSection = field(default_factory=RestartSection)


@pytest.mark.parametrize(
    ("key", "value"), [("intensity", -1), ("period", 0.0), ("period", math.inf)]
)
def test_a_spec_error_inside_a_config_is_a_config_error_at_its_key_path(
    key: str, value: float
) -> None:
    with pytest.raises(ConfigError) as caught:
        from_mapping(HostConfig, {"supervisor": {key: value}}, errors=COMPONENT_ERRORS)
    assert caught.value.path == f"supervisor.{key}"
    assert caught.value.value == value
