"""The shared feed's tests run against a real ``redis-server`` on 127.0.0.1 (no fake Redis)."""

from __future__ import annotations

from collections.abc import Iterator

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
