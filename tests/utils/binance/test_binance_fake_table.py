"""The client's endpoint table (``utils/binance/binance_endpoints.py``) against the fake
exchange's own (``tests/fakes/fake_weights_table.py``, transcribed on its own from
shared/BINANCE.md and shared/specs/): every difference in weight, weight on success, order
counts per ORDERS window, own pools, security, the operations themselves and the default
windows and their headers is either fixed in the product or explained once, in ``EXPLAINED``,
with its source. An explanation that no longer matches a difference fails too.

The weights are compared by evaluating both rules on the same parameters: none, ``symbol``,
``symbols`` lists of every size either table has a tier for, ``limit`` on both sides of every
tier bound, and every flag parameter either table names."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import orjson

from tests.fakes.fake_weights import DEFAULT_WINDOWS, Op
from tests.fakes.fake_weights_table import OPS
from utils.binance.binance_constants import DEFAULT_RATE_WINDOWS, ENDPOINTS
from utils.binance.binance_types import Market, PoolKind

if TYPE_CHECKING:
    from collections.abc import Mapping

    from utils.binance.binance_types import Endpoint

#: ``"<operation or market> <aspect>"`` -> why the two tables may differ there, and the
#: source. Empty: the tables agree everywhere today (the product was fixed where it was wrong:
#: order lists count each of their orders, futures batchOrders 5 on the 10 s window).
EXPLAINED: dict[str, str] = {}

_SYMBOL_COUNTS = (1, 2, 20, 21, 50, 51, 100, 101, 500)
ORDERS = PoolKind.ORDERS


def _symbols(n: int) -> str:
    return orjson.dumps([f"S{i}USDT" for i in range(n)]).decode()


def probes(ep: Endpoint, op: Op) -> list[dict[str, str]]:
    """Parameters that reach every branch of both weight rules."""
    out: list[dict[str, str]] = [{}, {"symbol": "BTCUSDT"}]
    out += [{"symbols": _symbols(n)} for n in _SYMBOL_COUNTS]
    bounds = {upper for upper, _ in (*ep.weight.by_limit, *op.weight.limit)}
    for limit in sorted({1} | bounds | {b + 1 for b in bounds}):
        out.append({"symbol": "BTCUSDT", "limit": str(limit)})
    for flag in sorted({n for n, _ in ep.weight.by_param} | {n for n, _ in op.weight.flags}):
        out += [{"symbol": "BTCUSDT", flag: "7"}, {"symbol": "BTCUSDT", flag: "false"}]
    return out


def differences(
    product: Mapping[str, Endpoint] = ENDPOINTS, fake: Mapping[str, Op] = OPS
) -> dict[str, str]:
    """``"<key> <aspect>"`` -> ``"product ..., fake ..."`` for every disagreement."""
    found: dict[str, str] = {}
    for key in sorted(product.keys() - fake.keys()):
        found[f"{key} presence"] = "only in the product's table"
    for key in sorted(fake.keys() - product.keys()):
        found[f"{key} presence"] = "only in the fake's table"
    for key in sorted(product.keys() & fake.keys()):
        found.update(_row(key, product[key], fake[key]))
    found.update(_pool_groups(product, fake))
    for market in Market:
        ours = {_window(w.kind, w.interval_s, w.limit, w.header) for w in DEFAULT_WINDOWS[market]}
        theirs = {
            _window(w.kind, w.interval_s, w.limit, w.header) for w in DEFAULT_RATE_WINDOWS[market]
        }
        if ours != theirs:
            found[f"{market} windows"] = f"product {sorted(theirs)}, fake {sorted(ours)}"
    return found


def _row(key: str, ep: Endpoint, op: Op) -> dict[str, str]:
    found: dict[str, str] = {}
    for params in probes(ep, op):
        mine, theirs = ep.weight.cost(params), op.weight.of(params)
        if mine != theirs:
            found[f"{key} weight"] = f"with {params}: product {mine}, fake {theirs}"
            break
    on_success = 0 if op.free_on_success else None
    if ep.weight_on_success != on_success:
        found[f"{key} weight on success"] = f"product {ep.weight_on_success}, fake {on_success}"
    intervals = {w.interval_s for w in DEFAULT_RATE_WINDOWS[ep.market] if w.kind is ORDERS}
    intervals |= {w.interval_s for w in DEFAULT_WINDOWS[ep.market] if w.kind == ORDERS}
    for seconds in sorted(intervals):
        if ep.order_count(seconds) != op.order_count(seconds):
            found[f"{key} orders per {seconds} s"] = (
                f"product {ep.order_count(seconds)}, fake {op.order_count(seconds)}"
            )
    pools = (
        (ep.pool[1], ep.pool[2]) if ep.pool else None,
        (op.pool.limit, op.pool.interval_s) if op.pool else None,
    )
    if pools[0] != pools[1]:
        found[f"{key} pool"] = f"product {ep.pool}, fake {op.pool}"
    if (ep.needs_key, ep.signed) != (op.needs_key, op.signed):
        found[f"{key} security"] = f"product {ep.security}, fake {op.security}"
    return found


def _pool_groups(product: Mapping[str, Endpoint], fake: Mapping[str, Op]) -> dict[str, str]:
    """Endpoints sharing one own pool in one table share it in the other."""
    by_name = (
        {k: e.pool[0] for k, e in product.items() if e.pool},
        {k: o.pool.name for k, o in fake.items() if o.pool},
    )
    groups = [
        {frozenset(k for k in names if names[k] == n) for n in names.values()} for names in by_name
    ]
    if groups[0] != groups[1]:
        return {"own pools sharing": f"product {groups[0]}, fake {groups[1]}"}
    return {}


def _window(kind: Any, interval_s: int, limit: int, header: str) -> tuple[str, int, int, str]:
    return str(kind), interval_s, limit, header.lower()


def test_every_difference_between_the_tables_is_fixed_or_explained() -> None:
    found = differences()
    unexplained = {k: v for k, v in found.items() if k not in EXPLAINED}
    stale = sorted(EXPLAINED.keys() - found.keys())
    assert not unexplained, "fix the product or explain in EXPLAINED:\n" + "\n".join(
        f"  {k}: {v}" for k, v in unexplained.items()
    )
    assert not stale, f"these explanations match no difference any more: {stale}"


def test_a_wrong_number_in_either_table_is_listed() -> None:
    # The comparison itself can fail: a futures batch booked as one order on the 10 s
    # window (the product's old table) and a depth weight off by one tier are both found.
    batch = OPS["POST /fapi/v1/batchOrders"]
    depth = OPS["GET /api/v3/depth"]
    wrong = dict(OPS)
    wrong[batch.key] = dataclasses.replace(batch, orders_by_window=())
    wrong[depth.key] = dataclasses.replace(
        depth, weight=dataclasses.replace(depth.weight, limit=((100, 5), (500, 50)))
    )
    found = differences(fake=wrong)
    assert found == {
        "POST /fapi/v1/batchOrders orders per 10 s": "product 5, fake 1",
        "GET /api/v3/depth weight": "with {'symbol': 'BTCUSDT', 'limit': '101'}: "
        "product 25, fake 50",
    }


def test_order_lists_count_each_of_their_orders_and_a_batch_five_on_ten_seconds() -> None:
    # BINANCE.md §6.2 and the spot swagger, written out: the product's table says so too.
    counts = {
        key: (ENDPOINTS[key].order_count(10), ENDPOINTS[key].order_count(60))
        for key in (
            "POST /api/v3/order",
            "POST /api/v3/orderList/oco",
            "POST /api/v3/orderList/oto",
            "POST /api/v3/orderList/otoco",
            "POST /fapi/v1/order",
            "POST /fapi/v1/batchOrders",
        )
    }
    assert counts == {
        "POST /api/v3/order": (1, 1),
        "POST /api/v3/orderList/oco": (2, 2),
        "POST /api/v3/orderList/oto": (2, 2),
        "POST /api/v3/orderList/otoco": (3, 3),
        "POST /fapi/v1/order": (1, 1),
        "POST /fapi/v1/batchOrders": (5, 1),
    }
