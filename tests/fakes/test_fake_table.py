"""The fake exchange's own endpoint table: committed as its generator writes it, every row
sourced, and enforced over HTTP as BINANCE.md says: order counts per ORDERS window (a futures
batch is 5 orders on the 10 s window but 1 on the minute, an OCO 2), an endpoint's own pool
outside REQUEST_WEIGHT, weights read from the parameters.

Expected numbers are written out from BINANCE.md, never read from either table."""

from __future__ import annotations

import asyncio
import hmac
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest
from yarl import URL

from tests.fakes.fake_binance import TEST_API_KEY, TEST_API_SECRET, FakeBinance
from tests.fakes.fake_weights import FUTURES, SPOT, PoolKind, Weight, Window
from tests.fakes.fake_weights_table import OPS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO.parent / "shared" / "specs"
KEY_HEADER = {"X-MBX-APIKEY": TEST_API_KEY}
LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.001",
    "price": "60000",
}
OCO = {
    "symbol": "BTCUSDT",
    "side": "SELL",
    "quantity": "0.001",
    "aboveType": "LIMIT_MAKER",
    "abovePrice": "70000",
    "belowType": "STOP_LOSS",
    "belowStopPrice": "60000",
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def align(fake: FakeBinance, interval_s: int, offset_s: float) -> None:
    """Skew the fake's clock to ``offset_s`` into one of its windows: no test straddles one."""
    now = time.time()
    fake.clock_skew_s = (math.floor(now / interval_s) + 1) * interval_s + offset_s - now


def signed(fake: FakeBinance, params: dict[str, Any]) -> str:
    query = urlencode({**params, "timestamp": int(fake.now() * 1000)})
    signature = hmac.new(TEST_API_SECRET.encode(), query.encode(), "sha256").hexdigest()
    return f"{query}&signature={signature}"


async def post(
    http: aiohttp.ClientSession, fake: FakeBinance, path: str, params: dict[str, Any]
) -> tuple[int, Any, aiohttp.ClientResponse]:
    url = URL(f"{fake.url}{path}?{signed(fake, params)}", encoded=True)  # sent as signed
    async with http.post(url, headers=KEY_HEADER) as resp:
        return resp.status, await resp.json(content_type=None), resp


def batch(n: int) -> dict[str, str]:
    return {"batchOrders": orjson.dumps([LIMIT_BUY] * n).decode()}


def test_the_committed_table_is_what_its_generator_writes() -> None:
    if not SPECS.is_dir():
        message = f"Binance's spec files are missing: expected them at {SPECS}"
        if os.environ.get("CI") is not None:
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [sys.executable, "-m", "tests.fakes.gen_fake_weights", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_every_row_names_where_its_numbers_come_from() -> None:
    assert len(OPS) == 153
    assert all(op.source for op in OPS.values())
    assumed = {k for k, op in OPS.items() if op.source.startswith("assumed")}
    assert "GET /api/v3/depth" not in assumed
    assert "GET /fapi/v1/historicalTrades" in assumed  # §6.2 does not price it


@pytest.mark.parametrize(
    ("weight", "params", "expected"),
    [
        (Weight(2, no_symbol=80, symbols=((20, 2), (100, 40), (10**6, 80))), {}, 80),
        (
            Weight(2, no_symbol=80, symbols=((20, 2), (100, 40), (10**6, 80))),
            {"symbols": orjson.dumps([f"S{i}" for i in range(21)]).decode()},
            40,
        ),
        (Weight(4, each_symbol=4, cap=200), {"symbols": '["A","B","C"]'}, 12),
        (Weight(4, each_symbol=4, cap=200), {"symbols": orjson.dumps(["A"] * 51).decode()}, 200),
        (Weight(5, limit=((100, 5), (500, 25)), limit_default=100), {"limit": "101"}, 25),
        (Weight(5, limit=((100, 5), (500, 25)), limit_default=100), {"limit": "x"}, 5),
        (Weight(20, flags=(("orderId", 5),)), {"orderId": "7"}, 5),
        (
            Weight(1, flags=(("computeCommissionRates", 20),)),
            {"computeCommissionRates": "false"},
            1,
        ),
    ],
)
def test_a_weight_is_read_from_the_parameters_as_binance_words_it(
    weight: Weight, params: dict[str, str], expected: int
) -> None:
    assert weight.of(params) == expected


def test_headers_are_named_as_binance_names_them() -> None:
    assert Window(SPOT, PoolKind.REQUEST_WEIGHT, 60, 6000).header == "x-mbx-used-weight-1m"
    assert Window(SPOT, PoolKind.ORDERS, 86400, 160_000).header == "x-mbx-order-count-1d"
    assert Window(FUTURES, PoolKind.ORDERS, 10, 300).header == "x-mbx-order-count-10s"
    assert Window(SPOT, PoolKind.RAW_REQUESTS, 300, 300_000).header == ""


async def test_a_futures_batch_is_five_orders_on_the_10s_window_and_one_on_the_minute(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeBinance() as fake:
        align(fake, 60, 0.5)
        status, answers, resp = await post(http, fake, "/fapi/v1/batchOrders", batch(2))
        assert status == 200
        assert [a["status"] for a in answers] == ["NEW", "NEW"]
        assert resp.headers["x-mbx-order-count-10s"] == "5"
        assert resp.headers["x-mbx-order-count-1m"] == "1"
        assert resp.headers["x-mbx-used-weight-1m"] == "5"  # §6.2: 5 IP
        assert list(fake.order_usage(FUTURES, 10).values()) == [5]


async def test_a_batch_over_the_10s_order_limit_is_refused_though_the_minute_has_room(
    http: aiohttp.ClientSession,
) -> None:
    windows = [
        Window(FUTURES, PoolKind.REQUEST_WEIGHT, 60, 2400),
        Window(FUTURES, PoolKind.ORDERS, 10, 9),
        Window(FUTURES, PoolKind.ORDERS, 60, 1200),
    ]
    async with FakeBinance(futures_windows=windows) as fake:
        align(fake, 10, 0.5)
        assert (await post(http, fake, "/fapi/v1/batchOrders", batch(1)))[0] == 200
        status, body, _ = await post(http, fake, "/fapi/v1/batchOrders", batch(1))
        assert (status, body["code"]) == (429, -1015)
        assert body["msg"] == "Too many new orders; current limit is 9 orders per 10 SECOND."
        assert list(fake.order_usage(FUTURES, 10).values()) == [5]
        assert list(fake.order_usage(FUTURES, 60).values()) == [1]


async def test_an_oco_is_two_orders_and_an_otoco_three(http: aiohttp.ClientSession) -> None:
    async with FakeBinance() as fake:
        align(fake, 10, 0.5)
        status, _, resp = await post(http, fake, "/api/v3/orderList/oco", OCO)
        assert (status, resp.headers["x-mbx-order-count-10s"]) == (200, "2")
        otoco = {
            "symbol": "BTCUSDT",
            "workingType": "LIMIT",
            "workingSide": "BUY",
            "workingPrice": "60000",
            "workingQuantity": "0.001",
            "workingTimeInForce": "GTC",
            "pendingSide": "SELL",
            "pendingQuantity": "0.001",
            "pendingAboveType": "LIMIT_MAKER",
            "pendingAbovePrice": "70000",
            "pendingBelowType": "STOP_LOSS",
            "pendingBelowStopPrice": "55000",
        }
        status, _, resp = await post(http, fake, "/api/v3/orderList/otoco", otoco)
        assert (status, resp.headers["x-mbx-order-count-10s"]) == (200, "5")
        assert resp.headers["x-mbx-order-count-1d"] == "5"


async def test_funding_rate_history_has_its_own_pool_outside_the_weight(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeBinance() as fake:
        align(fake, 300, 1.0)
        url = fake.url + "/fapi/v1/fundingRate?symbol=BTCUSDT"

        async def ask(path: str) -> tuple[int, str]:
            async with http.get(fake.url + path) as resp:
                return resp.status, resp.headers["x-mbx-used-weight-1m"]

        # §2: fundingRate and fundingInfo share 500 per 5 min per IP, outside REQUEST_WEIGHT
        first = await asyncio.gather(*(ask("/fapi/v1/fundingInfo") for _ in range(250)))
        second = await asyncio.gather(*(ask("/fapi/v1/fundingRate") for _ in range(250)))
        assert {status for status, _ in first + second} == {200}
        assert {used for _, used in first + second} == {"0"}
        async with http.get(url) as resp:
            body = await resp.json()
            assert (resp.status, body["code"]) == (429, -1003)
            assert "500 requests per 5 MINUTE" in body["msg"]
        async with http.get(fake.url + "/fapi/v1/ping") as resp:
            assert resp.status == 200  # the weight pool is not touched
