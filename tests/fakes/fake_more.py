"""The fake exchange's remaining spot operations: order lists (OCO, OTO, OTOCO, OPO, OPOCO),
cancel-replace, amend-keep-priority, SOR, rolling tickers, commission and filter queries.

Orders placed here are ordinary ``FakeTrading`` orders, made through its handlers, so
``GET order``, ``openOrders`` and cancels see them; what only these operations know (order
lists, amendments, SOR allocations) is kept here. ``MoreContext`` is shared with
``fake_more_futures`` and ``fake_more_data``. ``fake_routes`` registers these handlers only
for keys no other module serves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tests.fakes.fake_exchange_info import render_rate_limits
from tests.fakes.fake_market import ApiError, Call, Market
from tests.fakes.fake_trading import int_param
from tests.fakes.fake_weights import PoolKind

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tests.fakes.fake_accounts import FakeAccounts
    from tests.fakes.fake_market import FakeMarket
    from tests.fakes.fake_trading import FakeTrading
    from tests.fakes.fake_weights import Window

__all__ = ("MoreContext", "spot_handlers")

Handler = Callable[[Call], Any]
ZERO8 = "0.00000000"
_OPEN = ("NEW", "PARTIALLY_FILLED")
#: Leg types the fake books as their LIMIT twin (it has no trigger engine); the stored
#: order is then given its real type back.
_BOOKED_AS = {
    "STOP_LOSS": "STOP_LOSS_LIMIT",
    "TAKE_PROFIT": "TAKE_PROFIT_LIMIT",
    "MARKET": "LIMIT",
}
_LEG_FIELDS = {
    "type": "Type",
    "price": "Price",
    "stopPrice": "StopPrice",
    "timeInForce": "TimeInForce",
    "newClientOrderId": "ClientOrderId",
}
_REPORT_KEYS = (
    "symbol",
    "orderId",
    "orderListId",
    "clientOrderId",
    "price",
    "origQty",
    "executedQty",
    "origQuoteOrderQty",
    "cummulativeQuoteQty",
    "status",
    "timeInForce",
    "type",
    "side",
    "stopPrice",
    "workingTime",
    "selfTradePreventionMode",
)
_ROLLING_MINI = (
    "symbol",
    "openPrice",
    "highPrice",
    "lowPrice",
    "lastPrice",
    "volume",
    "quoteVolume",
    "openTime",
    "closeTime",
    "firstId",
    "lastId",
    "count",
)
_ROLLING_FULL = ("priceChange", "priceChangePercent", "weightedAvgPrice", *_ROLLING_MINI)
_RATES = {"maker": "0.00100000", "taker": "0.00100000"}


@dataclass(slots=True)
class MoreContext:
    """What these handlers reuse: the route table (complete by the time they run) and the
    other modules' state."""

    routes: Mapping[str, Handler]
    market: FakeMarket
    trading: FakeTrading
    accounts: FakeAccounts
    windows_of: Callable[[Market], Sequence[Window]]

    def via(self, key: str, c: Call, params: dict[str, str]) -> Any:
        """The answer of ``key``'s handler to ``c`` with ``params`` instead of its own."""
        return self.routes[key](replace(c, key=key, params=params))

    def order_windows(self, market: Market) -> list[Window]:
        """The ORDERS windows the fake enforces (``rateLimit/order``)."""
        return [w for w in self.windows_of(market) if w.kind is PoolKind.ORDERS]


def new_id(*parts: object) -> str:
    """A client-style id (22 characters) derived from ``parts``."""
    return hashlib.blake2s(repr(parts).encode(), digest_size=11).hexdigest()[:22]


def one_or_many(c: Call, names: Sequence[str], build: Callable[[str], Any]) -> Any:
    """One object for ``symbol``, a list for ``symbols`` or for ``names``."""
    if "symbol" in c.params:
        return build(c.params["symbol"])
    return [build(s) for s in (c.symbols if c.symbols is not None else names)]


def spot_handlers(ctx: MoreContext) -> dict[str, Handler]:
    return _SpotMore(ctx).handlers()


