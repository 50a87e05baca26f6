"""``lifeline sim`` and ``lifeline demo`` read the config file's ``simulator:`` section; flags
override it; without aiohttp (the ``sim`` extra) they say so in one line.

Every command runs as a real ``lifeline`` process (``python -m lifeline.cli``) and the served
simulator is judged over HTTP on 127.0.0.1: a seed makes its own market catalogue, so
``/market/all?is_details=true`` tells seeds apart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(60)

SEED_7 = "simulator:\n  seed: 7\n"
NO_AIOHTTP = (
    "import sys; sys.modules['aiohttp'] = None; "  # as if the sim extra were not installed
    "import lifeline, quotation, upbit_sim; from lifeline.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


def markets(base_url: str) -> object:
    response = requests.get(f"{base_url}/market/all", params={"is_details": "true"}, timeout=10)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def catalogue(sim_factory: Callable[..., Simulator]) -> Callable[[int], object]:
    """The markets a simulator of a given seed lists (from a still, unlimited reference)."""

    def of(seed: int) -> object:
        return markets(sim_factory(seed=seed, auto_trade=False, rate_limit=None).base_url)

    return of


@pytest.fixture
def lifeline_sim() -> Iterator[Callable[..., str]]:
    """Start ``lifeline sim ARGS`` in ``cwd``; returns its base URL. Every process it started
    is stopped with SIGTERM (and must exit 0) after the test."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, cwd: Path) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "lifeline.cli", "sim", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        started.append(process)
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()  # bounded by the test's timeout
        assert base_url.startswith("http://127.0.0.1:"), base_url
        return base_url

    yield start
    for process in started:
        try:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)
            if process.stdout is not None:
                process.stdout.close()


def lifeline(*args: str, cwd: Path, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``lifeline ARGS`` to its end (``code``: instead of the plain CLI)."""
    command = ["-c", code, *args] if code else ["-m", "lifeline.cli", *args]
    return subprocess.run(
        [sys.executable, *command], cwd=cwd, capture_output=True, text=True, timeout=30,
        check=False,
    )


def test_lifeline_sim_serves_the_seed_its_config_file_names(
    tmp_path: Path, lifeline_sim: Callable[..., str], catalogue: Callable[[int], object]
) -> None:
    (tmp_path / "mine.yaml").write_text(SEED_7, encoding="utf-8")
    served = markets(lifeline_sim("--config", str(tmp_path / "mine.yaml"), cwd=tmp_path))
    assert served == catalogue(7)
    assert served != catalogue(1)


def test_a_seed_flag_overrides_the_config_file(
    tmp_path: Path, lifeline_sim: Callable[..., str], catalogue: Callable[[int], object]
) -> None:
    (tmp_path / "mine.yaml").write_text(SEED_7, encoding="utf-8")
    base_url = lifeline_sim("--config", str(tmp_path / "mine.yaml"), "--seed", "1", cwd=tmp_path)
    assert markets(base_url) == catalogue(1)


def test_config_yaml_in_the_current_directory_is_read_when_no_file_is_named(
    tmp_path: Path, lifeline_sim: Callable[..., str], catalogue: Callable[[int], object]
) -> None:
    (tmp_path / "config.yaml").write_text(SEED_7, encoding="utf-8")
    assert markets(lifeline_sim(cwd=tmp_path)) == catalogue(7)


def test_without_a_config_file_the_simulator_defaults_apply(
    tmp_path: Path, lifeline_sim: Callable[..., str], catalogue: Callable[[int], object]
) -> None:
    assert markets(lifeline_sim(cwd=tmp_path)) == catalogue(1)


@pytest.mark.parametrize("command", ["sim", "demo"])
def test_a_bad_simulator_key_in_the_config_file_is_an_error_naming_the_key(
    tmp_path: Path, command: str
) -> None:
    (tmp_path / "config.yaml").write_text("simulator:\n  port: 70000\n", encoding="utf-8")
    done = lifeline(command, cwd=tmp_path)
    assert done.returncode == 1
    assert "simulator.port" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_flag_out_of_range_is_refused_naming_the_flag(tmp_path: Path) -> None:
    done = lifeline("sim", "--port", "70000", cwd=tmp_path)
    assert done.returncode == 2
    assert "--port" in done.stderr


def test_a_non_loopback_host_without_allow_remote_is_refused_in_one_line(tmp_path: Path) -> None:
    done = lifeline("sim", "--host", "0.0.0.0", cwd=tmp_path)
    assert done.returncode == 2
    assert "--host" in done.stderr
    assert "--allow-remote" in done.stderr


@pytest.mark.parametrize("command", ["sim", "demo"])
def test_without_aiohttp_sim_and_demo_say_in_one_line_to_install_the_sim_extra(
    tmp_path: Path, command: str
) -> None:
    done = lifeline(command, cwd=tmp_path, code=NO_AIOHTTP)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"lifeline {command}: the simulator needs aiohttp: pip install 'lifeline[sim]'"
    ]


def test_without_aiohttp_check_config_still_works(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(SEED_7, encoding="utf-8")
    done = lifeline("check-config", cwd=tmp_path, code=NO_AIOHTTP)
    assert done.returncode == 0, done.stderr
    assert "seed=7" in done.stdout
