"""The drill's text tables say what each phase measured, and where two runs differ."""

from __future__ import annotations

import dataclasses

import pytest

from lifeline.drill.report import compare_table, phase_table, summary_table
from lifeline.drill.result import AlertMark, Check, DrillResult, PhaseResult, Sample
from tests.lifeline.drill.test_result import a_result

pytestmark = pytest.mark.timeout(10)


def row(text: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is ``first_cell``."""
    for line in text.splitlines():
        cells = line.split()
        if line.strip().startswith(first_cell) and cells:
            return line.strip()[len(first_cell):].split()
    raise AssertionError(f"no row {first_cell!r} in:\n{text}")


def test_the_phase_table_has_one_row_per_phase_with_its_figures() -> None:
    text = phase_table(a_result())
    assert row(text, "normal") == ["0", "0", "0", "-", "-", "-", "40", "0", "1.0", "2.0",
                                   "0", "0", "0", "✓", "1/1"]
    assert row(text, "crash loop") == ["2", "2", "2", "0.40", "s", "0.41", "s", "-", "100",
                                       "2", "3.0", "50.0", "1", "7", "1", "✓", "2/2"]
    assert text.splitlines()[-1] == "result: ok (3 of 3 checks held)"


def test_the_phase_table_names_every_check_that_did_not_hold() -> None:
    text = phase_table(a_result(passed=False))
    assert "✗ 1/2" in text
    assert "  ✗ crash loop: max_failed 0 (2 failed)" in text.splitlines()
    assert text.splitlines()[-1] == "result: FAILED (2 of 3 checks held)"


def test_a_tables_rows_are_as_wide_as_its_header() -> None:
    lines = phase_table(a_result()).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("phase"))
    table = lines[header:header + 4]
    assert {len(line) for line in table} == {len(lines[header])}


def test_the_summary_counts_answers_per_source_at_the_level_each_sample_ended_in() -> None:
    result = dataclasses.replace(a_result(), timeline=(
        Sample(0.25, 0, {"smart_router/websocket": 10, "smart_router/rest": 2}, 0),
        Sample(0.5, 1, {"smart_router/rest": 5}, 0),
        Sample(0.75, 2, {"rest_fallback": 7, "ws_fallback": 1}, 0),
        Sample(1.0, 3, {"last_known_good": 4}, 3),
    ))
    text = summary_table(result)
    assert row(text, "smart_router/websocket") == ["10", "0", "0", "0", "10"]
    assert row(text, "smart_router/rest") == ["2", "5", "0", "0", "7"]
    assert row(text, "rest_fallback") == ["0", "0", "7", "0", "7"]
    assert row(text, "ws_fallback") == ["0", "0", "1", "0", "1"]
    assert row(text, "last_known_good") == ["0", "0", "0", "4", "4"]
    assert row(text, "failed") == ["0", "0", "0", "3", "3"]
    assert row(text, "total") == ["12", "5", "8", "7", "32"]


def test_the_summary_lists_failures_by_type_latency_detection_and_alerts() -> None:
    text = summary_table(a_result())
    assert "failed requests by type: MarketDataUnavailable 2" in text
    assert row(text, "crash loop")[:8] == ["2", "2", "2", "0.40", "s", "0.41", "s", "-"]
    assert "alerts fired: 1" in text
    assert "3.50 s  level 0 → 2" in text
    assert text.splitlines()[-1] == "result: ok (3 of 3 checks held)"


def test_the_summary_says_none_when_nothing_failed() -> None:
    quiet = DrillResult(a_result().scenario, "built-in", "2026-11-30T00:00:00+00:00",
                        phases=(PhaseResult("normal", 0.0, 1.0, 0,
                                            checks=(Check("level 0", True),)),))
    text = summary_table(quiet)
    assert "failed requests by type: none" in text
    assert "alerts fired: 0" in text


def test_compare_marks_only_the_figures_that_differ() -> None:
    a = a_result()
    slow = dataclasses.replace(a.phases[1], detection_s=1.2, restarts=9,
                               checks=(Check("reaches level 2", False, "at 1.2 s"),))
    b = dataclasses.replace(a, config="slow.yaml", phases=(a.phases[0], slow),
                            alerts=(AlertMark(4.0, "x"),))
    text = compare_table(a, b)
    assert "A = config built-in, B = config slow.yaml" in text
    marked = [line.split() for line in text.splitlines() if line.endswith("*")]
    assert marked == [
        ["detect", "0.40", "s", "1.20", "s", "+0.80", "s", "*"],
        ["restarts", "7", "9", "+2", "*"],
        ["checks", "✓", "2/2", "✗", "0/1", "*"],
        ["result", "ok", "FAILED", "*"],
    ]


def test_compare_shows_a_phase_only_one_run_has() -> None:
    a = a_result()
    b = dataclasses.replace(a, phases=a.phases[:1])
    text = compare_table(a, b)
    assert row(text, "crash loop") == ["max", "level", "2", "-", "*"]
