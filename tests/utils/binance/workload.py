"""A mix of spot calls of different weights (1 to 25), public and signed."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from utils.binance import BinanceClient

_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")


async def mixed_call(client: BinanceClient, n: int) -> Any:
    """The n-th call of the mix; weights 1, 2, 2, 4, 5, 4, 25, 20 in turn."""
    symbol = _SYMBOLS[n % len(_SYMBOLS)]
    match n % 8:
        case 0:
            return await client.call("GET /api/v3/ping")
        case 1:
            return await client.get_symbol_price(symbol)
        case 2:
            return await client.call("GET /api/v3/avgPrice", symbol=symbol)
        case 3:
            return await client.call("GET /api/v3/aggTrades", symbol=symbol, limit=5)
        case 4:
            return await client.get_order_book(symbol, limit=50)
        case 5:
            return await client.call("GET /api/v3/ticker/price")
        case 6:
            return await client.call("GET /api/v3/trades", symbol=symbol, limit=5)
        case _:
            return await client.get_account()


async def saturate(client: BinanceClient, *, tasks: int, until: float) -> int:
    """``tasks`` users each calling one call after another until the epoch ``until``;
    returns the number of calls made."""
    done = 0

    async def user(i: int) -> None:
        nonlocal done
        n = i
        while time.time() < until:
            await mixed_call(client, n)
            n += 1
            done += 1

    await asyncio.gather(*(user(i) for i in range(tasks)))
    return done
