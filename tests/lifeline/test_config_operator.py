"""The ``operator`` section (``lifeline run``): its defaults, shown in the shipped file, and
every impossible value named by its key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lifeline.config import load_config, parse_config
from lifeline.config_schema import ConfigError
from lifeline.settings import OperatorSettings, split_listen

pytestmark = pytest.mark.timeout(10)

REPO = Path(__file__).resolve().parent.parent.parent


def test_the_operator_defaults_are_loopback_9464_and_a_ten_second_shutdown() -> None:
    assert OperatorSettings() == OperatorSettings(listen="127.0.0.1:9464", shutdown_timeout=10.0)
    assert parse_config({}).operator == OperatorSettings()


def test_the_shipped_file_shows_every_operator_key_with_its_default() -> None:
    section = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["operator"]
    assert set(section) == {"listen", "shutdown_timeout", "debug_window", "daily_check",
                            "min_free_disk_mb"}
    assert load_config(REPO / "config.yaml").operator == OperatorSettings()


@pytest.mark.parametrize(("listen", "expected"), [
    ("127.0.0.1:0", ("127.0.0.1", 0)),
    ("0.0.0.0:9464", ("0.0.0.0", 9464)),
    ("[::1]:9464", ("::1", 9464)),
    ("localhost:65535", ("localhost", 65535)),
])
def test_a_listen_address_splits_into_host_and_port(listen: str, expected: tuple[str, int]
                                                    ) -> None:
    assert split_listen(listen) == expected
    assert parse_config({"operator": {"listen": listen}}).operator.listen == listen


@pytest.mark.parametrize(("key", "value"), [
    ("listen", "9464"), ("listen", ":9464"), ("listen", "127.0.0.1:"),
    ("listen", "127.0.0.1:70000"), ("listen", "127.0.0.1:-1"), ("listen", "a b:1"),
    ("listen", 9464), ("shutdown_timeout", 0), ("shutdown_timeout", -1.0),
    ("shutdown_timeout", float("inf")), ("debug_window", 0), ("debug_window", "5m"),
])
def test_an_impossible_operator_value_is_a_config_error_at_its_key_path(key: str, value: object
                                                                         ) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"operator": {key: value}})
    assert caught.value.path == f"operator.{key}"


def test_an_unknown_operator_key_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"operator": {"port": 9464}})
    assert caught.value.path == "operator.port"


@pytest.mark.parametrize(("given", "held"), [
    ("00:00", "00:00"), ("7:05", "07:05"), ("23:59", "23:59"), ("off", None), (False, None),
    (None, None),
])
def test_daily_check_is_a_kst_time_or_off(given: object, held: str | None) -> None:
    assert parse_config({"operator": {"daily_check": given}}).operator.daily_check == held


@pytest.mark.parametrize("given", ["24:00", "12:60", "noon", "12:5", True, 750])
def test_a_bad_daily_check_is_named(given: object) -> None:
    with pytest.raises(ConfigError, match=r"^operator\.daily_check: .*HH:MM") as caught:
        parse_config({"operator": {"daily_check": given}})
    assert caught.value.path == "operator.daily_check"


def test_an_unquoted_yaml_time_gets_the_quoting_hint(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("operator:\n  daily_check: 12:30\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="in quotes"):
        load_config(path)
