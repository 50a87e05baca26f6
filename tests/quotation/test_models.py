"""Rule: the model's values are immutable and compare, hash and print by their fields.

``OrderbookLevel`` is a msgspec Struct (the others are dataclasses); these are the
properties users rely on.
"""

from __future__ import annotations

import msgspec
import pytest

from quotation.models import OrderbookLevel

pytestmark = pytest.mark.timeout(10)


def test_an_orderbook_level_compares_hashes_and_prints_by_its_fields_in_order() -> None:
    level = OrderbookLevel(1.0, 2.0, 3.0, 4.0)

    assert level == OrderbookLevel(ask_price=1.0, ask_size=2.0, bid_price=3.0, bid_size=4.0)
    assert level != OrderbookLevel(1.0, 2.0, 3.0, 5.0)
    assert hash(level) == hash(OrderbookLevel(1.0, 2.0, 3.0, 4.0))
    assert repr(level) == "OrderbookLevel(ask_price=1.0, ask_size=2.0, bid_price=3.0, bid_size=4.0)"
    assert (level.ask_price, level.ask_size, level.bid_price, level.bid_size) == (1, 2, 3, 4)
    assert msgspec.structs.asdict(level) == {
        "ask_price": 1.0, "ask_size": 2.0, "bid_price": 3.0, "bid_size": 4.0
    }  # fmt: skip


def test_an_orderbook_level_cannot_be_changed() -> None:
    level = OrderbookLevel(1.0, 2.0, 3.0, 4.0)

    with pytest.raises(AttributeError):
        level.ask_price = 9.0  # type: ignore[misc]
    assert msgspec.structs.replace(level, bid_size=5.0) == OrderbookLevel(1.0, 2.0, 3.0, 5.0)
    assert level.bid_size == 4.0
