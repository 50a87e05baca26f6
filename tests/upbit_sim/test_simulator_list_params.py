"""List parameters may come comma-separated or repeated; Upbit answers every value named."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from upbit_sim import Simulator

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def quiet_sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    return sim_factory(seed=1, auto_trade=False, rate_limit=None)


def _stable(body: list[dict[str, object]]) -> list[dict[str, object]]:
    """An answer without its read-time stamps (two reads a moment apart differ only there)."""
    return [{k: v for k, v in item.items() if "timestamp" not in k and "time" not in k
             and "date" not in k} for item in body]


def _get(sim: Simulator, path: str, query: list[tuple[str, str]]) -> requests.Response:
    # A list of pairs makes requests repeat the parameter: markets=A&markets=B.
    return requests.get(f"{sim.base_url}{path}", params=query, timeout=10)


@pytest.mark.parametrize(
    ("path", "name", "values", "key"),
    [
        ("/ticker", "markets", ["KRW-BTC", "KRW-ETH", "BTC-ETH"], "market"),
        ("/orderbook", "markets", ["KRW-BTC", "KRW-ETH"], "market"),
        ("/orderbook/instruments", "markets", ["KRW-BTC", "KRW-ETH"], "market"),
    ],
)
def test_repeated_market_parameters_are_answered_like_a_comma_separated_list(
    quiet_sim: Simulator, path: str, name: str, values: list[str], key: str
) -> None:
    repeated = _get(quiet_sim, path, [(name, value) for value in values])
    joined = _get(quiet_sim, path, [(name, ",".join(values))])
    assert repeated.status_code == joined.status_code == 200
    assert [item[key] for item in repeated.json()] == values
    assert _stable(repeated.json()) == _stable(joined.json())


def test_repeated_quote_currencies_are_answered_like_a_comma_separated_list(
    quiet_sim: Simulator,
) -> None:
    repeated = _get(quiet_sim, "/ticker/all", [("quote_currencies", "KRW"),
                                               ("quote_currencies", "BTC")])
    joined = _get(quiet_sim, "/ticker/all", [("quote_currencies", "KRW,BTC")])
    assert repeated.status_code == 200
    quotes = {item["market"].split("-")[0] for item in repeated.json()}
    assert quotes == {"KRW", "BTC"}
    assert _stable(repeated.json()) == _stable(joined.json())


def test_a_repeated_list_with_an_unknown_market_is_a_404_like_the_joined_one(
    quiet_sim: Simulator,
) -> None:
    repeated = _get(quiet_sim, "/ticker", [("markets", "KRW-BTC"), ("markets", "KRW-NOPE")])
    assert repeated.status_code == 404
    assert repeated.json() == _get(quiet_sim, "/ticker", [("markets", "KRW-BTC,KRW-NOPE")]).json()
