"""The fan-out shaping on its own, without I/O: a failed part is reported in its own entry,
and when nothing at all was answered the failure itself is raised, an open breaker first."""

from __future__ import annotations

from decimal import Decimal

import pytest

from utils.binance.binance_exceptions import BinanceCircuitOpenError, BinanceTransportError
from utils.binance.binance_fanout import SymbolRequest, portfolio, price_snapshots
from utils.binance.binance_types import Market


def request(spot: list[str], futures: list[str]) -> SymbolRequest:
    return SymbolRequest(sorted({*spot, *futures}), {}, spot, futures)


def test_a_failed_futures_part_leaves_the_spot_prices() -> None:
    rows = {"BTCUSDT": {"price": "50000", "priceChangePercent": "1.5"}}
    snapshots = price_snapshots(
        request(["BTCUSDT"], ["BTCUSDT"]), rows, rows, [BinanceTransportError("reset")]
    )
    snapshot = snapshots["BTCUSDT"]
    assert (snapshot.price, snapshot.change_24h_pct) == (Decimal(50000), Decimal("1.5"))
    assert snapshot.mark_price is None
    assert snapshot.error == "futures: reset"


def test_when_nothing_answered_the_open_breaker_is_raised() -> None:
    breaker = BinanceCircuitOpenError(Market.FUTURES, retry_in_s=5.0, failures=5)
    reset = BinanceTransportError("reset")
    with pytest.raises(BinanceCircuitOpenError):
        price_snapshots(request(["BTCUSDT"], ["BTCUSDT"]), reset, reset, [breaker])


def test_portfolio_values_stablecoins_at_par_and_names_a_failed_part() -> None:
    account = {
        "balances": [
            {"asset": "USDC", "free": "10", "locked": "0"},
            {"asset": "XYZ", "free": "1", "locked": "1"},
            {"asset": "ETH", "free": "0", "locked": "0"},
        ]
    }
    value = portfolio(account, BinanceTransportError("timeout"), [])
    assert [(a.asset, a.amount, a.value_usdt) for a in value.spot] == [
        ("USDC", Decimal(10), Decimal(10)),
        ("XYZ", Decimal(2), None),  # no USDT price known
    ]
    assert value.total_usdt == Decimal(10)
    assert value.errors == {"futures": "timeout"}
