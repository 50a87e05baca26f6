"""The live status: rewritten in place on a terminal, plain rate-limited lines elsewhere."""

from __future__ import annotations

import io

import pytest

from lifeline.drill.progress import Progress, status_line
from lifeline.drill.result import Sample
from tests.fakes import ManualClock

pytestmark = pytest.mark.timeout(10)


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def sample(t: float, level: int = 0, **sources: int) -> Sample:
    return Sample(t, level, sources or {"smart_router/websocket": 3, "smart_router/rest": 1},
                  0, 0.0021, 0.0153, 2)


def test_a_status_line_shows_time_level_source_mix_latency_restarts_and_phase() -> None:
    line = status_line(sample(12.5, 2, rest_fallback=9, ws_fallback=1), "crash loop")
    assert line == ("  12.5 s  level 2  rest_fb 90% ws_fb 10%  failed 0"
                    "  p50 2.1 ms  p99 15.3 ms  restarts 2  crash loop")


def test_a_window_without_answers_is_idle() -> None:
    line = status_line(Sample(1.0, 3, {}, 4, None, None, 0), "down")
    assert "level 3  idle  failed 4  p50 -  p99 -" in line


def test_on_a_terminal_one_line_is_rewritten_in_place_and_closed_once() -> None:
    stream = Terminal()
    progress = Progress(stream, width=200)
    assert progress.tty
    progress.update(sample(0.25), "normal")
    progress.update(sample(0.5, 1), "unstable")
    progress.close()
    progress.close()
    text = stream.getvalue()
    assert text.count("\n") == 1
    assert text.endswith("\n")
    writes = text.rstrip("\n").split("\r")[1:]
    assert [w.endswith("\x1b[K") for w in writes] == [True, True]
    assert "level 0" in writes[0]
    assert writes[0].endswith("normal\x1b[K")
    assert "level 1" in writes[1]
    assert writes[1].endswith("unstable\x1b[K")


def test_on_a_terminal_the_line_is_cut_to_the_terminals_width() -> None:
    stream = Terminal()
    Progress(stream, width=30).update(sample(0.25), "a phase with a long name")
    assert stream.getvalue() == "\r" + status_line(sample(0.25), "a phase with a long name")[
        :29] + "\x1b[K"


def test_a_message_on_a_terminal_goes_above_the_status_line() -> None:
    stream = Terminal()
    progress = Progress(stream, width=200)
    progress.update(sample(0.25), "normal")
    progress.message("phase unstable begins")
    lines = stream.getvalue().split("\n")
    assert lines[0].endswith("\x1b[Kphase unstable begins")
    assert lines[1] == status_line(sample(0.25), "normal") + "\x1b[K"


def test_elsewhere_a_plain_line_comes_at_most_once_a_second_when_nothing_changes() -> None:
    stream, clock = io.StringIO(), ManualClock()
    progress = Progress(stream, clock=clock)
    assert not progress.tty
    for tick in range(12):  # 3 s of 0.25 s samples, level and phase unchanged
        progress.update(sample(tick * 0.25), "normal")
        clock.advance(0.25)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["0.0", "1.0", "2.0"]
    assert "\r" not in stream.getvalue()


def test_elsewhere_every_level_or_phase_change_writes_a_line_at_once() -> None:
    stream, clock = io.StringIO(), ManualClock()
    progress = Progress(stream, clock=clock)
    progress.update(sample(0.0, 0), "normal")
    progress.update(sample(0.25, 1), "normal")  # level change
    progress.update(sample(0.5, 1), "unstable")  # phase change
    progress.update(sample(0.75, 1), "unstable")  # neither, within the second
    progress.update(sample(1.0, 0), "unstable")  # level change
    times = [line.split()[0] for line in stream.getvalue().splitlines()]
    assert times == ["0.0", "0.2", "0.5", "1.0"]


def test_elsewhere_a_message_is_a_plain_line() -> None:
    stream = io.StringIO()
    progress = Progress(stream, clock=ManualClock())
    progress.message("phase normal begins")
    progress.close()
    assert stream.getvalue() == "phase normal begins\n"
