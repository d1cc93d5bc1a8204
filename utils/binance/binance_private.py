"""Typed helpers for signed operations (account, orders), over the endpoint table. Input is
checked before anything is sent, orders also against the symbol's exchangeInfo filters;
order placement itself (client order ids, reconciliation of unknown outcomes) is the
caller's ``place_order_checked``. The seed's spellings (``place_order``, ``get_account``,
``get_account_balance``) are the facade's aliases over ``new_order`` and ``_spot_account``."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from utils.binance.binance_caller import Caller
from utils.binance.binance_constants import ORDER_QUERY, TICKER_PRICE, endpoint
from utils.binance.binance_exceptions import BinanceInputError
from utils.binance.binance_types import Endpoint, Market, OrderSide, OrderType, models
from utils.binance.binance_utils import check_limit, check_order, check_symbol, positive_decimal

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from utils.binance.binance_models import (
        AccountInfo,
        Balance,
        FuturesAccount,
        FuturesBalance,
        Income,
        LeverageChange,
        MyTrade,
        Order,
        PositionRisk,
    )

__all__ = ("PrivateEndpoints",)

S, F = Market.SPOT, Market.FUTURES
_ORDER_NEW = {S: endpoint("POST /api/v3/order"), F: endpoint("POST /fapi/v1/order")}
_ORDER_TEST = {S: endpoint("POST /api/v3/order/test"), F: endpoint("POST /fapi/v1/order/test")}
_ORDER_CANCEL = {S: endpoint("DELETE /api/v3/order"), F: endpoint("DELETE /fapi/v1/order")}
_OPEN_ORDERS = {S: endpoint("GET /api/v3/openOrders"), F: endpoint("GET /fapi/v1/openOrders")}
_ALL_ORDERS = {S: endpoint("GET /api/v3/allOrders"), F: endpoint("GET /fapi/v1/allOrders")}
_ACCOUNT = endpoint("GET /api/v3/account")
_MY_TRADES = endpoint("GET /api/v3/myTrades")
_FUTURES_BALANCE = endpoint("GET /fapi/v2/balance")
_FUTURES_ACCOUNT = endpoint("GET /fapi/v3/account")
_POSITION_RISK = endpoint("GET /fapi/v3/positionRisk")
_INCOME = endpoint("GET /fapi/v1/income")
_LEVERAGE = endpoint("POST /fapi/v1/leverage")
_LIMIT_TYPES: Final = frozenset(
    {OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT}
)
_MAX_LEVERAGE: Final = 125


class PrivateEndpoints(Caller):
    """Account and order helpers; every call here is signed."""

    async def get_futures_balance(self) -> list[dict[str, Any]]:
        reply: list[dict[str, Any]] = await self.call_endpoint(_FUTURES_BALANCE)
        return reply

    async def new_order(
        self,
        symbol: str,
        *,
        side: OrderSide | str,
        quantity: Decimal | str | float,
        type_: OrderType | str = OrderType.MARKET,
        price: Decimal | str | float | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        market: Market = Market.SPOT,
        **extra: Any,
    ) -> Order:
        """Place an order exactly once (see ``place_order_checked``), after checking it
        against the symbol's filters: ``BinanceUnknownSymbolError`` or
        ``BinanceFilterError`` are raised before anything is sent."""
        params = _order_params(symbol, side, quantity, type_, price, time_in_force)
        self.check_credentials(_ORDER_NEW[market])
        if client_order_id:
            params["newClientOrderId"] = client_order_id
        params.update(extra)
        await self._check_filters(params, market)
        reply = await self.place_order_checked(_ORDER_NEW[market], params)
        return models.Order.model_validate(reply)

    async def test_order(
        self,
        symbol: str,
        *,
        side: OrderSide | str,
        quantity: Decimal | str | float,
        type_: OrderType | str = OrderType.MARKET,
        price: Decimal | str | float | None = None,
        time_in_force: str | None = None,
        market: Market = Market.SPOT,
        **extra: Any,
    ) -> None:
        """Have Binance validate an order without placing it; same checks as ``new_order``."""
        params = _order_params(symbol, side, quantity, type_, price, time_in_force)
        self.check_credentials(_ORDER_TEST[market])
        params.update(extra)
        await self._check_filters(params, market)
        await self.call_endpoint(_ORDER_TEST[market], params)

    async def get_order(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        market: Market = Market.SPOT,
    ) -> Order:
        return await self._order_call(ORDER_QUERY[market], symbol, order_id, client_order_id)

    async def cancel_order(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        market: Market = Market.SPOT,
    ) -> Order:
        return await self._order_call(_ORDER_CANCEL[market], symbol, order_id, client_order_id)

    async def get_open_orders(
        self, symbol: str | None = None, market: Market = Market.SPOT
    ) -> list[Order]:
        """Open orders of one symbol, or of all (which costs far more weight)."""
        params = {"symbol": check_symbol(symbol)} if symbol is not None else {}
        rows = await self.call_endpoint(_OPEN_ORDERS[market], params)
        return [models.Order.model_validate(row) for row in rows]

    async def get_all_orders(
        self, symbol: str, limit: int = 500, market: Market = Market.SPOT
    ) -> list[Order]:
        """Open, filled and cancelled orders of a symbol, oldest first."""
        params = {"symbol": check_symbol(symbol), "limit": check_limit(limit, 1000)}
        rows = await self.call_endpoint(_ALL_ORDERS[market], params)
        return [models.Order.model_validate(row) for row in rows]

    # --- spot account ------------------------------------------------------------------
    async def get_account_info(self) -> AccountInfo:
        """The spot account, typed (``get_account`` answers the raw dict)."""
        return models.AccountInfo.model_validate(await self._spot_account())

    async def get_balances(self, *, include_zero: bool = False) -> list[Balance]:
        """Spot balances; assets with nothing free or locked are left out unless asked."""
        balances = (await self.get_account_info()).balances
        return [b for b in balances if include_zero or b.free or b.locked]

    async def get_my_trades(
        self, symbol: str, limit: int = 500, *, order_id: int | None = None
    ) -> list[MyTrade]:
        """The account's spot fills of a symbol (of one order with ``order_id``)."""
        params: dict[str, Any] = {
            "symbol": check_symbol(symbol),
            "limit": check_limit(limit, 1000),
        }
        if order_id is not None:
            params["orderId"] = order_id
        rows = await self.call_endpoint(_MY_TRADES, params)
        return [models.MyTrade.model_validate(row) for row in rows]

    # --- futures account ---------------------------------------------------------------
    async def get_futures_balances(self) -> list[FuturesBalance]:
        """The futures wallet, typed (``get_futures_balance`` answers the raw list)."""
        return [
            models.FuturesBalance.model_validate(row) for row in await self.get_futures_balance()
        ]

    async def get_futures_account(self) -> FuturesAccount:
        return models.FuturesAccount.model_validate(await self.call_endpoint(_FUTURES_ACCOUNT))

    async def get_position_risk(self, symbol: str | None = None) -> list[PositionRisk]:
        """Open futures positions (a named symbol is listed even when flat)."""
        params = {"symbol": check_symbol(symbol)} if symbol is not None else {}
        rows = await self.call_endpoint(_POSITION_RISK, params)
        return [models.PositionRisk.model_validate(row) for row in rows]

    async def get_income_history(
        self,
        symbol: str | None = None,
        income_type: str | None = None,
        limit: int = 100,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> list[Income]:
        """Futures income: ``income_type`` such as ``FUNDING_FEE``, ``REALIZED_PNL``,
        ``COMMISSION``, ``TRANSFER``; all types when None."""
        params: dict[str, Any] = {"limit": check_limit(limit, 1000)}
        if symbol is not None:
            params["symbol"] = check_symbol(symbol)
        if income_type is not None:
            if not income_type.replace("_", "").isalpha():
                raise BinanceInputError(f"income_type {income_type!r} is not an income type")
            params["incomeType"] = income_type.upper()
        if start_time is not None:
            params["startTime"] = start_time
        if end_time is not None:
            params["endTime"] = end_time
        rows = await self.call_endpoint(_INCOME, params)
        return [models.Income.model_validate(row) for row in rows]

    async def change_leverage(self, symbol: str, leverage: int) -> LeverageChange:
        """Set a futures symbol's initial leverage (1 to 125; brackets may cap it lower)."""
        params = {
            "symbol": check_symbol(symbol),
            "leverage": check_limit(leverage, _MAX_LEVERAGE, "leverage"),
        }
        return models.LeverageChange.model_validate(await self.call_endpoint(_LEVERAGE, params))

    # --- private helpers ---------------------------------------------------------------
    def _spot_account(self) -> Awaitable[dict[str, Any]]:
        """The spot account as Binance sent it (the facade's ``get_account`` answers it)."""
        return self.call_endpoint(_ACCOUNT)

    async def _check_filters(self, params: dict[str, Any], market: Market) -> None:
        """The symbol exists and the order passes its filters; a MARKET order's notional is
        priced at the last trade, fetched only when the symbol has a notional filter."""
        info = (await self.symbol_rules(market)).require(params["symbol"])
        price: Decimal | None = params.get("price")
        last_price = None
        notional = info.notional
        if price is None and notional is not None and notional.apply_min_to_market:
            reply = await self.call_endpoint(TICKER_PRICE[market], {"symbol": info.symbol})
            last_price = Decimal(reply["price"])
        check_order(
            info,
            side=params["side"],
            type_=params["type"],
            quantity=params["quantity"],
            price=price,
            last_price=last_price,
            reduce_only=str(params.get("reduceOnly", "")).lower() == "true",
        )

    async def _order_call(
        self, target: Endpoint, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> Order:
        """One order, named by id or client order id, queried or cancelled."""
        if order_id is None and not client_order_id:
            raise BinanceInputError("pass order_id or client_order_id to identify the order")
        params: dict[str, Any] = {"symbol": check_symbol(symbol)}
        if order_id is not None:
            params["orderId"] = order_id
        if client_order_id:
            params["origClientOrderId"] = client_order_id
        return models.Order.model_validate(await self.call_endpoint(target, params))


def _order_params(
    symbol: str,
    side: OrderSide | str,
    quantity: Decimal | str | float,
    type_: OrderType | str,
    price: Decimal | str | float | None,
    time_in_force: str | None,
) -> dict[str, Any]:
    """An order's wire parameters, each checked; LIMIT-like orders need a price."""
    params: dict[str, Any] = {
        "symbol": check_symbol(symbol),
        "side": _enum(OrderSide, side, "side"),
        "type": _enum(OrderType, type_, "type_"),
        "quantity": positive_decimal(quantity, "quantity"),
    }
    if params["type"] in _LIMIT_TYPES:
        if price is None:
            raise BinanceInputError(f"a {params['type']} order needs a price")
        params["timeInForce"] = time_in_force or "GTC"
    elif params["type"] == OrderType.LIMIT_MAKER and price is None:
        raise BinanceInputError("a LIMIT_MAKER order needs a price")
    if price is not None:
        params["price"] = positive_decimal(price, "price")
    return params


def _enum(kind: type[OrderSide] | type[OrderType], value: object, name: str) -> str:
    try:
        return str(kind(str(value).upper()))
    except ValueError:
        allowed = ", ".join(kind)
        raise BinanceInputError(f"{name} {value!r} is not one of {allowed}") from None
