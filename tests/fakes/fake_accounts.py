"""The fake exchange's accounts per API key: spot balances, futures balances, positions and
leverage, and futures listenKeys (60 minutes on the fake's clock).

Balances are fixed (USDT 1000 and BTC 0.5 on spot, USDT 1000 on futures); futures positions
follow the fills ``FakeTrading`` reports through ``move_position``.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tests.fakes.fake_market import ApiError, Call, Market
from tests.fakes.fake_trading import int_param

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.fakes.fake_market import FakeMarket

__all__ = ("LISTEN_KEY_TTL_MS", "FakeAccounts")

LISTEN_KEY_TTL_MS = 60 * 60 * 1000
_SPOT_START = {"USDT": Decimal(1000), "BTC": Decimal("0.5")}
_SPOT_ASSETS = ["USDT", "BTC", "ETH", "BNB", "SOL", "XRP", "ADA", "DOGE", "LTC"]
_FUTURES_START = {"USDT": Decimal(1000), "BNB": Decimal(0), "USDC": Decimal(0)}
_ZERO8 = "0.00000000"
_SPOT_FLAGS = {"canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False}
_ASSET_ZEROS = dict.fromkeys(
    [
        "unrealizedProfit",
        "maintMargin",
        "initialMargin",
        "positionInitialMargin",
        "openOrderInitialMargin",
        "crossUnPnl",
    ],
    _ZERO8,
)
_ASSET_BALANCES = (
    "walletBalance",
    "marginBalance",
    "crossWalletBalance",
    "availableBalance",
    "maxWithdrawAmount",
)
_ACCOUNT_ZEROS = (
    "totalInitialMargin",
    "totalMaintMargin",
    "totalUnrealizedProfit",
    "totalPositionInitialMargin",
    "totalOpenOrderInitialMargin",
    "totalCrossUnPnl",
)
_ACCOUNT_BALANCES = (
    "totalWalletBalance",
    "totalMarginBalance",
    "totalCrossWalletBalance",
    "availableBalance",
    "maxWithdrawAmount",
)
_POSITION_ZEROS = dict.fromkeys(
    [
        "liquidationPrice",
        "isolatedMargin",
        "isolatedWallet",
        "initialMargin",
        "maintMargin",
        "positionInitialMargin",
        "openOrderInitialMargin",
        "bidNotional",
        "askNotional",
    ],
    "0",
)


class FakeAccounts:
    """Balances, positions, leverage and listenKeys per API key."""

    def __init__(self, market: FakeMarket) -> None:
        self.market = market
        self.listen_keys: dict[str, tuple[str, int]] = {}  # api key -> (listenKey, expiry ms)
        self.leverage: dict[tuple[str | None, str], int] = {}
        self.positions: dict[tuple[str | None, str], tuple[Decimal, Decimal]] = {}

    def handlers(self) -> dict[str, Callable[[Call], Any]]:
        return {
            "GET /api/v3/account": self._spot_account,
            "GET /fapi/v2/balance": self._futures_balance,
            "GET /fapi/v3/account": self._futures_account,
            "GET /fapi/v3/positionRisk": self._position_risk,
            "POST /fapi/v1/leverage": self._set_leverage,
            "POST /fapi/v1/listenKey": self._new_listen_key,
            "PUT /fapi/v1/listenKey": self._keep_listen_key,
            "DELETE /fapi/v1/listenKey": self._close_listen_key,
        }

    def expire_listen_keys(self) -> None:
        """Expire every listenKey now (a keepalive then answers -1125)."""
        self.listen_keys = {k: (lk, 0) for k, (lk, _) in self.listen_keys.items()}

    def move_position(self, key: str | None, sym: str, delta: Decimal, price: Decimal) -> None:
        """Apply a futures fill of signed quantity ``delta`` at ``price``."""
        amt, entry = self.positions.get((key, sym), (Decimal(0), Decimal(0)))
        new = amt + delta
        if amt == 0 or (amt > 0) == (delta > 0):
            entry = (amt * entry + delta * price) / new
        elif new and (new > 0) != (amt > 0):
            entry = price
        self.positions[key, sym] = (new, entry if new else Decimal(0))

    # --- balances ----------------------------------------------------------------------
    def _spot_account(self, c: Call) -> dict[str, Any]:
        rates = {"maker": "0.00100000", "taker": "0.00100000", "buyer": _ZERO8, "seller": _ZERO8}
        balances = [
            {"asset": a, "free": f"{_SPOT_START.get(a, 0):.8f}", "locked": _ZERO8}
            for a in _SPOT_ASSETS
        ]
        commissions = {"makerCommission": 10, "takerCommission": 10}
        commissions.update(buyerCommission=0, sellerCommission=0)
        return {
            **commissions,
            "commissionRates": rates,
            **_SPOT_FLAGS,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": c.now_ms,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    def _futures_assets(self, c: Call) -> list[dict[str, Any]]:
        return [
            {
                "asset": a,
                **dict.fromkeys(_ASSET_BALANCES, f"{b:.8f}"),
                **_ASSET_ZEROS,
                "updateTime": c.now_ms,
            }
            for a, b in _FUTURES_START.items()
        ]

    def _futures_balance(self, c: Call) -> list[dict[str, Any]]:
        keys = ("crossWalletBalance", "availableBalance", "maxWithdrawAmount")
        return [
            {
                "accountAlias": "SgsR",
                "asset": a["asset"],
                "balance": a["walletBalance"],
                **{k: a[k] for k in keys},
                "crossUnPnl": _ZERO8,
                "marginAvailable": True,
                "updateTime": c.now_ms,
            }
            for a in self._futures_assets(c)
        ]

    def _futures_account(self, c: Call) -> dict[str, Any]:
        usdt = f"{_FUTURES_START['USDT']:.8f}"
        out: dict[str, Any] = dict.fromkeys(_ACCOUNT_BALANCES, usdt)
        out.update(dict.fromkeys(_ACCOUNT_ZEROS, _ZERO8))
        out["assets"] = self._futures_assets(c)
        keys = [
            "symbol",
            "positionSide",
            "positionAmt",
            "unrealizedProfit",
            "notional",
            "updateTime",
        ]
        out["positions"] = [{k: r[k] for k in keys} for r in self._position_risk(c)]
        return out

    def _position_risk(self, c: Call) -> list[dict[str, Any]]:
        only, f, fm = c.params.get("symbol"), self.market.fmt_price, Market.FUTURES
        rows = []
        for (key, sym), (amt, entry) in self.positions.items():
            if key != c.api_key or (only and sym != only) or (not amt and not only):
                continue
            mark = self.market.price(sym, fm)
            pnl = f"{(mark - entry) * amt + 0:.8f}"  # + 0 turns -0 into 0
            row = {"symbol": sym, "positionSide": "BOTH", "positionAmt": f"{amt:.3f}"}
            row.update(entryPrice=f(sym, entry, fm), breakEvenPrice=f(sym, entry, fm))
            row.update(markPrice=f(sym, mark, fm), unRealizedProfit=pnl, unrealizedProfit=pnl)
            row.update(_POSITION_ZEROS, notional=f"{mark * amt:.8f}", marginAsset="USDT")
            rows.append({**row, "adl": 0, "updateTime": c.now_ms})
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
            lk = held[0]  # POST while a key is active returns and extends it
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

    def _close_listen_key(self, _c: Call) -> dict[str, Any]:
        self.listen_keys.pop(_c.api_key or "", None)
        return {}
