"""Plain-text tables over a :class:`~lifeline.drill.result.DrillResult` (pure functions).

* :func:`phase_table` — ``lifeline drill``'s answer: per phase the levels, detection time,
  time to fallback, recovery time, requests, failed, p50/p99 latency (ms), flaps, restarts,
  alerts and its checks (✓ held, ✗ did not), then every check that did not hold.
* :func:`summary_table` — ``lifeline demo``'s answer: requests per source and level, failed
  requests by error type, per-phase latency, detection and recovery times, alerts fired.
* :func:`compare_table` — one scenario under two configs: each phase's figures side by
  side, the difference, and ``*`` where they differ.

Columns are fixed width within a table (as wide as their widest cell); ``-`` means "did
not happen" (no fault to detect, never recovered, no answer to time).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from lifeline.drill.result import DrillResult, PhaseResult

__all__ = ["compare_table", "phase_table", "summary_table"]

SOURCES = ("smart_router/websocket", "smart_router/rest", "rest_fallback", "ws_fallback",
           "last_known_good")
"""The facade's answer sources, in the order the tables list them (others follow, sorted)."""

YES, NO = "✓", "✗"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _level(value: int | None) -> str:
    return "-" if value is None else str(value)


def _checks(phase: PhaseResult) -> str:
    held = sum(check.ok for check in phase.checks)
    return f"{YES if phase.ok else NO} {held}/{len(phase.checks)}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *,
           left: int = 1, indent: str = "") -> list[str]:
    """Aligned columns: the first ``left`` left-aligned, the others right-aligned."""
    body = [list(row) for row in rows]
    widths = [max([len(headers[i])] + [len(row[i]) for row in body])
              for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [cell.ljust(widths[i]) if i < left else cell.rjust(widths[i])
                 for i, cell in enumerate(cells)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(headers), indent + "  ".join("-" * w for w in widths)] + [
        line(row) for row in body]


def _title(result: DrillResult) -> str:
    scenario = result.scenario
    about = f": {scenario.description}" if scenario.description else ""
    return (f"drill {scenario.name}{about}\n"
            f"config {result.config}, started {result.started_at}, "
            f"{scenario.duration:.1f} s planned")


def _verdict(result: DrillResult) -> str:
    checks = result.checks
    held = sum(check.ok for check in checks)
    word = "ok" if result.ok else "FAILED"
    return f"result: {word} ({held} of {len(checks)} checks held)"


def _failed_checks(result: DrillResult) -> list[str]:
    lines = [f"  {NO} {phase.name}: {check.name}" + (f" ({check.detail})" if check.detail
                                                     else "")
             for phase in result.phases for check in phase.checks if not check.ok]
    return ["checks that did not hold:", *lines] if lines else []


def phase_table(result: DrillResult) -> str:
    """Per phase: expected/max/final level, detection, time to fallback, recovery,
    requests, failed, p50/p99 (ms), flaps, restarts, alerts, checks; then the verdict."""
    headers = ("phase", "expect", "max", "final", "detect", "fallback", "recover",
               "requests", "failed", "p50 ms", "p99 ms", "flaps", "restarts", "alerts",
               "checks")
    rows = [(phase.name, _level(phase.expect_level), str(phase.max_level),
             str(phase.final_level), _seconds(phase.detection_s), _seconds(phase.fallback_s),
             _seconds(phase.recovery_s), str(phase.requests), str(phase.failed),
             _ms(phase.p50), _ms(phase.p99), str(phase.flaps), str(phase.restarts),
             str(phase.alerts), _checks(phase))
            for phase in result.phases]
    lines = [_title(result), "", *_table(headers, rows)]
    failed = _failed_checks(result)
    if failed:
        lines += ["", *failed]
    lines += ["", _verdict(result)]
    return "\n".join(lines)


def _ordered_sources(names: Iterable[str]) -> list[str]:
    present = set(names)
    return [s for s in SOURCES if s in present] + sorted(present - set(SOURCES))


def summary_table(result: DrillResult) -> str:
    """The demo's summary: answers per source and level (each sample window counted at the
    level it ended in), failed requests by type, per phase the levels, detection, fallback
    and recovery times and p50/p99 latency, and the alerts fired."""
    by_cell: Counter[tuple[str, int]] = Counter()
    for sample in result.timeline:
        for source, n in sample.sources.items():
            by_cell[source, sample.level] += n
        by_cell["failed", sample.level] += sample.failed
    sources = _ordered_sources(source for source, _ in by_cell if source != "failed")
    levels = range(4)
    rows = [(source, *(str(by_cell[source, level]) for level in levels),
             str(sum(by_cell[source, level] for level in levels)))
            for source in [*sources, "failed"]]
    rows.append(("total", *(str(sum(by_cell[s, level] for s in [*sources, "failed"]))
                            for level in levels),
                 str(sum(by_cell.values()))))
    lines = [_title(result), "", "requests by source and level:",
             *_table(("source", "level 0", "level 1", "level 2", "level 3", "total"), rows,
                     indent="  ")]

    errors: Counter[str] = Counter()
    for phase in result.phases:
        errors.update(phase.errors)
    lines += ["", "failed requests by type: " + (
        ", ".join(f"{name} {n}" for name, n in sorted(errors.items())) or "none")]

    phase_rows = [(phase.name, _level(phase.expect_level), str(phase.max_level),
                   str(phase.final_level), _seconds(phase.detection_s),
                   _seconds(phase.fallback_s), _seconds(phase.recovery_s),
                   str(phase.requests), str(phase.failed), _ms(phase.p50), _ms(phase.p99),
                   _checks(phase))
                  for phase in result.phases]
    lines += ["", "phases:", *_table(
        ("phase", "expect", "max", "final", "detect", "fallback", "recover", "requests",
         "failed", "p50 ms", "p99 ms", "checks"), phase_rows, indent="  ")]

    lines += ["", f"alerts fired: {len(result.alerts)}"]
    lines += [f"  {alert.t:7.2f} s  {alert.text}" for alert in result.alerts]
    failed = _failed_checks(result)
    if failed:
        lines += ["", *failed]
    lines += ["", _verdict(result)]
    return "\n".join(lines)


_Metric = tuple[str, Callable[[PhaseResult], float | int | None], Callable[[float | None], str]]


def _count(value: float | None) -> str:
    return "-" if value is None else str(int(value))


_METRICS: tuple[_Metric, ...] = (
    ("max level", lambda p: p.max_level, _count),
    ("final level", lambda p: p.final_level, _count),
    ("detect", lambda p: p.detection_s, _seconds),
    ("fallback", lambda p: p.fallback_s, _seconds),
    ("recover", lambda p: p.recovery_s, _seconds),
    ("requests", lambda p: p.requests, _count),
    ("failed", lambda p: p.failed, _count),
    ("p50 ms", lambda p: p.p50, _ms),
    ("p99 ms", lambda p: p.p99, _ms),
    ("flaps", lambda p: p.flaps, _count),
    ("restarts", lambda p: p.restarts, _count),
    ("alerts", lambda p: p.alerts, _count),
)


def _delta(a: float | int | None, b: float | int | None, show: Callable[[float | None], str]
           ) -> str:
    if a is None or b is None:
        return ""
    text = show(abs(b - a))
    return ("+" if b >= a else "-") + text


def compare_table(a: DrillResult, b: DrillResult) -> str:
    """The same scenario's phases under two configs side by side: per phase and figure A,
    B, the difference B − A, and ``*`` where the shown values differ; a phase only one
    run has shows ``-`` for the other."""
    header = [f"compare {a.scenario.name}: A = config {a.config}, B = config {b.config}"]
    names = [p.name for p in a.phases] + [p.name for p in b.phases
                                          if p.name not in {q.name for q in a.phases}]
    phases_a = {p.name: p for p in a.phases}
    phases_b = {p.name: p for p in b.phases}
    rows: list[tuple[str, ...]] = []
    for name in names:
        pa, pb = phases_a.get(name), phases_b.get(name)
        for index, (metric, get, show) in enumerate(_METRICS):
            va = None if pa is None else get(pa)
            vb = None if pb is None else get(pb)
            text_a = "-" if pa is None else show(va)
            text_b = "-" if pb is None else show(vb)
            rows.append((name if index == 0 else "", metric, text_a, text_b,
                         _delta(va, vb, show) if text_a != text_b else "",
                         "*" if text_a != text_b else ""))
        check_a = "-" if pa is None else _checks(pa)
        check_b = "-" if pb is None else _checks(pb)
        rows.append(("", "checks", check_a, check_b, "", "*" if check_a != check_b else ""))
    verdict_a = "ok" if a.ok else "FAILED"
    verdict_b = "ok" if b.ok else "FAILED"
    rows.append(("result", "", verdict_a, verdict_b, "", "*" if verdict_a != verdict_b else ""))
    lines = [*header, "", *_table(("phase", "figure", "A", "B", "B - A", ""), rows, left=2)]
    return "\n".join(lines)
