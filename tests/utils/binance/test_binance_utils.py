"""Signing, encoding and local input checks: the pure helpers."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from utils.binance.binance_exceptions import BinanceConfigError, BinanceInputError
from utils.binance.binance_utils import (
    backoff_delay,
    check_symbol,
    encode_params,
    make_signer,
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
    payload = encode_params({**PARAMS, "symbol": "１２３４５６"})  # noqa: RUF001 - the docs' own full-width example
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
