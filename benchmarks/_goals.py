"""Goals for the benchmarks: declare them, check the figures, print the verdict last.

A benchmark that cannot fail measures nothing (STYLE.md, habit 13). Each script declares
its goals once, as ``Goal`` values, and ends with ``Verdict.finish()``:

    GOALS = (Goal("rest_median_ratio", AT_MOST, 1.15, "x", "client / bare requests, median"),)
    parser = argparse.ArgumentParser()
    add_goal_arguments(parser)
    args = parser.parse_args()
    verdict = Verdict("bench_rest", GOALS, goal_overrides(parser, args, GOALS))
    ...
    verdict.check("rest_median_ratio", client / bare, f"{client:.0f} / {bare:.0f} µs")
    return verdict.finish()   # prints the table last; 0 if every goal is met, else 1

Every goal's value can be overridden, to show a miss on purpose or to hold a slower
machine to a looser bound: ``--goal NAME=VALUE`` (repeatable) or the environment
variable ``LIFELINE_BENCH_GOALS="NAME=VALUE,NAME=VALUE"``; the command line wins. An
unknown name or a value that is not a number is a usage error (exit status 2). A goal
that was declared but never checked (its workload did not run) counts as missed.

Exit status: 0 every goal met, 1 at least one missed, 2 usage error.

The benchmarks are scripts, not a package: run as ``python benchmarks/bench_x.py``,
Python puts ``benchmarks/`` first on ``sys.path``, which is how they import this module.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum

ENV_OVERRIDES = "LIFELINE_BENCH_GOALS"
EXIT_MET = 0
EXIT_MISSED = 1
EXIT_USAGE = 2


class Compare(Enum):
    """How a measured figure must stand against its goal."""

    AT_MOST = "<="
    AT_LEAST = ">="

    def holds(self, measured: float, target: float) -> bool:
        """Whether ``measured`` meets ``target`` (a NaN never does)."""
        if math.isnan(measured):
            return False
        return measured <= target if self is Compare.AT_MOST else measured >= target


AT_MOST = Compare.AT_MOST
AT_LEAST = Compare.AT_LEAST


@dataclass(frozen=True, slots=True)
class Goal:
    """One bound a benchmark's figure must keep: ``measured <compare> target`` in ``unit``."""

    name: str
    compare: Compare
    target: float
    unit: str
    what: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """A goal checked against what was measured, with the figures it came from."""

    goal: Goal
    measured: float
    figures: str

    @property
    def met(self) -> bool:
        return self.goal.compare.holds(self.measured, self.goal.target)


def parse_overrides(text: str, known: Iterable[str]) -> dict[str, float]:
    """``"a=1,b=2.5"`` → ``{"a": 1.0, "b": 2.5}``; raises ``ValueError`` naming a bad entry."""
    names = set(known)
    overrides: dict[str, float] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        name, sep, value = entry.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"goal override {entry!r} is not NAME=VALUE")
        if name not in names:
            raise ValueError(
                f"unknown goal {name!r} in {entry!r}; goals: {', '.join(sorted(names))}"
            )
        try:
            overrides[name] = float(value)
        except ValueError:
            raise ValueError(f"goal {name!r}: {value.strip()!r} is not a number") from None
    return overrides


def add_goal_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--goal NAME=VALUE`` (repeatable) to a benchmark's argument parser."""
    parser.add_argument(
        "--goal",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"override one goal's value (repeatable; also ${ENV_OVERRIDES}='NAME=VALUE,...'); "
        "the verdict then holds the figure to VALUE",
    )


def goal_overrides(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    goals: Iterable[Goal],
    environ: Mapping[str, str] = os.environ,
) -> dict[str, float]:
    """The overrides from ``$LIFELINE_BENCH_GOALS`` then ``--goal``; a bad one exits with 2."""
    names = [goal.name for goal in goals]
    try:
        overrides = parse_overrides(environ.get(ENV_OVERRIDES, ""), names)
        overrides.update(parse_overrides(",".join(args.goal), names))
    except ValueError as error:
        parser.error(str(error))  # prints the usage and exits with status 2
    return overrides


class Verdict:
    """Collects each goal's outcome and prints them, last, as the benchmark's verdict."""

    def __init__(
        self, benchmark: str, goals: Iterable[Goal], overrides: Mapping[str, float] | None = None
    ) -> None:
        self.benchmark = benchmark
        self.overrides = dict(overrides or {})
        self._goals: dict[str, Goal] = {}
        for goal in goals:
            if goal.name in self._goals:
                raise ValueError(f"duplicate goal {goal.name!r}")
            target = self.overrides.get(goal.name, goal.target)
            self._goals[goal.name] = replace(goal, target=target)
        unknown = set(self.overrides) - set(self._goals)
        if unknown:
            raise ValueError(f"overrides for unknown goals: {', '.join(sorted(unknown))}")
        self._outcomes: dict[str, Outcome] = {}

    def goal(self, name: str) -> Goal:
        """The goal named ``name``, with its override applied."""
        return self._goals[name]

    def check(self, name: str, measured: float, figures: str = "") -> bool:
        """Record ``measured`` for goal ``name`` (``figures``: what it was computed from)."""
        if name in self._outcomes:
            raise ValueError(f"goal {name!r} checked twice")
        outcome = Outcome(self._goals[name], measured, figures)
        self._outcomes[name] = outcome
        return outcome.met

    def outcomes(self) -> list[Outcome]:
        """Every declared goal's outcome; one never checked is a NaN, i.e. missed."""
        return [
            self._outcomes.get(name) or Outcome(goal, math.nan, "not measured")
            for name, goal in self._goals.items()
        ]

    def lines(self) -> list[str]:
        """The verdict table; its last line says met or MISSED."""
        outcomes = self.outcomes()
        width = max(len(outcome.goal.name) for outcome in outcomes)
        lines = [f"{self.benchmark} verdict:"]
        for outcome in outcomes:
            goal = outcome.goal
            overridden = " (overridden)" if goal.name in self.overrides else ""
            lines.append(
                f"  {goal.name:<{width}}  {_number(outcome.measured):>10} {goal.compare.value} "
                f"{_number(goal.target, 6):<8} {goal.unit:<4} {'met' if outcome.met else 'MISSED'}"
                f"{overridden}"
            )
            detail = "; ".join(part for part in (goal.what, outcome.figures) if part)
            lines.append(f"  {'':<{width}}  {detail}")
        missed = [outcome.goal.name for outcome in outcomes if not outcome.met]
        goals = f"{len(outcomes)} goal{'s' if len(outcomes) != 1 else ''}"
        if missed:
            lines.append(
                f"{self.benchmark}: {len(missed)} of {goals} MISSED "
                f"({', '.join(missed)}); exit status {EXIT_MISSED}"
            )
        else:
            lines.append(f"{self.benchmark}: {goals} met")
        return lines

    def finish(self) -> int:
        """Print the verdict (the benchmark's last output); the exit status it calls for."""
        print("\n".join(self.lines()), flush=True)
        return EXIT_MET if all(outcome.met for outcome in self.outcomes()) else EXIT_MISSED


def _number(value: float, digits: int = 4) -> str:
    """A figure for the table: thousands with separators, else ``digits`` significant ones."""
    if math.isnan(value):
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}g}"
