"""The fake exchange's remaining futures account and order operations: account switches
(position mode, multi-assets, margin type, fee burn), batch and modified orders, algo
orders, order lists and histories, position margin, and the async download ids.

Orders go through ``FakeTrading``'s handlers (its spot-keyed list handlers are market-aware);
algo orders, amendments and the switches are kept here, per API key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import orjson

from tests.fakes.fake_exchange_info import render_rate_limits
from tests.fakes.fake_market import ApiError, Call, Market
from tests.fakes.fake_more import ZERO8, new_id
from tests.fakes.fake_signing import missing_param
from tests.fakes.fake_trading import int_param
from tests.fakes.fake_weights_table import OPS

if TYPE_CHECKING:
    from tests.fakes.fake_more import Handler, MoreContext

__all__ = ("futures_handlers",)

_F = "/fapi/v1"
_OPEN = ("NEW", "PARTIALLY_FILLED")
_DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}
_OK = {"code": 200, "msg": "success"}
_ALGO_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET")
_DAY_MS = 86_400_000
_DEFAULT_LEVERAGE = 20
_BRACKETS = (  # (initial leverage, notional cap, maintenance margin ratio, cum)
    (125, 50_000, 0.004, 0),
    (100, 600_000, 0.005, 50),
    (75, 3_000_000, 0.0065, 950),
    (50, 12_000_000, 0.01, 11_450),
)
_ALGO_DEFAULTS = {
    "positionSide": "BOTH",
    "timeInForce": "GTC",
    "quantity": "0",
    "triggerPrice": "0",
    "price": "0",
    "workingType": "CONTRACT_PRICE",
    "priceMatch": "NONE",
    "selfTradePreventionMode": "EXPIRE_MAKER",
    "activatePrice": "",
    "callbackRate": "",
}


def futures_handlers(ctx: MoreContext) -> dict[str, Handler]:
    return _FuturesMore(ctx).handlers()


@dataclass(slots=True)
class _Switches:
    """One API key's account settings."""

    dual_side: bool = False
    multi_assets: bool = False
    fee_burn: bool = False
    isolated: set[str] = field(default_factory=set)


