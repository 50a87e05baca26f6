"""The README's main job runs end to end against the embedded simulator: ``lifeline demo``
plays normal → Level 1 → 2 → 3 → Level 0 on the drill engine and passes only if every phase
behaved as the timeline expects; ``--clients`` is the clients-only rehearsal."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from lifeline.config import load_config
from lifeline.demo import demo_config, demo_scenario
from lifeline.drill.scenario import ScenarioError

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("normal", "level 1: websocket refused", "level 2: router crash loop",
          "level 3: rest black-holed too", "recovery")


def lifeline(*args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lifeline.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.timeout(150)
def test_the_demo_plays_every_level_and_back_and_passes_on_the_config_files_simulator(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.yaml").write_text("simulator:\n  seed: 7\n", encoding="utf-8")
    done = lifeline("demo", "--time-scale", "0.5", cwd=tmp_path, timeout=140)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    assert "(seed 7)" in out
    for phase in PHASES:  # announced as it begins, then in the summary with its checks held
        assert f"-- {phase}\n" in out
        row = next(line for line in out.splitlines() if line.startswith(f"  {phase}  "))
        assert row.split()[-2] == "✓", row
    levels = {line.split("  level ")[1][0] for line in out.splitlines()
              if "  level " in line and " s  " in line}
    assert levels == {"0", "1", "2", "3"}, "the status lines show every level"
    assert "requests by source and level:" in out
    assert "failed requests by type:" in out
    assert "alerts fired:" in out
    assert "level 0 -> 1 (degraded)" in out, "the alerts reach the summary with stderr quiet"
    assert "result: ok" in out
    assert "demo: ok: 5 of 5 phases as expected, in " in out
    assert "Traceback" not in done.stderr, "the demo keeps the system's log quiet"


@pytest.mark.timeout(30)
def test_a_time_scale_too_short_for_the_timelines_limits_is_refused_naming_the_limit(
    tmp_path: Path,
) -> None:
    done = lifeline("demo", "--time-scale", "0.2", cwd=tmp_path, timeout=25)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--time-scale 0.2 does not fit the timeline" in done.stdout
    assert "expect.detect_within" in done.stdout or "expect.recover_within" in done.stdout


def test_the_shipped_timeline_fits_in_well_under_two_minutes() -> None:
    scenario = demo_scenario()
    assert [phase.name for phase in scenario.phases] == list(PHASES)
    assert [phase.expect.level for phase in scenario.phases] == [0, 1, 2, 3, 0]
    assert scenario.duration <= 60.0
    assert demo_scenario(0.5).duration == scenario.duration / 2


def test_a_time_scale_out_of_range_is_a_typed_error() -> None:
    with pytest.raises(ScenarioError, match="time_scale"):
        demo_scenario(0.0)


def test_the_demo_runs_under_the_drills_shortened_timings_but_a_slower_probe() -> None:
    drill = load_config(ROOT / "scenarios" / "drill-config.yaml")
    demo = demo_config()
    assert (demo.fallback.probe_interval, demo.fallback.recovery_interval) == (0.5, 1.0)
    assert dataclasses.replace(demo, fallback=dataclasses.replace(
        demo.fallback, probe_interval=drill.fallback.probe_interval,
        recovery_interval=drill.fallback.recovery_interval)) == drill


@pytest.mark.timeout(120)
def test_the_clients_only_rehearsal_runs_every_step_as_expected(tmp_path: Path) -> None:
    # The file says seed 7, the flag 3: the demo's flags override the file, as sim's do.
    (tmp_path / "config.yaml").write_text("simulator:\n  seed: 7\n", encoding="utf-8")
    done = lifeline("demo", "--clients", "--seed", "3", cwd=tmp_path, timeout=110)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(seed 3)" in done.stdout
    assert "(seed 7)" not in done.stdout
    assert "15 of 15 steps as expected" in done.stdout
