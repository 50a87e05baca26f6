"""The exit strategy's keys (``fallback``, ``supervision``, ``faults``): the issue's defaults,
shown in the shipped file, and every impossible value or combination named by its key path."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

import pytest
import yaml

from lifeline.config import load_config, parse_config
from lifeline.config_schema import ConfigError
from lifeline.settings import FallbackSettings, FaultSettings, SupervisionSettings
from quotation.errors import InvalidValue
from supervisors.spec import Strategy, SupervisorFlags

pytestmark = pytest.mark.timeout(10)

REPO = Path(__file__).resolve().parent.parent.parent

ISSUE_FALLBACK = {
    "symbols": ("KRW-BTC", "KRW-ETH"),
    "probe_market": "KRW-BTC",
    "probe_interval": 1.0,
    "failure_threshold": 3,
    "no_success_timeout": 300.0,
    "recovery_interval": 300.0,
    "recovery_successes": 3,
    "router_timeout": 0.5,
    "request_deadline": 3.0,
    "max_stale_age": 60.0,
    "memory_limit_mb": 1024,
}
"""The ``fallback`` table of issue 9, key for key."""


def _shipped() -> dict[str, typing.Any]:
    data = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _keys(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


# -- defaults ---------------------------------------------------------------------------------


def test_the_fallback_defaults_are_the_issues_table() -> None:
    assert dataclasses.asdict(parse_config({}).fallback) == ISSUE_FALLBACK


def test_the_supervision_defaults_are_lifelines_not_otps() -> None:
    supervision = parse_config({}).supervision
    assert supervision.root == SupervisorFlags(Strategy.ONE_FOR_ONE, intensity=3, period=10.0)
    assert supervision.router == SupervisorFlags(Strategy.ONE_FOR_ONE, intensity=5, period=10.0)
    assert supervision.fallbacks == SupervisorFlags(
        Strategy.ONE_FOR_ONE, intensity=5, period=10.0
    )
    assert supervision.root != SupervisorFlags()  # OTP's intensity 1 within 5 s


def test_fault_injection_is_off_by_default() -> None:
    assert parse_config({}).faults.enabled is False


def test_the_shipped_file_shows_every_fallback_supervision_and_faults_key() -> None:
    shipped = _shipped()
    assert set(shipped["fallback"]) == _keys(FallbackSettings)
    assert set(shipped["supervision"]) == _keys(SupervisionSettings)
    for name in _keys(SupervisionSettings):
        assert set(shipped["supervision"][name]) == _keys(SupervisorFlags), name
    assert set(shipped["faults"]) == _keys(FaultSettings)


def test_the_shipped_file_states_exactly_the_defaults() -> None:
    config = load_config(REPO / "config.yaml")
    assert config.fallback == FallbackSettings()
    assert config.supervision == SupervisionSettings()
    assert config.faults == FaultSettings()


def test_a_supervisor_section_given_in_part_keeps_lifelines_other_defaults() -> None:
    router = parse_config({"supervision": {"router": {"intensity": 2}}}).supervision.router
    assert router == SupervisorFlags(Strategy.ONE_FOR_ONE, intensity=2, period=10.0)


def test_given_keys_parse_into_the_settings() -> None:
    config = parse_config({
        "fallback": {"symbols": ["KRW-XRP"], "probe_market": "KRW-ETH", "probe_interval": 2,
                     "request_deadline": 5},
        "supervision": {"fallbacks": {"strategy": "rest_for_one"}},
        "faults": {"enabled": True},
    })
    assert config.fallback.symbols == ("KRW-XRP",)
    assert (config.fallback.probe_market, config.fallback.probe_interval) == ("KRW-ETH", 2.0)
    assert config.fallback.request_deadline == 5.0
    assert config.supervision.fallbacks.strategy is Strategy.REST_FOR_ONE
    assert config.faults.enabled is True


# -- every impossible number names its full key path -----------------------------------------


def _impossible_numbers() -> list[tuple[str, object]]:
    """(key, value) for each number key of ``FallbackSettings``: below range, and not finite
    or not an integer."""
    hints = typing.get_type_hints(FallbackSettings)
    cases: list[tuple[str, object]] = []
    for key in dataclasses.fields(FallbackSettings):
        if hints[key.name] is float:
            cases += [(key.name, 0), (key.name, -1.5), (key.name, math.inf), (key.name, "1s")]
        elif hints[key.name] is int:
            cases += [(key.name, 0), (key.name, -1), (key.name, 1.5), (key.name, True)]
    return cases


IMPOSSIBLE_NUMBERS = _impossible_numbers()


def test_the_impossible_numbers_cover_every_number_key() -> None:
    assert {key for key, _ in IMPOSSIBLE_NUMBERS} == set(ISSUE_FALLBACK) - {
        "symbols", "probe_market"
    }


@pytest.mark.parametrize(("key", "value"), IMPOSSIBLE_NUMBERS)
def test_an_impossible_fallback_number_is_a_config_error_at_its_key_path_with_its_value(
    key: str, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"fallback": {key: value}})
    assert caught.value.path == f"fallback.{key}"
    assert caught.value.value == value


def test_a_nan_probe_interval_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"fallback": {"probe_interval": math.nan}})
    assert caught.value.path == "fallback.probe_interval"


# -- rules between keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "path", "value", "other"),
    [
        ({"router_timeout": 3.0}, "router_timeout", 3.0, "request_deadline"),
        ({"router_timeout": 4.0}, "router_timeout", 4.0, "request_deadline"),
        ({"request_deadline": 0.25}, "router_timeout", 0.5, "request_deadline"),
        ({"recovery_interval": 0.5}, "recovery_interval", 0.5, "probe_interval"),
        ({"probe_interval": 400.0}, "recovery_interval", 300.0, "probe_interval"),
        ({"no_success_timeout": 0.5}, "no_success_timeout", 0.5, "probe_interval"),
        ({"recovery_interval": 2.9}, "recovery_interval", 2.9, "recovery_successes"),
        ({"recovery_successes": 301}, "recovery_interval", 300.0, "recovery_successes"),
    ],
)
def test_an_impossible_combination_is_an_error_naming_both_keys(
    given: dict[str, float], path: str, value: float, other: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"fallback": given})
    assert caught.value.path == f"fallback.{path}"
    assert caught.value.value == value
    assert other in str(caught.value)


def test_the_combination_rules_allow_their_boundaries() -> None:
    settings = FallbackSettings(
        probe_interval=2.0, recovery_successes=3, recovery_interval=6.0,
        no_success_timeout=2.0, router_timeout=2.99, request_deadline=3.0,
    )
    assert (settings.recovery_interval, settings.no_success_timeout) == (6.0, 2.0)


def test_a_no_success_timeout_shorter_than_the_failure_count_is_allowed() -> None:
    # Two independent Level 2 triggers: the time rule simply fires before the count rule.
    settings = FallbackSettings(probe_interval=1.0, failure_threshold=10, no_success_timeout=2.0)
    assert settings.no_success_timeout < settings.failure_threshold * settings.probe_interval


# -- supervision --------------------------------------------------------------------------------


@pytest.mark.parametrize("supervisor", ["root", "router", "fallbacks"])
@pytest.mark.parametrize(
    ("key", "value"),
    [("strategy", "bogus"), ("intensity", -1), ("intensity", 1.5), ("period", 0),
     ("period", math.inf)],
)
def test_bad_supervisor_flags_are_a_config_error_at_their_key_path(
    supervisor: str, key: str, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"supervision": {supervisor: {key: value}}})
    assert caught.value.path == f"supervision.{supervisor}.{key}"
    assert caught.value.value == value


def test_an_unknown_supervisor_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"supervision": {"health_probe": {"intensity": 1}}})
    assert caught.value.path == "supervision.health_probe"
    assert "fallbacks, root, router" in str(caught.value)


# -- symbols and the probe market -------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbols", "path", "value"),
    [
        (["KRW-BTC", "krw-eth"], "symbols[1]", "krw-eth"),
        (["KRW-BTC", "KRWETH"], "symbols[1]", "KRWETH"),
        ([123], "symbols[0]", 123),
        (["KRW-BTC", "KRW-ETH", "KRW-BTC"], "symbols[2]", "KRW-BTC"),
        ([], "symbols", []),
        ("KRW-BTC", "symbols", "KRW-BTC"),
        (None, "symbols", None),
    ],
)
def test_a_bad_symbol_list_is_an_error_naming_the_bad_entry(
    symbols: object, path: str, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"fallback": {"symbols": symbols}})
    assert caught.value.path == f"fallback.{path}"
    assert caught.value.value == value


def test_a_repeated_symbol_names_where_it_was_first_listed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"fallback": {"symbols": ["KRW-ETH", "KRW-BTC", "KRW-ETH"]}})
    assert str(caught.value) == "fallback.symbols[2]: symbols[2] repeats symbols[0], got 'KRW-ETH'"


@pytest.mark.parametrize("market", ["krw-btc", "BTC", "", 7])
def test_a_bad_probe_market_is_an_error_at_its_key(market: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"fallback": {"probe_market": market}})
    assert (caught.value.path, caught.value.value) == ("fallback.probe_market", market)


def test_symbols_given_in_code_as_a_list_are_kept_as_a_tuple() -> None:
    settings = FallbackSettings(symbols=["KRW-BTC"])  # type: ignore[arg-type]
    assert settings.symbols == ("KRW-BTC",)
    assert hash(settings) == hash(FallbackSettings(symbols=("KRW-BTC",)))


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", 1, 0, None, "false"])
def test_faults_enabled_must_be_true_or_false(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"faults": {"enabled": value}})
    assert (caught.value.path, caught.value.value) == ("faults.enabled", value)


def test_fault_settings_built_in_code_refuse_a_non_bool() -> None:
    with pytest.raises(InvalidValue) as caught:
        FaultSettings(enabled=1)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.value) == ("enabled", 1)


def test_an_unknown_fallback_key_is_an_error_naming_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"fallback": {"probe_intervall": 1.0}})
    assert caught.value.path == "fallback.probe_intervall"
