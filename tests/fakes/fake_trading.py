"""The fake exchange's accounts: spot and futures orders, balances, positions, leverage and
futures listenKeys, with the handlers of those endpoints.

Orders are stored in Binance's shape (the dicts ``FakeBinance.orders`` lists). MARKET orders
fill at once at the current price (spot) or mark price (futures); other types stay NEW.
Balances do not move with fills; futures positions do.
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.fakes.fake_market import ApiError, Call, FakeMarket
from utils.binance.binance_types import Market

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("LISTEN_KEY_TTL_MS", "FakeTrading", "dec_param", "int_param")

LISTEN_KEY_TTL_MS = 60 * 60 * 1000
_SPOT_STEP, _FUT_STEP = Decimal("0.00001"), Decimal("0.001")
_SPOT_ASSETS = ("USDT", "BTC", "ETH", "BNB", "SOL", "XRP", "ADA", "DOGE", "LTC")
_SPOT_START = {"USDT": Decimal(1000), "BTC": Decimal("0.5")}
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
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; "
                       "legal range is '^[0-9]{1,20}$'.") from None


def dec_param(call: Call, name: str) -> Decimal | None:
    raw = call.params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal "
                       "range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
    return value


def _missing(name: str) -> ApiError:
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                    "or malformed.")


class FakeTrading:
    """Orders, balances, positions and listenKeys per API key."""

    def __init__(self, market: FakeMarket) -> None:
        self.market = market
        self.placed: list[dict[str, Any]] = []
        self.trades: list[dict[str, Any]] = []
        self.listen_keys: dict[str, tuple[str, int]] = {}  # api key -> (listenKey, expiry ms)
        self.leverage: dict[tuple[str | None, str], int] = {}
        self.positions: dict[tuple[str | None, str], tuple[Decimal, Decimal]] = {}
        self._by_id: dict[tuple[Market, str | None, int], dict[str, Any]] = {}
        self._by_coid: dict[tuple[Market, str | None, str], dict[str, Any]] = {}
        self._owned: dict[tuple[Market, str | None], list[dict[str, Any]]] = {}
        self._next_id = {Market.SPOT: 1000, Market.FUTURES: 5000}

    def handlers(self) -> dict[str, Callable[[Call], Any]]:
        return {
            "GET /api/v3/account": self._spot_account,
            "POST /api/v3/order": self._new_order,
            "POST /api/v3/order/test": self._test_order,
            "GET /api/v3/order": self._get_order,
            "DELETE /api/v3/order": self._cancel_order,
            "GET /api/v3/openOrders": self._open_orders,
            "GET /api/v3/allOrders": self._all_orders,
            "GET /api/v3/myTrades": self._my_trades,
            "GET /fapi/v2/balance": self._futures_balance,
            "GET /fapi/v3/account": self._futures_account,
            "GET /fapi/v3/positionRisk": self._position_risk,
            "POST /fapi/v1/order": self._new_order,
            "GET /fapi/v1/order": self._get_order,
            "DELETE /fapi/v1/order": self._cancel_order,
            "POST /fapi/v1/leverage": self._set_leverage,
            "POST /fapi/v1/listenKey": self._new_listen_key,
            "PUT /fapi/v1/listenKey": self._keep_listen_key,
            "DELETE /fapi/v1/listenKey": self._close_listen_key,
        }

    def expire_listen_keys(self) -> None:
        """Expire every listenKey now (a keepalive then answers -1125)."""
        self.listen_keys = {k: (lk, 0) for k, (lk, _) in self.listen_keys.items()}

    # --- orders ------------------------------------------------------------------------
    def _validated_order(self, c: Call) -> tuple[Decimal, Decimal | None, Decimal]:
        """Quantity, limit price (None for MARKET) and reference price; filters checked."""
        p, spot = c.params, c.market is Market.SPOT
        if p["side"] not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        otype = p["type"]
        if otype not in ("LIMIT", "MARKET", "LIMIT_MAKER", "STOP_LOSS_LIMIT",
                         "TAKE_PROFIT_LIMIT", "STOP", "TAKE_PROFIT"):
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
            raise ApiError(400, -4164, "Order's notional must be no smaller than 5 (unless you "
                           "choose reduce only).")
        return qty, price, ref

    def _new_order(self, c: Call) -> dict[str, Any]:
        qty, price, ref = self._validated_order(c)
        p, m, now = c.params, c.market, c.now_ms
        coid = p.get("newClientOrderId") or self._generated_coid(m)
        prior = self._by_coid.get((m, c.api_key, coid))
        if prior is not None and prior["status"] in _OPEN:
            if m is Market.SPOT:
                raise ApiError(400, -2010, "Duplicate order sent.")
            raise ApiError(400, -4116, "ClientOrderId is duplicated.")
        self._next_id[m] += 1
        filled = price is None
        order = (self._spot_order if m is Market.SPOT else self._futures_order)(
            c, coid, qty, price, ref if filled else None
        )
        self.placed.append(order)
        self._by_id[m, c.api_key, order["orderId"]] = order
        self._by_coid[m, c.api_key, coid] = order
        self._owned.setdefault((m, c.api_key), []).append(order)
        if m is Market.FUTURES:
            return order
        fills = []
        if filled:
            fills = [self._spot_fill(c, order, ref, qty)]
        kind = p.get("newOrderRespType") or ("FULL" if p["type"] in ("MARKET", "LIMIT") else "ACK")
        head = {"symbol": order["symbol"], "orderId": order["orderId"], "orderListId": -1,
                "clientOrderId": coid, "transactTime": now}
        if kind == "ACK":
            return head
        keys = ("price", "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty",
                "status", "timeInForce", "type", "side", "workingTime",
                "selfTradePreventionMode")
        head.update({k: order[k] for k in keys})
        if kind == "FULL":
            head["fills"] = fills
        return head

    def _generated_coid(self, market: Market) -> str:
        digest = hashlib.blake2s(f"{market}{self._next_id[market]}".encode(), digest_size=11)
        return "fake" + digest.hexdigest()

    def _spot_order(self, c: Call, coid: str, qty: Decimal, price: Decimal | None,
                    fill: Decimal | None) -> dict[str, Any]:
        p, oid = c.params, self._next_id[c.market]
        return {
            "symbol": p["symbol"], "orderId": oid, "orderListId": -1, "clientOrderId": coid,
            "price": f"{price or 0:.8f}", "origQty": f"{qty:.8f}",
            "executedQty": f"{qty if fill else 0:.8f}",
            "cummulativeQuoteQty": f"{qty * fill if fill else 0:.8f}",
            "status": "FILLED" if fill else "NEW",
            "timeInForce": p.get("timeInForce", "GTC"), "type": p["type"], "side": p["side"],
            "stopPrice": _ZERO8, "icebergQty": _ZERO8, "time": c.now_ms,
            "updateTime": c.now_ms, "isWorking": True, "workingTime": c.now_ms,
            "origQuoteOrderQty": f"{dec_param(c, 'quoteOrderQty') or 0:.8f}",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _spot_fill(self, c: Call, order: dict[str, Any], price: Decimal,
                   qty: Decimal) -> dict[str, Any]:
        tid = len(self.trades) + 1
        self.trades.append({
            "apiKey": c.api_key, "symbol": order["symbol"], "id": tid,
            "orderId": order["orderId"], "orderListId": -1, "price": f"{price:.8f}",
            "qty": f"{qty:.8f}", "quoteQty": f"{price * qty:.8f}", "commission": _ZERO8,
            "commissionAsset": "BNB", "time": c.now_ms, "isBuyer": order["side"] == "BUY",
            "isMaker": False, "isBestMatch": True,
        })
        return {"price": f"{price:.8f}", "qty": f"{qty:.8f}", "commission": _ZERO8,
                "commissionAsset": "BNB", "tradeId": tid}

    def _futures_order(self, c: Call, coid: str, qty: Decimal, price: Decimal | None,
                       fill: Decimal | None) -> dict[str, Any]:
        p, sym, oid = c.params, c.params["symbol"], self._next_id[c.market]
        f = self.market.fmt_price
        if fill is not None:
            self._move_position(c.api_key, sym, qty if p["side"] == "BUY" else -qty, fill)
        return {
            "orderId": oid, "symbol": sym, "status": "FILLED" if fill else "NEW",
            "clientOrderId": coid, "price": f(sym, price or 0, c.market),
            "avgPrice": f(sym, fill or 0, c.market), "origQty": f"{qty:.3f}",
            "executedQty": f"{qty if fill else 0:.3f}", "cumQty": f"{qty if fill else 0:.3f}",
            "cumQuote": f"{qty * fill if fill else 0:.5f}",
            "timeInForce": p.get("timeInForce", "GTC"), "type": p["type"],
            "reduceOnly": p.get("reduceOnly") == "true", "closePosition": False,
            "side": p["side"], "positionSide": p.get("positionSide", "BOTH"),
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
            "origType": p["type"], "priceMatch": "NONE", "selfTradePreventionMode": "NONE",
            "goodTillDate": 0, "time": c.now_ms, "updateTime": c.now_ms,
        }

    def _move_position(self, key: str | None, sym: str, delta: Decimal, price: Decimal) -> None:
        amt, entry = self.positions.get((key, sym), (Decimal(0), Decimal(0)))
        new = amt + delta
        if amt == 0 or (amt > 0) == (delta > 0):
            entry = (amt * entry + delta * price) / new
        elif new and (new > 0) != (amt > 0):
            entry = price
        self.positions[key, sym] = (new, entry if new else Decimal(0))

    def _find(self, c: Call) -> dict[str, Any] | None:
        oid, coid = c.params.get("orderId"), c.params.get("origClientOrderId")
        if not oid and not coid:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, "
                           "but both were empty/null!")
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
        if c.market is Market.FUTURES:
            return order
        out = {"symbol": order["symbol"], "origClientOrderId": order["clientOrderId"],
               "orderId": order["orderId"], "orderListId": -1,
               "clientOrderId": c.params.get("newClientOrderId") or self._generated_coid(
                   c.market), "transactTime": c.now_ms}
        out.update({k: order[k] for k in ("price", "origQty", "executedQty",
                                          "cummulativeQuoteQty", "status", "timeInForce",
                                          "type", "side", "selfTradePreventionMode")})
        return out

    def _test_order(self, c: Call) -> dict[str, Any]:
        self._validated_order(c)
        return {}

    def _mine(self, c: Call, symbol: str | None) -> list[dict[str, Any]]:
        return [o for o in self._owned.get((c.market, c.api_key), ())
                if symbol is None or o["symbol"] == symbol]

    def _open_orders(self, c: Call) -> list[dict[str, Any]]:
        return [o for o in self._mine(c, c.params.get("symbol")) if o["status"] in _OPEN]

    def _all_orders(self, c: Call) -> list[dict[str, Any]]:
        rows = self._mine(c, c.params["symbol"])
        first = int_param(c, "orderId", 0, 0)
        start, end = int_param(c, "startTime", 0, 0), int_param(c, "endTime", 2**62, 0)
        rows = [o for o in rows if o["orderId"] >= first and start <= o["time"] <= end]
        return rows[:int_param(c, "limit", 500, 1, 1000)]

    def _my_trades(self, c: Call) -> list[dict[str, Any]]:
        oid = c.params.get("orderId")
        rows = [{k: v for k, v in t.items() if k != "apiKey"} for t in self.trades
                if t["apiKey"] == c.api_key and t["symbol"] == c.params["symbol"]
                and (oid is None or str(t["orderId"]) == oid)]
        return rows[-int_param(c, "limit", 500, 1, 1000):]

    # --- accounts ----------------------------------------------------------------------
    def _spot_account(self, c: Call) -> dict[str, Any]:
        rates = {"maker": "0.00100000", "taker": "0.00100000", "buyer": _ZERO8,
                 "seller": _ZERO8}
        return {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0,
            "sellerCommission": 0, "commissionRates": rates, "canTrade": True,
            "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": c.now_ms, "accountType": "SPOT",
            "balances": [{"asset": a, "free": f"{_SPOT_START.get(a, 0):.8f}",
                          "locked": _ZERO8} for a in _SPOT_ASSETS],
            "permissions": ["SPOT"], "uid": 354937868,
        }

    def _futures_assets(self, c: Call) -> list[dict[str, Any]]:
        return [{"asset": a, "walletBalance": f"{b:.8f}", "unrealizedProfit": _ZERO8,
                 "marginBalance": f"{b:.8f}", "maintMargin": _ZERO8, "initialMargin": _ZERO8,
                 "positionInitialMargin": _ZERO8, "openOrderInitialMargin": _ZERO8,
                 "crossWalletBalance": f"{b:.8f}", "crossUnPnl": _ZERO8,
                 "availableBalance": f"{b:.8f}", "maxWithdrawAmount": f"{b:.8f}",
                 "updateTime": c.now_ms} for a, b in (("USDT", 1000), ("BNB", 0), ("USDC", 0))]

    def _futures_balance(self, c: Call) -> list[dict[str, Any]]:
        return [{"accountAlias": "SgsR", "asset": a["asset"], "balance": a["walletBalance"],
                 "crossWalletBalance": a["crossWalletBalance"], "crossUnPnl": _ZERO8,
                 "availableBalance": a["availableBalance"],
                 "maxWithdrawAmount": a["maxWithdrawAmount"], "marginAvailable": True,
                 "updateTime": c.now_ms} for a in self._futures_assets(c)]

    def _futures_account(self, c: Call) -> dict[str, Any]:
        out: dict[str, Any] = dict.fromkeys((
            "totalWalletBalance", "totalMarginBalance", "totalCrossWalletBalance",
            "availableBalance", "maxWithdrawAmount"), "1000.00000000")
        out.update(dict.fromkeys((
            "totalInitialMargin", "totalMaintMargin", "totalUnrealizedProfit",
            "totalPositionInitialMargin", "totalOpenOrderInitialMargin", "totalCrossUnPnl"),
            _ZERO8))
        out["assets"] = self._futures_assets(c)
        out["positions"] = [{k: r[k] for k in ("symbol", "positionSide", "positionAmt",
                                               "unrealizedProfit", "notional", "updateTime")}
                            for r in self._position_risk(c)]
        return out

    def _position_risk(self, c: Call) -> list[dict[str, Any]]:
        only, f, fm = c.params.get("symbol"), self.market.fmt_price, Market.FUTURES
        rows = []
        for (key, sym), (amt, entry) in self.positions.items():
            if key != c.api_key or (only and sym != only) or (not amt and not only):
                continue
            mark = self.market.price(sym, fm)
            pnl = (mark - entry) * amt
            rows.append({
                "symbol": sym, "positionSide": "BOTH", "positionAmt": f"{amt:.3f}",
                "entryPrice": f(sym, entry, fm), "breakEvenPrice": f(sym, entry, fm),
                "markPrice": f(sym, mark, fm), "unRealizedProfit": f"{pnl:.8f}",
                "unrealizedProfit": f"{pnl:.8f}", "liquidationPrice": "0",
                "isolatedMargin": "0", "notional": f"{mark * amt:.8f}", "marginAsset": "USDT",
                "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0",
                "positionInitialMargin": "0", "openOrderInitialMargin": "0", "adl": 0,
                "bidNotional": "0", "askNotional": "0", "updateTime": c.now_ms,
            })
        return rows

    def _set_leverage(self, c: Call) -> dict[str, Any]:
        lev = int_param(c, "leverage", 0, 0)
        if not 1 <= lev <= 125:
            raise ApiError(400, -4028, f"Leverage {lev} is not valid")
        self.leverage[c.api_key, c.params["symbol"]] = lev
        return {"leverage": lev, "maxNotionalValue": "1000000", "symbol": c.params["symbol"]}

    # --- listenKeys --------------------------------------------------------------------
    def _new_listen_key(self, c: Call) -> dict[str, Any]:
        held = self.listen_keys.get(c.api_key or "")
        if held is not None and held[1] > c.now_ms:
            lk = held[0]
        else:
            seed = f"{c.api_key}{c.now_ms}{len(self.listen_keys)}".encode()
            lk = hashlib.sha256(seed).hexdigest()
        self.listen_keys[c.api_key or ""] = (lk, c.now_ms + LISTEN_KEY_TTL_MS)
        return {"listenKey": lk}

    def _keep_listen_key(self, c: Call) -> dict[str, Any]:
        held = self.listen_keys.get(c.api_key or "")
        sent = c.params.get("listenKey")
        if held is None or held[1] <= c.now_ms or (sent and sent != held[0]):
            raise ApiError(400, -1125, "This listenKey does not exist.")
        self.listen_keys[c.api_key or ""] = (held[0], c.now_ms + LISTEN_KEY_TTL_MS)
        return {"listenKey": held[0]}

    def _close_listen_key(self, c: Call) -> dict[str, Any]:
        self.listen_keys.pop(c.api_key or "", None)
        return {}
