"""Foreground runner of the simulator: what ``lifeline sim`` calls."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import TextIO

from upbit_sim.settings import SimulatorSettings
from upbit_sim.simulator import Simulator

__all__ = ["serve"]


def serve(settings: SimulatorSettings | None = None, *, out: TextIO | None = None) -> None:
    """Run a simulator on ``settings``' host, port and seed (default: the defaults) until
    SIGINT or SIGTERM; prints its base URL first.

    Must be called from the main thread (it installs the signal handlers, and puts
    the previous ones back before returning).
    """
    settings = settings if settings is not None else SimulatorSettings()
    stream = out if out is not None else sys.stdout
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    sim = Simulator(seed=settings.seed, host=settings.host, port=settings.port, preload=True)
    try:
        sim.start()
        print(sim.base_url, file=stream, flush=True)
        print(
            f"websocket: {sim.ws_url}  controls: {sim.control_url}/faults  seed: {sim.seed}",
            file=stream,
            flush=True,
        )
        while not done.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
