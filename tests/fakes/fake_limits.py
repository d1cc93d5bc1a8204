"""Rate limiting of the fake exchange for one market and one IP: clock-aligned windows per
pool (REQUEST_WEIGHT and RAW_REQUESTS per IP, ORDERS per API key, and the IP pools some
endpoints have of their own), 429 on overflow and an escalating 418 ban for whoever keeps
sending while 429'd.

Window index = floor(now / interval_s) on the fake's clock; counts of past windows are kept
as history. Binance's own messages and ``Retry-After`` headers are reproduced. What a call
counts where comes from the fake's own table (``fake_weights``), never the product's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from tests.fakes.fake_market import ApiError, interval_text
from tests.fakes.fake_weights import PoolKind

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tests.fakes.fake_market import Market
    from tests.fakes.fake_weights import Op, OwnPool, Window

__all__ = ("IN_FLIGHT_GRACE_S", "MarketLimits", "Pool")

# Requests already on the wire when a 429 is answered are answered 429 too; only what arrives
# after the client could have seen the 429 counts as "kept sending" and earns the ban.
IN_FLIGHT_GRACE_S = 0.2
_POLL = "Please use WebSocket Streams for live updates to avoid polling the API."


class Pool:
    """Counts of one window per index (per ``(api_key, index)`` for ORDERS)."""

    __slots__ = ("counts", "header", "interval", "limit")

    def __init__(self, interval_s: int, limit: int, header: str = "") -> None:
        self.interval, self.limit, self.header = interval_s, limit, header
        self.counts: dict[Any, int] = {}


class MarketLimits:
    """One market's pools and its 429/418 state."""

    def __init__(
        self, market: Market, windows: Sequence[Window], background: Callable[[], int]
    ) -> None:
        self.market, self.windows = market, tuple(windows)
        by_kind = {
            k: [Pool(w.interval_s, w.limit, w.header) for w in windows if w.kind is k]
            for k in PoolKind
        }
        self.weight = by_kind[PoolKind.REQUEST_WEIGHT]
        self.raw = by_kind[PoolKind.RAW_REQUESTS]
        self.orders = by_kind[PoolKind.ORDERS]
        self.own: dict[str, Pool] = {}  # endpoints' own pools, by name
        self.throttled_until = self.banned_until = self.throttled_at = 0.0
        self.bans = self.forced = 0
        self.grace_s = IN_FLIGHT_GRACE_S
        self.forced_retry_s = 1
        self._background = background

    def used(self, pool: Pool, now: float) -> int:
        """Weight used in ``pool``'s current window (opening it at the background share)."""
        idx = int(now // pool.interval)
        used = pool.counts.get(idx)
        if used is None:  # another process on the IP spends its share as each window opens
            used = pool.counts[idx] = self._background()
        return used

    def charge(self, now: float, weight: int) -> None:
        for pool in self.weight:
            pool.counts[int(now // pool.interval)] = self.used(pool, now) + weight

    def weight_headers(self, now: float, headers: dict[str, str]) -> None:
        for pool in self.weight:
            headers[pool.header] = str(self.used(pool, now))

    def order_headers(self, now: float, api_key: str | None, headers: dict[str, str]) -> None:
        for pool in self.orders:
            headers[pool.header] = str(pool.counts.get((api_key, int(now // pool.interval)), 0))

    def window_index(self, now: float) -> int:
        return int(now // self.weight[0].interval) if self.weight else 0

    def admit(
        self, now: float, cost: int, *, count_rejected: bool, first_ban_s: float
    ) -> tuple[int, ApiError | None]:
        """(weight charged, the 429/418 to answer or None) for a request arriving now."""
        if self.banned_until <= now < self.throttled_until:
            if now - self.throttled_at < self.grace_s:  # sent before the 429 arrived
                return 0, ApiError(
                    429,
                    -1003,
                    _weight_msg(self.weight[0]) if self.weight else "Too many requests",
                    headers=retry_after(self.throttled_until - now),
                )
            self.banned_until = now + first_ban_s * 2**self.bans  # kept sending while 429'd
            self.bans, self.throttled_until = self.bans + 1, 0.0
        if self.banned_until > now:
            until_ms = int(self.banned_until * 1000)
            return 0, ApiError(
                418,
                -1003,
                f"Way too much request weight used; IP banned until {until_ms}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
                headers=retry_after(self.banned_until - now),
            )
        over: tuple[float, str] | None = None
        if self.forced and self.weight:
            self.forced -= 1
            over = (now + self.forced_retry_s, _weight_msg(self.weight[0]))
        for pool in self.weight:
            end = (now // pool.interval + 1) * pool.interval
            if self.used(pool, now) + cost > pool.limit and (over is None or over[0] < end):
                over = (end, _weight_msg(pool))
        for pool in self.raw:
            idx = int(now // pool.interval)
            if pool.counts.get(idx, 0) + 1 > pool.limit:
                over = (
                    (idx + 1) * pool.interval,
                    f"Too many requests; current limit is "
                    f"{pool.limit} requests per {interval_text(pool.interval)}. {_POLL}",
                )
        charged = cost if over is None or count_rejected else 0
        self.charge(now, charged)
        if over is not None:
            self.throttled_until, self.throttled_at = over[0], now
            return charged, ApiError(429, -1003, over[1], headers=retry_after(over[0] - now))
        for pool in self.raw:
            idx = int(now // pool.interval)
            pool.counts[idx] = pool.counts.get(idx, 0) + 1
        return charged, None

    def admit_orders(self, now: float, api_key: str | None, op: Op) -> None:
        """Count the call's new orders for the key in each ORDERS window (futures
        batchOrders: 5 on the 10 s window, 1 on the minute), or raise 429 -1015 (no ban
        follows)."""
        counts = [(pool, op.order_count(pool.interval)) for pool in self.orders]
        for pool, n in counts:
            idx = int(now // pool.interval)
            if n and pool.counts.get((api_key, idx), 0) + n > pool.limit:
                raise ApiError(
                    429,
                    -1015,
                    f"Too many new orders; current limit is {pool.limit} orders "
                    f"per {interval_text(pool.interval)}.",
                    headers=retry_after((idx + 1) * pool.interval - now),
                )
        for pool, n in counts:
            slot = (api_key, int(now // pool.interval))
            pool.counts[slot] = pool.counts.get(slot, 0) + n

    def admit_own(self, now: float, own: OwnPool) -> None:
        """Count one request in an endpoint's own IP pool (futures ``fundingRate`` and
        ``fundingInfo`` share 500 per 5 min), or raise 429. What Binance answers there is
        undocumented [unverified]: the fake says -1003 with ``Retry-After`` and bans no one."""
        pool = self.own.get(own.name)
        if pool is None:
            pool = self.own[own.name] = Pool(own.interval_s, own.limit)
        idx = int(now // pool.interval)
        used = pool.counts.get(idx, 0)
        if used + 1 > pool.limit:
            raise ApiError(
                429,
                -1003,
                f"Too many requests; current limit is {pool.limit} requests per "
                f"{interval_text(pool.interval)}. {_POLL}",
                headers=retry_after((idx + 1) * pool.interval - now),
            )
        pool.counts[idx] = used + 1


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def _weight_msg(pool: Pool) -> str:
    return (
        f"Too much request weight used; current limit is {pool.limit} request weight per "
        f"{interval_text(pool.interval)}. {_POLL}"
    )
