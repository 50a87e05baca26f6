"""config.yaml is parsed strictly: unknown keys and wrong types name their key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisors.config import load_config, parse_config
from supervisors.config_schema import ConfigError

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


def test_an_impossible_value_is_refused_by_the_component() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"upbit": {"rest": {"read_timeout": -1}}})
    assert caught.value.path == "upbit.rest"
