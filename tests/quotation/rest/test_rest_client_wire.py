"""What the client puts on the wire and how it reads odd answers.

A tiny recording HTTP server on 127.0.0.1 (``tests.fakes.RecordingServer``)
stands in for Upbit where a test needs to see the exact request (headers, query
string, connection reuse) or to send an answer the simulator would never send
(HTML 502, a body cut by the connection).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from quotation.errors import (
    Banned,
    FormatError,
    InvalidRequest,
    InvalidValue,
    RateLimited,
    ServerError,
    TransportError,
)
from quotation.models import CandleInterval
from quotation.rest.client import RestClient, RestConfig, chunk_codes
from quotation.rest.ratelimit import RateLimiter
from tests.fakes import Answer, RecordingServer, serving

TICKER = {
    "market": "KRW-BTC", "trade_date": "20260311", "trade_time": "144058",
    "trade_date_kst": "20260311", "trade_time_kst": "234058", "trade_timestamp": 1773240058930,
    "opening_price": 102417000.0, "high_price": 103988000.0, "low_price": 101150000.0,
    "trade_price": 103493000.0, "prev_closing_price": 102417000.0, "change": "RISE",
    "change_price": 1076000.0, "change_rate": 0.0105060683, "signed_change_price": 1076000.0,
    "signed_change_rate": 0.0105060683, "trade_volume": 0.00094678,
    "acc_trade_price": 104890185475.22821, "acc_trade_price_24h": 162997300132.123,
    "acc_trade_volume": 1024.30599241, "acc_trade_volume_24h": 1587.73606087,
    "highest_52_week_price": 179869000.0, "highest_52_week_date": "2025-10-09",
    "lowest_52_week_price": 89000000.0, "lowest_52_week_date": "2026-02-06",
    "timestamp": 1773240058973,
}  # fmt: skip


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with serving(RecordingServer()) as srv:
        yield srv


@pytest.fixture
def client(server: RecordingServer, limiter: RateLimiter) -> Iterator[RestClient]:
    config = RestConfig(base_url=server.base_url, read_timeout=3.0)
    with RestClient(config, limiter=limiter) as rest:
        yield rest


def json_answer(
    payload: object, status: int = 200, remaining: str = "group=ticker; sec=9"
) -> Callable[[str], Answer]:
    body = json.dumps(payload).encode()
    return lambda path: Answer(status, body, {"Remaining-Req": remaining})


# -- requests -----------------------------------------------------------------------


def test_requests_carry_no_origin_header_and_name_the_client(
    server: RecordingServer, client: RestClient
) -> None:
    server.answer = json_answer([TICKER])
    client.get_tickers(["KRW-BTC"])
    headers = {name.lower(): value for name, value in server.seen[0].headers.items()}
    assert "origin" not in headers
    assert headers["user-agent"] == client.config.user_agent
    assert headers["accept"] == "application/json"


def test_a_proxy_named_by_the_environment_when_the_client_is_built_carries_its_requests(
    server: RecordingServer, limiter: RateLimiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", server.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    server.answer = json_answer([TICKER])
    with RestClient(RestConfig(base_url="http://upbit.invalid/v1"), limiter=limiter) as rest:
        assert rest.get_tickers("KRW-BTC")[0].market == "KRW-BTC"
    assert server.seen[0].path == "http://upbit.invalid/v1/ticker?markets=KRW-BTC"


def test_a_given_session_s_proxies_carry_its_requests(
    server: RecordingServer, limiter: RateLimiter
) -> None:
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"http": server.base_url}
    server.answer = json_answer([TICKER])
    config = RestConfig(base_url="http://upbit.invalid/v1")
    with RestClient(config, limiter=limiter, session=session) as rest:
        rest.get_tickers("KRW-BTC")
    assert server.seen[0].path == "http://upbit.invalid/v1/ticker?markets=KRW-BTC"


def test_an_origin_header_on_a_given_session_is_removed(
    server: RecordingServer, limiter: RateLimiter
) -> None:
    session = requests.Session()
    session.headers["Origin"] = "https://example.com"
    server.answer = json_answer([TICKER])
    with RestClient(RestConfig(base_url=server.base_url), session=session,
                    limiter=limiter) as rest:
        rest.get_tickers("KRW-BTC")
    session.close()
    assert "origin" not in {name.lower() for name in server.seen[0].headers}


def test_parameters_are_snake_case_and_to_is_url_encoded(
    server: RecordingServer, client: RestClient
) -> None:
    client.get_markets(is_details=True)
    client.get_candles(
        "KRW-BTC",
        CandleInterval.DAY,
        count=3,
        to=datetime(2025, 6, 24, 4, 56, 53, tzinfo=UTC),
        converting_price_unit="KRW",
    )
    client.get_trades("KRW-BTC", count=5, to="01:02:03", cursor=123, days_ago=2)
    client.get_orderbooks(["KRW-BTC"], count=5, level=10000)
    client.get_tickers_by_quote(["KRW", "BTC"])
    paths = [seen.path for seen in server.seen]
    assert paths[0] == "/v1/market/all?is_details=true"
    assert paths[1] == (
        "/v1/candles/days?market=KRW-BTC&count=3&to=2025-06-24T04%3A56%3A53Z"
        "&converting_price_unit=KRW"
    )
    assert server.seen[2].query == {
        "market": ["KRW-BTC"], "count": ["5"], "to": ["010203"], "cursor": ["123"],
        "days_ago": ["2"],
    }  # fmt: skip
    assert paths[3] == "/v1/orderbook?markets=KRW-BTC&level=10000&count=5"
    assert paths[4] == "/v1/ticker/all?quote_currencies=KRW,BTC"


def test_markets_are_sent_comma_separated_in_one_parameter(
    server: RecordingServer, client: RestClient
) -> None:
    client.get_tickers(["KRW-BTC", "KRW-ETH", "BTC-XRP"])
    assert server.seen[0].path == "/v1/ticker?markets=KRW-BTC,KRW-ETH,BTC-XRP"


def test_calls_reuse_one_kept_alive_connection(server: RecordingServer, client: RestClient) -> None:
    server.answer = json_answer([TICKER])
    for _ in range(3):
        client.get_tickers("KRW-BTC")
    assert len({seen.client_port for seen in server.seen}) == 1


def test_a_long_market_list_is_split_into_requests_with_short_urls(
    server: RecordingServer, limiter: RateLimiter
) -> None:
    markets = [f"KRW-C{i:03d}" for i in range(250)]

    def answer(path: str) -> Answer:
        codes = parse_qs(urlsplit(path).query)["markets"][0].split(",")
        body = json.dumps([{**TICKER, "market": code} for code in codes]).encode()
        return Answer(body=body)

    server.answer = answer
    config = RestConfig(base_url=server.base_url, max_markets_per_request=100)
    with RestClient(config, limiter=limiter) as rest:
        tickers = rest.get_tickers(markets)
    assert [ticker.market for ticker in tickers] == markets
    assert [len(seen.query["markets"][0].split(",")) for seen in server.seen] == [100, 100, 50]
    assert max(len(seen.path) for seen in server.seen) < 1200


def test_chunks_respect_both_the_count_and_the_length_limit() -> None:
    codes = ["KRW-AAA", "KRW-BBB", "KRW-CCC", "KRW-DDD", "KRW-EEE"]
    assert chunk_codes(codes, 2, 1000) == [codes[0:2], codes[2:4], codes[4:5]]
    assert chunk_codes(codes, 10, 15) == [codes[0:2], codes[2:4], codes[4:5]]
    assert chunk_codes(["KRW-VERYLONGNAME"], 10, 5) == [["KRW-VERYLONGNAME"]]
    assert chunk_codes([], 10, 5) == []


def test_the_base_url_may_end_with_a_slash(
    server: RecordingServer, limiter: RateLimiter
) -> None:
    with RestClient(RestConfig(base_url=server.base_url + "/"), limiter=limiter) as rest:
        rest.get_markets()
    assert server.seen[0].path == "/v1/market/all?is_details=false"


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("base_url", "api.upbit.com/v1"),
        ("connect_timeout", 0),
        ("read_timeout", -1.0),
        ("read_timeout", float("inf")),  # every call would fail with OverflowError
        ("max_wait", -1.0),
        ("rate_limit_retries", -1),
        ("max_markets_per_request", 0),
        ("pool_size", 0),
    ],
)
def test_an_impossible_rest_config_is_refused_naming_the_field(
    field_name: str, value: object
) -> None:
    with pytest.raises(InvalidValue, match=field_name) as caught:
        RestConfig(**{field_name: value})  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.value) == (field_name, value)


# -- odd answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["group=ticker; min=600; sec=abc", "garbage", "", "group=; sec=1", None]
)
def test_an_odd_or_missing_remaining_req_header_never_fails_a_request(
    server: RecordingServer, client: RestClient, header: str | None
) -> None:
    headers = {} if header is None else {"Remaining-Req": header}
    body = json.dumps([TICKER]).encode()
    server.answer = lambda path: Answer(200, body, headers)
    assert client.get_tickers("KRW-BTC")[0].market == "KRW-BTC"


def test_a_header_naming_another_group_teaches_the_limiter(
    server: RecordingServer, client: RestClient
) -> None:
    server.answer = json_answer([TICKER], remaining="group=quotes; min=600; sec=9")
    client.get_tickers("KRW-BTC")
    assert client.limiter.resolve("ticker") == "quotes"


def test_an_html_502_from_a_proxy_is_a_server_error_with_its_text(
    server: RecordingServer, client: RestClient
) -> None:
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    server.answer = lambda path: Answer(502, html, {"Content-Type": "text/html"})
    with pytest.raises(ServerError) as caught:
        client.get_tickers("KRW-BTC")
    assert caught.value.status == 502
    assert "502 Bad Gateway" in caught.value.body


def test_a_400_is_an_invalid_request_with_upbits_message(
    server: RecordingServer, client: RestClient
) -> None:
    server.answer = json_answer(
        {"error": {"name": 400, "message": "Invalid parameter. Check the given value!"}}, 400
    )
    with pytest.raises(InvalidRequest, match="Invalid parameter") as caught:
        client.get_tickers("KRW-BTC")
    assert caught.value.status == 400
    assert len(server.seen) == 1


def test_a_429_with_retry_after_pauses_the_group_at_least_that_long(
    server: RecordingServer, limiter: RateLimiter
) -> None:
    server.answer = lambda path: Answer(
        429, b"Too many API requests.", {"Retry-After": "3", "Content-Type": "text/plain"}
    )
    config = RestConfig(base_url=server.base_url, rate_limit_retries=0)
    with RestClient(config, limiter=limiter) as rest, pytest.raises(RateLimited) as caught:
        rest.get_tickers("KRW-BTC")
    assert caught.value.group == "ticker"
    assert caught.value.retry_after == pytest.approx(3.0, abs=0.05)
    assert len(server.seen) == 1


def test_a_418_states_its_ban_in_retry_after_even_without_a_body(
    server: RecordingServer, client: RestClient
) -> None:
    server.answer = lambda path: Answer(418, b"", {"Retry-After": "20"})
    with pytest.raises(Banned) as caught:
        client.get_tickers("KRW-BTC")
    assert caught.value.duration == 20.0
    assert client.limiter.banned_until() == pytest.approx(caught.value.until)


def test_a_418_that_says_nothing_bans_for_the_configured_default(
    server: RecordingServer, limiter: RateLimiter
) -> None:
    server.answer = lambda path: Answer(418, b"I'm a teapot", {})
    config = RestConfig(base_url=server.base_url, default_ban=42.0)
    with RestClient(config, limiter=limiter) as rest, pytest.raises(Banned) as caught:
        rest.get_markets()
    assert caught.value.duration == 42.0


def test_a_200_whose_body_is_not_json_is_a_format_error_naming_the_payload(
    server: RecordingServer, client: RestClient
) -> None:
    server.answer = lambda path: Answer(200, b'[{"market": "KRW-BTC", "trade_pr')
    with pytest.raises(FormatError) as caught:
        client.get_tickers("KRW-BTC")
    assert caught.value.payload == "ticker"


def test_a_200_with_the_wrong_json_shape_is_a_format_error(
    server: RecordingServer, client: RestClient
) -> None:
    server.answer = json_answer({"market": "KRW-BTC"})
    with pytest.raises(FormatError):
        client.get_tickers("KRW-BTC")


def test_a_body_cut_off_by_the_connection_closing_is_a_transport_error(
    server: RecordingServer, client: RestClient
) -> None:
    body = json.dumps([TICKER]).encode()
    server.answer = lambda path: Answer(200, body[:50], content_length=len(body))
    with pytest.raises(TransportError):
        client.get_tickers("KRW-BTC")


def test_a_refused_connection_is_a_transport_error(limiter: RateLimiter) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on that port any more.
    config = RestConfig(base_url=f"http://127.0.0.1:{port}/v1", connect_timeout=2.0)
    with RestClient(config, limiter=limiter) as rest, pytest.raises(TransportError) as caught:
        rest.get_markets()
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_transport_retries_are_made_when_configured(
    server: RecordingServer, limiter: RateLimiter
) -> None:
    calls = 0
    body = json.dumps([TICKER]).encode()

    def answer(path: str) -> Answer:
        nonlocal calls
        calls += 1
        if calls == 1:
            return Answer(200, body[:10], content_length=len(body))
        return Answer(200, body)

    server.answer = answer
    config = RestConfig(base_url=server.base_url, transport_error_retries=1)
    with RestClient(config, limiter=limiter) as rest:
        assert rest.get_tickers("KRW-BTC")[0].market == "KRW-BTC"
    assert calls == 2


def test_server_error_retries_are_made_when_configured(
    server: RecordingServer, limiter: RateLimiter
) -> None:
    answers = iter([Answer(503, b"busy"), Answer(200, json.dumps([TICKER]).encode())])
    server.answer = lambda path: next(answers)
    config = RestConfig(base_url=server.base_url, server_error_retries=1)
    with RestClient(config, limiter=limiter) as rest:
        assert len(rest.get_tickers("KRW-BTC")) == 1
    assert len(server.seen) == 2


def test_every_permit_is_returned_whatever_the_answer(
    server: RecordingServer, limiter: RateLimiter
) -> None:
    answers = iter(
        [Answer(500, b"x"), Answer(404, b"{}"), Answer(200, b"nope"), Answer(200, b"[]")]
    )
    server.answer = lambda path: next(answers)
    with RestClient(RestConfig(base_url=server.base_url), limiter=limiter) as rest:
        for _ in range(3):
            with pytest.raises((ServerError, InvalidRequest, FormatError)):
                rest.get_tickers("KRW-BTC")
        assert rest.get_tickers("KRW-BTC") == []
    assert limiter.status().groups["ticker"].in_flight == 0


def test_each_endpoint_counts_against_its_upbit_group_before_any_header_says_so(
    server: RecordingServer, client: RestClient
) -> None:
    server.answer = lambda path: Answer(200, b"[]", {})
    client.get_markets()
    client.get_tickers("KRW-BTC")
    client.get_tickers_by_quote("KRW")
    client.get_candles("KRW-BTC", "1m")
    client.get_trades("KRW-BTC")
    client.get_orderbooks("KRW-BTC")
    client.get_orderbook_instruments("KRW-BTC")
    groups = client.limiter.status().groups
    assert set(groups) == {"market", "ticker", "candles", "crix-trades", "orderbook"}
    assert all(status.in_flight == 0 for status in groups.values())
