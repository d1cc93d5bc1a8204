"""README, "Never gets the IP banned": every pool a call counts against is booked before it
leaves, not only spot REQUEST_WEIGHT. Spot RAW_REQUESTS (per IP), ORDERS (per account, spot
and futures) and futures REQUEST_WEIGHT, each scaled down to a one-second window the fake
exchange enforces: more demand than one window holds is spread over the next windows and
Binance never answers 429."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import pytest

from tests.fakes.fake_binance import FakeBinance
from tests.utils.binance.conftest import API_KEY, SECRET, make_config, no_redis
from utils.binance import BinanceClient, Market, OrderSide
from utils.binance.binance_types import PoolKind, RateWindow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

S, F = Market.SPOT, Market.FUTURES
PING: Final = "GET /api/v3/ping"
FUTURES_DEPTH: Final = "GET /fapi/v1/depth"
RAW_LIMIT: Final = 20  # requests per 1 s window
ORDER_LIMIT: Final = 5  # orders per 1 s window, per account
FUTURES_WEIGHT_LIMIT: Final = 100  # weight per 1 s window


def per_second(fake: FakeBinance, key: str, *, weight: bool = False) -> dict[int, int]:
    """What the fake received of ``key`` per clock-aligned second: requests or weight."""
    counts: Counter[int] = Counter()
    for r in fake.requests:
        if r.key == key:
            counts[int(r.t)] += r.weight if weight else 1
    return dict(counts)


@pytest.fixture
async def scaled() -> AsyncIterator[FakeBinance]:
    """Spot: RAW_REQUESTS and ORDERS in 1 s windows; futures: REQUEST_WEIGHT and ORDERS."""
    spot = [
        RateWindow(S, PoolKind.REQUEST_WEIGHT, 60, 6000),
        RateWindow(S, PoolKind.RAW_REQUESTS, 1, RAW_LIMIT),
        RateWindow(S, PoolKind.ORDERS, 1, ORDER_LIMIT, per_account=True),
    ]
    futures = [
        RateWindow(F, PoolKind.REQUEST_WEIGHT, 1, FUTURES_WEIGHT_LIMIT),
        RateWindow(F, PoolKind.ORDERS, 1, ORDER_LIMIT, per_account=True),
    ]
    async with FakeBinance(
        spot_windows=spot, futures_windows=futures, api_keys={API_KEY: SECRET}
    ) as fake:
        yield fake


async def test_spot_raw_requests_are_booked_so_a_burst_waits_for_the_next_windows(
    scaled: FakeBinance,
) -> None:
    async with BinanceClient(config=make_config(scaled), redis=no_redis()) as client:
        await client.call(PING)  # limits loaded from exchangeInfo
        answers = await asyncio.gather(*(client.call(PING) for _ in range(50)))
    assert answers == [{}] * 50
    assert scaled.count(status=429) == 0
    spread = per_second(scaled, PING)
    assert max(spread.values()) <= RAW_LIMIT
    assert len(spread) >= 3  # 51 pings at most 20 a second: the client held them back


@pytest.mark.parametrize("market", [S, F])
async def test_orders_are_booked_per_account_so_no_order_is_refused(
    scaled: FakeBinance, market: Market
) -> None:
    key = "POST /api/v3/order" if market is S else "POST /fapi/v1/order"
    async with BinanceClient(config=make_config(scaled), redis=no_redis()) as client:
        orders = await asyncio.gather(
            *(
                client.new_order(
                    "BTCUSDT", side=OrderSide.BUY, quantity=Decimal("0.001"), market=market
                )
                for _ in range(12)
            )
        )
    assert len({o.client_order_id for o in orders}) == 12
    assert scaled.orders_placed == 12
    assert scaled.count(key) == 12  # none refused, none resent
    assert scaled.count(status=429) == 0  # no -1015 "Too many new orders"
    spread = per_second(scaled, key)
    assert max(spread.values()) <= ORDER_LIMIT
    assert len(spread) >= 3  # 12 orders at most 5 a second


async def test_futures_request_weight_is_booked_like_spots(scaled: FakeBinance) -> None:
    params = {"symbol": "BTCUSDT", "limit": 100}  # weight 5 (BINANCE.md §6.2)
    async with BinanceClient(config=make_config(scaled), redis=no_redis()) as client:
        await client.call(FUTURES_DEPTH, **params)
        books = await asyncio.gather(*(client.call(FUTURES_DEPTH, **params) for _ in range(60)))
    assert all(book["bids"] for book in books)
    assert scaled.count(status=429) == 0
    weight = per_second(scaled, FUTURES_DEPTH, weight=True)
    assert max(weight.values()) <= FUTURES_WEIGHT_LIMIT
    assert len(weight) >= 4  # 61 x 5 = 305 weight at most 100 a second
