"""The Remaining-Req header is read leniently and never fails a request."""

from __future__ import annotations

import pytest

from quotation.rest.remaining_req import RemainingReq, parse_remaining_req


def test_a_real_upbit_header_gives_group_sec_and_min() -> None:
    assert parse_remaining_req("group=candles; min=600; sec=4") == RemainingReq("candles", 4, 600)


def test_extra_spaces_case_and_order_do_not_matter() -> None:
    assert parse_remaining_req("  SEC = 7 ;Group= Ticker ;min=600 ") == RemainingReq(
        "ticker", 7, 600
    )


def test_commas_instead_of_semicolons_are_tolerated() -> None:
    assert parse_remaining_req("group=orderbook, min=600, sec=9") == RemainingReq(
        "orderbook", 9, 600
    )


def test_unknown_keys_and_parts_without_equals_are_skipped() -> None:
    assert parse_remaining_req("group=crix-trades; burst; zone=kr; sec=3") == RemainingReq(
        "crix-trades", 3, None
    )


def test_an_unreadable_sec_is_none_but_the_group_is_kept() -> None:
    assert parse_remaining_req("group=market; min=abc; sec=") == RemainingReq("market")
    assert parse_remaining_req("group=market; sec=-1") == RemainingReq("market")


def test_a_decimal_sec_is_truncated() -> None:
    assert parse_remaining_req("group=market; sec=4.0") == RemainingReq("market", 4)


def test_a_group_never_seen_before_is_just_a_new_group() -> None:
    assert parse_remaining_req("group=default; min=1800; sec=29") == RemainingReq(
        "default", 29, 1800
    )


@pytest.mark.parametrize(
    "header", [None, "", "   ", "sec=3; min=600", "group=; sec=3", "garbage", 42, b"group=x"]
)
def test_a_missing_or_groupless_header_gives_none(header: object) -> None:
    assert parse_remaining_req(header) is None
