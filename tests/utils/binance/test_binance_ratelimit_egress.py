"""BINANCE_EGRESS_ID over the wire: Binance counts weight per public IP. Real processes with one
egress id share one budget against one fake exchange with no 429; with two ids, against two
fake exchanges (two IPs, each counting its own weight), each uses at least 95 % of its own. The
account's order windows stay shared by every id: two clients on two ids place orders through
one Redis and together stay within one order window. The setting itself: one shared id by
default, and a value that cannot name an IP inside a Redis key is refused by name."""

from __future__ import annotations

import asyncio
import math
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import pytest

from tests.fakes.fake_binance import FakeBinance
from tests.utils.binance.conftest import API_KEY, SECRET, make_config, windows
from tests.utils.binance.limiter_worker import early_in_a_window, go, result_of, start_worker
from utils.binance import BinanceClient, Market, OrderSide
from utils.binance.binance_types import PoolKind, RateWindow
from utils.config import BinanceConfig, BinanceConfigError, RedisConfig

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from tests.conftest import RedisServer

LIMIT: Final = 800  # weight per 1 s window: the real 6000/min, scaled so a test takes seconds
RUN_S: Final = 4.0  # users keep calling this long; every window opened before that had demand
MARGIN: Final = 0.02  # room for fragments: the default 5 % would cap use at exactly 95 %
TASKS: Final = 100  # users per process


def scaled_fake() -> AbstractAsyncContextManager[FakeBinance]:
    return FakeBinance(
        spot_windows=windows(Market.SPOT, interval_s=1, limit=LIMIT), api_keys={API_KEY: SECRET}
    )


def full_windows(fake: FakeBinance, spent: tuple[float, float]) -> list[int]:
    """The weight the fake counted in every window that opened and closed while the workers
    were calling (``spent``, epochs): demand exceeded the budget in each. Sorted."""
    usage = fake.window_usage(Market.SPOT)
    return sorted(usage.get(i, 0) for i in range(int(spent[0]) + 1, int(spent[1])))


def rejected(fake: FakeBinance) -> list[tuple[str, int, float]]:
    """The requests answered 429 or 418: endpoint, window, and how far into it they came."""
    return [(r.key, r.window, round(r.t % 1, 3)) for r in fake.requests if r.status >= 429]


async def run_workers(
    fakes: list[FakeBinance], redis_url: str, egress_ids: list[str]
) -> tuple[float, float]:
    """One worker process per (fake, egress id); once all have started, they call together
    for ``RUN_S``. Returns when they started and stopped (epochs)."""
    processes = [
        await start_worker(
            fake.url, redis_url, tasks=TASKS, until=None, margin=MARGIN, egress=egress
        )
        for fake, egress in zip(fakes, egress_ids, strict=True)
    ]
    await early_in_a_window()
    start = time.time()
    go(processes, start + RUN_S)
    for result in await asyncio.gather(*(result_of(p) for p in processes)):
        assert result["error"] is None, result
        assert result["done"] > 0, result
    return start, start + RUN_S


async def test_two_processes_with_one_egress_id_share_one_budget(
    redis_server: RedisServer,
) -> None:
    async with scaled_fake() as fake:
        spent = await run_workers([fake, fake], redis_server.url, ["eu-1", "eu-1"])
    assert fake.count(status=429) == 0, (rejected(fake), fake.window_usage(Market.SPOT))
    assert fake.count(status=418) == 0
    used = full_windows(fake, spent)
    assert len(used) >= 2, used
    assert all(u <= LIMIT for u in used), used


async def test_two_processes_with_two_egress_ids_each_use_their_own_full_budget(
    shared_redis: str,
) -> None:
    async with scaled_fake() as eu, scaled_fake() as us:  # two IPs: Binance counts each apart
        spent = await run_workers([eu, us], shared_redis, ["eu-1", "us-1"])
    for fake in (eu, us):
        assert fake.count(status=429) == 0, (rejected(fake), fake.window_usage(Market.SPOT))
        assert fake.count(status=418) == 0
        used = full_windows(fake, spent)
        assert len(used) >= 2, used
        assert all(u <= LIMIT for u in used), used
        # Each used its own budget: at least 95 % of it over the full windows, and no window
        # starved by a loaded machine (sharing one budget, each would get about half).
        assert sum(used) >= 0.95 * LIMIT * len(used), used
        assert used[0] >= 0.90 * LIMIT, used


# --- the setting ------------------------------------------------------------------------------
def test_processes_share_one_egress_id_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BINANCE_EGRESS_ID", raising=False)
    assert BinanceConfig(_env_file=None).egress_id == "default"
    monkeypatch.setenv("BINANCE_EGRESS_ID", "eu-west-1.a")
    assert BinanceConfig(_env_file=None).egress_id == "eu-west-1.a"


@pytest.mark.parametrize("bad", ["eu 1", "{eu}", "eu:1", "a" * 65])
def test_an_egress_id_that_cannot_name_an_ip_in_a_key_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("BINANCE_EGRESS_ID", bad)
    with pytest.raises(BinanceConfigError, match="BINANCE_EGRESS_ID") as refused:
        BinanceConfig(_env_file=None)
    assert refused.value.variable == "BINANCE_EGRESS_ID"
    with pytest.raises(BinanceConfigError, match="egress_id"):
        BinanceConfig(egress_id=bad, _env_file=None)


# --- orders: per account, whatever the IP -----------------------------------------------------
ORDER_LIMIT: Final = 4  # orders per 2 s window, per account


def align(fake: FakeBinance, interval_s: int, offset_s: float) -> None:
    """Skew the fake's clock to ``offset_s`` into one of its windows."""
    now = time.time()
    fake.clock_skew_s = (math.floor(now / interval_s) + 1) * interval_s + offset_s - now


async def test_orders_from_two_egress_ids_share_the_accounts_order_window(
    shared_redis: str,
) -> None:
    # One fake: it keeps the account's order count (two fakes would each count their own).
    # Its weight budget is far beyond what eight orders cost, so the two IP budgets the two
    # ids have cannot matter; only the account's 4 orders per 2 s can.
    spot = [
        RateWindow(Market.SPOT, PoolKind.REQUEST_WEIGHT, 60, 6000),
        RateWindow(Market.SPOT, PoolKind.ORDERS, 2, ORDER_LIMIT, per_account=True),
    ]
    async with FakeBinance(spot_windows=spot, api_keys={API_KEY: SECRET}) as fake:
        align(fake, 2, 0.5)
        redis = RedisConfig(url=shared_redis, _env_file=None)
        eu_config = make_config(fake, rate_limit_margin=0, egress_id="eu-1")
        us_config = make_config(fake, rate_limit_margin=0, egress_id="us-1")
        async with (
            BinanceClient(config=eu_config, redis=redis) as eu,
            BinanceClient(config=us_config, redis=redis) as us,
        ):
            for client in (eu, us):  # limits and clock
                await client.call("GET /api/v3/openOrders", symbol="BTCUSDT")
            orders = await asyncio.gather(
                *(
                    client.new_order("BTCUSDT", side=OrderSide.BUY, quantity=Decimal("0.001"))
                    for client in (eu, us)
                    for _ in range(4)
                )
            )
    assert len({order.client_order_id for order in orders}) == 8
    assert fake.count(status=429) == 0  # no -1015 "Too many new orders"
    per_window = fake.order_usage(Market.SPOT, 2)  # the fake's own count
    first = min(per_window)
    assert per_window == {first: 4, first + 1: 4}
