"""Signing, encoding and local input checks: the pure helpers."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from utils.binance.binance_exceptions import (
    BinanceConfigError,
    BinanceFilterError,
    BinanceInputError,
    BinanceUnknownSymbolError,
)
from utils.binance.binance_types import KlineInterval, Market
from utils.binance.binance_utils import (
    SymbolRules,
    backoff_delay,
    check_interval,
    check_limit,
    check_order,
    check_symbol,
    encode_params,
    make_signer,
    parse_symbol_info,
    positive_decimal,
)

# Binance's worked example (shared/BINANCE.md §7).
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
PARAMS = {
    "symbol": "LTCBTC",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": 1,
    "price": Decimal("0.1"),
    "recvWindow": 5000,
    "timestamp": 1499827319559,
}


def test_hmac_signature_matches_binances_worked_example() -> None:
    payload = encode_params(PARAMS)
    assert payload == (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        "&recvWindow=5000&timestamp=1499827319559"
    )
    signer = make_signer(SECRET)
    assert signer is not None
    assert signer(payload.encode()) == (
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def test_non_ascii_values_are_percent_encoded_before_signing() -> None:
    payload = encode_params({**PARAMS, "symbol": "１２３４５６"})
    assert payload.startswith("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&")
    signer = make_signer(SECRET)
    assert signer is not None
    assert signer(payload.encode()) == (
        "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
    )


def test_ed25519_pem_secret_signs_verifiably() -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    signer = make_signer(pem)
    assert signer is not None
    signature = base64.b64decode(signer(b"symbol=BTCUSDT&timestamp=1"))
    key.public_key().verify(signature, b"symbol=BTCUSDT&timestamp=1")  # raises if wrong


def test_unreadable_private_key_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(BinanceConfigError) as caught:
        make_signer(None, b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    assert caught.value.variable == "BINANCE_PRIVATE_KEY_PATH"


def test_lists_and_booleans_are_encoded_as_binance_expects() -> None:
    assert encode_params({"symbols": ["BTCUSDT", "ETHUSDT"], "flag": True, "skip": None}) == (
        "symbols=%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D&flag=true"
    )


@pytest.mark.parametrize("bad", ["", "   ", "btc usdt", "BTC/USDT", "X"])
def test_impossible_symbols_are_rejected_locally(bad: str) -> None:
    with pytest.raises(BinanceInputError, match="symbol"):
        check_symbol(bad)


def test_symbols_are_normalised_to_upper_case() -> None:
    assert check_symbol(" btcusdt ") == "BTCUSDT"


@pytest.mark.parametrize("bad", [0, -1, "-0.5", "abc", float("nan"), "Infinity"])
def test_quantities_must_be_positive_finite_numbers(bad: object) -> None:
    with pytest.raises(BinanceInputError, match="quantity"):
        positive_decimal(bad, "quantity")


def test_backoff_is_full_jitter_and_capped() -> None:
    assert backoff_delay(10, base_s=0.2, cap_s=5.0, rng=lambda: 0.999) < 5.0
    assert backoff_delay(1, base_s=0.2, cap_s=5.0, rng=lambda: 0.5) == pytest.approx(0.2)
    assert backoff_delay(3, base_s=0.2, cap_s=5.0, rng=lambda: 0.0) == 0.0


# --- symbol rules ----------------------------------------------------------------------
def _spot_entry(symbol: str, base: str, quote: str = "USDT", **extra: object) -> dict[str, object]:
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "quoteAsset": quote,
        "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01000000",
                "maxPrice": "1000000.00000000",
                "tickSize": "0.01000000",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001000",
                "maxQty": "9000.00000000",
                "stepSize": "0.00001000",
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "100.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        **extra,
    }


RULES = SymbolRules.from_exchange_info(
    {
        "symbols": [
            _spot_entry("BTCUSDT", "BTC"),
            _spot_entry("ETHUSDT", "ETH"),
            _spot_entry("ETHBTC", "ETH", "BTC"),
            _spot_entry("BTCUSDC", "BTC", "USDC"),
            _spot_entry("LUNAUSDT", "LUNA", status="BREAK"),
        ]
    },
    Market.SPOT,
)
BTC = RULES.require("BTCUSDT")


def order(**overrides: object) -> None:
    values: dict[str, object] = {
        "side": "BUY",
        "type_": "LIMIT",
        "quantity": Decimal("0.001"),
        "price": Decimal(60000),
    }
    values.update(overrides)
    check_order(BTC, **values)  # type: ignore[arg-type]


def test_symbol_rules_index_every_symbol_with_its_filters() -> None:
    assert len(RULES) == 5
    assert "ETHBTC" in RULES
    assert RULES.get("btcusdt") is BTC
    assert BTC.price_filter is not None
    assert BTC.price_filter.tick_size == Decimal("0.01")
    assert BTC.market_lot_size is not None
    assert BTC.notional is not None
    assert BTC.notional.max_notional == Decimal(9000000)


@pytest.mark.parametrize(
    ("typo", "first"),
    [("btc", "BTCUSDT"), ("BTCUSTD", "BTCUSDT"), ("ETHUSTD", "ETHUSDT"), ("BTCUSDTT", "BTCUSDT")],
)
def test_unknown_symbols_suggest_the_closest_trading_pairs(typo: str, first: str) -> None:
    with pytest.raises(BinanceUnknownSymbolError) as caught:
        RULES.require(typo)
    assert caught.value.suggestions[0] == first
    assert len(caught.value.suggestions) <= 3
    assert str(caught.value).startswith(f"unknown symbol {typo.upper()} \N{EM DASH} did you mean")
    assert isinstance(caught.value, BinanceInputError)


def test_symbols_not_trading_are_not_suggested() -> None:
    assert "LUNAUSDT" not in RULES.suggest("LUNAUSD")
    assert "LUNAUSDT" not in RULES.suggest("LUNA")


def test_a_symbol_nothing_resembles_says_so() -> None:
    with pytest.raises(BinanceUnknownSymbolError, match="no spot symbol looks like it") as caught:
        RULES.require("ZZZZQQQQ")
    assert caught.value.suggestions == []


def test_a_valid_order_passes_every_filter() -> None:
    order()
    order(type_="MARKET", price=None, last_price=Decimal(60000))
    order(type_="MARKET", price=None)  # notional unknown without a last price: skipped


@pytest.mark.parametrize(
    ("overrides", "filter_type", "limit", "text"),
    [
        ({"quantity": Decimal("0.0000001")}, "LOT_SIZE", "0.00001", "below minQty 0.00001"),
        ({"quantity": Decimal(9001)}, "LOT_SIZE", "9000", "above maxQty 9000"),
        (
            {"quantity": Decimal("0.000015")},
            "LOT_SIZE",
            "0.00001",
            "not a multiple of stepSize 0.00001 (nearest below: 0.00001)",
        ),
        (
            {"type_": "MARKET", "price": None, "quantity": Decimal(101)},
            "MARKET_LOT_SIZE",
            "100",
            "above maxQty 100",
        ),
        (
            {"price": Decimal("60000.005")},
            "PRICE_FILTER",
            "0.01",
            "not a multiple of tickSize 0.01 (nearest below: 60000)",
        ),
        ({"price": Decimal("0.001")}, "PRICE_FILTER", "0.01", "below minPrice 0.01"),
        (
            {"price": Decimal(10000), "quantity": Decimal("0.00001")},
            "NOTIONAL",
            "5",
            "price \N{MULTIPLICATION SIGN} quantity = 0.1 is below minNotional 5",
        ),
        (
            {"type_": "MARKET", "price": None, "last_price": Decimal(100)},
            "NOTIONAL",
            "5",
            "last price \N{MULTIPLICATION SIGN} quantity = 0.1 is below minNotional 5",
        ),
        (
            {"price": Decimal(999999), "quantity": Decimal(10)},
            "NOTIONAL",
            "9000000",
            "is above maxNotional 9000000",
        ),
    ],
)
def test_an_order_breaking_a_filter_names_it_and_the_limit(
    overrides: dict[str, object], filter_type: str, limit: str, text: str
) -> None:
    with pytest.raises(BinanceFilterError) as caught:
        order(**overrides)
    assert caught.value.filter_type == filter_type
    assert caught.value.limit == Decimal(limit)
    assert str(caught.value).startswith(f"{filter_type}: ")
    assert text in str(caught.value)
    assert "BTCUSDT" in str(caught.value)


def test_max_notional_does_not_apply_to_market_orders_unless_flagged() -> None:
    order(type_="MARKET", price=None, quantity=Decimal(99), last_price=Decimal(999999))


def test_futures_min_notional_uses_its_notional_field_and_spares_reduce_only() -> None:
    futures = parse_symbol_info(
        {
            "symbol": "ETHUSDT",
            "status": "TRADING",
            "baseAsset": "ETH",
            "quoteAsset": "USDT",
            "filters": [
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.001",
                    "maxQty": "1000",
                    "stepSize": "0.001",
                },
                {"filterType": "MIN_NOTIONAL", "notional": "20"},
            ],
        }
    )
    assert futures.notional is not None
    assert futures.notional.field == "notional"
    with pytest.raises(BinanceFilterError, match=r"MIN_NOTIONAL: .* = 3\.5 is below notional 20"):
        check_order(
            futures, side="BUY", type_="LIMIT", quantity=Decimal("0.001"), price=Decimal(3500)
        )
    check_order(
        futures,
        side="SELL",
        type_="LIMIT",
        quantity=Decimal("0.001"),
        price=Decimal(3500),
        reduce_only=True,
    )


def test_symbols_not_trading_or_order_types_not_offered_are_refused() -> None:
    with pytest.raises(BinanceInputError, match="not trading now"):
        check_order(
            RULES.require("LUNAUSDT"),
            side="BUY",
            type_="LIMIT",
            quantity=Decimal(1),
            price=Decimal(10),
        )
    with pytest.raises(BinanceInputError, match="takes no STOP_LOSS orders"):
        order(type_="STOP_LOSS", price=None)


@pytest.mark.parametrize("bad", ["7m", "1H", "", None])
def test_unknown_kline_intervals_are_refused(bad: object) -> None:
    with pytest.raises(BinanceInputError, match="interval"):
        check_interval(bad, Market.SPOT)


def test_kline_intervals_are_binances() -> None:
    assert check_interval("1M", Market.FUTURES) is KlineInterval.MONTH1
    assert check_interval(KlineInterval.S1, Market.SPOT) == "1s"
    with pytest.raises(BinanceInputError, match="spot only"):
        check_interval("1s", Market.FUTURES)


@pytest.mark.parametrize("bad", [0, -1, 1001, "10", 2.0, True])
def test_limits_must_be_whole_numbers_in_range(bad: object) -> None:
    with pytest.raises(BinanceInputError, match="limit"):
        check_limit(bad, 1000)