class _SpotMore:
    def __init__(self, ctx: MoreContext) -> None:
        self.ctx = ctx
        self.lists: dict[tuple[str | None, int], dict[str, Any]] = {}
        self.list_orders: dict[tuple[str | None, int], list[dict[str, Any]]] = {}
        self.amendments: dict[tuple[str | None, int], list[dict[str, Any]]] = {}
        self.sor_orders: set[int] = set()
        self._next_list = 0

    def handlers(self) -> dict[str, Handler]:
        s = "/api/v3"
        return {
            f"GET {s}/account/commission": self._commission,
            f"GET {s}/allOrderList": lambda c: self._lists_of(c, only_open=False),
            f"GET {s}/openOrderList": lambda c: self._lists_of(c, only_open=True),
            f"GET {s}/orderList": lambda c: self._find_list(c)[0],
            f"DELETE {s}/orderList": self._cancel_list,
            f"POST {s}/order/oco": self._legacy_oco,
            f"POST {s}/orderList/oco": self._oco,
            f"POST {s}/orderList/oto": lambda c: self._working_list(c, ("pending",)),
            f"POST {s}/orderList/otoco": lambda c: self._working_list(
                c, ("pendingAbove", "pendingBelow")
            ),
            f"POST {s}/orderList/opo": lambda c: self._working_list(c, ("pending",)),
            f"POST {s}/orderList/opoco": lambda c: self._working_list(
                c, ("pendingAbove", "pendingBelow")
            ),
            f"DELETE {s}/openOrders": self._cancel_open,
            f"POST {s}/order/cancelReplace": self._cancel_replace,
            f"PUT {s}/order/amend/keepPriority": self._amend,
            f"GET {s}/order/amendments": self._amendments,
            f"POST {s}/sor/order": self._sor_order,
            f"POST {s}/sor/order/test": self._sor_test,
            f"GET {s}/myAllocations": self._allocations,
            f"GET {s}/myPreventedMatches": lambda _c: [],  # the fake never matches own orders
            f"GET {s}/myFilters": self._my_filters,
            f"GET {s}/rateLimit/order": self._rate_limit_order,
            f"GET {s}/executionRules": self._execution_rules,
            f"GET {s}/referencePrice": self._reference_price,
            f"GET {s}/referencePrice/calculation": self._reference_calculation,
            f"GET {s}/historicalTrades": self._historical_trades,
            f"GET {s}/historicalBlockTrades": self._historical_trades,
            f"GET {s}/ticker": self._rolling_ticker,
            f"GET {s}/ticker/tradingDay": self._rolling_ticker,
            f"GET {s}/uiKlines": lambda c: self.ctx.via(f"GET {s}/klines", c, c.params),
        }

    # --- order lists -------------------------------------------------------------------
    def _stored(self, c: Call, order_id: int) -> dict[str, Any]:
        params = {"symbol": c.params["symbol"], "orderId": str(order_id)}
        order: dict[str, Any] = self.ctx.via("GET /api/v3/order", c, params)
        return order

    def _sent(self, c: Call, leg: dict[str, str]) -> dict[str, str]:
        """What the fake books for one leg: triggered types as their LIMIT twin."""
        kind, sym = leg["type"], c.params["symbol"]
        sent = {**leg, "symbol": sym, "newOrderRespType": "ACK"}
        if kind in _BOOKED_AS:
            ref = self.ctx.market.fmt_price(sym, self.ctx.market.price(sym), Market.SPOT)
            sent.update(type=_BOOKED_AS[kind], price=leg.get("stopPrice", ref))
            sent.setdefault("timeInForce", "GTC")
        return sent

    def _book(self, c: Call, leg: dict[str, str], list_id: int, pending: bool) -> dict[str, Any]:
        """Place one leg as an ordinary order and return the stored order."""
        kind = leg["type"]
        ack = self.ctx.via("POST /api/v3/order", c, self._sent(c, leg))
        order = self._stored(c, ack["orderId"])
        order.update(orderListId=list_id, type=kind)
        if kind in _BOOKED_AS:
            order["price"] = ZERO8
        if "stopPrice" in leg:
            order["stopPrice"] = f"{Decimal(leg['stopPrice']):.8f}"
        if pending:
            order["status"] = "PENDING_NEW"
        return order

    def _place_list(
        self, c: Call, contingency: str, legs: list[tuple[dict[str, str], bool]]
    ) -> dict[str, Any]:
        for leg, _ in legs:  # a list is placed whole or not at all
            self.ctx.via("POST /api/v3/order/test", c, self._sent(c, leg))
        self._next_list += 1
        list_id = self._next_list
        orders = [self._book(c, leg, list_id, pending) for leg, pending in legs]
        head = {
            "orderListId": list_id,
            "contingencyType": contingency,
            "listStatusType": "EXEC_STARTED",
            "listOrderStatus": "EXECUTING",
            "listClientOrderId": c.params.get("listClientOrderId") or new_id(c.api_key, list_id),
            "transactionTime": c.now_ms,
            "symbol": c.params["symbol"],
            "orders": [
                {
                    "symbol": o["symbol"],
                    "orderId": o["orderId"],
                    "clientOrderId": o["clientOrderId"],
                }
                for o in orders
            ],
        }
        self.lists[c.api_key, list_id] = head
        self.list_orders[c.api_key, list_id] = orders
        return {**head, "orderReports": [_report(o, c.now_ms) for o in orders]}

    def _legacy_oco(self, c: Call) -> dict[str, Any]:
        p = c.params
        stop = {"type": "STOP_LOSS_LIMIT" if "stopLimitPrice" in p else "STOP_LOSS"}
        stop.update(stopPrice=p["stopPrice"], timeInForce=p.get("stopLimitTimeInForce", "GTC"))
        if "stopLimitPrice" in p:
            stop["price"] = p["stopLimitPrice"]
        limit = {"type": "LIMIT_MAKER", "price": p["price"]}
        legs = [
            ({**leg, "side": p["side"], "quantity": p["quantity"]}, False) for leg in (stop, limit)
        ]
        return self._place_list(c, "OCO", legs)

    def _oco(self, c: Call) -> dict[str, Any]:
        p = c.params
        legs = [(_leg(p, name, p["side"], p["quantity"]), False) for name in ("below", "above")]
        return self._place_list(c, "OCO", legs)

    def _working_list(self, c: Call, pending: tuple[str, ...]) -> dict[str, Any]:
        """OTO/OTOCO/OPO/OPOCO: a working order and pending ones (OPO: of the same size)."""
        p = c.params
        working = _leg(p, "working", p["workingSide"], p["workingQuantity"])
        qty = p.get("pendingQuantity", p["workingQuantity"])
        legs = [(working, False)] + [
            (_leg(p, name, p["pendingSide"], qty), True) for name in pending if f"{name}Type" in p
        ]
        return self._place_list(c, "OTO", legs)

    def _find_list(self, c: Call) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        wanted = c.params.get("orderListId")
        coid = c.params.get("origClientOrderId") or c.params.get("listClientOrderId")
        if not wanted and not coid:
            raise ApiError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderListId' must be sent, but both were"
                " empty/null!",
            )
        for (key, list_id), head in self.lists.items():
            if key == c.api_key and (
                str(list_id) == wanted or (not wanted and head["listClientOrderId"] == coid)
            ):
                return head, self.list_orders[key, list_id]
        raise ApiError(400, -2011, "Order list does not exist.")

    def _lists_of(self, c: Call, *, only_open: bool) -> list[dict[str, Any]]:
        rows = [
            head
            for (key, _), head in self.lists.items()
            if key == c.api_key and (not only_open or head["listOrderStatus"] == "EXECUTING")
        ]
        return rows[-int_param(c, "limit", 500, 1, 1000) :]

    def _cancel_list(self, c: Call) -> dict[str, Any]:
        head, orders = self._find_list(c)
        if head["listOrderStatus"] != "EXECUTING":
            raise ApiError(400, -2011, "Unknown order sent.")
        reports = []
        for order in orders:
            if order["status"] in _OPEN:
                params = {"symbol": order["symbol"], "orderId": str(order["orderId"])}
                reports.append(self.ctx.via("DELETE /api/v3/order", c, params))
            else:
                order["status"] = "CANCELED"
                reports.append(_report(order, c.now_ms))
        head.update(listStatusType="ALL_DONE", listOrderStatus="ALL_DONE")
        head["transactionTime"] = c.now_ms
        return {**head, "orderReports": reports}

    # --- cancels and amendments ----------------------------------------------------------
    def _cancel_open(self, c: Call) -> list[dict[str, Any]]:
        sym = c.params["symbol"]
        live = self.ctx.via("GET /api/v3/openOrders", c, {"symbol": sym})
        if not live:
            raise ApiError(400, -2011, "Unknown order sent.")
        reports = [
            self.ctx.via("DELETE /api/v3/order", c, {"symbol": sym, "orderId": str(o["orderId"])})
            for o in live
        ]
        for key_id, head in self.lists.items():
            if key_id[0] == c.api_key and head["symbol"] == sym:
                head.update(listStatusType="ALL_DONE", listOrderStatus="ALL_DONE")
        return reports

    def _cancel_replace(self, c: Call) -> dict[str, Any]:
        p = c.params
        target = {"symbol": p["symbol"]}
        if "cancelOrderId" in p:
            target["orderId"] = p["cancelOrderId"]
        if "cancelOrigClientOrderId" in p:
            target["origClientOrderId"] = p["cancelOrigClientOrderId"]
        out: dict[str, Any] = {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS"}
        try:
            out["cancelResponse"] = self.ctx.via("DELETE /api/v3/order", c, target)
        except ApiError as e:
            if p["cancelReplaceMode"] != "ALLOW_FAILURE":
                raise ApiError(400, -2022, "Order cancel-replace failed.") from None
            out.update(cancelResult="FAILURE", cancelResponse={"code": e.code, "msg": e.msg})
        new = {k: v for k, v in p.items() if not k.startswith("cancel")}
        try:
            out["newOrderResponse"] = self.ctx.via("POST /api/v3/order", c, new)
        except ApiError:
            if out["cancelResult"] == "FAILURE":
                raise ApiError(400, -2022, "Order cancel-replace failed.") from None
            raise ApiError(409, -2021, "Order cancel-replace partially failed.") from None
        if out["cancelResult"] == "FAILURE":
            raise ApiError(409, -2021, "Order cancel-replace partially failed.")
        return out

    def _amend(self, c: Call) -> dict[str, Any]:
        p = c.params
        target: dict[str, str] = {
            k: p[k] for k in ("symbol", "orderId", "origClientOrderId") if k in p
        }
        order = self.ctx.via("GET /api/v3/order", c, target)
        new_qty = Decimal(p["newQty"])
        if order["status"] not in _OPEN:
            raise ApiError(400, -2013, "Order does not exist.")
        if not 0 < new_qty < Decimal(order["origQty"]):
            raise ApiError(400, -2038, "Order amend (quantity increase) is not supported.")
        history = self.amendments.setdefault((c.api_key, order["orderId"]), [])
        execution_id = 2 * len(history) + order["orderId"]
        history.append(
            {
                "symbol": order["symbol"],
                "orderId": order["orderId"],
                "executionId": execution_id,
                "origClientOrderId": order["clientOrderId"],
                "newClientOrderId": p.get("newClientOrderId", order["clientOrderId"]),
                "origQty": order["origQty"],
                "newQty": f"{new_qty:.8f}",
                "time": c.now_ms,
            }
        )
        order.update(origQty=f"{new_qty:.8f}", updateTime=c.now_ms)
        amended = {k: order[k] for k in _REPORT_KEYS if k in order and k != "origQty"}
        amended.update(origClientOrderId=order["clientOrderId"], qty=order["origQty"])
        return {"transactTime": c.now_ms, "executionId": execution_id, "amendedOrder": amended}

    def _amendments(self, c: Call) -> list[dict[str, Any]]:
        order = self._stored(c, int_param(c, "orderId", 0, 0))
        return self.amendments.get((c.api_key, order["orderId"]), [])

    # --- SOR ---------------------------------------------------------------------------
    def _sor_order(self, c: Call) -> dict[str, Any]:
        if c.params["type"] not in ("LIMIT", "MARKET"):
            raise ApiError(400, -1116, "Invalid orderType.")
        reply: dict[str, Any] = self.ctx.via(
            "POST /api/v3/order", c, {**c.params, "newOrderRespType": "FULL"}
        )
        self.sor_orders.add(reply["orderId"])
        for n, fill in enumerate(reply.get("fills", ())):
            fill.update(matchType="ONE_PARTY_TRADE_REPORT", allocId=n)
        reply.update(workingFloor="SOR", usedSor=True)
        return reply

    def _sor_test(self, c: Call) -> dict[str, Any]:
        self.ctx.via("POST /api/v3/order/test", c, c.params)
        if c.params.get("computeCommissionRates") != "true":
            return {}
        return {
            "standardCommissionForOrder": dict(_RATES),
            "taxCommissionForOrder": {"maker": ZERO8, "taker": ZERO8},
            "discount": _discount(),
        }

    def _allocations(self, c: Call) -> list[dict[str, Any]]:
        return [
            {
                "symbol": t["symbol"],
                "allocationId": n,
                "allocationType": "SOR",
                "orderId": t["orderId"],
                "orderListId": -1,
                **{k: t[k] for k in ("price", "qty", "quoteQty", "commission", "commissionAsset")},
                "time": t["time"],
                "isBuyer": t["isBuyer"],
                "isMaker": False,
                "isAllocator": False,
            }
            for n, t in enumerate(self.ctx.trading.trades)
            if t["apiKey"] == c.api_key
            and t["symbol"] == c.params["symbol"]
            and t["orderId"] in self.sor_orders
        ]

    # --- account queries ---------------------------------------------------------------
    def _commission(self, c: Call) -> dict[str, Any]:
        zero = dict.fromkeys(("maker", "taker", "buyer", "seller"), ZERO8)
        return {
            "symbol": c.params["symbol"],
            "standardCommission": {**zero, **_RATES},
            "specialCommission": dict(zero),
            "taxCommission": dict(zero),
            "discount": _discount(),
        }

    def _my_filters(self, c: Call) -> dict[str, Any]:
        base = self.ctx.market.symbols[c.params["symbol"]].base
        return {
            "exchangeFilters": [{"filterType": "EXCHANGE_MAX_NUM_ORDERS", "maxNumOrders": 1000}],
            "symbolFilters": [{"filterType": "MAX_NUM_ORDER_LISTS", "maxNumOrderLists": 20}],
            "assetFilters": [
                {"filterType": "MAX_ASSET", "asset": base, "limit": "100000.00000000"}
            ],
        }

    def _rate_limit_order(self, c: Call) -> list[dict[str, Any]]:
        windows = self.ctx.order_windows(Market.SPOT)
        rows = render_rate_limits(windows)
        for row, w in zip(rows, windows, strict=True):
            start = c.now_ms - c.now_ms % (w.interval_s * 1000)
            spot = (o for o in self.ctx.trading.placed if "orderListId" in o)  # futures have none
            row["count"] = sum(1 for o in spot if o["time"] >= start)
        return rows

    # --- market data -------------------------------------------------------------------
    def _execution_rules(self, c: Call) -> dict[str, Any]:
        rule = {
            "ruleType": "PRICE_RANGE",
            "bidLimitMultUp": "1.0500",
            "bidLimitMultDown": "0.9500",
            "askLimitMultUp": "1.0500",
            "askLimitMultDown": "0.9500",
        }
        names = c.symbols if c.symbols is not None else self.ctx.market.universe(Market.SPOT)
        return {"symbolRules": [{"symbol": s, "rules": [dict(rule)]} for s in names]}

    def _reference_price(self, c: Call) -> dict[str, Any]:
        sym, m = c.params["symbol"], self.ctx.market
        price = m.fmt_price(sym, m.price(sym), Market.SPOT)
        return {"symbol": sym, "referencePrice": price, "timestamp": c.now_ms}

    def _reference_calculation(self, c: Call) -> dict[str, Any]:
        return {
            "symbol": c.params["symbol"],
            "calculationType": "ARITHMETIC_MEAN",
            "bucketCount": 10,
            "bucketWidthMs": 1000,
        }

    def _historical_trades(self, c: Call) -> list[dict[str, Any]]:
        limit = int_param(c, "limit", 500, 1, 1000)
        return self.ctx.market.trades(c.market, c.params["symbol"], limit, c.now_ms)

    def _rolling_ticker(self, c: Call) -> Any:
        if c.symbols is None:
            raise ApiError(
                400,
                -1102,
                "Param 'symbol' or 'symbols' must be sent, but both were empty/null!",
            )
        keys = _ROLLING_MINI if c.params.get("type") == "MINI" else _ROLLING_FULL

        def build(sym: str) -> dict[str, Any]:
            row = self.ctx.market.ticker_24hr(Market.SPOT, sym, c.now_ms)
            return {k: row[k] for k in keys}

        return one_or_many(c, (), build)


def _leg(p: Mapping[str, str], prefix: str, side: str, quantity: str) -> dict[str, str]:
    """One order of a list from its prefixed parameters (``aboveType``, ``workingPrice``...)."""
    leg = {
        name: p[prefix + suffix] for name, suffix in _LEG_FIELDS.items() if prefix + suffix in p
    }
    return {**leg, "side": side, "quantity": quantity}


def _report(order: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    out = {k: order[k] for k in _REPORT_KEYS if k in order}
    out["transactTime"] = now_ms
    return out


def _discount() -> dict[str, Any]:
    return {
        "enabledForAccount": True,
        "enabledForSymbol": True,
        "discountAsset": "BNB",
        "discount": "0.75000000",
    }
