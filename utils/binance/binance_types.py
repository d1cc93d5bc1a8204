"""Plain types shared by the client's modules: markets, endpoints and their weight rules,
rate-limit windows and the events the client publishes. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

if TYPE_CHECKING:
    from utils.binance.binance_utils import SymbolRules

__all__ = (
    "AccountInfo",
    "AggTrade",
    "AssetValue",
    "AvgPrice",
    "Balance",
    "BinanceEvent",
    "BookTicker",
    "Endpoint",
    "EndpointCaller",
    "ErrorCode",
    "FundingRate",
    "FuturesAccount",
    "FuturesAsset",
    "FuturesBalance",
    "FuturesPosition",
    "HttpMethod",
    "Income",
    "Kline",
    "KlineInterval",
    "LeverageChange",
    "LotSize",
    "MarkPrice",
    "Market",
    "MyTrade",
    "NotionalFilter",
    "OpenInterest",
    "Order",
    "OrderBook",
    "OrderSide",
    "OrderType",
    "Params",
    "PoolKind",
    "Portfolio",
    "PositionRisk",
    "PriceFilter",
    "PriceSnapshot",
    "RateWindow",
    "Security",
    "SymbolInfo",
    "Ticker24h",
    "TickerPrice",
    "TimeInForce",
    "Trade",
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


@dataclass(frozen=True, slots=True)
class BinanceEvent:
    """Something an operator wants to know: ``kind`` is a dotted name such as
    ``ratelimit.threshold``, ``ratelimit.429``, ``ratelimit.418``, ``ratelimit.resumed``,
    ``breaker.open``, ``breaker.half_open``, ``breaker.closed``, ``time.resync``, and for
    streams ``ws.reconnect``, ``ws.stall``, ``ws.rotate``, ``ws.server_shutdown``,
    ``ws.overflow``, ``ws.error``, ``ws.listen_key_expired``;
    ``data`` carries the numbers."""

    kind: str
    market: Market | None
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


class EndpointCaller:
    """What the typed helpers need from the client: one way to call a table entry, and
    where the parsed exchangeInfo of each market is kept once loaded."""

    _symbol_rules: dict[Market, SymbolRules]

    async def call_endpoint(self, endpoint: Endpoint, params: Params | None = None) -> Any:
        raise NotImplementedError

    def check_credentials(self, endpoint: Endpoint) -> None:
        """Raise ``BinanceCredentialsError`` if ``endpoint`` needs a key or signature the
        caller lacks. Helpers that do public work before a signed call (an order's filter
        check) call it first, so a keyless client sends nothing; the facade overrides it."""


class Order(BaseModel):
    """An order as Binance reports it. Source: spot ``POST/GET /api/v3/order``, futures
    ``POST/GET /fapi/v1/order``."""

    # defer_build: a model's validator is built on first use, not at import (start-up time)
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    symbol: str
    order_id: int = Field(alias="orderId")
    client_order_id: str = Field(alias="clientOrderId")
    side: str
    type: str
    status: str
    price: Decimal = Decimal(0)
    orig_qty: Decimal = Field(default=Decimal(0), alias="origQty")
    executed_qty: Decimal = Field(default=Decimal(0), alias="executedQty")


def _blank_is_none(value: Any) -> Any:
    """Binance sends ``""`` for some numbers it does not have (old funding marks, ids)."""
    return None if value == "" else value


OptDecimal = Annotated[Decimal | None, BeforeValidator(_blank_is_none)]


class _Model(BaseModel):
    """Binance JSON parsed once: frozen, snake_case names with camelCase aliases."""

    # defer_build: a model's validator is built on first use, not at import (start-up time)
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)


class TickerPrice(_Model):
    """Last traded price. Source: spot ``GET /api/v3/ticker/price``, futures
    ``GET /fapi/v2/ticker/price``."""

    symbol: str
    price: Decimal
    time: int | None = None


class Ticker24h(_Model):
    """Rolling 24 h statistics; bid/ask and previous close are spot only. Source: spot
    ``GET /api/v3/ticker/24hr``, futures ``GET /fapi/v1/ticker/24hr``."""

    symbol: str
    price_change: Decimal = Field(alias="priceChange")
    price_change_percent: Decimal = Field(alias="priceChangePercent")
    weighted_avg_price: Decimal = Field(alias="weightedAvgPrice")
    prev_close_price: Decimal | None = Field(default=None, alias="prevClosePrice")
    last_price: Decimal = Field(alias="lastPrice")
    last_qty: Decimal = Field(alias="lastQty")
    bid_price: Decimal | None = Field(default=None, alias="bidPrice")
    ask_price: Decimal | None = Field(default=None, alias="askPrice")
    open_price: Decimal = Field(alias="openPrice")
    high_price: Decimal = Field(alias="highPrice")
    low_price: Decimal = Field(alias="lowPrice")
    volume: Decimal
    quote_volume: Decimal = Field(alias="quoteVolume")
    open_time: int = Field(alias="openTime")
    close_time: int = Field(alias="closeTime")
    count: int


class BookTicker(_Model):
    """Best bid and ask. Source: spot ``GET /api/v3/ticker/bookTicker``, futures
    ``GET /fapi/v1/ticker/bookTicker``."""

    symbol: str
    bid_price: Decimal = Field(alias="bidPrice")
    bid_qty: Decimal = Field(alias="bidQty")
    ask_price: Decimal = Field(alias="askPrice")
    ask_qty: Decimal = Field(alias="askQty")
    time: int | None = None


class AvgPrice(_Model):
    """Average price over the last ``mins`` minutes. Source: spot ``GET /api/v3/avgPrice``."""

    mins: int
    price: Decimal
    close_time: int | None = Field(default=None, alias="closeTime")


class OrderBook(_Model):
    """Order book levels as ``(price, quantity)``, best first. Source: spot
    ``GET /api/v3/depth``, futures ``GET /fapi/v1/depth``."""

    last_update_id: int = Field(alias="lastUpdateId")
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    event_time: int | None = Field(default=None, alias="E")


class Trade(_Model):
    """A public trade. Source: spot ``GET /api/v3/trades``, futures ``GET /fapi/v1/trades``."""

    id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal | None = Field(default=None, alias="quoteQty")
    time: int
    is_buyer_maker: bool = Field(alias="isBuyerMaker")


class AggTrade(_Model):
    """Trades of one taker order at one price, compressed. Source: spot
    ``GET /api/v3/aggTrades``, futures ``GET /fapi/v1/aggTrades``."""

    agg_id: int = Field(alias="a")
    price: Decimal = Field(alias="p")
    qty: Decimal = Field(alias="q")
    first_trade_id: int = Field(alias="f")
    last_trade_id: int = Field(alias="l")
    time: int = Field(alias="T")
    is_buyer_maker: bool = Field(alias="m")


class Kline(_Model):
    """One candle; ``closed`` is False for the candle still open. Source: spot
    ``GET /api/v3/klines``, futures ``GET /fapi/v1/klines`` (rows, see ``from_row``)."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time: int
    quote_volume: Decimal
    trades: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal
    closed: bool

    @classmethod
    def from_row(cls, row: list[Any], *, now_ms: int) -> Self:
        """Binance's 12-element row; the candle is closed once its close time has passed."""
        names = ("open_time", "open", "high", "low", "close", "volume", "close_time")
        values = dict(zip(names, row, strict=False))
        values.update(quote_volume=row[7], trades=row[8], taker_buy_volume=row[9])
        values.update(taker_buy_quote_volume=row[10], closed=int(row[6]) < now_ms)
        return cls.model_validate(values)


