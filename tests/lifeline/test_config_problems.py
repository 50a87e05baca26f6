"""A bad config is reported whole: every unknown key, wrong type, impossible value and
impossible combination, each at its key path, in one ``ConfigError`` and by ``check-config``;
a rule that depends on a key already found wrong is skipped, not reported as noise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lifeline.config import load_config, parse_config
from lifeline.config_schema import ConfigError, Problem

pytestmark = pytest.mark.timeout(30)

FOUR_SECTIONS = """\
upbit:
  rest:
    read_timout: 5.0              # unknown key (misspelt)
  rate_limit:
    per_second: ten               # wrong type
fallback:
  router_timeout: 3.0             # impossible together with request_deadline
  request_deadline: 2.0
supervision:
  router: {intensity: -1}         # impossible value
operator:
  shutdown_timeout: fast          # wrong type
"""
EXPECTED = [
    ("upbit.rest.read_timout", "unknown key"),
    ("upbit.rate_limit.per_second", "expected an integer"),
    ("fallback.router_timeout", "must be < request_deadline (2.0)"),
    ("supervision.router.intensity", "must be >= 0"),
    ("operator.shutdown_timeout", "expected a number"),
]


def lifeline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``lifeline ARGS`` as a process, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "lifeline.cli", *args], cwd=cwd, capture_output=True,
        text=True, timeout=30, check=False,
    )


def problems_of(data: object) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return list(caught.value.problems)


def paths_of(data: object) -> list[str]:
    return [problem.path for problem in problems_of(data)]


# --- lifeline check-config --------------------------------------------------------------


def test_check_config_prints_every_error_with_its_key_path_then_the_count(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(FOUR_SECTIONS, encoding="utf-8")
    done = lifeline("check-config", str(path), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == len(EXPECTED) + 1, done.stderr
    for line, (key, says) in zip(lines, EXPECTED, strict=False):
        assert line.startswith(f"{path}: {key}: "), line
        assert says in line, line
    assert lines[-1] == f"{path}: {len(EXPECTED)} errors"


def test_check_config_on_a_clean_file_prints_ok_and_the_parsed_config(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text("fallback:\n  request_deadline: 4.0\n", encoding="utf-8")
    done = lifeline("check-config", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}: ok\n")
    assert "request_deadline=4.0" in done.stdout


def test_lifeline_run_refuses_a_bad_file_listing_every_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(FOUR_SECTIONS, encoding="utf-8")
    done = lifeline("run", "--config", str(path), cwd=tmp_path)
    assert done.returncode == 1
    for key, _says in EXPECTED:
        assert f"{path}: {key}: " in done.stderr
    assert f"{path}: {len(EXPECTED)} errors" in done.stderr


# --- the loader: one ConfigError, every problem ------------------------------------------


def test_load_config_raises_one_error_carrying_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(FOUR_SECTIONS, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert [p.path for p in error.problems] == [key for key, _says in EXPECTED]
    assert (error.path, error.value, error.file) == ("upbit.rest.read_timout", 5.0, str(path))
    assert error.problems[1].value == "ten"
    assert str(error).splitlines() == [
        *(p.line(str(path)) for p in error.problems), f"{path}: 5 errors"]


def test_a_wrong_type_in_one_section_does_not_hide_an_unknown_key_in_another() -> None:
    assert paths_of({
        "upbit": {"rest": {"read_timeout": "slow"}},
        "fallback": {"probe_intervall": 1.0},
    }) == ["upbit.rest.read_timeout", "fallback.probe_intervall"]


def test_an_unknown_section_does_not_hide_the_known_ones() -> None:
    assert paths_of({"fallbacks": {}, "faults": {"enabled": "yes"}}) == [
        "fallbacks", "faults.enabled"]


def test_every_unknown_key_of_a_section_is_named() -> None:
    assert paths_of({"operator": {"lisen": "x", "shutdown": 1}}) == [
        "operator.lisen", "operator.shutdown"]


def test_every_impossible_value_of_one_section_is_named_not_only_the_first() -> None:
    problems = problems_of({"upbit": {"rest": {
        "connect_timeout": 0, "read_timeout": -1, "max_wait": -2, "pool_size": 0}}})
    assert [p.path for p in problems] == [
        "upbit.rest.connect_timeout", "upbit.rest.read_timeout", "upbit.rest.max_wait",
        "upbit.rest.pool_size"]
    assert [p.value for p in problems] == [0, -1, -2, 0]


def test_every_bad_item_of_a_list_is_named_by_its_index() -> None:
    assert paths_of({"fallback": {"symbols": [1, "KRW-BTC", 2.5]}}) == [
        "fallback.symbols[0]", "fallback.symbols[2]"]


def test_an_impossible_combination_names_both_keys_beside_other_errors() -> None:
    problems = problems_of({
        "fallback": {"recovery_interval": 2.0, "probe_interval": 1.0, "recovery_successes": 3},
        "simulator": {"port": "http"},
    })
    assert [p.path for p in problems] == ["fallback.recovery_interval", "simulator.port"]
    assert "recovery_successes * probe_interval" in problems[0].message


# --- no noise: a rule that depends on a wrong key is skipped ------------------------------


def test_a_combination_rule_is_skipped_when_the_key_it_depends_on_is_wrong() -> None:
    # router_timeout 5 would break "router_timeout < request_deadline" against the default
    # deadline standing in for the bad one: only the bad deadline is reported.
    assert paths_of({"fallback": {"router_timeout": 5.0, "request_deadline": "soon"}}) == [
        "fallback.request_deadline"]


def test_a_rule_is_skipped_when_its_message_names_a_wrong_key() -> None:
    # Backoff's own rule (spread only with jitter: spread) names jitter, which is wrong.
    assert paths_of({"upbit": {"websocket": {"backoff": {"jitter": "wobbly", "spread": 0.5}}}}
                    ) == ["upbit.websocket.backoff.jitter"]


def test_a_combination_rule_still_holds_when_the_keys_it_depends_on_are_sound() -> None:
    assert paths_of({"fallback": {"router_timeout": 5.0, "probe_interval": "x"}}) == [
        "fallback.probe_interval", "fallback.router_timeout"]


def test_a_single_problem_reads_as_before() -> None:
    problems = problems_of({"upbit": {"rest": {"read_timeout": -1}}})
    assert problems == [Problem("upbit.rest.read_timeout", "read_timeout must be > 0, got -1.0",
                                -1)]