class _FuturesMore:
    def __init__(self, ctx: MoreContext) -> None:
        self.ctx = ctx
        self.switches: dict[str | None, _Switches] = {}
        self.algos: dict[str | None, list[dict[str, Any]]] = {}
        self.amendments: dict[str | None, list[dict[str, Any]]] = {}
        self.margin_moves: dict[str | None, list[dict[str, Any]]] = {}
        self._next_algo = 3_000_000

    def handlers(self) -> dict[str, Handler]:
        return {
            f"GET {_F}/accountConfig": self._account_config,
            f"GET {_F}/symbolConfig": self._symbol_config,
            f"GET {_F}/positionSide/dual": lambda c: {"dualSidePosition": self._sw(c).dual_side},
            f"POST {_F}/positionSide/dual": self._set_dual,
            f"GET {_F}/multiAssetsMargin": lambda c: {
                "multiAssetsMargin": self._sw(c).multi_assets
            },
            f"POST {_F}/multiAssetsMargin": self._set_multi,
            f"GET {_F}/feeBurn": lambda c: {"feeBurn": self._sw(c).fee_burn},
            f"POST {_F}/feeBurn": self._set_fee_burn,
            f"POST {_F}/marginType": self._set_margin_type,
            f"POST {_F}/positionMargin": self._move_margin,
            f"GET {_F}/positionMargin/history": self._margin_history,
            f"GET {_F}/leverageBracket": self._leverage_bracket,
            f"GET {_F}/commissionRate": self._commission,
            f"GET {_F}/adlQuantile": self._adl_quantile,
            f"GET {_F}/apiTradingStatus": lambda c: {"indicators": {}, "updateTime": c.now_ms},
            f"GET {_F}/pmAccountInfo": self._pm_account,
            f"GET {_F}/rateLimit/order": lambda _c: render_rate_limits(
                self.ctx.order_windows(Market.FUTURES)
            ),
            f"GET {_F}/income": self._income,
            f"GET {_F}/forceOrders": lambda _c: [],  # the fake never liquidates
            f"POST {_F}/stock/contract": lambda _c: dict(_OK),  # shape unverified
            "GET /fapi/v2/account": self._account_v2,
            "GET /fapi/v2/positionRisk": self._position_risk_v2,
            "GET /fapi/v3/balance": lambda c: self.ctx.via("GET /fapi/v2/balance", c, c.params),
            # orders
            f"GET {_F}/openOrders": lambda c: self.ctx.via("GET /api/v3/openOrders", c, c.params),
            f"GET {_F}/allOrders": lambda c: self.ctx.via("GET /api/v3/allOrders", c, c.params),
            f"GET {_F}/openOrder": self._open_order,
            f"DELETE {_F}/allOpenOrders": self._cancel_all,
            f"POST {_F}/countdownCancelAll": self._countdown,
            f"PUT {_F}/order": self._modify,
            f"GET {_F}/orderAmendment": self._amendment_history,
            f"POST {_F}/order/test": self._test_order,
            f"POST {_F}/batchOrders": lambda c: self._batch(c, self._place, f"POST {_F}/order"),
            f"PUT {_F}/batchOrders": lambda c: self._batch(c, self._modify, f"PUT {_F}/order"),
            f"DELETE {_F}/batchOrders": self._cancel_batch,
            f"GET {_F}/userTrades": self._user_trades,
            # algo orders
            f"POST {_F}/algoOrder": self._new_algo,
            f"GET {_F}/algoOrder": self._find_algo,
            f"DELETE {_F}/algoOrder": self._cancel_algo,
            f"GET {_F}/openAlgoOrders": lambda c: self._algos_of(c, only_open=True),
            f"GET {_F}/allAlgoOrders": lambda c: self._algos_of(c, only_open=False),
            f"DELETE {_F}/algoOpenOrders": self._cancel_algos,
            # async downloads
            **{
                f"GET {_F}/{kind}/asyn": self._download_id for kind in ("income", "order", "trade")
            },
            **{
                f"GET {_F}/{kind}/asyn/id": self._download_link
                for kind in ("income", "order", "trade")
            },
        }

    # --- account settings --------------------------------------------------------------
    def _sw(self, c: Call) -> _Switches:
        return self.switches.setdefault(c.api_key, _Switches())

    def _account_config(self, c: Call) -> dict[str, Any]:
        sw = self._sw(c)
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "dualSidePosition": sw.dual_side,
            "updateTime": 0,
            "multiAssetsMargin": sw.multi_assets,
            "tradeGroupId": -1,
        }

    def _symbol_config(self, c: Call) -> list[dict[str, Any]]:
        names = c.symbols if c.symbols is not None else self.ctx.market.futures_symbols
        return [
            {
                "symbol": s,
                "marginType": "ISOLATED" if s in self._sw(c).isolated else "CROSSED",
                "isAutoAddMargin": "false",
                "leverage": self._leverage(c, s),
                "maxNotionalValue": "1000000",
            }
            for s in names
        ]

    def _leverage(self, c: Call, symbol: str) -> int:
        return self.ctx.accounts.leverage.get((c.api_key, symbol), _DEFAULT_LEVERAGE)

    def _set_dual(self, c: Call) -> dict[str, Any]:
        wanted = _flag(c, "dualSidePosition")
        if wanted == self._sw(c).dual_side:
            raise ApiError(400, -4059, "No need to change position side.")
        self._sw(c).dual_side = wanted
        return dict(_OK)

    def _set_multi(self, c: Call) -> dict[str, Any]:
        self._sw(c).multi_assets = _flag(c, "multiAssetsMargin")
        return dict(_OK)

    def _set_fee_burn(self, c: Call) -> dict[str, Any]:
        self._sw(c).fee_burn = _flag(c, "feeBurn")
        return dict(_OK)

    def _set_margin_type(self, c: Call) -> dict[str, Any]:
        kind, sym, isolated = c.params["marginType"], c.params["symbol"], self._sw(c).isolated
        if kind not in ("ISOLATED", "CROSSED"):
            raise ApiError(400, -4012, "Margin type is invalid.")  # [unverified] code
        if (kind == "ISOLATED") == (sym in isolated):
            raise ApiError(400, -4046, "No need to change margin type.")
        (isolated.add if kind == "ISOLATED" else isolated.discard)(sym)
        return dict(_OK)

    def _move_margin(self, c: Call) -> dict[str, Any]:
        kind = int_param(c, "type", 0, 0, 3)
        amount = _decimal(c, "amount")
        if kind not in (1, 2) or amount <= 0:
            raise ApiError(
                400,
                -1102,
                "Mandatory parameter 'type' was not sent, was empty/null, or malformed.",
            )
        self.margin_moves.setdefault(c.api_key, []).append(
            {
                "symbol": c.params["symbol"],
                "type": kind,
                "deltaType": "USER_ADJUST",
                "amount": f"{amount}",
                "asset": "USDT",
                "time": c.now_ms,
                "positionSide": c.params.get("positionSide", "BOTH"),
            }
        )
        return {
            "amount": float(amount),
            "code": 200,
            "msg": "Successfully modify position margin.",
            "type": kind,
        }

    def _margin_history(self, c: Call) -> list[dict[str, Any]]:
        rows = [
            r for r in self.margin_moves.get(c.api_key, ()) if r["symbol"] == c.params["symbol"]
        ]
        return rows[-int_param(c, "limit", 500, 1, 1000) :]

    def _leverage_bracket(self, c: Call) -> Any:
        def build(sym: str) -> dict[str, Any]:
            brackets, floor = [], 0
            for n, (lev, cap, ratio, cum) in enumerate(_BRACKETS, 1):
                brackets.append(
                    {
                        "bracket": n,
                        "initialLeverage": lev,
                        "notionalCap": cap,
                        "notionalFloor": floor,
                        "maintMarginRatio": ratio,
                        "cum": float(cum),
                    }
                )
                floor = cap
            return {"symbol": sym, "notionalCoef": 1.0, "brackets": brackets}

        if "symbol" in c.params:
            return build(c.params["symbol"])
        return [build(s) for s in self.ctx.market.futures_symbols]

    def _commission(self, c: Call) -> dict[str, Any]:
        return {
            "symbol": c.params["symbol"],
            "makerCommissionRate": "0.000200",
            "takerCommissionRate": "0.000500",
            "rpiCommissionRate": "0.000000",
        }

    def _adl_quantile(self, c: Call) -> list[dict[str, Any]]:
        only = c.params.get("symbol")
        return [
            {"symbol": sym, "adlQuantile": {"LONG": 1, "SHORT": 1, "BOTH": 1 if amt else 0}}
            for (key, sym), (amt, _) in self.ctx.accounts.positions.items()
            if key == c.api_key and (amt or sym == only) and only in (None, sym)
        ]

    def _pm_account(self, c: Call) -> dict[str, Any]:
        return {
            "maxWithdrawAmountUSD": "1000.00000000",
            "asset": c.params["asset"],
            "maxWithdrawAmount": "1000.00000000" if c.params["asset"] == "USDT" else ZERO8,
        }

    def _income(self, c: Call) -> list[dict[str, Any]]:
        """The deposit that funded the fake account (1000 USDT, a day before now)."""
        start = int_param(c, "startTime", c.now_ms - 7 * _DAY_MS, 0)
        end = int_param(c, "endTime", c.now_ms, 0)
        t = c.now_ms - _DAY_MS
        wanted = c.params.get("incomeType", "TRANSFER")
        if wanted != "TRANSFER" or not start <= t <= end or c.params.get("symbol"):
            return []
        row = {"symbol": "", "incomeType": "TRANSFER", "income": "1000.00000000", "asset": "USDT"}
        return [{**row, "info": "TRANSFER", "time": t, "tranId": 9689322392, "tradeId": ""}]

    def _account_v2(self, c: Call) -> dict[str, Any]:
        sw = self._sw(c)
        head = {
            "feeTier": 0,
            "feeBurn": sw.fee_burn,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": sw.multi_assets,
            "tradeGroupId": -1,
        }
        return {**head, **self.ctx.via("GET /fapi/v3/account", c, c.params)}

    def _position_risk_v2(self, c: Call) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.ctx.via("GET /fapi/v3/positionRisk", c, c.params)
        for row in rows:
            isolated = row["symbol"] in self._sw(c).isolated
            row.update(
                marginType="isolated" if isolated else "cross",
                isAutoAddMargin="false",
                leverage=str(self._leverage(c, row["symbol"])),
                maxNotionalValue="1000000",
            )
        return rows

    # --- orders ------------------------------------------------------------------------
    def _open_order(self, c: Call) -> dict[str, Any]:
        order: dict[str, Any] = self.ctx.via(f"GET {_F}/order", c, c.params)
        if order["status"] not in _OPEN:
            raise ApiError(400, -2013, "Order does not exist.")
        return order

    def _cancel_all(self, c: Call) -> dict[str, Any]:
        sym = c.params["symbol"]
        for order in self.ctx.via(f"GET {_F}/openOrders", c, {"symbol": sym}):
            self.ctx.via(
                f"DELETE {_F}/order", c, {"symbol": sym, "orderId": str(order["orderId"])}
            )
        return dict(_DONE)

    def _countdown(self, c: Call) -> dict[str, Any]:
        return {
            "symbol": c.params["symbol"],
            "countdownTime": str(int_param(c, "countdownTime", 0, 0)),
        }

    def _place(self, c: Call) -> dict[str, Any]:
        order: dict[str, Any] = self.ctx.via(f"POST {_F}/order", c, c.params)
        return order

    def _modify(self, c: Call) -> dict[str, Any]:
        p = c.params
        target: dict[str, str] = {
            k: p[k] for k in ("symbol", "orderId", "origClientOrderId") if k in p
        }
        order: dict[str, Any] = self.ctx.via(f"GET {_F}/order", c, target)
        if order["status"] not in _OPEN or order["type"] != "LIMIT":
            raise ApiError(400, -2013, "Order does not exist.")
        checked = {"symbol": p["symbol"], "side": p["side"], "type": "LIMIT", "timeInForce": "GTC"}
        self.ctx.via(
            "POST /api/v3/order/test",
            c,
            {**checked, "quantity": p["quantity"], "price": p["price"]},
        )
        if (
            order["price"] == self._price(p)
            and order["origQty"] == f"{Decimal(p['quantity']):.3f}"
        ):
            raise ApiError(400, -5027, "No need to modify the order.")
        history = self.amendments.setdefault(c.api_key, [])
        history.append(
            {
                "amendmentId": 5000 + len(history),
                "symbol": order["symbol"],
                "pair": order["symbol"],
                "orderId": order["orderId"],
                "clientOrderId": order["clientOrderId"],
                "time": c.now_ms,
                "amendment": {
                    "price": {"before": order["price"], "after": self._price(p)},
                    "origQty": {
                        "before": order["origQty"],
                        "after": f"{Decimal(p['quantity']):.3f}",
                    },
                    "count": 1 + sum(1 for a in history if a["orderId"] == order["orderId"]),
                },
            }
        )
        order.update(
            price=self._price(p), origQty=f"{Decimal(p['quantity']):.3f}", updateTime=c.now_ms
        )
        return order

    def _price(self, p: dict[str, str]) -> str:
        return self.ctx.market.fmt_price(p["symbol"], Decimal(p["price"]), Market.FUTURES)

    def _amendment_history(self, c: Call) -> list[dict[str, Any]]:
        oid = c.params.get("orderId")
        rows = [
            a
            for a in self.amendments.get(c.api_key, ())
            if a["symbol"] == c.params["symbol"] and oid in (None, str(a["orderId"]))
        ]
        return rows[-int_param(c, "limit", 50, 1, 100) :]

    def _test_order(self, c: Call) -> dict[str, Any]:
        """Checked like a real order, answered in an order's shape, never stored."""
        self.ctx.via("POST /api/v3/order/test", c, c.params)
        p, fmt = c.params, self.ctx.market.fmt_price
        return {
            "clientOrderId": p.get("newClientOrderId") or new_id(c.api_key, c.now_ms),
            "cumQty": "0",
            "cumQuote": "0",
            "executedQty": "0",
            "orderId": 0,
            "avgPrice": "0.00",
            "origQty": p.get("quantity", "0"),
            "price": fmt(p["symbol"], Decimal(p.get("price", "0")), Market.FUTURES),
            "reduceOnly": p.get("reduceOnly") == "true",
            "side": p["side"],
            "positionSide": p.get("positionSide", "BOTH"),
            "status": "NEW",
            "stopPrice": "0",
            "closePosition": False,
            "symbol": p["symbol"],
            "timeInForce": p.get("timeInForce", "GTC"),
            "type": p["type"],
            "origType": p["type"],
            "updateTime": c.now_ms,
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
        }

    def _batch(self, c: Call, one: Handler, single: str) -> list[dict[str, Any]]:
        """Up to 5 orders, each checked like ``single`` and answered on its own: the order
        or its ``{code, msg}``."""
        items = _json_list(c, "batchOrders", 5)
        if not all(isinstance(item, dict) for item in items):
            raise _invalid("batchOrders")
        out = []
        for item in items:
            params = {
                k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in item.items()
            }
            call = Call(c.market, single, params, c.api_key, c.now_ms)
            try:
                missing = next((n for n in OPS[single].required if not params.get(n)), None)
                if missing is not None:
                    raise missing_param(missing)
                call.symbols = self.ctx.market.check_symbols(call)
                out.append(one(call))
            except ApiError as e:
                out.append({"code": e.code, "msg": e.msg})
        return out

    def _cancel_batch(self, c: Call) -> list[dict[str, Any]]:
        sym = c.params["symbol"]
        if "orderIdList" in c.params:
            targets = [
                {"symbol": sym, "orderId": str(i)} for i in _json_list(c, "orderIdList", 10)
            ]
        else:
            ids = _json_list(c, "origClientOrderIdList", 10)
            targets = [{"symbol": sym, "origClientOrderId": str(i)} for i in ids]
        out = []
        for target in targets:
            try:
                out.append(self.ctx.via(f"DELETE {_F}/order", c, target))
            except ApiError as e:
                out.append({"code": e.code, "msg": e.msg})
        return out

    def _user_trades(self, c: Call) -> list[dict[str, Any]]:
        """One trade per filled order (the fake fills MARKET orders at once, in one piece)."""
        orders = self.ctx.via(f"GET {_F}/allOrders", c, {"symbol": c.params["symbol"]})
        oid = c.params.get("orderId")
        return [
            {
                "buyer": o["side"] == "BUY",
                "commission": "0",
                "commissionAsset": "USDT",
                "id": o["orderId"] * 10,
                "maker": False,
                "orderId": o["orderId"],
                "price": o["avgPrice"],
                "qty": o["executedQty"],
                "quoteQty": o["cumQuote"],
                "realizedPnl": "0",
                "side": o["side"],
                "positionSide": o["positionSide"],
                "symbol": o["symbol"],
                "time": o["updateTime"],
            }
            for o in orders
            if o["status"] == "FILLED" and oid in (None, str(o["orderId"]))
        ][-int_param(c, "limit", 500, 1, 1000) :]

    # --- algo orders -------------------------------------------------------------------
    def _new_algo(self, c: Call) -> dict[str, Any]:
        p = c.params
        if p["algoType"] != "CONDITIONAL":
            raise ApiError(400, -1116, "Invalid algoType.")  # [unverified] code
        if p["type"] not in _ALGO_TYPES:
            raise ApiError(400, -1116, "Invalid orderType.")
        self._next_algo += 1
        algo: dict[str, Any] = {
            "algoId": self._next_algo,
            "clientAlgoId": p.get("clientAlgoId") or new_id(c.api_key, self._next_algo),
            "algoType": "CONDITIONAL",
            "orderType": p["type"],
            "symbol": p["symbol"],
            "side": p["side"],
            **{k: p.get(k, v) for k, v in _ALGO_DEFAULTS.items()},
            "algoStatus": "NEW",
            "icebergQuantity": None,
            "closePosition": p.get("closePosition") == "true",
            "priceProtect": p.get("priceProtect") == "true",
            "reduceOnly": p.get("reduceOnly") == "true",
            "createTime": c.now_ms,
            "updateTime": c.now_ms,
            "triggerTime": 0,
            "goodTillDate": int_param(c, "goodTillDate", 0, 0),
        }
        self.algos.setdefault(c.api_key, []).append(algo)
        return algo

    def _find_algo(self, c: Call) -> dict[str, Any]:
        algo_id, client_id = c.params.get("algoId"), c.params.get("clientAlgoId")
        if not algo_id and not client_id:
            raise ApiError(
                400,
                -1102,
                "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!",
            )
        for algo in self.algos.get(c.api_key, ()):
            if str(algo["algoId"]) == algo_id or (
                not algo_id and algo["clientAlgoId"] == client_id
            ):
                return algo
        raise ApiError(400, -2013, "Order does not exist.")

    def _cancel_algo(self, c: Call) -> dict[str, Any]:
        algo = self._find_algo(c)
        if algo["algoStatus"] != "NEW":
            raise ApiError(400, -2011, "Unknown order sent.")
        algo.update(algoStatus="CANCELED", updateTime=c.now_ms)
        return {
            "algoId": algo["algoId"],
            "clientAlgoId": algo["clientAlgoId"],
            "code": "200",
            "msg": "success",
        }

    def _algos_of(self, c: Call, *, only_open: bool) -> list[dict[str, Any]]:
        sym = c.params.get("symbol")
        return [
            a
            for a in self.algos.get(c.api_key, ())
            if sym in (None, a["symbol"]) and (not only_open or a["algoStatus"] == "NEW")
        ]

    def _cancel_algos(self, c: Call) -> dict[str, Any]:
        for algo in self._algos_of(c, only_open=True):
            algo.update(algoStatus="CANCELED", updateTime=c.now_ms)
        return dict(_DONE)

    # --- async downloads ---------------------------------------------------------------
    def _download_id(self, c: Call) -> dict[str, Any]:
        start, end = int_param(c, "startTime", 0, 0), int_param(c, "endTime", 0, 0)
        if not 0 < end - start <= 365 * _DAY_MS:
            raise ApiError(400, -1127, "More than 365 days between startTime and endTime.")
        return {
            "avgCostTimestampOfLast30d": 7241837,
            "downloadId": str(546975389218332672 + start % 997),
        }

    def _download_link(self, c: Call) -> dict[str, Any]:
        download = c.params["downloadId"]
        return {
            "downloadId": download,
            "status": "completed",
            "url": f"https://bin-prod-user-rebate-bucket.s3.amazonaws.com/fake/{download}.csv",
            "notified": True,
            "expirationTimestamp": c.now_ms + 7 * _DAY_MS,
            "isExpired": None,
        }


def _flag(c: Call, name: str) -> bool:
    raw = c.params[name].lower()
    if raw not in ("true", "false"):
        raise _invalid(name)
    return raw == "true"


def _decimal(c: Call, name: str) -> Decimal:
    try:
        return Decimal(c.params[name])
    except InvalidOperation:
        raise _invalid(name) from None


def _json_list(c: Call, name: str, most: int) -> list[Any]:
    try:
        items = orjson.loads(c.params[name])
    except orjson.JSONDecodeError:
        items = None
    if not isinstance(items, list) or not 0 < len(items) <= most:
        raise _invalid(name)
    return items


def _invalid(name: str) -> ApiError:
    return ApiError(400, -1130, f"Data sent for parameter '{name}' is not valid.")
