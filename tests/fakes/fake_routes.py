"""The fake exchange's route table: ``"METHOD /path"`` -> handler, for market data (built
here over ``FakeMarket``), orders (``FakeTrading``) and accounts (``FakeAccounts``); the
other operations of the endpoint table come from ``fake_more``, ``fake_more_futures`` and
``fake_more_data``. A path in the endpoint table without a handler answers ``{}``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tests.fakes.fake_exchange_info import exchange_info
from tests.fakes.fake_market import KLINE_INTERVALS_S, ApiError, Call, FakeMarket, Market
from tests.fakes.fake_more import MoreContext, spot_handlers
from tests.fakes.fake_more_data import data_handlers
from tests.fakes.fake_more_futures import futures_handlers
from tests.fakes.fake_trading import FakeTrading, int_param

if TYPE_CHECKING:
    from tests.fakes.fake_accounts import FakeAccounts
    from tests.fakes.fake_weights import Window

__all__ = ("Handler", "build_routes")

Handler = Callable[[Call], Any]
Builder = Callable[[Market, str, int], dict[str, Any]]


def build_routes(
    market: FakeMarket,
    trading: FakeTrading,
    accounts: FakeAccounts,
    windows_of: Callable[[Market], Sequence[Window]],
) -> dict[str, Handler]:
    """Every served endpoint key with its handler."""
    routes = _MarketRoutes(market, windows_of).handlers()
    routes.update(trading.handlers())
    routes.update(accounts.handlers())
    more = MoreContext(routes, market, trading, accounts, windows_of)
    for build in (spot_handlers, futures_handlers, data_handlers):
        for key, handler in build(more).items():
            routes.setdefault(key, handler)  # a handler of the modules above wins
    return routes


class _MarketRoutes:
    def __init__(
        self, market: FakeMarket, windows_of: Callable[[Market], Sequence[Window]]
    ) -> None:
        self.m = market
        self.windows_of = windows_of

    def handlers(self) -> dict[str, Handler]:
        m = self.m
        out: dict[str, Handler] = {}
        for prefix in ("/api/v3", "/fapi/v1"):
            out[f"GET {prefix}/ping"] = _empty
            out[f"GET {prefix}/time"] = _server_time
            out[f"GET {prefix}/exchangeInfo"] = self._exchange_info
            out[f"GET {prefix}/depth"] = self._depth
            out[f"GET {prefix}/klines"] = self._klines
            out[f"GET {prefix}/trades"] = self._trades
            out[f"GET {prefix}/aggTrades"] = self._agg_trades
            out[f"GET {prefix}/ticker/24hr"] = self._many(m.ticker_24hr)
            out[f"GET {prefix}/ticker/bookTicker"] = self._many(m.book_ticker)
        out["GET /api/v3/ticker/price"] = self._many(m.ticker_price)
        out["GET /fapi/v2/ticker/price"] = self._many(m.ticker_price)
        out["GET /api/v3/avgPrice"] = lambda c: m.avg_price(c.params["symbol"], c.now_ms)
        out["GET /fapi/v1/premiumIndex"] = self._many(
            lambda _mk, sym, now: m.premium_index(sym, now)
        )
        return out

    def _exchange_info(self, c: Call) -> dict[str, Any]:
        return exchange_info(self.m, c.market, self.windows_of(c.market), c.now_ms, c.symbols)

    def _depth(self, c: Call) -> dict[str, Any]:
        spot = c.market == Market.SPOT
        limit = int_param(c, "limit", 100 if spot else 500, 1, 5000 if spot else 1000)
        return self.m.depth(c.market, c.params["symbol"], limit, c.now_ms)

    def _trades(self, c: Call) -> list[Any]:
        return self.m.trades(
            c.market, c.params["symbol"], int_param(c, "limit", 500, 1, 1000), c.now_ms
        )

    def _agg_trades(self, c: Call) -> list[Any]:
        limit = int_param(c, "limit", 500, 1, 1000)
        return self.m.agg_trades(c.market, c.params["symbol"], limit, c.now_ms)

    def _klines(self, c: Call) -> list[Any]:
        interval = c.params["interval"]
        if interval not in KLINE_INTERVALS_S or (interval == "1s" and c.market == Market.FUTURES):
            raise ApiError(400, -1120, "Invalid interval.")
        limit = int_param(c, "limit", 500, 1, 1000 if c.market == Market.SPOT else 1500)
        start = int_param(c, "startTime", -1, 0) if "startTime" in c.params else None
        end = int_param(c, "endTime", -1, 0) if "endTime" in c.params else None
        return self.m.klines(c, interval, limit, (start, end))

    def _many(self, build: Builder) -> Handler:
        """One object for ``symbol``, a list for ``symbols`` or for the whole market."""

        def handle(c: Call) -> Any:
            if "symbol" in c.params:
                return build(c.market, c.params["symbol"], c.now_ms)
            names = c.symbols if c.symbols is not None else self.m.universe(c.market)
            return [build(c.market, s, c.now_ms) for s in names]

        return handle


def _empty(_c: Call) -> dict[str, Any]:
    return {}


def _server_time(c: Call) -> dict[str, Any]:
    return {"serverTime": c.now_ms}
