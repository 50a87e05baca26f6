"""Where the simulator listens and which markets it makes: its defaults, stated once.

:class:`Simulator` takes its constructor defaults from here, ``lifeline sim`` and
``lifeline demo`` read the ``simulator:`` section of ``config.yaml`` into it
(``lifeline.config``), and their flags override what the file says.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from quotation.errors import InvalidValue
from quotation.values import check

__all__ = ["SimulatorSettings", "check_host", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only: ``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_host(host: str, *, allow_remote: bool) -> None:
    """Refuse (``InvalidValue`` naming ``host``) a non-loopback ``host`` unless ``allow_remote``:
    the ``/_sim/`` controls have no authentication, so exposing them must be asked for."""
    if not isinstance(host, str) or not host:
        raise InvalidValue(f"host must be a host name or address, got {host!r}",
                           field="host", value=host)
    if not allow_remote and not is_loopback(host):
        raise InvalidValue(
            f"host {host!r} is not a loopback address and the simulator's /_sim/ controls have"
            " no authentication; pass --allow-remote (simulator.allow_remote: true) to expose it",
            field="host",
            value=host,
        )


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """The local Upbit-compatible simulator used by ``lifeline sim`` and the demo."""

    host: str = "127.0.0.1"
    """The address to listen on (loopback: nothing outside this machine reaches it); any other
    address needs ``allow_remote``."""
    allow_remote: bool = False
    """Allow a non-loopback ``host``: anyone who reaches it can drive the fault controls."""
    port: int = 0
    """The TCP port; 0 picks a free one."""
    seed: int = 1
    """Seeds the market catalogue, the trades and the faults: one seed, one exchange."""
    replay_dir: str | None = None
    """The folder ``POST /_sim/ws/replay?path=NAME`` reads recordings from (``NAME`` relative
    to it); ``None``: replay over HTTP is refused (the Python ``sim.ws.replay`` still works)."""

    def __post_init__(self) -> None:
        check_host(self.host, allow_remote=self.allow_remote)
        check("port", self.port, at_least=0, at_most=65535, integer=True)
        check("seed", self.seed, integer=True)
        if self.replay_dir is not None and (not isinstance(self.replay_dir, str)
                                            or not self.replay_dir):
            raise InvalidValue(f"replay_dir must be a folder or None, got {self.replay_dir!r}",
                               field="replay_dir", value=self.replay_dir)
