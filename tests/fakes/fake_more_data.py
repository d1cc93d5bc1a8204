"""The fake exchange's remaining futures market data (kline variants, funding, open interest,
index and insurance snapshots, ``/futures/data`` statistics) and the futures referral and
convert operations.

Prices come from ``FakeMarket``; statistics are deterministic waves around them, so the
same request at the same time answers the same. Referral customisations and convert quotes
are kept here, per API key.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tests.fakes.fake_market import ApiError, Call, Market
from tests.fakes.fake_more import one_or_many
from tests.fakes.fake_trading import int_param

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.fakes.fake_more import Handler, MoreContext

__all__ = ("data_handlers",)

_F, _D, _R = "/fapi/v1", "/futures/data", "/fapi/v1/apiReferral"
_FM = Market.FUTURES
_MIN_MS = 60_000
_FUNDING_MS = 8 * 3_600_000
_QUARTER_MS = 91 * 86_400_000
_PERIODS_MIN = {"5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240}
_PERIODS_MIN.update({"6h": 360, "12h": 720, "1d": 1440})
_CONTRACT_TYPES = ("PERPETUAL", "CURRENT_QUARTER", "NEXT_QUARTER")
_BROKER = "FAKEBRKR"
_QUOTE_TTL_MS = 10_000
_INDEX_BASES = ("UNI", "AAVE", "LINK")


def data_handlers(ctx: MoreContext) -> dict[str, Handler]:
    return _DataMore(ctx).handlers()


class _DataMore:
    def __init__(self, ctx: MoreContext) -> None:
        self.ctx = ctx
        self.customers: dict[str | None, dict[str, str]] = {}  # customerId -> email
        self.user_customer: dict[tuple[str | None, str], str] = {}  # (key, brokerId) -> id
        self.quotes: dict[str, dict[str, Any]] = {}
        self.converts: dict[str, dict[str, Any]] = {}

    def handlers(self) -> dict[str, Handler]:
        via = self.ctx.via
        return {
            f"GET {_F}/ticker/price": lambda c: via("GET /fapi/v2/ticker/price", c, c.params),
            f"GET {_F}/rpiDepth": lambda c: via(
                f"GET {_F}/depth", c, {"limit": "1000", **c.params}
            ),
            f"GET {_F}/historicalTrades": self._historical_trades,
            f"GET {_F}/continuousKlines": self._continuous_klines,
            f"GET {_F}/indexPriceKlines": lambda c: self._klines(c, self._pair(c), _no_volume),
            f"GET {_F}/markPriceKlines": lambda c: self._klines(c, c.params["symbol"], _no_volume),
            f"GET {_F}/premiumIndexKlines": self._premium_klines,
            f"GET {_F}/fundingRate": self._funding_rate,
            f"GET {_F}/fundingInfo": self._funding_info,
            f"GET {_F}/openInterest": self._open_interest,
            f"GET {_F}/assetIndex": self._asset_index,
            f"GET {_F}/indexInfo": self._index_info,
            f"GET {_F}/constituents": self._constituents,
            f"GET {_F}/insuranceBalance": self._insurance,
            f"GET {_F}/symbolAdlRisk": self._adl_risk,
            f"GET {_F}/tradingSchedule": self._trading_schedule,
            f"GET {_D}/openInterestHist": lambda c: self._stats(c, self._oi_row),
            f"GET {_D}/takerlongshortRatio": lambda c: self._stats(c, _taker_row),
            f"GET {_D}/globalLongShortAccountRatio": lambda c: self._stats(c, _ratio_row(0.0)),
            f"GET {_D}/topLongShortAccountRatio": lambda c: self._stats(c, _ratio_row(1.0)),
            f"GET {_D}/topLongShortPositionRatio": lambda c: self._stats(c, _ratio_row(2.0)),
            f"GET {_D}/basis": self._basis,
            f"GET {_D}/delivery-price": self._delivery_price,
            f"GET {_F}/convert/exchangeInfo": self._convert_pairs,
            f"POST {_F}/convert/getQuote": self._quote,
            f"POST {_F}/convert/acceptQuote": self._accept,
            f"GET {_F}/convert/orderStatus": self._convert_status,
            **self._referral_handlers(),
        }

    # --- klines and trades ------------------------------------------------------------
    def _pair(self, c: Call) -> str:
        pair = c.params["pair"]
        if pair not in self.ctx.market.futures_symbols:
            raise ApiError(400, -1121, "Invalid symbol.")
        return pair

    def _klines(
        self, c: Call, symbol: str, shape: Callable[[list[Any], Decimal], list[Any]]
    ) -> list[list[Any]]:
        params = {k: v for k, v in c.params.items() if k not in ("pair", "contractType")}
        rows = self.ctx.via(f"GET {_F}/klines", c, {**params, "symbol": symbol})
        index = self.ctx.market.price(symbol)
        return [shape(list(row), index) for row in rows]

    def _continuous_klines(self, c: Call) -> list[list[Any]]:
        if c.params["contractType"] not in _CONTRACT_TYPES:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'contractType'.")
        return self._klines(c, self._pair(c), lambda row, _index: row)

    def _premium_klines(self, c: Call) -> list[list[Any]]:
        def premium(row: list[Any], index: Decimal) -> list[Any]:
            row = _no_volume(row, index)
            for n in (1, 2, 3, 4):
                row[n] = f"{Decimal(row[n]) / index - 1:.8f}"
            return row

        return self._klines(c, c.params["symbol"], premium)

    def _historical_trades(self, c: Call) -> list[dict[str, Any]]:
        limit = int_param(c, "limit", 100, 1, 500)
        rows = self.ctx.market.trades(_FM, c.params["symbol"], limit, c.now_ms)
        return [{k: v for k, v in r.items() if k != "isBestMatch"} for r in rows]

    # --- funding, open interest, indexes ----------------------------------------------
    def _funding_rate(self, c: Call) -> list[dict[str, Any]]:
        limit = int_param(c, "limit", 100, 1, 1000)
        last = min(int_param(c, "endTime", c.now_ms, 0), c.now_ms) // _FUNDING_MS * _FUNDING_MS
        start = int_param(c, "startTime", 0, 0)
        first = max(last - (limit - 1) * _FUNDING_MS, -(-start // _FUNDING_MS) * _FUNDING_MS)
        times = range(first, last + 1, _FUNDING_MS)
        names = c.symbols if c.symbols is not None else self.ctx.market.futures_symbols
        mark = {s: self.ctx.market.fmt_price(s, self.ctx.market.price(s, _FM), _FM) for s in names}
        rows = [
            {"symbol": s, "fundingRate": "0.00010000", "fundingTime": t, "markPrice": mark[s]}
            for t in times
            for s in names
        ]
        return rows[-limit:]

    def _funding_info(self, c: Call) -> list[dict[str, Any]]:
        return [
            {
                "symbol": s,
                "adjustedFundingRateCap": "0.02000000",
                "adjustedFundingRateFloor": "-0.02000000",
                "fundingIntervalHours": 8,
                "disclaimer": False,
            }
            for s in self.ctx.market.futures_symbols
        ]

    def _open_interest(self, c: Call) -> dict[str, Any]:
        sym = c.params["symbol"]
        amount = 10_000 + self.ctx.market.symbols[sym].seed * 7
        return {"openInterest": f"{amount:.3f}", "symbol": sym, "time": c.now_ms}

    def _asset_index(self, c: Call) -> Any:
        def build(asset: str) -> dict[str, Any]:
            index = self.ctx.market.price(f"{asset}USDT")
            row: dict[str, Any] = {"symbol": f"{asset}USD", "time": c.now_ms}
            row["index"] = f"{index:.8f}"
            for prefix, buffer in (("", Decimal("0.05")), ("autoExchange", Decimal("0.025"))):
                for side, sign in (("Bid", -1), ("Ask", 1)):
                    name = f"{prefix}{side}" if prefix else side.lower()
                    row[f"{name}Buffer"] = f"{buffer:.8f}"
                    row[f"{name}Rate"] = f"{index * (1 + sign * buffer):.8f}"
            return row

        return [build(a) for a in ("BTC", "ETH", "BNB")]

    def _index_info(self, c: Call) -> list[dict[str, Any]]:
        weight = Decimal(1) / len(_INDEX_BASES)
        assets = [
            {
                "baseAsset": b,
                "quoteAsset": "USDT",
                "weightInQuantity": f"{weight / self.ctx.market.price(f'{b}USDT'):.8f}",
                "weightInPercentage": f"{weight:.8f}",
            }
            for b in _INDEX_BASES
        ]
        return [
            {
                "symbol": "DEFIUSDT",
                "time": c.now_ms,
                "component": "baseAsset",
                "baseAssetList": assets,
            }
        ]

    def _constituents(self, c: Call) -> dict[str, Any]:
        sym = c.params["symbol"]
        base, price = self.ctx.market.symbols[sym].base, self.ctx.market.price(sym)
        places = self.ctx.market.symbols[sym].price_places
        venues = (("binance", sym), ("okex", f"{base}-USDT"), ("coinbase", f"{base}-USDT"))
        return {
            "symbol": sym,
            "time": c.now_ms,
            "constituents": [
                {
                    "exchange": ex,
                    "symbol": name,
                    "price": f"{price:.{places}f}",
                    "weight": "0.33333333",
                }
                for ex, name in venues
            ],
        }

    def _insurance(self, c: Call) -> Any:
        snapshot = c.now_ms // 86_400_000 * 86_400_000
        fund = {
            "symbols": list(self.ctx.market.futures_symbols),
            "assets": [
                {"asset": "USDT", "marginBalance": "793930579.31584800", "updateTime": snapshot},
                {"asset": "USDC", "marginBalance": "299999998.64978320", "updateTime": snapshot},
            ],
        }
        return fund if "symbol" in c.params else [fund]

    def _adl_risk(self, c: Call) -> Any:
        rated = c.now_ms // 1_800_000 * 1_800_000  # rated every 30 minutes
        return one_or_many(
            c,
            self.ctx.market.futures_symbols,
            lambda s: {"symbol": s, "adlRisk": "low", "updateTime": rated},
        )

    def _trading_schedule(self, c: Call) -> dict[str, Any]:
        day = c.now_ms // 86_400_000 * 86_400_000
        hour = 3_600_000

        def session(start_h: float, end_h: float, kind: str) -> dict[str, Any]:
            return {
                "startTime": day + int(start_h * hour),
                "endTime": day + int(end_h * hour),
                "type": kind,
            }

        equity = [
            session(0, 8, "OVERNIGHT"),
            session(8, 13.5, "PRE_MARKET"),
            session(13.5, 20, "REGULAR"),
            session(20, 24, "AFTER_MARKET"),
        ]
        return {
            "updateTime": c.now_ms,
            "marketSchedules": {
                "EQUITY": {"sessions": equity},
                "COMMODITY": {
                    "sessions": [session(0, 22, "REGULAR"), session(22, 23, "NO_TRADING")]
                },
            },
        }

    # --- /futures/data ----------------------------------------------------------------
    def _stats(
        self, c: Call, build: Callable[[str, int, float], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """``limit`` rows (default 30, max 500), one per ``period``, up to now."""
        sym = c.params["symbol"] if "symbol" in c.params else self._pair(c)
        period = c.params["period"]
        if period not in _PERIODS_MIN:
            raise ApiError(400, -1120, "Invalid period.")
        step = _PERIODS_MIN[period] * _MIN_MS
        end = min(int_param(c, "endTime", c.now_ms, 0), c.now_ms) // step * step
        limit = int_param(c, "limit", 30, 1, 500)
        start = int_param(c, "startTime", end - (limit - 1) * step, 0)
        first = max(-(-start // step) * step, end - (limit - 1) * step)
        seed = self.ctx.market.symbols[sym].seed
        return [
            build(sym, t, math.sin(t / step * 0.3 + seed)) for t in range(first, end + 1, step)
        ]

    def _oi_row(self, sym: str, t: int, wave: float) -> dict[str, Any]:
        amount = Decimal(10_000 + self.ctx.market.symbols[sym].seed * 7) * Decimal(1 + wave / 20)
        value = amount * self.ctx.market.price(sym, _FM)
        return {
            "symbol": sym,
            "sumOpenInterest": f"{amount:.8f}",
            "sumOpenInterestValue": f"{value:.8f}",
            "CMCCirculatingSupply": "19800000.000",
            "timestamp": str(t),
        }

    def _basis(self, c: Call) -> list[dict[str, Any]]:
        if c.params["contractType"] not in _CONTRACT_TYPES:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'contractType'.")
        pair = self._pair(c)
        index, futures = self.ctx.market.price(pair), self.ctx.market.price(pair, _FM)

        def build(_s: str, t: int, _wave: float) -> dict[str, Any]:
            return {
                "indexPrice": f"{index:.8f}",
                "contractType": c.params["contractType"],
                "basisRate": f"{futures / index - 1:.4f}",
                "futuresPrice": f"{futures}",
                "annualizedBasisRate": "",
                "basis": f"{futures - index:.8f}",
                "pair": pair,
                "timestamp": t,
            }

        return self._stats(c, build)

    def _delivery_price(self, c: Call) -> list[dict[str, Any]]:
        pair = self._pair(c)
        price = float(self.ctx.market.price(pair))
        last = c.now_ms // _QUARTER_MS * _QUARTER_MS
        return [
            {
                "deliveryTime": last - k * _QUARTER_MS,
                "deliveryPrice": round(price * (1 - k / 20), 2),
            }
            for k in range(4)
        ]

    # --- convert ----------------------------------------------------------------------
    def _asset_price(self, asset: str, name: str) -> Decimal:
        if asset == "USDT":
            return Decimal(1)
        if f"{asset}USDT" not in self.ctx.market.prices:
            raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.")
        return self.ctx.market.price(f"{asset}USDT")

    def _convert_pairs(self, c: Call) -> list[dict[str, Any]]:
        wanted_from, wanted_to = c.params.get("fromAsset"), c.params.get("toAsset")
        return [
            {
                "fromAsset": a,
                "toAsset": "USDT",
                "fromAssetMinAmount": f"{10 / self.ctx.market.price(f'{a}USDT'):.8f}",
                "fromAssetMaxAmount": "50",
                "toAssetMinAmount": "10",
                "toAssetMaxAmount": "2500000",
            }
            for a in ("BTC", "ETH", "BNB")
            if wanted_from in (None, a) and wanted_to in (None, "USDT")
        ]

    def _quote(self, c: Call) -> dict[str, Any]:
        p = c.params
        ratio = self._asset_price(p["fromAsset"], "fromAsset") / self._asset_price(
            p["toAsset"], "toAsset"
        )
        if "fromAmount" in p:
            from_amount = Decimal(p["fromAmount"])
        elif "toAmount" in p:
            from_amount = Decimal(p["toAmount"]) / ratio
        else:
            raise ApiError(
                400,
                -1102,
                "Param 'fromAmount' or 'toAmount' must be sent, but both were empty/null!",
            )
        quote_id = str(12415572564 + len(self.quotes))
        quote = {
            "quoteId": quote_id,
            "ratio": f"{ratio:.8f}",
            "inverseRatio": f"{1 / ratio:.8f}",
            "validTimestamp": c.now_ms + _QUOTE_TTL_MS,
            "toAmount": f"{from_amount * ratio:.8f}",
            "fromAmount": f"{from_amount:.8f}",
        }
        self.quotes[quote_id] = {
            **quote,
            "apiKey": c.api_key,
            "fromAsset": p["fromAsset"],
            "toAsset": p["toAsset"],
        }
        return quote

    def _accept(self, c: Call) -> dict[str, Any]:
        quote = self.quotes.get(c.params["quoteId"])
        if quote is None or quote["apiKey"] != c.api_key or quote["validTimestamp"] < c.now_ms:
            raise ApiError(400, -1130, "Data sent for parameter 'quoteId' is not valid.")
        order_id = str(933256278426274426 + len(self.converts))
        self.converts[order_id] = {**quote, "orderId": order_id, "createTime": c.now_ms}
        del self.quotes[c.params["quoteId"]]
        return {"orderId": order_id, "createTime": c.now_ms, "orderStatus": "PROCESS"}

    def _convert_status(self, c: Call) -> dict[str, Any]:
        wanted, quote_id = c.params.get("orderId"), c.params.get("quoteId")
        if not wanted and not quote_id:
            raise ApiError(
                400, -1102, "Param 'orderId' or 'quoteId' must be sent, but both were empty/null!"
            )
        for order in self.converts.values():
            mine = order["apiKey"] == c.api_key
            if (
                mine
                and wanted in (None, order["orderId"])
                and quote_id in (None, order["quoteId"])
            ):
                keys = ("fromAsset", "fromAmount", "toAsset", "toAmount", "ratio", "inverseRatio")
                status = {"orderId": int(order["orderId"]), "orderStatus": "SUCCESS"}
                return {**status, **{k: order[k] for k in keys}, "createTime": order["createTime"]}
        raise ApiError(400, -2013, "Order does not exist.")

    # --- API referral (broker) ---------------------------------------------------------
    def _referral_handlers(self) -> dict[str, Handler]:
        return {
            f"GET {_R}/ifNewUser": lambda c: {
                "brokerId": c.params["brokerId"],
                "rebateWorking": False,
                "ifNewUser": True,
            },
            f"POST {_R}/customization": self._customize,
            f"GET {_R}/customization": self._customizations,
            f"POST {_R}/userCustomization": self._customize_user,
            f"GET {_R}/userCustomization": self._user_customization,
            f"GET {_R}/overview": self._overview,
            f"GET {_R}/tradeVol": lambda c: self._daily(
                c, lambda d: {"unit": "USDT", "tradeVol": f"{53.6 + d:.8f}"}
            ),
            f"GET {_R}/rebateVol": lambda c: self._daily(
                c, lambda d: {"unit": "USDT", "rebateVol": f"{0.0002 * (d + 1):.8f}"}
            ),
            f"GET {_R}/traderNum": lambda c: self._daily(
                c, lambda d: {"newTrader": str(d), "oldTrader": "2"}
            ),
            f"GET {_R}/traderSummary": self._trader_summary,
        }

    def _customize(self, c: Call) -> dict[str, str]:
        self.customers.setdefault(c.api_key, {})[c.params["customerId"]] = c.params["email"]
        return {"customerId": c.params["customerId"], "email": c.params["email"]}

    def _customizations(self, c: Call) -> list[dict[str, str]]:
        wanted_id, wanted_email = c.params.get("customerId"), c.params.get("email")
        return [
            {"customerId": cid, "email": email}
            for cid, email in self.customers.get(c.api_key, {}).items()
            if wanted_id in (None, cid) and wanted_email in (None, email)
        ]

    def _customize_user(self, c: Call) -> dict[str, str]:
        self.user_customer[c.api_key, c.params["brokerId"]] = c.params["customerId"]
        return {"brokerId": c.params["brokerId"], "customerId": c.params["customerId"]}

    def _user_customization(self, c: Call) -> dict[str, str]:
        customer = self.user_customer.get((c.api_key, c.params["brokerId"]), "")
        return {"brokerId": c.params["brokerId"], "customerId": customer}

    def _overview(self, c: Call) -> dict[str, Any]:
        return {
            "brokerId": _BROKER,
            "newTraderRebateCommission": "0.30000000",
            "oldTraderRebateCommission": "0.20000000",
            "totalTradeUser": 13,
            "unit": "USDT",
            "totalTradeVol": "405.54379000",
            "totalRebateVol": "0.01833800",
            "time": c.now_ms // 86_400_000 * 86_400_000,
        }

    def _daily(self, c: Call, row: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
        """The last days' rows (``limit``, default 2 here), oldest first."""
        today = c.now_ms // 86_400_000 * 86_400_000
        days = int_param(c, "limit", 2, 1, 1000)
        return [{**row(d), "time": today - (days - 1 - d) * 86_400_000} for d in range(days)]

    def _trader_summary(self, c: Call) -> list[dict[str, Any]]:
        customer = c.params.get("customerId", "sde001")
        return self._daily(
            c,
            lambda d: {
                "customerId": customer,
                "unit": "USDT",
                "tradeVol": f"{9.57 + d:.8f}",
                "rebateVol": f"{0.00035 * (d + 1):.8f}",
            },
        )


def _no_volume(row: list[Any], _index: Decimal) -> list[Any]:
    """An index or mark kline: prices only, the volume fields ``"0"``."""
    for n in (5, 7, 9, 10):
        row[n] = "0"
    return row


def _taker_row(_sym: str, t: int, wave: float) -> dict[str, Any]:
    buy, sell = 387.33 * (1 + wave / 4), 248.503
    return {
        "buySellRatio": f"{buy / sell:.4f}",
        "buyVol": f"{buy:.4f}",
        "sellVol": f"{sell:.4f}",
        "timestamp": str(t),
    }


def _ratio_row(shift: float) -> Callable[[str, int, float], dict[str, Any]]:
    def build(sym: str, t: int, wave: float) -> dict[str, Any]:
        long = 0.5 + 0.1 * wave + 0.02 * shift
        return {
            "symbol": sym,
            "longShortRatio": f"{long / (1 - long):.4f}",
            "longAccount": f"{long:.4f}",
            "shortAccount": f"{1 - long:.4f}",
            "timestamp": str(t),
        }

    return build
