"""README, "Never sends an order twice" and "Every ... REST operation": an order Binance
answers 408 / -1007 ("execution status unknown") is looked up by the ``newClientOrderId`` it
was sent with, never sent again; and ``client.call`` refuses an enum value the table does not
list before anything is sent (the spot operations whose spec files list enums: Binance's
futures files list none, so there Binance itself checks them)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Final

import pytest

from tests.utils.binance.conftest import make_config, no_redis
from utils.binance import (
    BinanceClient,
    BinanceInputError,
    BinanceOrderNotPlacedError,
    Market,
    OrderSide,
)

if TYPE_CHECKING:
    from tests.fakes.fake_binance import FakeBinance

FUTURES_ORDER: Final = "POST /fapi/v1/order"
FUTURES_QUERY: Final = "GET /fapi/v1/order"
TICKER_24H: Final = "GET /api/v3/ticker/24hr"


def sent(fake: FakeBinance, key: str) -> list[dict[str, str]]:
    return [r.params for r in fake.requests if r.key == key]


async def test_an_order_answered_408_minus_1007_is_looked_up_by_its_id_and_not_resent(
    fake_binance: FakeBinance,
) -> None:
    config = make_config(fake_binance, recv_window_ms=1000)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        fake_binance.fail_next(1, status=408, key=FUTURES_ORDER)  # code -1007, nothing placed
        with pytest.raises(BinanceOrderNotPlacedError) as caught:
            await client.new_order(
                "BTCUSDT", side=OrderSide.BUY, quantity=Decimal("0.001"), market=Market.FUTURES
            )
    (order,) = sent(fake_binance, FUTURES_ORDER)  # sent once, never again
    client_order_id = order["newClientOrderId"]
    lookups = sent(fake_binance, FUTURES_QUERY)
    assert lookups
    assert {q["origClientOrderId"] for q in lookups} == {client_order_id}
    assert fake_binance.orders_placed == 0
    assert client_order_id in str(caught.value)
    assert "safe to send it again" in str(caught.value)


async def test_an_order_binance_holds_under_that_id_is_returned_after_a_408(
    fake_binance: FakeBinance,
) -> None:
    """An earlier attempt reached the matching engine: the lookup finds it, no second order."""
    config = make_config(fake_binance, recv_window_ms=1000)
    order = {
        "side": OrderSide.BUY,
        "quantity": Decimal("0.001"),
        "market": Market.FUTURES,
        "client_order_id": "tg-attempt-1",
    }
    async with BinanceClient(config=config, redis=no_redis()) as client:
        first = await client.new_order("BTCUSDT", **order)  # type: ignore[arg-type]
        fake_binance.fail_next(1, status=408, key=FUTURES_ORDER)
        again = await client.new_order("BTCUSDT", **order)  # type: ignore[arg-type]
    assert again.client_order_id == first.client_order_id == "tg-attempt-1"
    assert again.order_id == first.order_id
    assert fake_binance.orders_placed == 1
    assert len(sent(fake_binance, FUTURES_ORDER)) == 2  # the first and the one answered 408
    assert [q["origClientOrderId"] for q in sent(fake_binance, FUTURES_QUERY)] == ["tg-attempt-1"]


@pytest.mark.parametrize(
    ("key", "params", "named"),
    [
        (TICKER_24H, {"symbol": "BTCUSDT", "type": "FULLER"}, "type='FULLER'"),
        (
            "POST /api/v3/order",
            {"symbol": "BTCUSDT", "side": "HOLD", "type": "MARKET", "quantity": "1"},
            "side='HOLD'",
        ),
        ("GET /api/v3/klines", {"symbol": "BTCUSDT", "interval": "2m"}, "interval='2m'"),
    ],
)
async def test_call_refuses_a_value_outside_the_tables_enum_before_sending(
    client: BinanceClient,
    fake_binance: FakeBinance,
    key: str,
    params: dict[str, str],
    named: str,
) -> None:
    with pytest.raises(BinanceInputError) as caught:
        await client.call(key, **params)
    assert fake_binance.count() == 0
    assert named in str(caught.value)
    assert str(caught.value).startswith(key)


async def test_call_sends_a_value_the_enum_lists(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    mini = await client.call(TICKER_24H, symbol="BTCUSDT", type="MINI")
    assert mini["symbol"] == "BTCUSDT"
    assert sent(fake_binance, TICKER_24H) == [{"symbol": "BTCUSDT", "type": "MINI"}]
