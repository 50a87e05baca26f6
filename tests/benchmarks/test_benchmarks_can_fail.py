"""Rule: a benchmark can fail. Each ``benchmarks/bench_*.py`` prints its verdict last and exits
1 when a goal is missed; a goal's value is overridden with ``--goal NAME=VALUE`` or
``$LIFELINE_BENCH_GOALS``; a bad override is a usage error (2).

The scripts run as subprocesses with ``--quick`` (a few seconds each) and a goal no machine
can meet, so the outcome does not depend on how fast this machine is: nothing here asserts a
timing. The shared exit logic (``benchmarks/_goals.py``) is tested directly as well.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.timeout(10)

BENCHMARKS = Path(__file__).resolve().parent.parent.parent / "benchmarks"


def _load_goals() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_goals", BENCHMARKS / "_goals.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_goals"] = module  # as the scripts know it; dataclasses look it up there
    spec.loader.exec_module(module)
    return module


goals = _load_goals()

IMPOSSIBLE = {
    "bench_facade": "cache_hit_vs_ask=0",
    "bench_parsing": "trade_vs_json_loads=0",
    "bench_rest": "ticker_ratio=0",
    "bench_shared_feed": "frames_per_s_1=1e12",
    "bench_supervisor": "restart_median_ms=0",
    "bench_websocket": "trade_default_frames_per_s=1e12",
}
"""One goal per benchmark that no machine meets: a ratio or a latency <= 0, a rate of 1e12/s."""


def run(script: str, *args: str, env_goals: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != goals.ENV_OVERRIDES}
    if env_goals is not None:
        env[goals.ENV_OVERRIDES] = env_goals
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{script}.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=BENCHMARKS.parent,
        timeout=45,
        check=False,
    )


def assert_verdict_is_last(script: str, stdout: str, missed_goal: str) -> None:
    lines = stdout.rstrip("\n").splitlines()
    header = lines.index(f"{script} verdict:")
    table, last = lines[header + 1 : -1], lines[-1]
    assert table and all(line.startswith("  ") for line in table), stdout
    assert any(
        line.split()[0] == missed_goal and "MISSED (overridden)" in line for line in table
    ), stdout
    assert last.startswith(f"{script}: ") and "MISSED" in last and missed_goal in last, stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("script", sorted(IMPOSSIBLE))
def test_benchmark_exits_1_and_prints_its_verdict_last_when_a_goal_is_missed(script: str) -> None:
    done = run(script, "--quick", "--goal", IMPOSSIBLE[script])

    assert done.returncode == goals.EXIT_MISSED, done.stdout + done.stderr
    assert_verdict_is_last(script, done.stdout, IMPOSSIBLE[script].partition("=")[0])


@pytest.mark.timeout(60)
def test_a_goal_set_through_the_environment_is_held_to() -> None:
    done = run("bench_supervisor", "--quick", env_goals=IMPOSSIBLE["bench_supervisor"])

    assert done.returncode == goals.EXIT_MISSED, done.stdout + done.stderr
    assert_verdict_is_last("bench_supervisor", done.stdout, "restart_median_ms")


@pytest.mark.timeout(30)
def test_an_unknown_goal_on_the_command_line_is_a_usage_error_naming_it() -> None:
    done = run("bench_supervisor", "--quick", "--goal", "restart_mean_ms=1")

    assert done.returncode == goals.EXIT_USAGE
    assert "unknown goal 'restart_mean_ms'" in done.stderr
    assert "restart_median_ms" in done.stderr  # the goals it could have meant
    assert done.stdout == ""  # nothing was measured


def _goal(name: str = "ratio", compare: object = None, target: float = 1.0) -> object:
    return goals.Goal(name, compare or goals.AT_MOST, target, "x", "a ratio")


def test_all_goals_met_exits_0_and_says_so_last(capsys: pytest.CaptureFixture[str]) -> None:
    verdict = goals.Verdict("bench_x", [_goal("low"), _goal("high", goals.AT_LEAST, 2.0)])
    verdict.check("low", 0.5, "1 / 2 µs")
    verdict.check("high", 2.0)

    assert verdict.finish() == goals.EXIT_MET
    assert capsys.readouterr().out.splitlines()[-1] == "bench_x: 2 goals met"


def test_one_missed_goal_exits_1_and_names_it_last(capsys: pytest.CaptureFixture[str]) -> None:
    verdict = goals.Verdict("bench_x", [_goal("low"), _goal("high", goals.AT_LEAST, 2.0)])
    verdict.check("low", 0.5)
    verdict.check("high", 1.99)

    assert verdict.finish() == goals.EXIT_MISSED
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == "bench_x: 1 of 2 goals MISSED (high); exit status 1"


def test_a_goal_never_checked_counts_as_missed(capsys: pytest.CaptureFixture[str]) -> None:
    verdict = goals.Verdict("bench_x", [_goal("measured"), _goal("skipped")])
    verdict.check("measured", 0.5)

    assert verdict.finish() == goals.EXIT_MISSED
    out = capsys.readouterr().out
    assert "not measured" in out
    assert out.splitlines()[-1].startswith("bench_x: 1 of 2 goals MISSED (skipped)")


def test_a_nan_figure_meets_no_goal() -> None:
    assert not goals.AT_MOST.holds(math.nan, 1.0)
    assert not goals.AT_LEAST.holds(math.nan, 1.0)


def test_an_override_replaces_the_declared_value() -> None:
    verdict = goals.Verdict("bench_x", [_goal("ratio", target=1.15)], {"ratio": 1.0001})

    assert verdict.goal("ratio").target == 1.0001
    assert not verdict.check("ratio", 1.1)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("ratio", "is not NAME=VALUE"),
        ("ratoi=1", "unknown goal 'ratoi'"),
        ("ratio=fast", "'fast' is not a number"),
    ],
)
def test_a_bad_override_is_refused_with_the_entry_named(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        goals.parse_overrides(text, ["ratio"])


def test_the_command_line_wins_over_the_environment() -> None:
    parser = argparse.ArgumentParser()
    goals.add_goal_arguments(parser)
    args = parser.parse_args(["--goal", "ratio=3"])
    environ = {goals.ENV_OVERRIDES: "ratio=2, other=5"}

    overrides = goals.goal_overrides(parser, args, [_goal("ratio"), _goal("other")], environ)

    assert overrides == {"ratio": 3.0, "other": 5.0}
