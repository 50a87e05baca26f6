"""Foreground runner of the simulator: what ``lifeline sim`` calls."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TextIO

from upbit_sim.settings import SimulatorSettings, is_loopback
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
    if not is_loopback(settings.host):
        print(
            f"warning: listening on {settings.host} (allow_remote): anyone who reaches it can"
            " drive the unauthenticated /_sim/ controls",
            file=sys.stderr,
            flush=True,
        )
    sim = Simulator(
        seed=settings.seed,
        host=settings.host,
        port=settings.port,
        preload=True,
        allow_remote=settings.allow_remote,
        replay_dir=Path(settings.replay_dir) if settings.replay_dir is not None else None,
    )
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
