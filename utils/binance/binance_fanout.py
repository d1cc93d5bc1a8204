"""Shaping of the fan-out answers (``BinanceClient.get_prices``, ``get_portfolio``): which
symbols to ask for, and the ``PriceSnapshot``s and ``Portfolio`` built from what came back,
a failed part reported in its own entry. Pure: the facade does the calls, nothing here does
I/O."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from utils.binance.binance_exceptions import (
    BinanceCircuitOpenError,
    BinanceError,
    BinanceInputError,
    BinanceUnknownSymbolError,
)
from utils.binance.binance_types import AssetValue, Portfolio, PriceSnapshot
from utils.binance.binance_utils import check_symbol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from utils.binance.binance_utils import SymbolRules

__all__ = ("SymbolRequest", "portfolio", "price_snapshots", "symbol_request")

#: Assets valued at 1 USDT each.
_STABLE: Final = frozenset({"USDT", "USDC", "FDUSD", "BUSD", "TUSD"})


class SymbolRequest:
    """The symbols of a ``get_prices`` call, resolved and sorted: ``names`` in the caller's
    order, ``errors`` for the bad or unknown ones, ``spot`` and ``futures`` to ask for.

    A plain slotted class, not a dataclass: building a dataclass costs ~0.5 ms of the
    client's import time (measured with ``python -X importtime``), for nothing used here.
    """

    __slots__ = ("errors", "futures", "names", "spot")

    def __init__(
        self,
        names: list[str],
        errors: dict[str, PriceSnapshot],
        spot: list[str],
        futures: list[str],
    ) -> None:
        self.names, self.errors, self.spot, self.futures = names, errors, spot, futures


def symbol_request(
    symbols: Sequence[str], spot_rules: SymbolRules, futures_rules: SymbolRules
) -> SymbolRequest:
    """Resolve each symbol (a bare base asset means its USDT pair: ``btc`` is ``BTCUSDT``),
    check it, and sort the listed ones by market."""
    names = [_resolve(s, spot_rules, futures_rules) for s in symbols]
    errors: dict[str, PriceSnapshot] = {}
    valid: list[str] = []
    for name in names:
        try:
            check_symbol(name)
            if spot_rules.get(name) is None and futures_rules.get(name) is None:
                spot_rules.require(name)  # raises, naming the closest symbols
            valid.append(name)
        except BinanceUnknownSymbolError as e:
            errors[name] = PriceSnapshot(
                symbol=name, error=str(e), unknown=True, suggestions=tuple(e.suggestions)
            )
        except BinanceInputError as e:
            errors[name] = PriceSnapshot(symbol=name, error=str(e))
    spot = [s for s in valid if spot_rules.get(s) is not None]
    futures = [s for s in valid if futures_rules.get(s) is not None]
    return SymbolRequest(names, errors, spot, futures)


def price_snapshots(
    request: SymbolRequest, price_rows: Any, day_rows: Any, marks: Any
) -> dict[str, PriceSnapshot]:
    """One ``PriceSnapshot`` per requested name from the answers (each an answer or the
    exception it raised): spot prices and 24 h rows indexed by symbol, and the futures marks
    in ``request.futures`` order. When nothing at all was answered, the failure is raised."""
    spot, futures = request.spot, request.futures
    mark_by = dict(zip(futures, marks if isinstance(marks, list) else [], strict=False))
    _raise_if_nothing_answered([price_rows, day_rows, marks, *mark_by.values()], spot, futures)
    result: dict[str, PriceSnapshot] = {}
    for name in request.names:
        if name in request.errors:
            result[name] = request.errors[name]
            continue
        problems: list[str] = []
        price = _field(price_rows, name, "price", problems)
        change = _field(day_rows, name, "priceChangePercent", problems)
        mark = mark_by.get(name)
        if isinstance(mark, BaseException):
            problems.append(f"futures: {mark}")
            mark = None
        result[name] = PriceSnapshot(
            symbol=name,
            price=price if name in spot else None,
            change_24h_pct=change if name in spot else None,
            mark_price=Decimal(mark["markPrice"]) if mark else None,
            funding_rate=Decimal(mark["lastFundingRate"]) if mark else None,
            error="; ".join(problems) or None,
        )
    return result


def portfolio(account: Any, wallet: Any, prices: Any) -> Portfolio:
    """Spot balances and the futures wallet valued in USDT; each argument is Binance's answer
    (spot account, futures balances, all spot prices) or the exception it raised."""
    price_of = (
        {row["symbol"]: Decimal(row["price"]) for row in prices}
        if not isinstance(prices, BaseException)
        else {}
    )
    errors: dict[str, str] = {}
    spot: list[AssetValue] = []
    futures: list[AssetValue] = []
    if isinstance(account, BaseException):
        errors["spot"] = str(account)
    else:
        for row in account["balances"]:
            amount = Decimal(row["free"]) + Decimal(row["locked"])
            if amount:
                spot.append(_valued(row["asset"], amount, price_of))
    if isinstance(wallet, BaseException):
        errors["futures"] = str(wallet)
    else:
        for row in wallet:
            amount = Decimal(row["balance"])
            if amount:
                futures.append(_valued(row["asset"], amount, price_of))
    if isinstance(prices, BaseException):
        errors["prices"] = str(prices)
    values = [a.value_usdt for a in (*spot, *futures) if a.value_usdt is not None]
    total = sum(values, Decimal(0))
    return Portfolio(spot=tuple(spot), futures=tuple(futures), total_usdt=total, errors=errors)


def _raise_if_nothing_answered(
    parts: Sequence[Any], spot: Sequence[str], futures: Sequence[str]
) -> None:
    """When every call of a fan-out failed, the failure is the answer: raise it (an open
    breaker first, since it says when Binance will be tried again)."""
    if not spot and not futures:
        return
    answered = [p for p in parts[:2] if not isinstance(p, BaseException)] if spot else []
    if futures and not isinstance(parts[2], BaseException):
        answered += [p for p in parts[3:] if not isinstance(p, BaseException)]
    if answered:
        return
    failures = [p for p in parts if isinstance(p, BinanceError)]
    if failures:
        failures.sort(key=lambda e: not isinstance(e, BinanceCircuitOpenError))
        raise failures[0]


def _resolve(symbol: str, *rules: SymbolRules) -> str:
    """``btc`` -> ``BTCUSDT`` when the bare name is no symbol but its USDT pair is."""
    name = symbol.strip().upper()
    if all(r.get(name) is None for r in rules) and any(r.get(f"{name}USDT") for r in rules):
        return f"{name}USDT"
    return name


def _field(rows: Any, symbol: str, key: str, problems: list[str]) -> Decimal | None:
    if isinstance(rows, BaseException):
        if str(rows) not in problems:
            problems.append(f"spot: {rows}")
        return None
    row = rows.get(symbol)
    return Decimal(row[key]) if row is not None else None


def _valued(asset: str, amount: Decimal, price_of: Mapping[str, Decimal]) -> AssetValue:
    if asset in _STABLE:
        return AssetValue(asset=asset, amount=amount, value_usdt=amount)
    price = price_of.get(f"{asset}USDT")
    return AssetValue(asset=asset, amount=amount, value_usdt=amount * price if price else None)
