"""What the fake exchange knows about Binance's rate limits, in its own words: the pool kinds,
clock-aligned windows and the headers that report them (shared/BINANCE.md §2, §3), what one
call costs from its parameters (§6), and the shape of one row of its endpoint table (the rows
are in ``fake_weights_table``, written by ``gen_fake_weights.py`` from shared/specs/ and
BINANCE.md).

Nothing here comes from the product (``utils/``): a fake that charged what the client's own
table says would enforce a wrong weight the same wrong way, and no test could catch it.
``tests/utils/binance/test_binance_fake_table.py`` lists where the two tables differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "DEFAULT_WINDOWS",
    "FUTURES",
    "SPOT",
    "Op",
    "OwnPool",
    "PoolKind",
    "Weight",
    "Window",
    "WindowSpec",
    "interval_suffix",
    "market_of",
)

SPOT: Final = "spot"  # Binance's two markets, as the fake names them
FUTURES: Final = "futures"
_FUTURES_PREFIXES: Final = ("/fapi/", "/futures/")
_SIGNED: Final = frozenset({"TRADE", "USER_DATA"})  # §7; spot USER_STREAM is signed too


class PoolKind(StrEnum):
    """``exchangeInfo.rateLimits[].rateLimitType`` (§2)."""

    REQUEST_WEIGHT = "REQUEST_WEIGHT"
    RAW_REQUESTS = "RAW_REQUESTS"
    ORDERS = "ORDERS"


class WindowSpec(Protocol):
    """Anything that describes a window: the fake's ``Window``, or a test's own type."""

    @property
    def kind(self) -> str: ...
    @property
    def interval_s(self) -> int: ...
    @property
    def limit(self) -> int: ...


def interval_suffix(interval_s: int) -> str:
    """Binance's interval tag in header names: ``60`` -> ``1M``, ``10`` -> ``10S`` (§3)."""
    for unit, seconds in (("D", 86400), ("H", 3600), ("M", 60)):
        if interval_s % seconds == 0:
            return f"{interval_s // seconds}{unit}"
    return f"{interval_s}S"


@dataclass(frozen=True, slots=True)
class Window:
    """One clock-aligned window of a pool: ``limit`` per ``interval_s`` seconds.

    REQUEST_WEIGHT and RAW_REQUESTS count per IP, ORDERS per account (§2).
    """

    market: str
    kind: PoolKind
    interval_s: int
    limit: int

    @classmethod
    def of(cls, market: str, spec: WindowSpec) -> Window:
        """The fake's window for any description of one (``kind`` read as its text)."""
        return cls(str(market), PoolKind(str(spec.kind)), int(spec.interval_s), int(spec.limit))

    @property
    def per_account(self) -> bool:
        return self.kind is PoolKind.ORDERS

    @property
    def header(self) -> str:
        """The response header reporting this window, lower-case as over HTTP/2 (§3):
        ``x-mbx-used-weight-1m``, ``x-mbx-order-count-10s``; none for RAW_REQUESTS."""
        if self.kind is PoolKind.REQUEST_WEIGHT:
            return f"x-mbx-used-weight-{interval_suffix(self.interval_s).lower()}"
        if self.kind is PoolKind.ORDERS:
            return f"x-mbx-order-count-{interval_suffix(self.interval_s).lower()}"
        return ""


_S, _F, _W, _R, _O = SPOT, FUTURES, PoolKind.REQUEST_WEIGHT, PoolKind.RAW_REQUESTS, PoolKind.ORDERS

#: §2's documented pools; a test may hand the fake others (shorter windows, lower limits).
DEFAULT_WINDOWS: Final[Mapping[str, tuple[Window, ...]]] = {
    SPOT: (
        Window(_S, _W, 60, 6000),  # §2: 6,000 / 1 min, per IP
        Window(_S, _R, 300, 300_000),  # §2: 300,000 / 5 min since 2026-04-02
        Window(_S, _O, 10, 50),  # §2: 50 / 10 s (the docs' example), per account
        Window(_S, _O, 86400, 160_000),  # §2: 160,000 / 1 day
    ),
    FUTURES: (
        Window(_F, _W, 60, 2400),  # §2: 2,400 / 1 min, per IP
        Window(_F, _O, 10, 300),  # §2: 300 / 10 s (Binance's FAQ, 2023-08-04)
        Window(_F, _O, 60, 1200),  # §2: 1,200 / 1 min
    ),
}


