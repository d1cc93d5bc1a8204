"""Plain types shared by the client's modules: markets, endpoints and their weight rules,
rate-limit windows and the events the client publishes. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decimal import Decimal

__all__ = (
    "AssetValue",
    "BinanceEvent",
    "Endpoint",
    "ErrorCode",
    "HttpMethod",
    "KlineInterval",
    "Market",
    "OrderSide",
    "OrderType",
    "Params",
    "PoolKind",
    "Portfolio",
    "PriceSnapshot",
    "RateWindow",
    "Security",
    "TimeInForce",
    "WeightRule",
    "interval_seconds",
    "models",
)


class _LazyModels:
    """``binance_models``, imported when a model is first asked for (start-up time)."""

    def __getattr__(self, name: str) -> Any:
        from utils.binance import binance_models  # noqa: PLC0415 - the point of this class

        return getattr(binance_models, name)


if TYPE_CHECKING:
    from utils.binance import binance_models as models
else:
    models = _LazyModels()


def __getattr__(name: str) -> Any:
    """The models by their old address (``binance_types.Order``), loaded on first use."""
    if name.startswith("__"):  # introspection probes must not load the models
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return getattr(models, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


Params = Mapping[str, Any]


class Market(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"


class ErrorCode(IntEnum):
    """Binance error codes the client acts on (BINANCE.md §5)."""

    TOO_MANY_REQUESTS = -1003
    TIMEOUT = -1007
    TOO_MANY_ORDERS = -1015
    INVALID_TIMESTAMP = -1021
    INVALID_SIGNATURE = -1022
    BAD_SYMBOL = -1121
    INVALID_LISTEN_KEY = -1125
    NEW_ORDER_REJECTED = -2010
    CANCEL_REJECTED = -2011
    NO_SUCH_ORDER = -2013
    BAD_API_KEY_FMT = -2014
    REJECTED_MBX_KEY = -2015


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"


class Security(StrEnum):
    """Binance's security types. TRADE, USER_DATA and spot USER_STREAM are signed."""

    NONE = "NONE"
    MARKET_DATA = "MARKET_DATA"
    USER_STREAM = "USER_STREAM"
    USER_DATA = "USER_DATA"
    TRADE = "TRADE"


class PoolKind(StrEnum):
    """``rateLimitType`` values of ``exchangeInfo.rateLimits``."""

    REQUEST_WEIGHT = "REQUEST_WEIGHT"
    RAW_REQUESTS = "RAW_REQUESTS"
    ORDERS = "ORDERS"


class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"
    STOP = "STOP"
    STOP_MARKET = "STOP_MARKET"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"
    TRAILING_STOP_MARKET = "TRAILING_STOP_MARKET"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"


class KlineInterval(StrEnum):
    """Binance's kline intervals; ``1s`` is spot only, ``1M`` is a calendar month."""

    S1 = "1s"
    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H4 = "4h"
    H6 = "6h"
    H8 = "8h"
    H12 = "12h"
    D1 = "1d"
    D3 = "3d"
    W1 = "1w"
    MONTH1 = "1M"


_UNIT_SECONDS: Mapping[str, int] = {"S": 1, "M": 60, "H": 3600, "D": 86400}
_INTERVAL_UNIT: Mapping[str, str] = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}


def interval_seconds(interval: str, interval_num: int) -> int:
    """``("MINUTE", 1)`` -> 60, as in ``exchangeInfo.rateLimits``."""
    return _UNIT_SECONDS[_INTERVAL_UNIT[interval]] * interval_num


@dataclass(frozen=True, slots=True)
class RateWindow:
    """One fixed, clock-aligned window of a pool: ``limit`` per ``interval_s`` seconds.

    ``header`` is the response header that reports this window's usage, e.g.
    ``X-MBX-USED-WEIGHT-1M``; empty when Binance reports none (RAW_REQUESTS).
    """

    market: Market
    kind: PoolKind
    interval_s: int
    limit: int
    per_account: bool = False
    label: str = ""  # an endpoint's own pool (futures fundingRate: 500 per 5 min)

    @property
    def suffix(self) -> str:
        """Binance's interval tag for headers: ``1M``, ``10S``, ``1D``."""
        for unit, seconds in (("D", 86400), ("H", 3600), ("M", 60)):
            if self.interval_s % seconds == 0:
                return f"{self.interval_s // seconds}{unit}"
        return f"{self.interval_s}S"

    @property
    def header(self) -> str:
        if self.label:
            return ""
        if self.kind is PoolKind.REQUEST_WEIGHT:
            return f"X-MBX-USED-WEIGHT-{self.suffix}"
        if self.kind is PoolKind.ORDERS:
            return f"X-MBX-ORDER-COUNT-{self.suffix}"
        return ""

    @property
    def name(self) -> str:
        return f"{self.market} {self.label or self.kind} {self.suffix}"


@dataclass(frozen=True, slots=True)
class WeightRule:
    """How much REQUEST_WEIGHT one call costs, from its parameters.

    Evaluated in this order: ``by_param`` (a flag or id parameter present),
    ``no_symbol`` (neither ``symbol`` nor ``symbols``), ``by_symbols`` (count brackets),
    ``per_symbol``, ``by_limit`` (brackets on ``limit``), then ``base``.
    Brackets are ``(upper_bound_inclusive, weight)`` in ascending order.
    """

    base: int = 1
    no_symbol: int | None = None
    by_symbols: tuple[tuple[int, int], ...] = ()
    per_symbol: int = 0
    per_symbol_cap: int = 0
    by_limit: tuple[tuple[int, int], ...] = ()
    limit_default: int | None = None
    by_param: tuple[tuple[str, int], ...] = ()

    def cost(self, params: Params) -> int:
        for name, weight in self.by_param:
            value = params.get(name)
            if value is not None and value is not False and str(value).lower() != "false":
                return weight
        symbols = params.get("symbols")
        if self.no_symbol is not None and not params.get("symbol") and not symbols:
            return self.no_symbol
        if symbols and (self.by_symbols or self.per_symbol):
            count = _count_symbols(symbols)
            if self.per_symbol:
                weight = self.per_symbol * count
                return min(weight, self.per_symbol_cap) if self.per_symbol_cap else weight
            for upper, weight in self.by_symbols:
                if count <= upper:
                    return weight
            return self.by_symbols[-1][1]
        if self.by_limit:
            raw = params.get("limit", self.limit_default)
            limit = int(raw) if raw is not None else 0
            for upper, weight in self.by_limit:
                if limit <= upper:
                    return weight
            return self.by_limit[-1][1]
        return self.base


def _count_symbols(symbols: Any) -> int:
    if isinstance(symbols, str):
        return symbols.count(",") + 1
    return len(symbols)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One REST operation: where it lives, how it is secured and what it costs.

    ``orders`` is what one call adds to each of the account's ORDERS windows, except where
    ``orders_by_window`` gives ``(interval_s, count)``: futures ``batchOrders`` counts 5 on
    the 10 s window and 1 on the minute (``order_count``). ``weight_on_success`` is the
    weight actually charged when the call succeeds (spot orders cost 0 since 2026-04-02,
    failed ones pay the full weight).

    A call counts against its market's REQUEST_WEIGHT (and spot RAW_REQUESTS) pools, the
    account's ORDERS pools when ``orders`` > 0, and ``pool`` when set: ``(name, limit,
    interval_s)``, an IP pool of its own counted per request and shared by every endpoint
    naming it (futures ``fundingRate`` and ``fundingInfo``: 500 per 5 min). ``enums`` maps
    a parameter to the values Binance documents for it.
    """

    market: Market
    method: HttpMethod
    path: str
    security: Security
    weight: WeightRule = field(default_factory=WeightRule)
    orders: int = 0
    weight_on_success: int | None = None
    required: tuple[str, ...] = ()
    cache_ttl_s: float | None = None
    ignore_weight_header: bool = False
    enums: tuple[tuple[str, tuple[str, ...]], ...] = ()
    pool: tuple[str, int, int] | None = None
    orders_by_window: tuple[tuple[int, int], ...] = ()

    # Derived in __post_init__: read on every request, so computed once.
    key: str = field(init=False, repr=False, compare=False)  # "GET /api/v3/ticker/price"
    signed: bool = field(init=False, repr=False, compare=False)  # timestamp + signature
    needs_key: bool = field(init=False, repr=False, compare=False)  # X-MBX-APIKEY header
    idempotent: bool = field(init=False, repr=False, compare=False)  # safe to send again

    def __post_init__(self) -> None:
        security = self.security
        signed = security in (Security.TRADE, Security.USER_DATA) or (
            security is Security.USER_STREAM and self.market is Market.SPOT
        )
        idempotent = self.method is HttpMethod.GET or (
            self.method is HttpMethod.PUT and self.path.endswith("listenKey")
        )
        object.__setattr__(self, "key", f"{self.method} {self.path}")
        object.__setattr__(self, "signed", signed)
        object.__setattr__(self, "needs_key", security is not Security.NONE)
        object.__setattr__(self, "idempotent", idempotent)

    def order_count(self, interval_s: int) -> int:
        """New orders one call adds to the ORDERS window of ``interval_s`` seconds."""
        for seconds, count in self.orders_by_window:
            if seconds == interval_s:
                return count
        return self.orders


@dataclass(frozen=True, slots=True)
class BinanceEvent:
    """Something an operator wants to know: ``kind`` is a dotted name such as
    ``ratelimit.threshold``, ``ratelimit.429``, ``ratelimit.418``, ``ratelimit.resumed``,
    ``breaker.open``, ``breaker.half_open``, ``breaker.closed``, ``time.resync``, and for
    streams ``ws.reconnect``, ``ws.stall``, ``ws.rotate``, ``ws.server_shutdown``,
    ``ws.overflow``, ``ws.error``, ``ws.listen_key_expired``, ``ws.kline_gap``;
    ``data`` carries the numbers."""

    kind: str
    market: Market | None
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceSnapshot:
    """One symbol in ``get_prices``: spot last price and 24 h change, futures mark price and
    funding rate; ``error`` says what could not be had (the rest is still filled in)."""

    symbol: str
    price: Decimal | None = None
    change_24h_pct: Decimal | None = None
    mark_price: Decimal | None = None
    funding_rate: Decimal | None = None
    error: str | None = None
    # Set when the symbol is listed in neither market: the closest listed symbols.
    unknown: bool = False
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetValue:
    """An asset held, and its value in USDT (None when no USDT price is known)."""

    asset: str
    amount: Decimal
    value_usdt: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Portfolio:
    """``get_portfolio``: spot balances and the futures wallet, valued in USDT; ``errors``
    names a part (``spot``, ``futures``, ``prices``) that could not be fetched."""

    spot: tuple[AssetValue, ...]
    futures: tuple[AssetValue, ...]
    total_usdt: Decimal
    errors: Mapping[str, str] = field(default_factory=dict)
