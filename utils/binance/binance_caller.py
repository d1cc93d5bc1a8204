"""``Caller``: the one base the client's helpers stand on. ``PublicEndpoints``,
``PrivateEndpoints`` and ``StreamMethods`` each derive from it alone and use nothing but its
methods, so ``BinanceClient`` may list them in any order.

A subclass provides four things (abstract: a class missing one cannot be instantiated, and
mypy says so): ``call_endpoint`` (one table entry, through cache, limiter, breaker and
transport), ``now_ms`` (Binance's clock, through the transport's offset), ``check_credentials``
and ``place_order_checked`` (an order sent exactly once). Built on them, once, here: ``call``
(any operation by its ``"METHOD /path"``) and ``symbol_rules`` (each market's exchangeInfo,
kept and reloaded hourly). No sockets here.
"""

from __future__ import annotations

import abc
import time
from typing import TYPE_CHECKING, Any, Final

from utils.binance.binance_constants import ENDPOINTS, EXCHANGE_INFO
from utils.binance.binance_exceptions import BinanceInputError
from utils.binance.binance_types import Endpoint, Market, Params
from utils.binance.binance_utils import SymbolRules

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("Caller",)

_RULES_MAX_AGE_S: Final = 3600.0  # new listings appear; exchangeInfo is reloaded hourly


class Caller(abc.ABC):
    """One way to call the endpoint table, Binance's clock and each market's symbol rules."""

    def __init__(self) -> None:
        self._symbol_rules: dict[Market, SymbolRules] = {}

    # --- what a subclass provides --------------------------------------------------------
    @abc.abstractmethod
    async def call_endpoint(self, endpoint: Endpoint, params: Params | None = None) -> Any:
        """Send one table operation; Binance's decoded JSON."""

    @abc.abstractmethod
    def now_ms(self) -> int:
        """Binance's clock in epoch milliseconds (closed candles, signatures go by it)."""

    @abc.abstractmethod
    def check_credentials(self, endpoint: Endpoint) -> None:
        """Raise ``BinanceCredentialsError`` now if ``endpoint`` needs a key or signature
        the caller lacks. Helpers that do public work before a signed call (an order's
        filter check) call it first, so a keyless client sends nothing."""

    @abc.abstractmethod
    async def place_order_checked(self, endpoint: Endpoint, params: Params) -> Any:
        """Send an order exactly once; an unknown outcome is looked up, never resent."""

    # --- built on them -------------------------------------------------------------------
    async def call(self, operation: str, **params: Any) -> Any:
        """Call any operation of the table.

        ``await client.call("GET /api/v3/depth", symbol="BTCUSDT")``
        """
        try:
            target = ENDPOINTS[operation]
        except KeyError:
            raise BinanceInputError(
                f"{operation!r} is not a known operation; write it as 'GET /api/v3/ticker/price'"
            ) from None
        return await self.call_endpoint(target, params)

    async def symbol_rules(self, market: Market = Market.SPOT) -> SymbolRules:
        """Every symbol's filters, from the full exchangeInfo, loaded once per client (and
        again after an hour). With the cache on, concurrent first calls share one request."""
        rules = self._symbol_rules.get(market)
        now = time.monotonic()
        if rules is None or now - rules.loaded_at > _RULES_MAX_AGE_S:
            info: Mapping[str, Any] = await self.call_endpoint(EXCHANGE_INFO[market], {})
            rules = SymbolRules.from_exchange_info(info, market, loaded_at=now)
            self._symbol_rules[market] = rules
        return rules
