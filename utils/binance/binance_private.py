"""Typed helpers for signed operations (account, orders), over the endpoint table. Input is
checked before anything is sent; order placement itself (client order ids, reconciliation
of unknown outcomes) is the facade's ``place_order_checked``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from utils.binance.binance_constants import endpoint
from utils.binance.binance_exceptions import BinanceInputError
from utils.binance.binance_types import (
    Endpoint,
    EndpointCaller,
    Market,
    Order,
    OrderSide,
    OrderType,
    Params,
)
from utils.binance.binance_utils import check_symbol, positive_decimal

if TYPE_CHECKING:
    from decimal import Decimal

__all__ = ("ORDER_QUERY", "PrivateEndpoints")

_ORDER_NEW = {
    Market.SPOT: endpoint("POST /api/v3/order"),
    Market.FUTURES: endpoint("POST /fapi/v1/order"),
}
ORDER_QUERY = {
    Market.SPOT: endpoint("GET /api/v3/order"),
    Market.FUTURES: endpoint("GET /fapi/v1/order"),
}
_ORDER_CANCEL = {
    Market.SPOT: endpoint("DELETE /api/v3/order"),
    Market.FUTURES: endpoint("DELETE /fapi/v1/order"),
}
_ACCOUNT = endpoint("GET /api/v3/account")
_FUTURES_BALANCE = endpoint("GET /fapi/v2/balance")
_LIMIT_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT})


class PrivateEndpoints(EndpointCaller):
    """Account and order helpers; every call here is signed."""

    async def get_account(self) -> dict[str, Any]:
        reply: dict[str, Any] = await self.call_endpoint(_ACCOUNT)
        return reply

    async def get_account_balance(self) -> dict[str, Any]:
        """The spot account with its ``balances`` list (``asset``, ``free``, ``locked``)."""
        return await self.get_account()

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
        """Place an order exactly once (see ``place_order_checked``)."""
        params: dict[str, Any] = {
            "symbol": check_symbol(symbol),
            "side": _enum(OrderSide, side, "side"),
            "type": _enum(OrderType, type_, "type_"),
            "quantity": positive_decimal(quantity, "quantity"),
        }
        if params["type"] in _LIMIT_TYPES:
            if price is None:
                raise BinanceInputError(f"a {params['type']} order needs a price")
            params["price"] = positive_decimal(price, "price")
            params["timeInForce"] = time_in_force or "GTC"
        elif price is not None:
            params["price"] = positive_decimal(price, "price")
        if client_order_id:
            params["newClientOrderId"] = client_order_id
        params.update(extra)
        reply = await self.place_order_checked(_ORDER_NEW[market], params)
        return Order.model_validate(reply)

    async def place_order(
        self,
        symbol: str,
        side: OrderSide | str,
        type_: OrderType | str,
        quantity: Decimal | str | float,
        price: Decimal | str | float | None = None,
        **extra: Any,
    ) -> Order:
        """The seed's spelling of ``new_order``."""
        return await self.new_order(
            symbol, side=side, type_=type_, quantity=quantity, price=price, **extra
        )

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
        return Order.model_validate(await self.call_endpoint(target, params))

    async def place_order_checked(self, endpoint: Endpoint, params: Params) -> Any:
        raise NotImplementedError


def _enum(kind: type[OrderSide] | type[OrderType], value: object, name: str) -> str:
    try:
        return str(kind(str(value).upper()))
    except ValueError:
        allowed = ", ".join(kind)
        raise BinanceInputError(f"{name} {value!r} is not one of {allowed}") from None