@dataclass(frozen=True, slots=True)
class OwnPool:
    """An IP pool of some endpoints' own, outside REQUEST_WEIGHT: one per request (§2)."""

    name: str
    limit: int
    interval_s: int


@dataclass(frozen=True, slots=True)
class Weight:
    """REQUEST_WEIGHT of one call, worded as §6 words it. The first rule that applies wins:
    ``flags`` (a parameter sent and not "false"), ``no_symbol`` (neither ``symbol`` nor
    ``symbols``), ``symbols`` / ``each_symbol`` (by how many symbols), ``limit`` (by the
    ``limit`` parameter, ``limit_default`` when absent), else ``fixed``. Tiers are
    ``(up to and including, weight)``, ascending; past the last one, the last weight."""

    fixed: int
    flags: tuple[tuple[str, int], ...] = ()
    no_symbol: int | None = None
    symbols: tuple[tuple[int, int], ...] = ()
    each_symbol: int = 0
    cap: int = 0
    limit: tuple[tuple[int, int], ...] = ()
    limit_default: int = 0

    def of(self, params: Mapping[str, str]) -> int:
        """The weight of a call with these wire parameters; malformed ones cost ``fixed``
        (the handler then answers the error)."""
        for name, weight in self.flags:
            value = params.get(name)
            if value is not None and value.lower() != "false":
                return weight
        symbol, symbols = params.get("symbol"), params.get("symbols")
        if self.no_symbol is not None and not symbol and not symbols:
            return self.no_symbol
        if symbols and (self.symbols or self.each_symbol):
            count = _count(symbols)
            if count is None:
                return self.fixed
            if self.each_symbol:
                return min(self.each_symbol * count, self.cap or self.each_symbol * count)
            return _tier(self.symbols, count)
        if self.limit:
            raw = params.get("limit")
            try:
                limit = int(raw) if raw is not None else self.limit_default
            except ValueError:
                return self.fixed
            return _tier(self.limit, limit)
        return self.fixed


@dataclass(frozen=True, slots=True)
class Op:
    """One REST operation as the fake serves it; ``source`` says where its numbers come from
    (``assumed`` when neither BINANCE.md nor the spec files give a weight)."""

    key: str  # "GET /api/v3/depth"
    security: str  # NONE, MARKET_DATA, USER_STREAM, USER_DATA or TRADE (§7)
    weight: Weight
    required: tuple[str, ...] = ()
    free_on_success: bool = False  # §6.1: successful spot orders and cancels weigh 0
    orders: int = 0  # new orders one call adds to each ORDERS window ...
    orders_by_window: tuple[tuple[int, int], ...] = ()  # ... but (interval_s, count) here
    pool: OwnPool | None = None
    source: str = ""

    @property
    def market(self) -> str:
        return market_of(self.key.split(" ", 1)[1])

    @property
    def needs_key(self) -> bool:
        return self.security != "NONE"

    @property
    def signed(self) -> bool:
        """TRADE and USER_DATA are signed, and spot USER_STREAM; futures USER_STREAM and
        MARKET_DATA need only the key (§7)."""
        return self.security in _SIGNED or (self.security == "USER_STREAM" and self.market == SPOT)

    @property
    def places_orders(self) -> bool:
        return bool(self.orders or self.orders_by_window)

    def order_count(self, interval_s: int) -> int:
        """What one call adds to the ORDERS window of ``interval_s`` seconds."""
        for seconds, count in self.orders_by_window:
            if seconds == interval_s:
                return count
        return self.orders


def market_of(path: str) -> str:
    """``/fapi/...`` and ``/futures/...`` are USDⓈ-M futures; the rest is spot."""
    return FUTURES if path.startswith(_FUTURES_PREFIXES) else SPOT


def _tier(tiers: tuple[tuple[int, int], ...], value: int) -> int:
    for upper, weight in tiers:
        if value <= upper:
            return weight
    return tiers[-1][1]


def _count(symbols: str) -> int | None:
    """How many symbols ``["BTCUSDT","ETHUSDT"]`` names; None when it is not such a list."""
    try:
        names = json.loads(symbols)
    except ValueError:
        return None
    return len(names) if isinstance(names, list) else None
