"""Capped exponential backoff gives exact pauses."""

from __future__ import annotations

import pytest

from quotation.backoff import Backoff


def test_pauses_double_from_the_base_up_to_the_cap() -> None:
    backoff = Backoff(base=1.0, factor=2.0, cap=30.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_no_failure_means_no_pause() -> None:
    assert Backoff().delay(0) == 0.0


def test_a_huge_failure_count_stays_at_the_cap() -> None:
    assert Backoff(base=0.5, cap=4.0).delay(10_000) == 4.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"base": 0}, "base"), ({"factor": 0.5}, "factor"), ({"base": 2.0, "cap": 1.0}, "cap")],
)
def test_an_impossible_policy_is_refused_naming_the_field(
    kwargs: dict[str, float], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        Backoff(**kwargs)
