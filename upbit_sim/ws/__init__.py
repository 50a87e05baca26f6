"""The simulator's WebSocket side (``/websocket/v1``): the hub and its parts.

``hub`` (the entry point and the REALTIME fan-out), ``request`` (the request frame),
``messages`` (engine records into Upbit messages), ``session`` (one connection),
``state`` (what the parts share), ``injection`` (malformed frames, bursts, replay),
``controls`` (``/_sim/ws/`` over HTTP).
"""

from upbit_sim.ws.hub import WebSocketHub

__all__ = ["WebSocketHub"]
