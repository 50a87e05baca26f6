"""The shared feed's tests run against a real ``redis-server`` on 127.0.0.1 (no fake Redis)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from lifeline.feed import connect
from tests.redis_support import RedisServer, redis_server_fixture  # noqa: F401 (registers it)


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A feed client (bounded timeouts) on the test's own Redis; closed after the test."""
    made = connect(redis_server.url, connect_timeout=0.5, socket_timeout=0.5)
    yield made
    made.close()


@pytest.fixture
def clients(redis_server: RedisServer) -> Iterator[Callable[[], redis.Redis]]:
    """Makes feed clients (bounded timeouts) on the test's own Redis; all closed after."""
    made: list[redis.Redis] = []

    def client() -> redis.Redis:
        made.append(connect(redis_server.url, connect_timeout=0.5, socket_timeout=0.5))
        return made[-1]

    yield client
    for each in made:
        each.close()
