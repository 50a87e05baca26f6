"""The README and docs/ keep their promises about themselves: the README stays short, its
Quick start has exactly the two commands CI relies on, and every dotted name of ours that a
page mentions (``quotation.rest.RestClient``, ``upbit_sim.ws.hub``) exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 150

_DOTTED = re.compile(
    r"`~?((?:quotation|upbit_sim|supervisors|actors|lifeline)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)"
)


def _quick_start_commands(text: str) -> list[str]:
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def resolve(dotted: str) -> bool:
    """Whether ``dotted`` is a module of ours, or an attribute reachable from one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def test_the_readme_is_at_most_150_lines() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= README_MAX_LINES


def test_the_quick_start_has_exactly_the_demo_and_the_test_command() -> None:
    text = README.read_text(encoding="utf-8")
    commands = _quick_start_commands(text)
    assert len(commands) == 2, commands
    demo, tests = commands
    assert demo.startswith("python3.11 -m venv .venv") and demo.endswith("lifeline demo")
    assert tests.startswith("python3.11 -m venv .venv") and "pytest" in tests
    marked = text.split("<!-- ci:test -->", 1)[1].split("```bash\n", 1)[1].splitlines()[0]
    assert marked == tests, "CI runs the line after the marker: it must be the test command"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_every_dotted_name_a_page_mentions_exists(page: Path) -> None:
    names = sorted(set(_DOTTED.findall(page.read_text(encoding="utf-8"))))
    missing = [name for name in names if not resolve(name)]
    assert missing == [], f"{page.name} names what the code does not have"


def test_the_name_checker_rejects_a_name_that_is_gone() -> None:
    assert resolve("quotation.rest.client.RestClient")
    assert resolve("upbit_sim.ws.hub")
    assert not resolve("quotation.ws_backoff.BackoffPolicy")
    assert not resolve("quotation.rest.client.NoSuchThing")