class Balance(_Model):
    """One asset of the spot account. Source: spot ``GET /api/v3/account``."""

    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class AccountInfo(_Model):
    """The spot account. Source: spot ``GET /api/v3/account``."""

    maker_commission: int = Field(default=0, alias="makerCommission")
    taker_commission: int = Field(default=0, alias="takerCommission")
    can_trade: bool = Field(alias="canTrade")
    can_withdraw: bool = Field(alias="canWithdraw")
    can_deposit: bool = Field(alias="canDeposit")
    update_time: int = Field(alias="updateTime")
    account_type: str = Field(alias="accountType")
    balances: tuple[Balance, ...]
    permissions: tuple[str, ...] = ()


class MyTrade(_Model):
    """A fill of one of the account's orders. Source: spot ``GET /api/v3/myTrades``."""

    symbol: str
    id: int
    order_id: int = Field(alias="orderId")
    price: Decimal
    qty: Decimal
    quote_qty: Decimal = Field(alias="quoteQty")
    commission: Decimal
    commission_asset: str = Field(alias="commissionAsset")
    time: int
    is_buyer: bool = Field(alias="isBuyer")
    is_maker: bool = Field(alias="isMaker")


class MarkPrice(_Model):
    """Futures mark and index price with the funding rate. Source: futures
    ``GET /fapi/v1/premiumIndex``."""

    symbol: str
    mark_price: Decimal = Field(alias="markPrice")
    index_price: Decimal = Field(alias="indexPrice")
    last_funding_rate: Decimal = Field(alias="lastFundingRate")
    next_funding_time: int = Field(alias="nextFundingTime")
    interest_rate: OptDecimal = Field(default=None, alias="interestRate")
    time: int


class FundingRate(_Model):
    """One settled funding rate. Source: futures ``GET /fapi/v1/fundingRate``."""

    symbol: str
    funding_rate: Decimal = Field(alias="fundingRate")
    funding_time: int = Field(alias="fundingTime")
    mark_price: OptDecimal = Field(default=None, alias="markPrice")


class OpenInterest(_Model):
    """Open contracts of a symbol. Source: futures ``GET /fapi/v1/openInterest``."""

    symbol: str
    open_interest: Decimal = Field(alias="openInterest")
    time: int


