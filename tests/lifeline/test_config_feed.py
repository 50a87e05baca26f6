"""The ``feed:`` section: exactly the issue's keys and defaults, strict like the others."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lifeline.config import load_config, parse_config
from lifeline.config_schema import ConfigError
from lifeline.feed import DEFAULT_LEADER_TTL, DEFAULT_STREAM_MAXLEN, DEFAULT_STREAM_PREFIX
from lifeline.settings import FeedMode, FeedSettings
from quotation.errors import InvalidValue

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parent.parent.parent


def test_the_feed_section_has_exactly_the_issues_keys_and_defaults() -> None:
    feed = parse_config({}).feed
    assert feed == FeedSettings()
    assert (feed.mode, feed.redis_url, feed.stream_prefix, feed.leader_ttl,
            feed.stream_maxlen) == (FeedMode.LOCAL, "redis://127.0.0.1:6379/0", "lifeline",
                                    5.0, 10000)
    constants = (DEFAULT_LEADER_TTL, DEFAULT_STREAM_MAXLEN, DEFAULT_STREAM_PREFIX)
    assert (feed.leader_ttl, feed.stream_maxlen, feed.stream_prefix) == constants


def test_the_shipped_config_yaml_shows_every_feed_key_with_its_default() -> None:
    shipped = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["feed"]
    assert set(shipped) == {"mode", "redis_url", "stream_prefix", "leader_ttl",
                            "stream_maxlen"}
    assert load_config(REPO / "config.yaml").feed == FeedSettings()


def test_shared_mode_parses() -> None:
    feed = parse_config({"feed": {"mode": "shared", "redis_url": "redis://10.0.0.5:6380/2",
                                  "leader_ttl": 2}}).feed
    assert feed.mode is FeedMode.SHARED
    assert feed.leader_ttl == 2.0
    assert feed.redis_url == "redis://10.0.0.5:6380/2"


@pytest.mark.parametrize(("key", "value"), [
    ("mode", "cluster"), ("redis_url", "http://127.0.0.1:6379"), ("redis_url", 6379),
    ("stream_prefix", ""), ("stream_prefix", "a b"), ("leader_ttl", 0),
    ("leader_ttl", "5s"), ("stream_maxlen", 0), ("stream_maxlen", 10.5),
])
def test_a_bad_feed_value_is_a_config_error_at_its_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"feed": {key: value}})
    assert caught.value.path == f"feed.{key}"
    assert [p.path for p in caught.value.problems] == [f"feed.{key}"]


def test_an_unknown_feed_key_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"feed": {"redis": "redis://127.0.0.1"}})
    assert caught.value.path == "feed.redis"


def test_a_password_in_a_bad_redis_url_is_not_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"feed": {"redis_url": "http://user:hunter2@127.0.0.1:6379"}})
    assert "hunter2" not in str(caught.value)
    with pytest.raises(InvalidValue) as refused:  # nor on the error's value, for a handler
        FeedSettings(redis_url="http://user:hunter2@127.0.0.1:6379")
    assert "hunter2" not in str(refused.value) and "hunter2" not in repr(refused.value.value)


def test_local_mode_never_imports_redis() -> None:
    code = ("import sys\n"
            "from lifeline import MarketDataSystem\n"
            "from lifeline.config import load_config\n"
            f"config = load_config({str(REPO / 'config.yaml')!r})\n"
            "system = MarketDataSystem.from_config(config)\n"
            "system.status()\n"
            "print('redis' in sys.modules, any(m.startswith('redis.') for m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=25, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
