"""The README's main job runs end to end against the embedded simulator."""

from __future__ import annotations

import io

import pytest

from lifeline.demo import run_demo


@pytest.mark.timeout(120)
def test_the_demo_runs_every_step_as_expected() -> None:
    out = io.StringIO()
    assert run_demo(seed=1, out=out) == 0, out.getvalue()
    assert "15 of 15 steps as expected" in out.getvalue()
