"""The limiter against the fake exchange over HTTP: it uses the budget Binance gives and is
never answered 429, alone, shared between processes through Redis, and next to another
process spending weight on the same IP; it books the orders of a call per ORDERS window as
Binance counts them (a futures batch is 5 on the 10 s window, an OCO 2); and its own request
that reaches Binance after a window's end is not taken for another process's spend."""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from tests.fakes.fake_binance import FakeBinance
from tests.fakes.fake_limits import IN_FLIGHT_GRACE_S
from tests.utils.binance.conftest import (
    API_KEY,
    SECRET,
    EventLog,
    make_config,
    no_redis,
    redis_url_of,
    windows,
)
from tests.utils.binance.limiter_worker import early_in_a_window, go, result_of, start_worker
from tests.utils.binance.workload import saturate
from utils.binance import BinanceClient, Market
from utils.binance.binance_types import PoolKind, RateWindow
from utils.config import RedisConfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.conftest import RedisServer

LIMIT = 800  # weight per 1 s window: the real 6000/min, scaled so a test takes seconds
RUN_S = 4.0  # users keep calling this long; every window opened before that had demand
SECOND_START_S = 5.0  # how long a second worker process may take to start, under load
MARGIN = 0.02  # the default 5 % would cap use at exactly 95 %: leave room for fragments


@pytest.fixture
async def scaled_fake() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(
        spot_windows=windows(Market.SPOT, interval_s=1, limit=LIMIT), api_keys={API_KEY: SECRET}
    ) as fake:
        yield fake


@pytest.fixture(params=["in-process", "redis", "cluster"])
def backend(request: pytest.FixtureRequest) -> RedisConfig:
    if request.param == "in-process":
        return no_redis()
    return RedisConfig(url=redis_url_of(request), _env_file=None)


def full_windows(fake: FakeBinance, until: float) -> dict[int, int]:
    """Usage of every window that opened after the first busy one and before ``until``:
    demand exceeded the budget in each of them."""
    usage = fake.window_usage(Market.SPOT)
    first = min(i for i, used in usage.items() if used)
    return {i: usage.get(i, 0) for i in range(first + 1, int(until))}


async def test_200_concurrent_mixed_calls_use_the_whole_budget_without_a_429(
    scaled_fake: FakeBinance, backend: RedisConfig
) -> None:
    config = make_config(scaled_fake, rate_limit_margin=MARGIN)
    async with BinanceClient(config=config, redis=backend) as client:
        # Connected (on a cluster: every node found) and the limits learned before the run,
        # so that its first window measures the limiter, not the client's warm-up.
        await client.call("GET /api/v3/ping")
        await early_in_a_window()
        until = time.time() + RUN_S
        await saturate(client, tasks=200, until=until)
    assert scaled_fake.count(status=429) == 0
    assert scaled_fake.count(status=418) == 0
    full = full_windows(scaled_fake, until)
    assert len(full) >= 2, full
    assert all(used >= 0.95 * LIMIT for used in full.values()), sorted(full.values())
    assert all(used <= LIMIT for used in full.values()), sorted(full.values())


async def test_alone_on_its_ip_the_client_uses_98_percent_with_default_settings(
    scaled_fake: FakeBinance,
) -> None:
    config = make_config(scaled_fake)  # the default 5 % margin, 1 % while nobody else is seen
    until = time.time() + RUN_S
    async with BinanceClient(config=config, redis=no_redis()) as client:
        await saturate(client, tasks=200, until=until)
    assert scaled_fake.count(status=429) == 0
    full = full_windows(scaled_fake, until)
    assert len(full) >= 2, full
    assert all(0.98 * LIMIT <= used <= LIMIT for used in full.values()), sorted(full.values())


async def test_a_neighbour_seen_in_the_headers_brings_the_full_margin_back(
    scaled_fake: FakeBinance,
) -> None:
    other = LIMIT // 10
    scaled_fake.background_weight[Market.SPOT] = other
    until = time.time() + RUN_S
    async with BinanceClient(config=make_config(scaled_fake), redis=no_redis()) as client:
        await saturate(client, tasks=200, until=until)
    assert scaled_fake.count(status=429) == 0
    full = full_windows(scaled_fake, until)
    assert len(full) >= 2, full
    # with someone else on the IP, 5 % of the limit stays unused, as configured
    assert all(used <= 0.95 * LIMIT + 1 for used in full.values()), sorted(full.values())


