"""A shared-mode system's id in the feed (``lifeline.system._feed_owner``) is unique per
system, not only per process: two containers started with ``--network host`` and both
running as pid 1 have the same ``<hostname>/<pid>``. With one id for two hosts, the symbol
registry keys collide (one host's registration replaces the other's symbols, and its
unregistration at a clean stop drops them). The suffix is a short random part, so the id
stays readable: ``<hostname>/<pid>/<6 hex digits>``. Real ``redis-server``; the two
"containers" are two Python processes given the same ``<hostname>/<pid>``."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import redis

from lifeline.feed import FeedKeys
from lifeline.feed.streams import SymbolRegistry
from lifeline.system import _feed_owner

pytestmark = pytest.mark.timeout(60)

SAME = "box/1"
"""What two containers with ``--network host``, each running as pid 1, are both called."""
READABLE = re.compile(r"^box/1/[0-9a-f]{6}$")


def _owner_in_a_new_process() -> str:
    """``_feed_owner(SAME)`` as the first shared system of a fresh process computes it."""
    done = subprocess.run(
        [sys.executable, "-c",
         f"from lifeline.system import _feed_owner; print(_feed_owner({SAME!r}))"],
        capture_output=True, text=True, timeout=45, check=True)
    return done.stdout.strip()


def test_two_systems_of_one_process_get_different_readable_ids() -> None:
    ids = [_feed_owner(SAME) for _ in range(3)]
    assert len(set(ids)) == 3, ids
    assert all(READABLE.match(each) for each in ids), ids


def test_two_processes_with_the_same_hostname_and_pid_keep_their_own_symbols(
        client: redis.Redis) -> None:
    first, second = _owner_in_a_new_process(), _owner_in_a_new_process()
    assert first != second, "two containers' first systems share one id"
    assert READABLE.match(first) and READABLE.match(second), (first, second)
    registry = SymbolRegistry(client, FeedKeys("ids"), ttl=30.0)
    registry.register(first, ["KRW-BTC"])
    registry.register(second, ["KRW-ETH"])
    assert registry.union() == {"KRW-BTC", "KRW-ETH"}
    registry.unregister(first)  # the first host stops cleanly: the second's stay
    assert registry.union() == {"KRW-ETH"}
