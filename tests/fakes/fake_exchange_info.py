"""exchangeInfo of the fake exchange: spot and futures symbol entries with their filters,
and ``rateLimits`` rendered from the windows the fake enforces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.fake_market import Market

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tests.fakes.fake_market import FakeMarket, SymbolInfo
    from tests.fakes.fake_weights import Window

__all__ = ("exchange_info", "render_rate_limits")

_UNITS = ((86400, "DAY"), (3600, "HOUR"), (60, "MINUTE"), (1, "SECOND"))


def render_rate_limits(windows: Sequence[Window]) -> list[dict[str, Any]]:
    """``exchangeInfo.rateLimits`` from windows, each in the largest unit dividing it."""
    out = []
    for w in windows:
        unit_s, unit = next((s, u) for s, u in _UNITS if w.interval_s % s == 0)
        out.append(
            {
                "rateLimitType": str(w.kind),
                "interval": unit,
                "intervalNum": w.interval_s // unit_s,
                "limit": w.limit,
            }
        )
    return out


def exchange_info(
    fake: FakeMarket,
    market: Market,
    windows: Sequence[Window],
    now_ms: int,
    only: list[str] | None,
) -> dict[str, Any]:
    """Spot or futures exchangeInfo; ``rateLimits`` rendered from the served windows."""
    names = only if only is not None else fake.universe(market)
    build = _spot_symbol if market == Market.SPOT else _futures_symbol
    info: dict[str, Any] = {
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": render_rate_limits(windows),
        "exchangeFilters": [],
    }
    if market == Market.FUTURES:
        info["futuresType"] = "U_MARGINED"
        info["assets"] = [
            {"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"}
            for a in ("USDT", "BTC", "BNB")
        ]
    info["symbols"] = [build(fake.symbols[s]) for s in names]
    return info


def _spot_symbol(s: SymbolInfo) -> dict[str, Any]:
    min_notional = "5.00000000" if s.quote == "USDT" else "0.00010000"
    return {
        "symbol": s.symbol,
        "status": "TRADING",
        "baseAsset": s.base,
        "baseAssetPrecision": 8,
        "quoteAsset": s.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": f"{s.tick:.8f}",
                "maxPrice": "1000000.00000000",
                "tickSize": f"{s.tick:.8f}",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001000",
                "maxQty": "9000.00000000",
                "stepSize": "0.00001000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": min_notional,
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": [
            "NONE",
            "EXPIRE_TAKER",
            "EXPIRE_MAKER",
            "EXPIRE_BOTH",
        ],
    }


def _futures_symbol(s: SymbolInfo) -> dict[str, Any]:
    tick = f"{s.tick:.{s.price_places}f}"
    return {
        "symbol": s.symbol,
        "pair": s.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": s.base,
        "quoteAsset": s.quote,
        "marginAsset": s.quote,
        "pricePrecision": s.price_places,
        "quantityPrecision": 3,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": tick,
                "maxPrice": "1000000",
                "tickSize": tick,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.001",
                "maxQty": "1000",
                "stepSize": "0.001",
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.001",
                "maxQty": "120",
                "stepSize": "0.001",
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }
