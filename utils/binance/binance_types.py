"""Plain types shared by the client's modules: markets, endpoints and their weight rules,
rate-limit windows and the events the client publishes. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = (
    "BinanceEvent",
    "Endpoint",
    "EndpointCaller",
    "ErrorCode",
    "HttpMethod",
    "Market",
    "Order",
    "OrderSide",
    "OrderType",
    "Params",
    "PoolKind",
    "RateWindow",
    "Security",
    "TimeInForce",
    "WeightRule",
    "interval_seconds",
)

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

    @property
    def suffix(self) -> str:
        """Binance's interval tag for headers: ``1M``, ``10S``, ``1D``."""
        for unit, seconds in (("D", 86400), ("H", 3600), ("M", 60)):
            if self.interval_s % seconds == 0:
                return f"{self.interval_s // seconds}{unit}"
        return f"{self.interval_s}S"

    @property
    def header(self) -> str:
        if self.kind is PoolKind.REQUEST_WEIGHT:
            return f"X-MBX-USED-WEIGHT-{self.suffix}"
        if self.kind is PoolKind.ORDERS:
            return f"X-MBX-ORDER-COUNT-{self.suffix}"
        return ""

    @property
    def name(self) -> str:
        return f"{self.market} {self.kind} {self.suffix}"


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

    ``orders`` is what one call adds to the account's ORDERS pools; ``weight_on_success``
    is the weight actually charged when the call succeeds (spot orders cost 0 since
    2026-04-02, failed ones pay the full weight).

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

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def signed(self) -> bool:
        if self.security in (Security.TRADE, Security.USER_DATA):
            return True
        return self.security is Security.USER_STREAM and self.market is Market.SPOT

    @property
    def needs_key(self) -> bool:
        return self.security is not Security.NONE

    @property
    def idempotent(self) -> bool:
        """Safe to send again when the answer is lost."""
        return self.method is HttpMethod.GET or (
            self.method is HttpMethod.PUT and self.path.endswith("listenKey")
        )


@dataclass(frozen=True, slots=True)
class BinanceEvent:
    """Something an operator wants to know: ``kind`` is a dotted name such as
    ``ratelimit.threshold``, ``ratelimit.429``, ``ratelimit.418``, ``ratelimit.resumed``,
    ``breaker.open``, ``breaker.half_open``, ``breaker.closed``, ``time.resync``;
    ``data`` carries the numbers."""

    kind: str
    market: Market | None
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


class EndpointCaller:
    """What the typed helpers need from the client: one way to call a table entry."""

    async def call_endpoint(self, endpoint: Endpoint, params: Params | None = None) -> Any:
        raise NotImplementedError


class Order(BaseModel):
    """An order as Binance reports it. Source: spot ``POST/GET /api/v3/order``, futures
    ``POST/GET /fapi/v1/order``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    symbol: str
    order_id: int = Field(alias="orderId")
    client_order_id: str = Field(alias="clientOrderId")
    side: str
    type: str
    status: str
    price: Decimal = Decimal(0)
    orig_qty: Decimal = Field(default=Decimal(0), alias="origQty")
    executed_qty: Decimal = Field(default=Decimal(0), alias="executedQty")
