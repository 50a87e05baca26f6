"""Stopping children within their ``shutdown`` time, abandoning those that do not stop.

An abandoned child is unregistered from pykka's ``ActorRegistry`` (so ``stop_all`` never
waits for it), its addressing entry is closed (its waiting messages move to the buffer),
and it is asked to stop should it ever come back; its thread is a daemon.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pykka

from supervisors.addressing import Entry
from supervisors.messages import GroupStopped

__all__ = ["StopItem", "abandon", "stop_child", "stop_in_reverse"]


@dataclass(frozen=True, slots=True)
class StopItem:
    """One child instance to stop."""

    child_id: str
    instance: int
    ref: pykka.ActorRef[Any]
    shutdown: float
    entry: Entry


def abandon(item: StopItem) -> None:
    """Give up on ``item`` without waiting for it."""
    pykka.ActorRegistry.unregister(item.ref)
    item.entry.close(item.instance)
    item.ref.stop(block=False)  # answered with "already dead" if it is


def stop_child(item: StopItem) -> bool:
    """Ask the child to stop and wait up to its ``shutdown``; False if it was abandoned."""
    if item.shutdown == 0:
        abandon(item)
        return False
    timeout = None if math.isinf(item.shutdown) else item.shutdown
    future = item.ref.stop(block=False)
    try:
        future.get(timeout=timeout)
    except pykka.Timeout:
        abandon(item)
        return False
    return True


def stop_in_reverse(items: Sequence[StopItem], notify: pykka.ActorRef[Any], op: int) -> None:
    """Stop ``items`` last first, then tell ``notify`` ``GroupStopped(op, killed)``."""
    killed = tuple(
        (item.child_id, item.instance) for item in reversed(items) if not stop_child(item)
    )
    with contextlib.suppress(pykka.ActorDeadError):  # gone: it stopped everything itself
        notify.tell(GroupStopped(op, killed))
