"""An order is never sent twice: when its answer is lost, the client looks it up by the
client order id it always sets, and only then decides."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from tests.utils.binance.conftest import make_config, no_redis
from utils.binance import (
    BinanceClient,
    BinanceOrderNotPlacedError,
    BinanceOrderRejectedError,
    Market,
    OrderSide,
)

if TYPE_CHECKING:
    from tests.fakes.fake_binance import FakeBinance

ORDER = "POST /api/v3/order"


@pytest.fixture
async def order_client(fake_binance: FakeBinance) -> BinanceClient:
    config = make_config(fake_binance, request_timeout=0.5, recv_window_ms=1000)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        yield client  # type: ignore[misc]


async def test_order_whose_answer_times_out_is_not_sent_twice(
    order_client: BinanceClient, fake_binance: FakeBinance
) -> None:
    fake_binance.accept_then_hang(ORDER)
    order = await order_client.new_order("BTCUSDT", side=OrderSide.BUY, quantity=Decimal("0.001"))
    assert fake_binance.orders_placed == 1
    assert fake_binance.count(ORDER) == 1
    assert fake_binance.last_order is not None
    assert order.client_order_id == fake_binance.last_order["clientOrderId"]


async def test_futures_order_whose_answer_is_lost_is_looked_up_not_resent(
    order_client: BinanceClient, fake_binance: FakeBinance
) -> None:
    fake_binance.accept_then_hang("POST /fapi/v1/order")
    order = await order_client.new_order(
        "ETHUSDT", side="SELL", quantity="0.01", market=Market.FUTURES
    )
    assert fake_binance.count("POST /fapi/v1/order") == 1
    assert fake_binance.count("GET /fapi/v1/order") >= 1
    assert order.symbol == "ETHUSDT"


async def test_order_lost_before_binance_saw_it_is_reported_not_placed(
    order_client: BinanceClient, fake_binance: FakeBinance
) -> None:
    fake_binance.reset_next(1, key=ORDER)
    with pytest.raises(BinanceOrderNotPlacedError) as caught:
        await order_client.new_order("BTCUSDT", side="BUY", quantity="0.001")
    assert fake_binance.orders_placed == 0
    assert fake_binance.count(ORDER) == 1  # never resent by the client
    assert "safe to send it again" in str(caught.value)


async def test_order_answered_503_is_looked_up_and_reported_not_placed(
    order_client: BinanceClient, fake_binance: FakeBinance
) -> None:
    fake_binance.fail_next(1, status=503, key=ORDER)
    with pytest.raises(BinanceOrderNotPlacedError):
        await order_client.new_order("BTCUSDT", side="BUY", quantity="0.001")
    assert fake_binance.count(ORDER) == 1
    assert fake_binance.count("GET /api/v3/order") >= 1


async def test_every_order_carries_a_client_order_id(
    order_client: BinanceClient, fake_binance: FakeBinance
) -> None:
    await order_client.place_order(symbol="BTCUSDT", side="BUY", type_="MARKET", quantity=0.001)
    sent = [r for r in fake_binance.requests if r.key == ORDER]
    assert sent[0].params["newClientOrderId"].startswith("tg")


async def test_rejected_order_is_a_typed_error_and_not_retried(
    order_client: BinanceClient, fake_binance: FakeBinance
) -> None:
    await order_client.new_order(
        "BTCUSDT",
        side="BUY",
        type_="LIMIT",
        quantity="0.001",
        price="10000",
        client_order_id="dup1",
    )
    with pytest.raises(BinanceOrderRejectedError) as caught:
        await order_client.new_order(
            "BTCUSDT",
            side="BUY",
            type_="LIMIT",
            quantity="0.001",
            price="10000",
            client_order_id="dup1",
        )
    assert caught.value.code == -2010
    assert fake_binance.count(ORDER) == 2
