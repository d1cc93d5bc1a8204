"""The client against the fake exchange: the seed's calls, bad input, closed clients."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from tests.utils.binance.conftest import API_KEY, SECRET, make_config, no_redis
from utils.binance import (
    BinanceAuthError,
    BinanceClient,
    BinanceCredentialsError,
    BinanceInputError,
    BinanceInvalidSymbolError,
    BinanceTransportError,
    Market,
)

if TYPE_CHECKING:
    from tests.fakes.fake_binance import FakeBinance


async def test_seed_example_reads_a_price_and_counts_the_request(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    fake_binance.set_price("BTCUSDT", "50123.45")
    price = await client.get_symbol_price("BTCUSDT")
    assert price["symbol"] == "BTCUSDT"
    assert Decimal(price["price"]) == Decimal("50123.45")
    assert client.get_metrics()["http"]["total_requests"] >= 1


async def test_limits_are_loaded_from_exchange_info_once(fake_binance: FakeBinance) -> None:
    async with BinanceClient(config=make_config(fake_binance), redis=no_redis()) as client:
        await client.get_symbol_price("BTCUSDT")
        await client.get_symbol_price("ETHUSDT")
        limits = {(w.kind, w.interval_s, w.limit) for w in client.rate_windows(Market.SPOT)}
    served = fake_binance.weight_limit(Market.SPOT), fake_binance.weight_window_s(Market.SPOT)
    assert ("REQUEST_WEIGHT", served[1], served[0]) in limits
    assert fake_binance.count("GET /api/v3/exchangeInfo") == 1


async def test_account_balance_is_signed_and_lists_assets(client: BinanceClient) -> None:
    account = await client.get_account_balance()
    free = {b["asset"]: Decimal(b["free"]) for b in account["balances"]}
    assert free["USDT"] > 0


async def test_unknown_symbol_from_binance_is_a_typed_error(client: BinanceClient) -> None:
    with pytest.raises(BinanceInvalidSymbolError) as caught:
        await client.get_symbol_price("NOSUCHPAIR")
    assert caught.value.code == -1121
    assert "BTCUSDT" in str(caught.value)  # the hint tells the user what a symbol looks like


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.get_symbol_price(""), BinanceInputError),
        (lambda c: c.get_symbol_price("btc/usdt"), BinanceInputError),
        (lambda c: c.new_order("BTCUSDT", side="BUY", quantity=-1), BinanceInputError),
        (lambda c: c.new_order("BTCUSDT", side="HOLD", quantity=1), BinanceInputError),
        (
            lambda c: c.new_order("BTCUSDT", side="BUY", type_="LIMIT", quantity=1),
            BinanceInputError,
        ),
        (lambda c: c.call("GET /api/v3/nonsense"), BinanceInputError),
        (lambda c: c.call("GET /api/v3/depth"), BinanceInputError),
        (lambda c: c.get_order("BTCUSDT"), BinanceInputError),
    ],
)
async def test_bad_input_raises_before_anything_is_sent(
    client: BinanceClient, fake_binance: FakeBinance, call: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await call(client)  # type: ignore[operator]
    assert fake_binance.count() == 0


async def test_signed_call_without_keys_raises_before_sending(fake_binance: FakeBinance) -> None:
    config = make_config(fake_binance, api_key=None, secret_key=None)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        with pytest.raises(BinanceCredentialsError, match="BINANCE_API_KEY"):
            await client.get_account_balance()
        with pytest.raises(BinanceCredentialsError):
            await client.new_order("BTCUSDT", side="BUY", quantity="0.001")
    assert fake_binance.count() == 0


async def test_wrong_secret_is_an_auth_error_that_says_what_to_check(
    fake_binance: FakeBinance,
) -> None:
    config = make_config(fake_binance, secret_key="not-the-right-secret")
    async with BinanceClient(config=config, redis=no_redis()) as client:
        with pytest.raises(BinanceAuthError) as caught:
            await client.get_account_balance()
    assert caught.value.code == -1022
    assert "BINANCE_API_SECRET" in str(caught.value)


async def test_a_client_used_outside_its_context_says_so(fake_binance: FakeBinance) -> None:
    client = BinanceClient(config=make_config(fake_binance), redis=no_redis())
    with pytest.raises(BinanceTransportError, match="async with"):
        await client.get_symbol_price("BTCUSDT")


async def test_seed_constructor_arguments_override_the_config(fake_binance: FakeBinance) -> None:
    config = make_config(fake_binance, api_key=None, secret_key=None)
    async with BinanceClient(
        api_key=API_KEY, secret_key=SECRET, config=config, redis=no_redis()
    ) as c:
        account = await c.get_account_balance()
    assert "balances" in account
