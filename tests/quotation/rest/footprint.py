"""What a hostile answer costs the process: the peak RSS growth while it is read, and the open
file descriptors and threads left once its client and server are closed.

Used around a whole exchange (server, client, call, close)::

    with Footprint() as footprint:
        with SomeServer() as server, RestClient(...) as client:
            ...
    footprint.assert_back_to_baseline()
    assert footprint.peak_rss_growth < bound

RSS is sampled from ``/proc/self/statm`` by one thread every ``SAMPLE_EVERY`` seconds (at most
``MAX_SAMPLES`` samples), so the peak it reports can only be lower than the true one: a bound
that holds here holds, and a body held whole (hundreds of MiB) cannot slip between samples.
No ``gc.collect()`` is called: what is left open must have been closed by the code.
"""

from __future__ import annotations

import gc
import os
import threading
import time

__all__ = ["MAX_SAMPLES", "SAMPLE_EVERY", "SETTLE", "Footprint", "open_fds", "rss_bytes"]

SAMPLE_EVERY = 0.002
MAX_SAMPLES = 60_000
"""Two minutes of samples: longer than any test's timeout."""
SETTLE = 5.0
"""Seconds the baseline check waits for the servers' side of the exchange to close."""
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """This process's resident set size now."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def open_fds() -> dict[int, str]:
    """This process's open file descriptors and what each points to."""
    fds: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return fds


class Footprint:
    """Baseline fds, threads and RSS on entry; peak RSS sampled until exit."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="footprint-rss", daemon=True)
        self.baseline_rss = 0
        self.peak_rss = 0
        self.baseline_fds: dict[int, str] = {}
        self.baseline_threads: set[threading.Thread] = set()

    def __enter__(self) -> Footprint:
        self.baseline_fds = open_fds()
        self.baseline_threads = set(threading.enumerate())
        self.baseline_rss = self.peak_rss = rss_bytes()
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sampler.join(5)

    @property
    def peak_rss_growth(self) -> int:
        """The highest RSS sampled inside the block, minus the RSS on entry (bytes)."""
        return self.peak_rss - self.baseline_rss

    def _sample(self) -> None:
        for _ in range(MAX_SAMPLES):
            self.peak_rss = max(self.peak_rss, rss_bytes())
            if self._stop.wait(SAMPLE_EVERY):
                return

    def assert_back_to_baseline(self, settle: float = SETTLE) -> None:
        """No more fds than on entry (those added are named) and no thread started inside the
        block still alive, within ``settle`` seconds: a test server's handler thread closes
        its side of a connection a moment after the client's close returned (under load,
        later). The garbage collector is off while it waits, so a socket that only a
        collection would close is still counted."""
        end = time.monotonic() + settle
        enabled = gc.isenabled()
        gc.disable()
        try:
            while True:
                now = open_fds()
                left = [t.name for t in threading.enumerate() if t not in self.baseline_threads]
                if (len(now) <= len(self.baseline_fds) and not left) or time.monotonic() >= end:
                    break
                time.sleep(0.02)
        finally:
            if enabled:
                gc.enable()
        added = {fd: target for fd, target in now.items() if self.baseline_fds.get(fd) != target}
        assert len(now) <= len(self.baseline_fds), f"fds left open: {added}"
        assert not left, f"threads left running: {left}"
