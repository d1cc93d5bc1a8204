"""The breaker against the fake exchange: a burst of 5xx, timeouts or dropped connections
opens it, it fails fast without sending, probes once, and closes when Binance answers again;
4xx never opens it; one market's breaker open leaves the other market served."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from tests.utils.binance.conftest import EventLog, make_config, no_redis
from utils.binance import (
    BinanceCircuitOpenError,
    BinanceClient,
    BinanceInvalidSymbolError,
    BinanceTimeoutError,
    BinanceTransportError,
    BinanceUnknownStatusError,
)

if TYPE_CHECKING:
    from tests.fakes.fake_binance import FakeBinance

PING = "GET /api/v3/ping"
FUTURES_PING = "GET /fapi/v1/ping"


async def test_breaker_opens_on_a_5xx_burst_fails_fast_probes_and_closes(
    fake_binance: FakeBinance, event_log: Any
) -> None:
    config = make_config(fake_binance, breaker_failures=3, breaker_open_s=0.3, retry_attempts=0)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        log: EventLog = event_log(client)
        await client.call(PING)
        fake_binance.fail_next(3, status=503, key=PING)
        for _ in range(3):
            with pytest.raises(BinanceUnknownStatusError):
                await client.call(PING)
        sent = fake_binance.count(PING)
        with pytest.raises(BinanceCircuitOpenError) as caught:
            await client.call(PING)
        assert fake_binance.count(PING) == sent  # failed fast: nothing was sent
        assert 0 < caught.value.retry_in_s <= 0.3
        assert "next try in" in str(caught.value)
        await asyncio.sleep(caught.value.retry_in_s)  # the one deadline the breaker names
        await client.call(PING)  # the probe succeeds
        await client.call(PING)
    assert log.kinds() == ["breaker.open", "breaker.half_open", "breaker.closed"]
    assert client.get_metrics()["breakers"]["spot"] == "closed"


@pytest.mark.parametrize("fault", ["timeout", "connection_reset"])
async def test_timeouts_and_dropped_connections_open_the_breaker_too(
    fake_binance: FakeBinance, fault: str
) -> None:
    config = make_config(
        fake_binance,
        breaker_failures=2,
        breaker_open_s=30,
        retry_attempts=0,
        request_timeout=0.3,
    )
    async with BinanceClient(config=config, redis=no_redis()) as client:
        await client.call(PING)
        # Every ping from here on meets the fault (aiohttp itself retries a dropped reused
        # connection once, so a call may meet two).
        if fault == "timeout":
            fake_binance.hang_next(100, key=PING)  # no answer until the client gives up
        else:
            fake_binance.reset_next(100, key=PING)  # the connection is dropped unanswered
        expected = BinanceTimeoutError if fault == "timeout" else BinanceTransportError
        for _ in range(2):
            with pytest.raises(expected):
                await client.call(PING)
        sent = fake_binance.count(PING)
        with pytest.raises(BinanceCircuitOpenError) as caught:
            await client.call(PING)
    assert fake_binance.count(PING) == sent  # failed fast: nothing was sent
    assert "(2 failures in a row)" in str(caught.value)
    assert client.get_metrics()["breakers"] == {"spot": "open", "futures": "closed"}


async def test_an_open_spot_breaker_leaves_futures_served(fake_binance: FakeBinance) -> None:
    config = make_config(fake_binance, breaker_failures=2, breaker_open_s=30, retry_attempts=0)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        await client.call(PING)
        await client.call(FUTURES_PING)
        fake_binance.fail_next(2, status=503, key=PING)
        for _ in range(2):
            with pytest.raises(BinanceUnknownStatusError):
                await client.call(PING)
        with pytest.raises(BinanceCircuitOpenError):
            await client.call(PING)
        await client.call(FUTURES_PING)  # the futures breaker is another breaker
        fake_binance.fail_next(1, status=503, key=FUTURES_PING)
        with pytest.raises(BinanceUnknownStatusError):
            await client.call(FUTURES_PING)  # one failure: below the futures threshold
        await client.call(FUTURES_PING)
        assert client.get_metrics()["breakers"] == {"spot": "open", "futures": "closed"}
    assert fake_binance.count(FUTURES_PING) == 4
    assert fake_binance.count(PING) == 3


async def test_a_failed_probe_opens_the_breaker_again(fake_binance: FakeBinance) -> None:
    config = make_config(fake_binance, breaker_failures=2, breaker_open_s=0.2, retry_attempts=0)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        await client.call(PING)
        fake_binance.fail_next(3, status=500, key=PING)
        for _ in range(2):
            with pytest.raises(BinanceUnknownStatusError):
                await client.call(PING)
        with pytest.raises(BinanceCircuitOpenError) as caught:
            await client.call(PING)
        await asyncio.sleep(caught.value.retry_in_s)
        with pytest.raises(BinanceUnknownStatusError):
            await client.call(PING)  # the probe meets the third 500
        with pytest.raises(BinanceCircuitOpenError):
            await client.call(PING)


async def test_client_errors_never_open_the_breaker(fake_binance: FakeBinance) -> None:
    config = make_config(fake_binance, breaker_failures=2, retry_attempts=0)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        for _ in range(5):
            with pytest.raises(BinanceInvalidSymbolError):
                await client.get_symbol_price("NOSUCHPAIR")
        await client.call(PING)
    assert client.get_metrics()["breakers"]["spot"] == "closed"


async def test_reads_retry_through_a_short_5xx_burst(fake_binance: FakeBinance) -> None:
    config = make_config(fake_binance, retry_attempts=3)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        await client.call(PING)
        fake_binance.fail_next(2, status=503, key="GET /api/v3/ticker/price")
        price = await client.get_symbol_price("BTCUSDT")
    assert price["symbol"] == "BTCUSDT"
    assert client.get_metrics()["http"]["retries"] == 2
    assert fake_binance.count("GET /api/v3/ticker/price") == 3


async def test_reads_retry_after_a_connection_reset(fake_binance: FakeBinance) -> None:
    async with BinanceClient(config=make_config(fake_binance), redis=no_redis()) as client:
        await client.call(PING)
        fake_binance.reset_next(1, key="GET /api/v3/ticker/price")
        price = await client.get_symbol_price("BTCUSDT")
    assert price["symbol"] == "BTCUSDT"
