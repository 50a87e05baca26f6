"""A drill run as a timeline picture (PNG): ``lifeline drill ... --plot OUT.png``.

Three panels over the run's time, sharing the x axis: the failure level (a step line),
the answers per source in each sample window (stacked, failures on top in red), and p50
and p99 latency (ms, log scale). Fault windows are shaded and labelled in every panel,
phase boundaries are dashed lines with the phase names on top.

matplotlib is an optional extra (``pip install 'lifeline[plot]'``), imported only when a
picture is drawn; without it :func:`plot` raises :class:`PlotUnavailable` saying which
extra to install. Drawing uses the Agg canvas directly (no screen, no pyplot state), so it
is safe from any thread.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from lifeline.drill.report import SOURCES
from lifeline.drill.result import DrillResult
from lifeline.errors import LifelineError

__all__ = ["PlotUnavailable", "plot", "require_matplotlib"]

_COLOURS = {"smart_router/websocket": "#1f77b4", "smart_router/rest": "#6baed6",
            "rest_fallback": "#ff7f0e", "ws_fallback": "#fdae6b", "last_known_good": "#9467bd"}
_FAILED = "#d62728"
_LEVEL_NAMES = ("0 normal", "1 partial", "2 fallback", "3 last known good")


class PlotUnavailable(LifelineError):
    """The picture cannot be drawn: ``module`` (matplotlib) is not installed; install the
    ``plot`` extra."""

    def __init__(self, module: str) -> None:
        super().__init__(f"drawing a drill needs {module}, which is not installed: "
                         "pip install 'lifeline[plot]'")
        self.module = module


def require_matplotlib(module: str = "matplotlib") -> ModuleType:
    """Import ``module`` (matplotlib) or raise :class:`PlotUnavailable` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PlotUnavailable(module) from exc


def plot(result: DrillResult, path: str | Path) -> Path:
    """Draw ``result`` as a PNG at ``path`` (see the module docstring); returns the path.

    Raises :class:`PlotUnavailable` without matplotlib, ``OSError`` when ``path`` cannot
    be written.
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 (optional extra)
    from matplotlib.figure import Figure  # noqa: PLC0415 (optional extra)

    target = Path(path)
    figure = Figure(figsize=(12, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    level_ax, mix_ax, latency_ax = figure.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": (1, 2, 1.4)})
    end = max([result.scenario.duration] + [s.t for s in result.timeline]
              + [p.end for p in result.phases])
    times = [sample.t for sample in result.timeline]

    _levels(level_ax, result, times)
    _mix(mix_ax, result, times)
    _latency(latency_ax, result, times)
    for ax in (level_ax, mix_ax, latency_ax):
        _faults_and_phases(ax, result, end)
    for fault in result.faults:
        finish = end if fault.end is None else fault.end
        level_ax.text((fault.start + finish) / 2, 3.35, f"{fault.target}: {fault.kind}",
                      ha="center", va="bottom", fontsize=8, color="#7f0000")
    for phase in result.phases:
        level_ax.text((phase.start + phase.end) / 2, 3.9, phase.name, ha="center",
                      va="bottom", fontsize=9, weight="bold")
    latency_ax.set_xlim(0, end)
    latency_ax.set_xlabel("seconds since the start")
    figure.suptitle(f"drill {result.scenario.name} (config {result.config}): "
                    + ("all checks held" if result.ok else "CHECKS FAILED"),
                    color="black" if result.ok else _FAILED)
    figure.savefig(target, format="png")
    return target


def _levels(ax: Any, result: DrillResult, times: list[float]) -> None:
    ax.step(times, [sample.level for sample in result.timeline], where="pre",
            color="black", linewidth=1.8)
    ax.set_ylim(-0.3, 4.4)
    ax.set_yticks(range(4), _LEVEL_NAMES, fontsize=8)
    ax.set_ylabel("level")
    ax.grid(axis="y", alpha=0.3)


def _mix(ax: Any, result: DrillResult, times: list[float]) -> None:
    present = {source for sample in result.timeline for source in sample.sources}
    sources = [s for s in SOURCES if s in present] + sorted(present - set(SOURCES))
    series = [[sample.sources.get(source, 0) for sample in result.timeline]
              for source in sources]
    series.append([sample.failed for sample in result.timeline])
    if times:
        ax.stackplot(times, series, step="pre",
                     labels=[*sources, "failed"],
                     colors=[_COLOURS.get(s, "#8c8c8c") for s in sources] + [_FAILED])
        ax.legend(loc="upper left", fontsize=8, ncols=3)
    ax.set_ylabel("answers per sample")


def _latency(ax: Any, result: DrillResult, times: list[float]) -> None:
    for name, color in (("p50", "#2ca02c"), ("p99", "#8c564b")):
        values = [None if getattr(s, name) is None else getattr(s, name) * 1000
                  for s in result.timeline]
        ax.plot(times, [float("nan") if v is None else v for v in values],
                label=name, color=color, linewidth=1.2)
    if any(s.p50 or s.p99 for s in result.timeline):
        ax.set_yscale("log")
    ax.set_ylabel("latency ms")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)


def _faults_and_phases(ax: Any, result: DrillResult, end: float) -> None:
    for fault in result.faults:
        ax.axvspan(fault.start, end if fault.end is None else fault.end,
                   color=_FAILED, alpha=0.12, linewidth=0)
    for phase in result.phases[1:]:
        ax.axvline(phase.start, color="grey", linestyle="--", linewidth=0.8)