async def test_two_processes_share_one_budget_through_redis(
    scaled_fake: FakeBinance, shared_redis: str
) -> None:
    # The second process starts while the first is spending: its own first call (exchangeInfo)
    # must be booked in the windows the first one learned and shared, not come as a surprise.
    # The run's end is set once the first is ready, leaving the second time to start on a
    # loaded machine (four test workers on two cores: a start-up can take seconds).
    # Each starts spending early in a window (see early_in_a_window).
    first_process = await start_worker(
        scaled_fake.url, shared_redis, tasks=100, until=None, margin=MARGIN
    )
    await early_in_a_window()
    until = time.time() + RUN_S + SECOND_START_S
    go([first_process], until)
    second_process = await start_worker(
        scaled_fake.url, shared_redis, tasks=100, until=None, margin=MARGIN
    )
    await early_in_a_window()
    go([second_process], until)
    first, second = await asyncio.gather(result_of(first_process), result_of(second_process))
    assert first["error"] is None, first
    assert second["error"] is None, second
    assert first["done"] > 0
    assert second["done"] > 0
    rejected = [(r.key, r.window, round(r.t % 1, 3)) for r in scaled_fake.requests if r.status]
    rejected = [r for r, q in zip(rejected, scaled_fake.requests, strict=True) if q.status >= 400]
    assert scaled_fake.count(status=429) == 0, (rejected, scaled_fake.window_usage(Market.SPOT))
    assert scaled_fake.count(status=418) == 0
    full = full_windows(scaled_fake, until)
    assert len(full) >= 2, full
    assert all(used <= LIMIT for used in full.values()), sorted(full.values())
    # Two processes on a shared two-core machine cannot always produce demand fast enough to
    # fill every window (a process starting takes a core for a second): the typical window is
    # near full. No floor on the emptiest: it measures the machine's load, not the limiter.
    used = sorted(full.values())
    assert used[len(used) // 2] >= 0.90 * LIMIT, used


async def test_weight_spent_by_another_process_slows_the_client_down(
    scaled_fake: FakeBinance, backend: RedisConfig
) -> None:
    other = LIMIT * 2 // 5
    scaled_fake.background_weight[Market.SPOT] = other  # spent as each window opens
    config = make_config(scaled_fake)
    until = time.time() + 3.0
    async with BinanceClient(config=config, redis=backend) as client:
        await saturate(client, tasks=100, until=until)
    assert scaled_fake.count(status=429) == 0
    full = full_windows(scaled_fake, until)
    assert full, "the run should span several windows"
    # our own share stayed within what the other process left
    assert all(used <= LIMIT for used in full.values()), full


async def test_a_burst_of_weight_seen_in_the_headers_defers_the_next_calls(
    scaled_fake: FakeBinance,
) -> None:
    async with BinanceClient(config=make_config(scaled_fake), redis=no_redis()) as client:
        await client.call("GET /api/v3/ping")  # limits loaded, time in sync
        scaled_fake.burn_weight(Market.SPOT, LIMIT - 60)
        await client.call("GET /api/v3/ping")  # the header now shows the other spend
        window = scaled_fake.requests[-1].window
        await asyncio.gather(*(client.get_symbol_price("BTCUSDT") for _ in range(40)))
    assert scaled_fake.count(status=429) == 0
    later = [r for r in scaled_fake.requests if r.key == "GET /api/v3/ticker/price"]
    assert any(r.window > window for r in later), "some calls must wait for the next window"


async def test_a_429_pauses_the_pool_until_retry_after_and_no_418_follows(
    scaled_fake: FakeBinance, event_log: Any
) -> None:
    async with BinanceClient(config=make_config(scaled_fake), redis=no_redis()) as client:
        log: EventLog = event_log(client)
        await client.call("GET /api/v3/ping")
        scaled_fake.force_429(1, retry_after_s=1)
        prices = await asyncio.gather(*(client.get_symbol_price("ETHUSDT") for _ in range(10)))
    assert len(prices) == 10  # no caller saw the 429: each call waited and went again
    assert scaled_fake.count(status=418) == 0
    first_429 = min(r.t for r in scaled_fake.requests if r.status == 429)
    pause = (first_429 + IN_FLIGHT_GRACE_S, first_429 + 1.0)  # in-flight ones may still land
    assert not [r for r in scaled_fake.requests if pause[0] < r.t < pause[1]]
    assert scaled_fake.count(status=200, key="GET /api/v3/ticker/price") == 10
    assert "ratelimit.429" in log.kinds()
    assert "ratelimit.resumed" in log.kinds()


async def test_a_418_ban_stops_the_market_until_it_ends(event_log: Any) -> None:
    async with FakeBinance(
        spot_windows=windows(Market.SPOT, interval_s=60, limit=LIMIT),
        api_keys={API_KEY: SECRET},
        first_ban_s=1.0,
    ) as fake:
        fake.in_flight_grace_s = 0
        config = make_config(fake)
        async with BinanceClient(config=config, redis=no_redis()) as client:
            log: EventLog = event_log(client)
            await client.call("GET /api/v3/ping")
            fake.force_429(1)  # somebody on this IP ignored a 429 and got the IP banned:
            async with aiohttp.ClientSession() as other:
                for _ in range(2):
                    async with other.get(f"{fake.url}/api/v3/ping") as resp:
                        await resp.read()
            price = await client.get_symbol_price("BTCUSDT")  # meets the ban, waits it out
            futures = await client.get_symbol_price("BTCUSDT", market=Market.FUTURES)
    assert price["symbol"] == futures["symbol"] == "BTCUSDT"
    ours = [r for r in fake.requests if r.key == "GET /api/v3/ticker/price"]
    banned = [r for r in ours if r.status == 418]
    assert len(banned) == 1  # the client sent nothing more until the ban was over
    assert ours[-1].status == 200
    assert ours[-1].t >= banned[0].t + 0.9
    assert "ratelimit.418" in log.kinds()


async def test_calls_keep_working_when_redis_goes_away_and_share_again_when_it_returns(
    scaled_fake: FakeBinance, redis_server: RedisServer, event_log: Any
) -> None:
    config = make_config(scaled_fake, redis_retry_s=0.5)
    redis = RedisConfig(url=redis_server.url, _env_file=None)
    async with BinanceClient(config=config, redis=redis) as client:
        log: EventLog = event_log(client)
        await client.get_symbol_price("BTCUSDT")
        await redis_server.stop()
        prices = await asyncio.gather(*(client.get_symbol_price("ETHUSDT") for _ in range(20)))
        assert len(prices) == 20
        assert log.kinds().count("ratelimit.redis_down") == 1
        await redis_server.start()  # an empty Redis: bookings will show up in it again
        await asyncio.sleep(0.5)  # the one deadline: when the client tries Redis again
        await client.get_symbol_price("BTCUSDT")
        assert log.kinds().count("ratelimit.redis_up") == 1
        async with aioredis.from_url(redis_server.url) as check:
            assert await check.keys("tgbot:rl:*")  # the budget lives in Redis again
    assert scaled_fake.count(status=429) == 0


# --- orders, per ORDERS window ----------------------------------------------------------
LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.001",
    "price": "60000",
}
BATCH = "POST /fapi/v1/batchOrders"
OCO = "POST /api/v3/orderList/oco"


