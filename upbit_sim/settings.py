"""Where the simulator listens and which markets it makes: its defaults, stated once.

:class:`Simulator` takes its constructor defaults from here, ``lifeline sim`` and
``lifeline demo`` read the ``simulator:`` section of ``config.yaml`` into it
(``lifeline.config``), and their flags override what the file says.
"""

from __future__ import annotations

from dataclasses import dataclass

from quotation.errors import InvalidValue
from quotation.values import check

__all__ = ["SimulatorSettings"]


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """The local Upbit-compatible simulator used by ``lifeline sim`` and the demo."""

    host: str = "127.0.0.1"
    """The address to listen on (loopback: nothing outside this machine reaches it)."""
    port: int = 0
    """The TCP port; 0 picks a free one."""
    seed: int = 1
    """Seeds the market catalogue, the trades and the faults: one seed, one exchange."""

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise InvalidValue(f"host must be a host name or address, got {self.host!r}",
                               field="host", value=self.host)
        check("port", self.port, at_least=0, at_most=65535, integer=True)
        check("seed", self.seed, integer=True)
