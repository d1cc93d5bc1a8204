"""The fake exchange's orders, spot and futures: place (with filter checks), query, cancel,
list, and the spot trades they made.

Orders are stored in Binance's shape (the dicts ``FakeBinance.orders`` lists). MARKET orders
fill at once at the current price (spot) or mark price (futures); other types stay NEW.
Futures fills are reported to a listener (the accounts' positions); balances never move.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.fakes.fake_market import ApiError, Call, Market

if TYPE_CHECKING:
    from tests.fakes.fake_market import FakeMarket

__all__ = ("FakeTrading", "FillListener", "dec_param", "int_param")

#: ``(api_key, symbol, signed quantity, price)`` of a futures fill.
FillListener = Callable[[str | None, str, Decimal, Decimal], None]
_SPOT_STEP, _FUT_STEP = Decimal("0.00001"), Decimal("0.001")
_ZERO8 = "0.00000000"
_OPEN = ("NEW", "PARTIALLY_FILLED")


def int_param(call: Call, name: str, default: int, lo: int = 1, hi: int = 10**18) -> int:
    """An integer parameter clamped to ``[lo, hi]``; malformed -> -1100."""
    raw = call.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return max(lo, min(hi, int(raw)))
    except ValueError:
        raise ApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        ) from None


def dec_param(call: Call, name: str) -> Decimal | None:
    raw = call.params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise ApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal "
            "range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    return value


def _missing(name: str) -> ApiError:
    return ApiError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


class FakeTrading:
    """Orders per market and API key."""

    def __init__(self, market: FakeMarket, on_fill: FillListener) -> None:
        self.market, self.on_fill = market, on_fill
        self.placed: list[dict[str, Any]] = []
        self.trades: list[dict[str, Any]] = []
        self._by_id: dict[tuple[Market, str | None, int], dict[str, Any]] = {}
        self._by_coid: dict[tuple[Market, str | None, str], dict[str, Any]] = {}
        self._owned: dict[tuple[Market, str | None], list[dict[str, Any]]] = {}
        self._next_id = {Market.SPOT: 1000, Market.FUTURES: 5000}

    def handlers(self) -> dict[str, Callable[[Call], Any]]:
        return {
            "POST /api/v3/order": self._new_order,
            "POST /api/v3/order/test": self._test_order,
            "GET /api/v3/order": self._get_order,
            "DELETE /api/v3/order": self._cancel_order,
            "GET /api/v3/openOrders": self._open_orders,
            "GET /api/v3/allOrders": self._all_orders,
            "GET /api/v3/myTrades": self._my_trades,
            "POST /fapi/v1/order": self._new_order,
            "GET /fapi/v1/order": self._get_order,
            "DELETE /fapi/v1/order": self._cancel_order,
        }

    # --- orders ------------------------------------------------------------------------
    def _validated_order(self, c: Call) -> tuple[Decimal, Decimal | None, Decimal]:
        """Quantity, limit price (None for MARKET) and reference price; filters checked."""
        p, spot = c.params, c.market == Market.SPOT
        if p["side"] not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        otype = p["type"]
        if otype not in (
            "LIMIT",
            "MARKET",
            "LIMIT_MAKER",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT_LIMIT",
            "STOP",
            "TAKE_PROFIT",
        ):
            raise ApiError(400, -1116, "Invalid orderType.")
        info = self.market.symbols[p["symbol"]]
        ref = self.market.price(info.symbol, c.market)
        qty, quote, price = dec_param(c, "quantity"), dec_param(c, "quoteOrderQty"), None
        step = _SPOT_STEP if spot else _FUT_STEP
        if otype == "MARKET":
            if qty is None and quote is not None and spot:
                qty = (quote / ref).quantize(step, ROUND_DOWN)
        else:
            price = dec_param(c, "price")
            if price is None:
                raise _missing("price")
            if price % info.tick:
                raise ApiError(400, -1013, "Filter failure: PRICE_FILTER")
            if "timeInForce" not in p and otype != "LIMIT_MAKER":
                raise _missing("timeInForce")
        if qty is None:
            raise _missing("quantity")
        if qty < step or qty > (9000 if spot else 1000) or qty % step:
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE")
        notional = qty * (price or ref)
        if spot and notional < (5 if info.quote == "USDT" else Decimal("0.0001")):
            raise ApiError(400, -1013, "Filter failure: NOTIONAL")
        if not spot and notional < 5 and p.get("reduceOnly", "false") != "true":
            raise ApiError(
                400,
                -4164,
                "Order's notional must be no smaller than 5 (unless you choose reduce only).",
            )
        return qty, price, ref

    def _new_order(self, c: Call) -> dict[str, Any]:
        qty, price, ref = self._validated_order(c)
        p, m, now = c.params, c.market, c.now_ms
        coid = p.get("newClientOrderId") or self._generated_coid(m)
        prior = self._by_coid.get((m, c.api_key, coid))
        if prior is not None and prior["status"] in _OPEN:
            if m == Market.SPOT:
                raise ApiError(400, -2010, "Duplicate order sent.")
            raise ApiError(400, -4116, "ClientOrderId is duplicated.")
        self._next_id[m] += 1
        filled = price is None
        order = (self._spot_order if m == Market.SPOT else self._futures_order)(
            c, coid, qty, price, ref if filled else None
        )
        self.placed.append(order)
        self._by_id[m, c.api_key, order["orderId"]] = order
        self._by_coid[m, c.api_key, coid] = order
        self._owned.setdefault((m, c.api_key), []).append(order)
        if m == Market.FUTURES:
            return order
        fills = []
        if filled:
            fills = [self._spot_fill(c, order, ref, qty)]
        kind = p.get("newOrderRespType") or ("FULL" if p["type"] in ("MARKET", "LIMIT") else "ACK")
        head = {
            "symbol": order["symbol"],
            "orderId": order["orderId"],
            "orderListId": -1,
            "clientOrderId": coid,
            "transactTime": now,
        }
        if kind == "ACK":
            return head
        keys = (
            "price",
            "origQty",
            "executedQty",
            "origQuoteOrderQty",
            "cummulativeQuoteQty",
            "status",
            "timeInForce",
            "type",
            "side",
            "workingTime",
            "selfTradePreventionMode",
        )
        head.update({k: order[k] for k in keys})
        if kind == "FULL":
            head["fills"] = fills
        return head

    def _generated_coid(self, market: Market) -> str:
        digest = hashlib.blake2s(f"{market}{self._next_id[market]}".encode(), digest_size=11)
        return "fake" + digest.hexdigest()

    def _spot_order(
        self, c: Call, coid: str, qty: Decimal, price: Decimal | None, fill: Decimal | None
    ) -> dict[str, Any]:
        p, oid = c.params, self._next_id[c.market]
        return {
            "symbol": p["symbol"],
            "orderId": oid,
            "orderListId": -1,
            "clientOrderId": coid,
            "price": f"{price or 0:.8f}",
            "origQty": f"{qty:.8f}",
            "executedQty": f"{qty if fill else 0:.8f}",
            "cummulativeQuoteQty": f"{qty * fill if fill else 0:.8f}",
            "status": "FILLED" if fill else "NEW",
            "timeInForce": p.get("timeInForce", "GTC"),
            "type": p["type"],
            "side": p["side"],
            "stopPrice": _ZERO8,
            "icebergQty": _ZERO8,
            "time": c.now_ms,
            "updateTime": c.now_ms,
            "isWorking": True,
            "workingTime": c.now_ms,
            "origQuoteOrderQty": f"{dec_param(c, 'quoteOrderQty') or 0:.8f}",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _spot_fill(
        self, c: Call, order: dict[str, Any], price: Decimal, qty: Decimal
    ) -> dict[str, Any]:
        tid = len(self.trades) + 1
        self.trades.append(
            {
                "apiKey": c.api_key,
                "symbol": order["symbol"],
                "id": tid,
                "orderId": order["orderId"],
                "orderListId": -1,
                "price": f"{price:.8f}",
                "qty": f"{qty:.8f}",
                "quoteQty": f"{price * qty:.8f}",
                "commission": _ZERO8,
                "commissionAsset": "BNB",
                "time": c.now_ms,
                "isBuyer": order["side"] == "BUY",
                "isMaker": False,
                "isBestMatch": True,
            }
        )
        return {
            "price": f"{price:.8f}",
            "qty": f"{qty:.8f}",
            "commission": _ZERO8,
            "commissionAsset": "BNB",
            "tradeId": tid,
        }

    def _futures_order(
        self, c: Call, coid: str, qty: Decimal, price: Decimal | None, fill: Decimal | None
    ) -> dict[str, Any]:
        p, sym, oid = c.params, c.params["symbol"], self._next_id[c.market]
        f = self.market.fmt_price
        if fill is not None:
            self.on_fill(c.api_key, sym, qty if p["side"] == "BUY" else -qty, fill)
        return {
            "orderId": oid,
            "symbol": sym,
            "status": "FILLED" if fill else "NEW",
            "clientOrderId": coid,
            "price": f(sym, price or 0, c.market),
            "avgPrice": f(sym, fill or 0, c.market),
            "origQty": f"{qty:.3f}",
            "executedQty": f"{qty if fill else 0:.3f}",
            "cumQty": f"{qty if fill else 0:.3f}",
            "cumQuote": f"{qty * fill if fill else 0:.5f}",
            "timeInForce": p.get("timeInForce", "GTC"),
            "type": p["type"],
            "reduceOnly": p.get("reduceOnly") == "true",
            "closePosition": False,
            "side": p["side"],
            "positionSide": p.get("positionSide", "BOTH"),
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": p["type"],
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
            "time": c.now_ms,
            "updateTime": c.now_ms,
        }

    def _find(self, c: Call) -> dict[str, Any] | None:
        oid, coid = c.params.get("orderId"), c.params.get("origClientOrderId")
        if not oid and not coid:
            raise ApiError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if oid:
            order = self._by_id.get((c.market, c.api_key, int_param(c, "orderId", 0)))
        else:
            order = self._by_coid.get((c.market, c.api_key, coid or ""))
        return order if order is not None and order["symbol"] == c.params["symbol"] else None

    def _get_order(self, c: Call) -> dict[str, Any]:
        order = self._find(c)
        if order is None:
            raise ApiError(400, -2013, "Order does not exist.")
        return order

    def _cancel_order(self, c: Call) -> dict[str, Any]:
        order = self._find(c)
        if order is None or order["status"] not in _OPEN:
            raise ApiError(400, -2011, "Unknown order sent.")
        order["status"], order["updateTime"] = "CANCELED", c.now_ms
        if c.market == Market.FUTURES:
            return order
        out = {
            "symbol": order["symbol"],
            "origClientOrderId": order["clientOrderId"],
            "orderId": order["orderId"],
            "orderListId": -1,
            "clientOrderId": c.params.get("newClientOrderId") or self._generated_coid(c.market),
            "transactTime": c.now_ms,
        }
        out.update(
            {
                k: order[k]
                for k in (
                    "price",
                    "origQty",
                    "executedQty",
                    "cummulativeQuoteQty",
                    "status",
                    "timeInForce",
                    "type",
                    "side",
                    "selfTradePreventionMode",
                )
            }
        )
        return out

    def _test_order(self, c: Call) -> dict[str, Any]:
        self._validated_order(c)
        return {}

    def _mine(self, c: Call, symbol: str | None) -> list[dict[str, Any]]:
        return [
            o
            for o in self._owned.get((c.market, c.api_key), ())
            if symbol is None or o["symbol"] == symbol
        ]

    def _open_orders(self, c: Call) -> list[dict[str, Any]]:
        return [o for o in self._mine(c, c.params.get("symbol")) if o["status"] in _OPEN]

    def _all_orders(self, c: Call) -> list[dict[str, Any]]:
        rows = self._mine(c, c.params["symbol"])
        first = int_param(c, "orderId", 0, 0)
        start, end = int_param(c, "startTime", 0, 0), int_param(c, "endTime", 2**62, 0)
        rows = [o for o in rows if o["orderId"] >= first and start <= o["time"] <= end]
        return rows[: int_param(c, "limit", 500, 1, 1000)]

    def _my_trades(self, c: Call) -> list[dict[str, Any]]:
        oid = c.params.get("orderId")
        rows = [
            {k: v for k, v in t.items() if k != "apiKey"}
            for t in self.trades
            if t["apiKey"] == c.api_key
            and t["symbol"] == c.params["symbol"]
            and (oid is None or str(t["orderId"]) == oid)
        ]
        return rows[-int_param(c, "limit", 500, 1, 1000) :]