def align(fake: FakeBinance, interval_s: int, offset_s: float) -> None:
    """Skew the fake's clock (and so Binance's clock the client syncs to) to ``offset_s``
    into one of its windows: the calls before the awaited boundary cannot straddle one."""
    now = time.time()
    fake.clock_skew_s = (math.floor(now / interval_s) + 1) * interval_s + offset_s - now


async def test_futures_batches_fill_the_10s_order_window_and_one_more_waits_for_the_next(
    backend: RedisConfig,
) -> None:
    # BINANCE.md §6.2: a batch is 5 orders on the 10 s window and 1 on the minute. 25 per 10 s
    # (the real 300, scaled): five batches fill it; booked as one order each, the sixth would
    # go out at once and be answered 429 -1015.
    f, orders = Market.FUTURES, PoolKind.ORDERS
    futures = [
        RateWindow(f, PoolKind.REQUEST_WEIGHT, 60, 2400),
        RateWindow(f, orders, 10, 25, per_account=True),
        RateWindow(f, orders, 60, 1200, per_account=True),
    ]
    five = orjson.dumps([LIMIT_BUY] * 5).decode()
    async with FakeBinance(futures_windows=futures, api_keys={API_KEY: SECRET}) as fake:
        align(fake, 10, 6.5)
        config = make_config(fake, rate_limit_margin=0)
        async with BinanceClient(config=config, redis=backend) as client:
            await client.call("GET /fapi/v1/openOrders", symbol="BTCUSDT")  # limits, clock
            answers = await asyncio.gather(
                *(client.call(BATCH, batchOrders=five) for _ in range(6))
            )
    assert [[order["status"] for order in batch] for batch in answers] == [["NEW"] * 5] * 6
    assert fake.count(status=429) == 0
    per_10s = fake.order_usage(f, 10)  # the fake's own count, from its own table
    first = min(per_10s)
    assert per_10s == {first: 25, first + 1: 5}
    assert sum(fake.order_usage(f, 60).values()) == 6
    sent = sorted(int(r.t // 10) for r in fake.requests if r.key == BATCH)
    assert sent == [first] * 5 + [first + 1]  # held back until the next window, then sent


async def test_spot_ocos_count_two_orders_each_and_the_one_without_room_waits(
    backend: RedisConfig,
) -> None:
    # The spot swagger: "OCOs add 2 orders to the unfilled order count". 4 orders per 2 s:
    # two OCOs fill the window; the third waits for the next.
    s = Market.SPOT
    spot = [
        RateWindow(s, PoolKind.REQUEST_WEIGHT, 60, 6000),
        RateWindow(s, PoolKind.ORDERS, 2, 4, per_account=True),
    ]
    oco = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": "0.001",
        "aboveType": "LIMIT_MAKER",
        "abovePrice": "70000",
        "belowType": "STOP_LOSS",
        "belowStopPrice": "60000",
    }
    async with FakeBinance(spot_windows=spot, api_keys={API_KEY: SECRET}) as fake:
        align(fake, 2, 0.5)
        config = make_config(fake, rate_limit_margin=0)
        async with BinanceClient(config=config, redis=backend) as client:
            await client.call("GET /api/v3/openOrders", symbol="BTCUSDT")  # limits, clock
            lists = await asyncio.gather(*(client.call(OCO, **oco) for _ in range(3)))
    assert [len(answer["orders"]) for answer in lists] == [2, 2, 2]
    assert fake.count(status=429) == 0
    per_window = fake.order_usage(s, 2)
    first = min(per_window)
    assert per_window == {first: 4, first + 1: 2}


# --- our own late requests are not a neighbour ----------------------------------------------
PRICE = "GET /api/v3/ticker/price"


async def late_request_then_demand(
    fake: FakeBinance, backend: RedisConfig, *, neighbour: int = 0
) -> int:
    """One price call booked early in a window (K) reaches the fake only 0.1 s into the next
    one (K + 1), held there as a starved loop or a slow network would; then 50 users keep
    calling until window K + 4 opens. From K + 1 on, another process spends ``neighbour`` as
    each window opens. Returns K (on the fake's clock: windows of 1 s)."""
    align(fake, 1, 0.2)
    async with BinanceClient(config=make_config(fake), redis=backend) as client:
        await client.call("GET /api/v3/openOrders", symbol="BTCUSDT")  # limits, clock
        k = fake.requests[-1].window
        fake.background_weight[Market.SPOT] = neighbour  # window K is open: from K + 1
        fake.hold_until(k + 1.1, key=PRICE)
        await client.get_symbol_price("BTCUSDT")
        late = fake.requests[-1]
        assert late.received is not None
        # the premise: it left the client in window K and Binance counted it in K + 1
        assert (int(late.received), late.window) == (k, k + 1), late

        async def user() -> None:
            while fake.now() < k + 4:
                await client.get_symbol_price("BTCUSDT")

        await asyncio.gather(*(user() for _ in range(50)))
    return k


async def test_our_request_counted_in_the_next_window_is_not_taken_for_a_neighbour(
    backend: RedisConfig,
) -> None:
    # 120 weight a window, weight-2 calls. Alone on the IP, the in-process limiter spends up
    # to its 1 % quiet margin (118); shared through Redis it keeps the 5 % margin (114). Taken
    # for another process's spend, the late call's 2 was assumed again in the window after,
    # with the 5 % margin back: 112 there.
    full = 118 if backend.url is None else 114
    spot = windows(Market.SPOT, interval_s=1, limit=120)
    async with FakeBinance(spot_windows=spot, api_keys={API_KEY: SECRET}) as fake:
        k = await late_request_then_demand(fake, backend)
    assert fake.count(status=429) == 0
    assert fake.count(status=418) == 0
    usage = fake.window_usage(Market.SPOT)
    assert usage[k + 1] <= 120  # the late call's weight was counted where Binance put it
    assert [usage[k + 2], usage[k + 3]] == [full, full], usage


async def test_a_neighbour_spending_beside_our_late_request_is_still_respected(
    backend: RedisConfig,
) -> None:
    # Another process spends 10 as each window opens, from the window the late call lands
    # in: the limiter must not take that spend for its own late call. With someone else on
    # the IP the 5 % margin is back: each window then holds 114, the neighbour's 10 and 104
    # of ours, and no call is answered 429.
    spot = windows(Market.SPOT, interval_s=1, limit=120)
    async with FakeBinance(spot_windows=spot, api_keys={API_KEY: SECRET}) as fake:
        k = await late_request_then_demand(fake, backend, neighbour=10)
    assert fake.count(status=429) == 0
    assert fake.count(status=418) == 0
    usage = fake.window_usage(Market.SPOT)
    assert usage[k + 1] <= 120
    assert [usage[k + 2], usage[k + 3]] == [114, 114], usage
