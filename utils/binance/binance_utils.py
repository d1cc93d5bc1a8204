"""Pure helpers: payload encoding and signing (HMAC-SHA256, Ed25519, RSA), input checks that
run before anything is sent, retry delays, client order ids. No state, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import quote

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from utils.binance.binance_exceptions import BinanceConfigError, BinanceInputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from utils.binance.binance_types import Params

__all__ = (
    "Signer",
    "backoff_delay",
    "ban_seconds",
    "check_symbol",
    "encode_params",
    "make_signer",
    "new_client_order_id",
    "positive_decimal",
)

_SYMBOL: Final = re.compile(r"^[A-Z0-9\-_.]{2,20}$")
_BANNED_UNTIL: Final = re.compile(r"banned until (\d{10,})")


class Signer(Protocol):
    def __call__(self, payload: bytes) -> str: ...


def encode_params(params: Params) -> str:
    """Percent-encode (UTF-8) as Binance signs it since 2026-01-15; None values are dropped."""
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        parts.append(f"{key}={quote(_wire(value), safe='')}")
    return "&".join(parts)


def _wire(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple):
        return orjson.dumps(list(value)).decode()
    return str(value)


def make_signer(secret: str | None, private_key_pem: bytes | None = None) -> Signer | None:
    """HMAC for a plain secret; Ed25519 or RSA for a PEM private key (in the secret or a file)."""
    if private_key_pem is None and secret and secret.lstrip().startswith("-----BEGIN"):
        private_key_pem = secret.encode()
    if private_key_pem is not None:
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError) as e:
            raise BinanceConfigError(
                "the Binance private key is not a readable PEM key (Ed25519 or RSA)",
                variable="BINANCE_PRIVATE_KEY_PATH",
            ) from e
        if isinstance(key, Ed25519PrivateKey):
            return lambda payload: base64.b64encode(key.sign(payload)).decode()
        if isinstance(key, RSAPrivateKey):
            return lambda payload: base64.b64encode(
                key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
            ).decode()
        raise BinanceConfigError(
            "the Binance private key must be Ed25519 or RSA", variable="BINANCE_PRIVATE_KEY_PATH"
        )
    if not secret:
        return None
    secret_bytes = secret.encode()
    return lambda payload: hmac.new(secret_bytes, payload, hashlib.sha256).hexdigest()


def check_symbol(symbol: str) -> str:
    """Upper-case a symbol and reject what Binance can never accept, before sending."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise BinanceInputError("symbol is empty; pass a trading pair such as 'BTCUSDT'")
    normalized = symbol.strip().upper()
    if not _SYMBOL.match(normalized):
        raise BinanceInputError(
            f"symbol {symbol!r} is not a Binance symbol: use letters and digits, e.g. 'BTCUSDT'"
        )
    return normalized


def positive_decimal(value: Any, name: str) -> Decimal:
    """A quantity or price as a finite, positive Decimal (floats go through their str)."""
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise BinanceInputError(f"{name} {value!r} is not a number") from None
    if not number.is_finite() or number <= 0:
        raise BinanceInputError(f"{name} must be a positive number, got {value!r}")
    return number


def backoff_delay(
    attempt: int, *, base_s: float, cap_s: float, rng: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt))."""
    ceiling: float = min(cap_s, base_s * 2.0**attempt)
    return rng() * ceiling


def new_client_order_id() -> str:
    """A fresh id within Binance's ``^[.A-Z:/a-z0-9_-]{1,36}$``."""
    return f"tg{uuid.uuid4().hex}"


def ban_seconds(msg: str, retry_after: str | None, now_s: float) -> float:
    """How long a 418 ban lasts: ``Retry-After``, else the epoch in the message."""
    if retry_after:
        try:
            return max(1.0, float(retry_after))
        except ValueError:
            pass
    match = _BANNED_UNTIL.search(msg)
    if match:
        return max(1.0, int(match.group(1)) / 1000 - float(now_s))
    return 120.0
