"""The live status of a drill or the demo: one line per sample, as a terminal or a log wants it.

:class:`Progress` is handed each :class:`~lifeline.drill.result.Sample` with the name of
the phase it belongs to (the runner's ``on_sample``). On a terminal it rewrites one status
line in place (``\\r``, then the text, then "clear to end of line"), cut to the terminal's
width so it never wraps; elsewhere (a pipe, a file, CI) it writes plain lines: one whenever
the level or the phase changes, otherwise at most one per :data:`PLAIN_INTERVAL` seconds
on the injected clock. ``message`` prints a line of its own without losing the status
line; ``close`` ends the status line.

A status line reads::

    12.5 s  level 2  rest_fb 93% ws_fb 7%  failed 0  p50 3.1 ms  p99 40.2 ms  restarts 4  crash loop
"""

from __future__ import annotations

import shutil
from typing import TextIO

from lifeline.drill.result import Sample
from quotation.clock import Clock, SystemClock

__all__ = ["PLAIN_INTERVAL", "Progress", "status_line"]

PLAIN_INTERVAL = 1.0
"""Seconds between two plain lines when neither the level nor the phase changed."""

_SHORT = {"smart_router/websocket": "router/ws", "smart_router/rest": "router/rest",
          "rest_fallback": "rest_fb", "ws_fallback": "ws_fb", "last_known_good": "lkg"}
_CLEAR_TO_END = "\x1b[K"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f} ms"


def status_line(sample: Sample, phase: str) -> str:
    """One sample as a status line: elapsed time, level, the share of answers per source
    (largest first; ``idle`` when none), failures, p50/p99 latency, restarts, and last the
    phase (a narrow terminal cuts the phase's name, not the figures)."""
    answered = sum(sample.sources.values())
    if answered:
        shares = sorted(sample.sources.items(), key=lambda item: (-item[1], item[0]))
        mix = " ".join(f"{_SHORT.get(source, source)} {n * 100 // answered}%"
                       for source, n in shares if n)
    else:
        mix = "idle"
    return (f"{sample.t:6.1f} s  level {sample.level}  {mix}  failed {sample.failed}"
            f"  p50 {_ms(sample.p50)}  p99 {_ms(sample.p99)}  restarts {sample.restarts}"
            f"  {phase}")


class Progress:
    """Shows each sample on ``stream``: in place on a terminal, plain lines otherwise.

    ``tty`` (default: ``stream.isatty()``) chooses the mode; ``width`` (terminal mode,
    default: the terminal's columns) is where the line is cut; ``clock`` (default: the
    system's) times the plain lines.
    """

    def __init__(self, stream: TextIO, *, tty: bool | None = None, width: int | None = None,
                 clock: Clock | None = None) -> None:
        self._stream = stream
        self._tty = _isatty(stream) if tty is None else tty
        self._width = width if width is not None else shutil.get_terminal_size().columns
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._line = ""  # the status line on screen (terminal mode), "" when none
        self._last: tuple[int, str] | None = None  # (level, phase) of the last plain line
        self._last_at = 0.0

    @property
    def tty(self) -> bool:
        """Whether the status line is rewritten in place."""
        return self._tty

    def update(self, sample: Sample, phase: str) -> None:
        """Show ``sample`` of ``phase`` (see the module docstring for when a line appears)."""
        text = status_line(sample, phase)
        if self._tty:
            self._line = text[:max(self._width - 1, 1)]
            self._write("\r" + self._line + _CLEAR_TO_END)
            return
        now = self._clock.monotonic()
        key = (sample.level, phase)
        if key != self._last or now - self._last_at >= PLAIN_INTERVAL:
            self._last, self._last_at = key, now
            self._write(text + "\n")

    def message(self, text: str) -> None:
        """Print ``text`` on a line of its own (on a terminal: above the status line)."""
        if self._tty and self._line:
            self._write("\r" + _CLEAR_TO_END + text + "\n" + self._line + _CLEAR_TO_END)
        else:
            self._write(text + "\n")

    def close(self) -> None:
        """End the status line (terminal mode); later calls do nothing more."""
        if self._tty and self._line:
            self._write("\n")
        self._line = ""

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
