"""``lifeline drill`` as a subprocess: the phase table, the JSON, the exit statuses."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lifeline.drill.result import DrillResult

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = ROOT / "scenarios"
DRILL_CONFIG = SCENARIOS / "drill-config.yaml"


def lifeline(*args: str | Path, cwd: Path = ROOT, timeout: float = 90.0
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lifeline.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.timeout(120)
def test_a_shipped_scenario_prints_its_phase_table_writes_json_and_exits_0(
        tmp_path: Path) -> None:
    out = tmp_path / "drill.json"
    picture = tmp_path / "drill.png"
    done = lifeline("drill", SCENARIOS / "level2-crash-loop.yaml", "--config", DRILL_CONFIG,
                    "--json", out, "--plot", picture)
    print(done.stdout, done.stderr[-2000:])
    if importlib.util.find_spec("matplotlib") is None:  # the plot extra is not installed
        assert done.returncode == 2 and "lifeline[plot]" in done.stderr
    else:
        assert done.returncode == 0, done.stderr[-2000:]
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("normal", "crash loop", "recovery"):
        assert name in done.stdout
    result = DrillResult.from_dict(json.loads(out.read_text()))
    assert result.ok
    assert result.config == str(DRILL_CONFIG)
    assert result.scenario.name == "level2-crash-loop"
    assert [p.name for p in result.phases] == ["normal", "crash loop", "recovery"]
    assert result.phases[1].max_level == 2
    assert result.alerts and result.phases[1].alerts > 0  # the CLI's log levels let them in
    assert "ALERT" not in done.stderr  # ... and keep them off the terminal
    assert "crash loop" in done.stderr  # the progress lines


@pytest.mark.timeout(60)
def test_a_bad_scenario_exits_1_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nphases:\n  - name: a\n    duration: 1\n"
                   "    faults: [{actor: smart_router, kind: explode}]\n")
    done = lifeline("drill", bad, "--config", DRILL_CONFIG)
    assert done.returncode == 1
    assert "phases[0].faults[0].kind" in done.stderr
    assert done.stdout == ""


@pytest.mark.timeout(60)
def test_the_built_in_timings_are_refused_at_once_naming_the_key_to_shorten(
        tmp_path: Path) -> None:
    done = lifeline("drill", SCENARIOS / "level2-crash-loop.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert "phases[2].expect.recover_within" in done.stderr
    assert "shorten fallback.recovery_interval" in done.stderr


@pytest.mark.timeout(60)
def test_a_bad_config_exits_1_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("fallback:\n  probe_interval: fast\n")
    done = lifeline("drill", SCENARIOS / "level2-crash-loop.yaml", "--config", config)
    assert done.returncode == 1
    assert "fallback.probe_interval" in done.stderr
