"""A drill run is drawn as a valid PNG of a real size; without matplotlib, a typed error."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from lifeline.drill.plot import PlotUnavailable, plot, require_matplotlib
from lifeline.drill.result import (
    AlertMark,
    Check,
    DrillResult,
    FaultWindow,
    LevelMark,
    PhaseResult,
    Sample,
    ScenarioInfo,
)

pytestmark = pytest.mark.timeout(60)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def level_at(t: float) -> int:
    return 0 if t < 3 else 2 if t < 9 else 3 if t < 12 else 0


def synthetic_run() -> DrillResult:
    """20 s of 0.25 s samples: normal, crash loop (Level 2), both down (Level 3), recovery."""
    samples = []
    for tick in range(1, 81):
        t = tick * 0.25
        level = level_at(t)
        sources = ({"smart_router/websocket": 20 + tick % 5, "smart_router/rest": 4}
                   if level == 0 else
                   {"rest_fallback": 18, "ws_fallback": 3 + tick % 3} if level == 2 else
                   {"last_known_good": 12})
        latency = 0.001 + 0.0002 * math.sin(tick) + 0.004 * level
        samples.append(Sample(t, level, sources, 2 if level == 3 else 0, latency,
                              latency * 6, tick // 8))
    phases = (
        PhaseResult("normal", 0, 3, 0, 0, 0, checks=(Check("level 0", True),)),
        PhaseResult("crash loop", 3, 9, 2, 2, 2, 0.4, 0.42, None, 600, 0,
                    checks=(Check("level 2", True),)),
        PhaseResult("both down", 9, 12, 3, 3, 3, 0.3, 0.3, None, 300, 24,
                    {"MarketDataUnavailable": 24}, checks=(Check("level 3", True),)),
        PhaseResult("recovery", 12, 20, 0, 3, 0, None, None, 1.8, 700, 0,
                    checks=(Check("back at 0", True),)),
    )
    return DrillResult(
        ScenarioInfo("synthetic", "a made-up run", 20.0), "built-in",
        "2026-11-30T00:00:00+00:00", tuple(samples),
        (FaultWindow("crash", "smart_router", "crash", 3.0, 12.0),
         FaultWindow("black hole", "simulator", "black_hole", 9.0, 12.0)),
        (LevelMark(3.4, 0, 2, "crash loop"), LevelMark(9.3, 2, 3, "fallbacks down"),
         LevelMark(13.8, 3, 0, "healthy")),
        phases, (AlertMark(3.4, "level 0 → 2"),))


def test_a_drill_is_drawn_as_a_png_of_non_trivial_size(tmp_path: Path) -> None:
    out = plot(synthetic_run(), tmp_path / "drill.png")
    data = out.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert (length, chunk) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    assert width > 0
    assert height > 0
    assert (width, height) == (1200, 800)
    assert len(data) > 20_000


def test_an_empty_run_still_draws(tmp_path: Path) -> None:
    empty = DrillResult(ScenarioInfo("empty", "", 1.0), "built-in", "2026-11-30T00:00:00+00:00")
    assert plot(empty, tmp_path / "empty.png").read_bytes()[:8] == PNG_SIGNATURE


def test_without_the_plot_extra_a_typed_error_says_what_to_install() -> None:
    with pytest.raises(PlotUnavailable) as caught:
        require_matplotlib("matplotlib_that_is_not_installed")
    assert caught.value.module == "matplotlib_that_is_not_installed"
    assert "pip install 'lifeline[plot]'" in str(caught.value)
    assert isinstance(caught.value.__cause__, ImportError)


def test_with_matplotlib_installed_it_is_found() -> None:
    assert require_matplotlib().__name__ == "matplotlib"
