"""Binance's JSON answers as frozen pydantic models (``Decimal`` money, snake_case names with
the wire's camelCase as aliases), returned by the typed helpers of ``binance_public`` and
``binance_private``.

Imported on first use (``binance_types.models``), not with the client: building these
classes is most of what importing the types costs, and a client that only calls
``get_symbol_price`` never needs them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = (
    "AccountInfo",
    "AggTrade",
    "AvgPrice",
    "Balance",
    "BookTicker",
    "FundingRate",
    "FuturesAccount",
    "FuturesAsset",
    "FuturesBalance",
    "FuturesPosition",
    "Income",
    "Kline",
    "LeverageChange",
    "LotSize",
    "MarkPrice",
    "MyTrade",
    "NotionalFilter",
    "OpenInterest",
    "Order",
    "OrderBook",
    "PositionRisk",
    "PriceFilter",
    "SymbolInfo",
    "Ticker24h",
    "TickerPrice",
    "Trade",
)


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
