"""The README's main job runs end to end against the embedded simulator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(120)
def test_the_demo_runs_every_step_as_expected_on_the_config_files_simulator(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.yaml").write_text("simulator:\n  seed: 7\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "lifeline.cli", "demo"], cwd=tmp_path, capture_output=True,
        text=True, timeout=110, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(seed 7)" in done.stdout
    assert "15 of 15 steps as expected" in done.stdout