class FuturesBalance(_Model):
    """One asset of the futures wallet. Source: futures ``GET /fapi/v2/balance``."""

    asset: str
    balance: Decimal
    cross_wallet_balance: Decimal = Field(alias="crossWalletBalance")
    cross_un_pnl: Decimal = Field(alias="crossUnPnl")
    available_balance: Decimal = Field(alias="availableBalance")
    max_withdraw_amount: Decimal = Field(alias="maxWithdrawAmount")
    update_time: int = Field(alias="updateTime")


class FuturesAsset(_Model):
    """An asset line of the futures account. Source: futures ``GET /fapi/v3/account``."""

    asset: str
    wallet_balance: Decimal = Field(alias="walletBalance")
    unrealized_profit: Decimal = Field(alias="unrealizedProfit")
    margin_balance: Decimal = Field(alias="marginBalance")
    available_balance: Decimal = Field(alias="availableBalance")
    max_withdraw_amount: Decimal = Field(alias="maxWithdrawAmount")


class FuturesPosition(_Model):
    """A position line of the futures account. Source: futures ``GET /fapi/v3/account``."""

    symbol: str
    position_side: str = Field(alias="positionSide")
    position_amt: Decimal = Field(alias="positionAmt")
    unrealized_profit: Decimal = Field(alias="unrealizedProfit")
    notional: Decimal
    update_time: int = Field(alias="updateTime")


class FuturesAccount(_Model):
    """The futures account: totals, assets, open positions. Source: futures
    ``GET /fapi/v3/account``."""

    total_wallet_balance: Decimal = Field(alias="totalWalletBalance")
    total_unrealized_profit: Decimal = Field(alias="totalUnrealizedProfit")
    total_margin_balance: Decimal = Field(alias="totalMarginBalance")
    total_initial_margin: Decimal = Field(alias="totalInitialMargin")
    total_maint_margin: Decimal = Field(alias="totalMaintMargin")
    available_balance: Decimal = Field(alias="availableBalance")
    max_withdraw_amount: Decimal = Field(alias="maxWithdrawAmount")
    assets: tuple[FuturesAsset, ...] = ()
    positions: tuple[FuturesPosition, ...] = ()


class PositionRisk(_Model):
    """A futures position with its entry, mark and liquidation prices. Source: futures
    ``GET /fapi/v3/positionRisk``."""

    symbol: str
    position_side: str = Field(alias="positionSide")
    position_amt: Decimal = Field(alias="positionAmt")
    entry_price: Decimal = Field(alias="entryPrice")
    mark_price: Decimal = Field(alias="markPrice")
    unrealized_profit: Decimal = Field(alias="unRealizedProfit")
    liquidation_price: Decimal = Field(alias="liquidationPrice")
    notional: Decimal
    update_time: int = Field(alias="updateTime")


class Income(_Model):
    """One futures income line (funding fee, realized PnL, commission, transfer...).
    Source: futures ``GET /fapi/v1/income``."""

    symbol: str = ""
    income_type: str = Field(alias="incomeType")
    income: Decimal
    asset: str
    info: str = ""
    time: int
    tran_id: int = Field(alias="tranId")
    trade_id: str = Field(default="", alias="tradeId")


class LeverageChange(_Model):
    """The leverage now in force for a symbol. Source: futures ``POST /fapi/v1/leverage``."""

    symbol: str
    leverage: int
    max_notional_value: Decimal = Field(alias="maxNotionalValue")


class PriceFilter(_Model):
    """``PRICE_FILTER``; a zero bound or tick means that rule is off. Source: exchangeInfo."""

    min_price: Decimal = Field(alias="minPrice")
    max_price: Decimal = Field(alias="maxPrice")
    tick_size: Decimal = Field(alias="tickSize")


class LotSize(_Model):
    """``LOT_SIZE`` or ``MARKET_LOT_SIZE``; zero means that rule is off. Source: exchangeInfo."""

    min_qty: Decimal = Field(alias="minQty")
    max_qty: Decimal = Field(alias="maxQty")
    step_size: Decimal = Field(alias="stepSize")


class NotionalFilter(_Model):
    """Spot ``NOTIONAL`` / legacy ``MIN_NOTIONAL``, or futures ``MIN_NOTIONAL`` (field
    ``notional``), in one shape; ``field`` is the name Binance gives the minimum.
    Source: exchangeInfo."""

    filter_type: str
    field: str
    min_notional: Decimal
    apply_min_to_market: bool = True
    max_notional: Decimal | None = None
    apply_max_to_market: bool = False


class SymbolInfo(_Model):
    """A symbol's trading rules (built by ``binance_utils.parse_symbol_info``). Source:
    spot ``GET /api/v3/exchangeInfo``, futures ``GET /fapi/v1/exchangeInfo``."""

    symbol: str
    status: str
    base_asset: str = Field(alias="baseAsset")
    quote_asset: str = Field(alias="quoteAsset")
    order_types: tuple[str, ...] = Field(default=(), alias="orderTypes")
    price_filter: PriceFilter | None = None
    lot_size: LotSize | None = None
    market_lot_size: LotSize | None = None
    notional: NotionalFilter | None = None


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
