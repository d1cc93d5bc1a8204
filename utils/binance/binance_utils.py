"""Pure helpers: payload encoding and signing (HMAC-SHA256, Ed25519, RSA), input checks that
run before anything is sent (symbols, numbers, intervals, exchangeInfo filters), retry
delays, client order ids. No I/O; ``SymbolRules`` is an immutable index, not state."""

from __future__ import annotations

import base64
import difflib
import hashlib
import hmac
import random
import re
import uuid
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import quote

import orjson

from utils.binance.binance_exceptions import (
    BinanceConfigError,
    BinanceFilterError,
    BinanceInputError,
    BinanceUnknownSymbolError,
)
from utils.binance.binance_types import (
    KlineInterval,
    Market,
    OrderType,
    models,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from utils.binance.binance_models import LotSize, PriceFilter, SymbolInfo
    from utils.binance.binance_types import Params

__all__ = (
    "Signer",
    "SymbolRules",
    "backoff_delay",
    "ban_seconds",
    "check_interval",
    "check_limit",
    "check_order",
    "check_symbol",
    "encode_params",
    "make_signer",
    "new_client_order_id",
    "parse_symbol_info",
    "positive_decimal",
)

_SYMBOL: Final = re.compile(r"^[A-Z0-9\-_.]{2,20}$")
_BANNED_UNTIL: Final = re.compile(r"banned until (\d{10,})")
#: Order types that take no price: their notional is priced at the last trade.
_MARKET_TYPES: Final = frozenset(
    {OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET}
)
_SUGGESTIONS: Final = 3
_URL_SAFE: Final = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


class Signer(Protocol):
    def __call__(self, payload: bytes) -> str: ...


def encode_params(params: Params) -> str:
    """Percent-encode (UTF-8) as Binance signs it since 2026-01-15; None values are dropped."""
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        text = _wire(value)
        # Most values (symbols, numbers, enums) need no escaping: skip quote() for them.
        parts.append(f"{key}={text if _URL_SAFE(text) else quote(text, safe='')}")
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
    """HMAC for a plain secret; Ed25519 or RSA for a PEM private key (in the secret or a file).

    Raises:
        BinanceConfigError: the key is no usable PEM key, naming BINANCE_PRIVATE_KEY_PATH (or
            BINANCE_API_SECRET when the PEM was pasted there), never showing the key.
    """
    variable = "BINANCE_PRIVATE_KEY_PATH"
    if private_key_pem is None and secret and secret.lstrip().startswith("-----BEGIN"):
        private_key_pem, variable = secret.encode(), "BINANCE_API_SECRET"
    if private_key_pem is not None:
        return _pem_signer(private_key_pem, variable)
    if not secret:
        return None
    secret_bytes = secret.encode()
    return lambda payload: hmac.new(secret_bytes, payload, hashlib.sha256).hexdigest()


def _pem_signer(private_key_pem: bytes, variable: str) -> Signer:
    # cryptography costs ~10 MiB and tens of ms to import: only PEM keys pay for it.
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey  # noqa: PLC0415

    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise BinanceConfigError(
            f"{variable}: the Binance private key is not a readable PEM key; expected an "
            "unencrypted Ed25519 or RSA key (-----BEGIN PRIVATE KEY-----)",
            variable=variable,
        ) from e
    if isinstance(key, Ed25519PrivateKey):
        return lambda payload: base64.b64encode(key.sign(payload)).decode()
    if isinstance(key, RSAPrivateKey):
        return lambda payload: base64.b64encode(
            key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        ).decode()
    raise BinanceConfigError(
        f"{variable}: the Binance private key must be Ed25519 or RSA", variable=variable
    )


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


def check_limit(value: Any, hi: int, name: str = "limit") -> int:
    """A row count within Binance's ``[1, hi]`` for the endpoint."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise BinanceInputError(f"{name} must be a whole number from 1 to {hi}, got {value!r}")
    return value


def check_interval(interval: Any, market: Market) -> KlineInterval:
    """A kline interval Binance knows for the market (``1s`` is spot only)."""
    try:
        parsed = KlineInterval(str(interval))
    except ValueError:
        allowed = ", ".join(KlineInterval)
        raise BinanceInputError(f"interval {interval!r} is not one of {allowed}") from None
    if parsed is KlineInterval.S1 and market is Market.FUTURES:
        raise BinanceInputError("interval '1s' exists on spot only; futures start at '1m'")
    return parsed


# --- exchangeInfo: symbol rules --------------------------------------------------------
def parse_symbol_info(raw: Mapping[str, Any]) -> SymbolInfo:
    """One ``exchangeInfo.symbols`` entry, its filters pulled out by type."""
    fields: dict[str, Any] = {}
    for row in raw.get("filters", ()):
        kind = row.get("filterType")
        if kind == "PRICE_FILTER":
            fields["price_filter"] = models.PriceFilter.model_validate(row)
        elif kind in ("LOT_SIZE", "MARKET_LOT_SIZE"):
            fields[kind.lower()] = models.LotSize.model_validate(row)
        elif kind == "NOTIONAL":
            fields["notional"] = models.NotionalFilter(
                filter_type=kind,
                field="minNotional",
                min_notional=Decimal(row["minNotional"]),
                apply_min_to_market=bool(row.get("applyMinToMarket", True)),
                max_notional=Decimal(row["maxNotional"]) if row.get("maxNotional") else None,
                apply_max_to_market=bool(row.get("applyMaxToMarket", False)),
            )
        elif kind == "MIN_NOTIONAL" and "notional" not in fields:
            futures = "notional" in row  # futures names the field ``notional``
            fields["notional"] = models.NotionalFilter(
                filter_type=kind,
                field="notional" if futures else "minNotional",
                min_notional=Decimal(row["notional" if futures else "minNotional"]),
                apply_min_to_market=bool(row.get("applyToMarket", True)),
            )
    return models.SymbolInfo.model_validate({**raw, **fields})


class SymbolRules:
    """The symbols of one market's exchangeInfo, indexed by name; immutable once built.

    ``loaded_at`` is the caller's clock reading when the answer arrived (for refreshes).
    """

    __slots__ = ("_by_base", "_symbols", "loaded_at", "market")

    def __init__(
        self, market: Market, symbols: Iterable[SymbolInfo], *, loaded_at: float = 0.0
    ) -> None:
        self.market = market
        self.loaded_at = loaded_at
        self._symbols: dict[str, SymbolInfo] = {s.symbol: s for s in symbols}
        self._by_base: dict[str, list[str]] = {}
        for info in self._symbols.values():
            self._by_base.setdefault(info.base_asset, []).append(info.symbol)

    @classmethod
    def from_exchange_info(
        cls, info: Mapping[str, Any], market: Market, *, loaded_at: float = 0.0
    ) -> SymbolRules:
        symbols = (parse_symbol_info(raw) for raw in info.get("symbols", ()))
        return cls(market, symbols, loaded_at=loaded_at)

    def __len__(self) -> int:
        return len(self._symbols)

    @property
    def names(self) -> tuple[str, ...]:
        """Every symbol of the market, in exchangeInfo's order."""
        return tuple(self._symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._symbols

    def get(self, symbol: str) -> SymbolInfo | None:
        return self._symbols.get(symbol.strip().upper())

    def require(self, symbol: str) -> SymbolInfo:
        """The symbol's rules; ``BinanceUnknownSymbolError`` with suggestions if unknown."""
        info = self.get(symbol)
        if info is None:
            name = symbol.strip().upper()
            raise BinanceUnknownSymbolError(name, self.suggest(name), market=str(self.market))
        return info

    def suggest(self, symbol: str) -> list[str]:
        """Up to three trading symbols close to ``symbol``: a base asset it starts with,
        paired with USDT (``btc`` -> ``BTCUSDT``), then the closest spellings."""
        name = symbol.strip().upper()
        trading = [s for s, i in self._symbols.items() if i.status == "TRADING"]
        out: list[str] = []
        for base in sorted(self._by_base, key=len, reverse=True):
            info = self._symbols.get(f"{base}USDT")
            if name.startswith(base) and info is not None and info.status == "TRADING":
                out.append(info.symbol)
                break
        for match in difflib.get_close_matches(name, trading, n=_SUGGESTIONS, cutoff=0.6):
            if match not in out:
                out.append(match)
        return out[:_SUGGESTIONS]


def check_order(
    info: SymbolInfo,
    *,
    side: str,
    type_: str,
    quantity: Decimal,
    price: Decimal | None,
    last_price: Decimal | None = None,
    reduce_only: bool = False,
) -> None:
    """Check an order against the symbol's filters, as Binance would, before sending it.

    Raises ``BinanceFilterError`` naming the filter and the limit broken; a MARKET order's
    notional is priced at ``last_price`` and skipped when that is unknown; reduce-only
    futures orders are exempt from it. No filter checked here depends on ``side``.
    """
    if info.status != "TRADING":
        raise BinanceInputError(f"{info.symbol} is not trading now (status {info.status})")
    if info.order_types and type_ not in info.order_types:
        allowed = ", ".join(info.order_types)
        raise BinanceInputError(f"{info.symbol} takes no {type_} orders; it takes {allowed}")
    market_order = type_ in _MARKET_TYPES
    lots = [("LOT_SIZE", info.lot_size)]
    if market_order:
        lots.append(("MARKET_LOT_SIZE", info.market_lot_size))
    for filter_type, lot in lots:
        if lot is not None:
            _check_lot(info.symbol, filter_type, lot, quantity)
    if price is not None and info.price_filter is not None:
        _check_price(info.symbol, info.price_filter, price)
    notional = info.notional
    if notional is None or reduce_only:
        return
    reference = last_price if price is None else price
    if reference is None:
        return
    value = reference * quantity
    what = "last price" if price is None else "price"
    if (not market_order or notional.apply_min_to_market) and value < notional.min_notional:
        raise BinanceFilterError(
            info.symbol,
            notional.filter_type,
            f"{what} \N{MULTIPLICATION SIGN} quantity = {_plain(value)} is below "
            f"{notional.field} {_plain(notional.min_notional)}",
            limit=notional.min_notional,
        )
    ceiling = notional.max_notional
    if ceiling and (not market_order or notional.apply_max_to_market) and value > ceiling:
        raise BinanceFilterError(
            info.symbol,
            notional.filter_type,
            f"{what} \N{MULTIPLICATION SIGN} quantity = {_plain(value)} is above "
            f"maxNotional {_plain(ceiling)}",
            limit=ceiling,
        )


def _check_lot(symbol: str, filter_type: str, lot: LotSize, quantity: Decimal) -> None:
    if lot.min_qty and quantity < lot.min_qty:
        raise BinanceFilterError(
            symbol,
            filter_type,
            f"quantity {_plain(quantity)} is below minQty {_plain(lot.min_qty)}",
            limit=lot.min_qty,
        )
    if lot.max_qty and quantity > lot.max_qty:
        raise BinanceFilterError(
            symbol,
            filter_type,
            f"quantity {_plain(quantity)} is above maxQty {_plain(lot.max_qty)}",
            limit=lot.max_qty,
        )
    if lot.step_size and (quantity - lot.min_qty) % lot.step_size:
        nearest = _round_down(quantity, lot.min_qty, lot.step_size)
        raise BinanceFilterError(
            symbol,
            filter_type,
            f"quantity {_plain(quantity)} is not a multiple of stepSize "
            f"{_plain(lot.step_size)} (nearest below: {_plain(nearest)})",
            limit=lot.step_size,
        )


def _check_price(symbol: str, rule: PriceFilter, price: Decimal) -> None:
    if rule.min_price and price < rule.min_price:
        raise BinanceFilterError(
            symbol,
            "PRICE_FILTER",
            f"price {_plain(price)} is below minPrice {_plain(rule.min_price)}",
            limit=rule.min_price,
        )
    if rule.max_price and price > rule.max_price:
        raise BinanceFilterError(
            symbol,
            "PRICE_FILTER",
            f"price {_plain(price)} is above maxPrice {_plain(rule.max_price)}",
            limit=rule.max_price,
        )
    if rule.tick_size and (price - rule.min_price) % rule.tick_size:
        nearest = _round_down(price, rule.min_price, rule.tick_size)
        raise BinanceFilterError(
            symbol,
            "PRICE_FILTER",
            f"price {_plain(price)} is not a multiple of tickSize {_plain(rule.tick_size)} "
            f"(nearest below: {_plain(nearest)})",
            limit=rule.tick_size,
        )


def _round_down(value: Decimal, base: Decimal, step: Decimal) -> Decimal:
    steps = ((value - base) / step).to_integral_value(rounding=ROUND_DOWN)
    return base + steps * step


def _plain(value: Decimal) -> str:
    """``Decimal("5.00000000")`` -> ``"5"``, never scientific notation."""
    return format(value.normalize(), "f")
