"""The data-plane actors (smart router, REST and WebSocket fallbacks, health probe).

Plain pykka actors that import nothing of ``supervisors`` or ``lifeline``: ``smart_router``
(with its pure ``routing`` rules and the ``snapshots`` board), ``rest_fallback``,
``ws_fallback``, ``health_probe``; their ``messages``, ``errors`` and the ``faults`` board.
"""

import logging

__all__: list[str] = []

logging.getLogger(__name__).addHandler(logging.NullHandler())
"""The library never configures logging (only the ``lifeline`` CLI does)."""
