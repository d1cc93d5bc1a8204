"""The seed's "final settings" work as written and each does what it says, against the fake
exchange: ``BinanceConfig(MAX_REQUESTS_PER_SECOND=3, MAX_WEBSOCKET_CONNECTIONS=5,
ENABLE_RATE_LIMIT_CHECKS=True)`` (shared/seed, "SON AYARLAR")."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import pytest

from tests.fakes.fake_binance import FakeBinance
from tests.fakes.fake_ws import FakeBinanceWS
from tests.utils.binance.conftest import API_KEY, SECRET, EventLog, make_config, no_redis, windows
from utils.binance import BinanceClient, BinanceWebSocketError, Market
from utils.binance.binance_ratelimit import RequestCap
from utils.config import BinanceConfig, RedisConfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.conftest import RedisServer

RATE: Final = 20  # MAX_REQUESTS_PER_SECOND in the cap test
#: What the fake's arrival times may differ from the client's send turns (scheduling, TCP).
ARRIVAL_JITTER_S: Final = 0.05
POOL_LIMIT: Final = 1000  # spot weight per hour: an hour-long window no test run straddles


@pytest.fixture
async def hourly_fake() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(
        spot_windows=windows(Market.SPOT, interval_s=3600, limit=POOL_LIMIT),
        api_keys={API_KEY: SECRET},
    ) as fake:
        yield fake


@pytest.fixture(params=["in-process", "redis"])
def limiter_backend(request: pytest.FixtureRequest) -> RedisConfig:
    if request.param == "in-process":
        return no_redis()
    server: RedisServer = request.getfixturevalue("redis_server")
    return RedisConfig(url=server.url, _env_file=None)


async def test_the_seeds_final_settings_build_a_client_that_answers(
    fake_binance: FakeBinance,
) -> None:
    config = BinanceConfig(
        MAX_REQUESTS_PER_SECOND=3,  # "start conservative"
        MAX_WEBSOCKET_CONNECTIONS=5,  # "a safe limit"
        ENABLE_RATE_LIMIT_CHECKS=True,  # "monitoring on"
        base_url=fake_binance.url,
        futures_base_url=fake_binance.url,
        _env_file=None,
    )

    async with BinanceClient(
        api_key=API_KEY, secret_key=SECRET, config=config, redis=no_redis()
    ) as client:
        price = await client.get_symbol_price("BTCUSDT")

    assert price["price"]
    assert (config.max_requests_per_second, config.max_websocket_connections) == (3, 5)
    assert config.enable_rate_limit_checks


async def test_max_requests_per_second_spaces_what_the_exchange_receives(
    fake_binance: FakeBinance,
) -> None:
    calls = 2 * RATE  # with the first call's exchangeInfo: 2 * RATE + 1 requests
    config = make_config(fake_binance, MAX_REQUESTS_PER_SECOND=RATE)

    async with BinanceClient(config=config, redis=no_redis()) as client:
        await asyncio.gather(*(client.get_symbol_price("BTCUSDT") for _ in range(calls)))

    arrivals = sorted(r.t for r in fake_binance.requests)
    assert len(arrivals) == calls + 1
    # RATE requests at most in any second, as the exchange saw them...
    gaps = [later - first for first, later in zip(arrivals, arrivals[RATE:], strict=False)]
    assert min(gaps) >= 1.0 - ARRIVAL_JITTER_S, gaps
    # ...so 2 * RATE + 1 requests span two whole seconds (unlimited, they take milliseconds).
    assert arrivals[-1] - arrivals[0] >= 2.0 - ARRIVAL_JITTER_S


def test_caps_book_turns_in_order_and_the_strictest_window_wins() -> None:
    now = [0.0]
    cap = RequestCap([(3, 1.0), (1, 0.25)], clock=lambda: now[0])  # 3/s, and 0.25 s apart

    turns = [cap.reserve() for _ in range(7)]

    assert turns == [0.0, 0.25, 0.5, 1.0, 1.25, 1.5, 2.0]
    now[0] = 10.0
    assert cap.reserve() == 0.0  # a quiet spell leaves nothing to wait for


async def test_max_websocket_connections_as_a_keyword_caps_the_streams_connections() -> None:
    async with FakeBinanceWS(Market.SPOT) as spot:
        config = BinanceConfig(
            MAX_WEBSOCKET_CONNECTIONS=1,
            ws_url=spot.url,
            base_url="http://127.0.0.1:9",
            futures_base_url="http://127.0.0.1:9",
            rate_limits_from_exchange=False,
            _env_file=None,
        )

        async def ignore(*_: Any) -> None:
            return None

        async with BinanceClient(config=config, redis=no_redis()) as client:
            streams = [f"s{i}usdt@aggTrade" for i in range(1025)]  # two connections' worth
            with pytest.raises(BinanceWebSocketError, match="MAX_WEBSOCKET_CONNECTIONS"):
                await client.ws_subscribe(streams, ignore)
        assert spot.connections == []


@pytest.mark.parametrize("checks", [True, False])
async def test_enable_rate_limit_checks_switches_the_80_percent_warnings(
    hourly_fake: FakeBinance, limiter_backend: RedisConfig, checks: bool
) -> None:
    hourly_fake.burn_weight(Market.SPOT, int(POOL_LIMIT * 0.85))  # another process's spend
    config = make_config(hourly_fake, ENABLE_RATE_LIMIT_CHECKS=checks)

    async with BinanceClient(config=config, redis=limiter_backend) as client:
        log = EventLog()
        client.events.subscribe(log)
        for _ in range(3):
            await client.get_symbol_price("BTCUSDT")

    warnings = [e for e in log.events if e.kind == "ratelimit.threshold"]
    assert bool(warnings) is checks
    assert hourly_fake.count(status=200) == 4  # the limiter itself kept working either way
    if checks:
        assert "above 80%" in warnings[0].message
