"""Write ``tests/fakes/fake_weights_table.py``: the fake exchange's own endpoint table.

Which operations exist, their security type and required parameters come from Binance's
files in ``<repo>/../shared/specs/`` (the Postman collections first, being newest, then the
openxapi and swagger OpenAPI files). What they cost is transcribed below by hand from
``shared/BINANCE.md`` (§2 pools, §6 weights; it wins over the files, as specs/README.md says)
and, for spot operations §6.1 does not list, from the swagger's prose; each row names its
source. An operation no source prices is charged 1 and marked ``assumed``.

Independent of the product on purpose: it reads no ``utils/`` module and not
``scripts/gen_endpoints.py``. ``tests/utils/binance/test_binance_fake_table.py`` compares the
two tables.

Usage: ``python -m tests.fakes.gen_fake_weights [--specs DIR] [--out FILE] [--check]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import yaml

if __package__ in (None, ""):  # run as a file: the repo root on sys.path for ``tests``
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fakes.fake_weights import Op, OwnPool, Weight

REPO: Final = Path(__file__).resolve().parents[2]
DEFAULT_SPECS: Final = REPO.parent / "shared" / "specs"
DEFAULT_OUT: Final = REPO / "tests" / "fakes" / "fake_weights_table.py"
POSTMAN: Final = (
    "postman_Binance_Spot_API.json",
    "postman_Binance_Derivatives_Trading_USDS_Futures_API.json",
)
OPENAPI: Final = (  # newest first
    "openxapi_binance_spot.yaml",
    "openxapi_binance_umfutures.yaml",
    "binance_spot_api.yaml",
)
SWAGGER: Final = "binance_spot_api.yaml"
IN_SCOPE: Final = ("/api/v3/", "/fapi/", "/futures/data/")
#: BINANCE.md §9: the spot listenKey operations stopped on 2026-02-20; the fake has none.
GONE: Final = frozenset(f"{m} /api/v3/userDataStream" for m in ("POST", "PUT", "DELETE"))
TRANSPORT: Final = frozenset({"timestamp", "signature", "recvWindow"})
_TAG = re.compile(r"\(\s*(NONE|MARKET[ _]DATA|USER[ _]STREAM|USER[ _]DATA|TRADE)\s*\)", re.I)
_VERBS = ("get", "post", "put", "delete")

W = Weight
_SPOT_DEPTH = W(5, limit=((100, 5), (500, 25), (1000, 50), (5000, 250)), limit_default=100)
_SPOT_ONE_OR_ALL = W(2, no_symbol=4, symbols=((1_000_000, 4),))  # any count of symbols: 4
_ROLLING = W(4, each_symbol=4, cap=200)
_TEST_ORDER = W(1, flags=(("computeCommissionRates", 20),))
_FUT_DEPTH = W(10, limit=((50, 2), (100, 5), (500, 10), (1000, 20)), limit_default=500)
_FUT_KLINES = W(5, limit=((99, 1), (499, 2), (1000, 5), (1500, 10)), limit_default=500)

#: What a call weighs, by hand: (weight, source). §6.1 is spot (docs of 2026-07-21), §6.2
#: USDⓈ-M futures (scraped 2026-05-28), "swagger" the spot swagger of 2024-10-08.
WEIGHTS: Final[dict[str, tuple[Weight, str]]] = {
    "GET /api/v3/ping": (W(1), "§6.1"),
    "GET /api/v3/time": (W(1), "§6.1"),
    "GET /api/v3/exchangeInfo": (W(20), "§6.1"),
    "GET /api/v3/depth": (_SPOT_DEPTH, "§6.1: 1-100 5, 101-500 25, 501-1000 50, -5000 250"),
    "GET /api/v3/trades": (W(25), "§6.1"),
    "GET /api/v3/historicalTrades": (W(25), "§6.1"),
    "GET /api/v3/aggTrades": (W(4), "§6.1"),
    "GET /api/v3/klines": (W(2), "§6.1: not limit-dependent"),
    "GET /api/v3/uiKlines": (W(2), "§6.1"),
    "GET /api/v3/avgPrice": (W(2), "§6.1"),
    "GET /api/v3/ticker/24hr": (
        W(2, no_symbol=80, symbols=((20, 2), (100, 40), (1_000_000, 80))),
        "§6.1: symbol 2, none 80, symbols 1-20 2, 21-100 40, 101+ 80",
    ),
    "GET /api/v3/ticker/price": (_SPOT_ONE_OR_ALL, "§6.1: symbol 2, none 4, symbols 4"),
    "GET /api/v3/ticker/bookTicker": (_SPOT_ONE_OR_ALL, "§6.1: symbol 2, none 4, symbols 4"),
    "GET /api/v3/ticker": (_ROLLING, "§6.1: 4 per symbol, 200 above 50 symbols"),
    "GET /api/v3/ticker/tradingDay": (_ROLLING, "§6.1: 4 per symbol, 200 above 50 symbols"),
    "POST /api/v3/order": (W(1), "§6.1"),
    "DELETE /api/v3/order": (W(1), "§6.1"),
    "DELETE /api/v3/openOrders": (W(1), "§6.1"),
    "POST /api/v3/order/cancelReplace": (W(1), "§6.1"),
    "POST /api/v3/sor/order": (W(1), "§6.1 (the 2024 swagger's 6 is older)"),
    "POST /api/v3/orderList/oco": (W(1), "§6.1 orderList/*"),
    "POST /api/v3/orderList/oto": (W(1), "§6.1 orderList/*"),
    "POST /api/v3/orderList/otoco": (W(1), "§6.1 orderList/*"),
    "POST /api/v3/orderList/opo": (W(1), "§6.1 orderList/*"),
    "POST /api/v3/orderList/opoco": (W(1), "§6.1 orderList/*"),
    "DELETE /api/v3/orderList": (W(1), "§6.1"),
    "POST /api/v3/order/test": (_TEST_ORDER, "§6.1: 1, 20 with computeCommissionRates"),
    "GET /api/v3/order": (W(4), "§6.1"),
    "GET /api/v3/openOrders": (W(6, no_symbol=80), "§6.1: symbol 6, none 80"),
    "GET /api/v3/allOrders": (W(20), "§6.1"),
    "GET /api/v3/account": (W(20), "§6.1"),
    "GET /api/v3/account/commission": (W(20), "§6.1"),
    "GET /api/v3/myTrades": (W(20, flags=(("orderId", 5),)), "§6.1: 20, 5 with orderId"),
    "GET /api/v3/rateLimit/order": (W(40), "§6.1"),
    # spot, not in §6.1: the swagger's prose
    "GET /api/v3/allOrderList": (W(20), "swagger: Weight(IP): 20"),
    "GET /api/v3/orderList": (W(4), "swagger: Weight(IP): 4"),
    "GET /api/v3/openOrderList": (W(6), "swagger: Weight(IP): 6"),
    "GET /api/v3/myAllocations": (W(20), "swagger: Weight: 20"),
    "GET /api/v3/myPreventedMatches": (
        W(20, flags=(("preventedMatchId", 2),)),
        "swagger: by preventedMatchId 2, by orderId 20",
    ),
    "POST /api/v3/sor/order/test": (_TEST_ORDER, "swagger: 1, 20 with computeCommissionRates"),
    # USDⓈ-M futures
    "GET /fapi/v1/ping": (W(1), "§6.2"),
    "GET /fapi/v1/time": (W(1), "§6.2"),
    "GET /fapi/v1/exchangeInfo": (W(1), "§6.2"),
    "GET /fapi/v1/openInterest": (W(1), "§6.2"),
    "GET /fapi/v1/order": (W(1), "§6.2"),
    "GET /fapi/v1/depth": (_FUT_DEPTH, "§6.2: 5-50 2, 100 5, 500 10, 1000 20; default 500"),
    "GET /fapi/v1/klines": (_FUT_KLINES, "§6.2: <100 1, 100-499 2, 500-1000 5, >1000 10"),
    "GET /fapi/v1/continuousKlines": (_FUT_KLINES, "§6.2 klines: 'likely alike', unverified"),
    "GET /fapi/v1/indexPriceKlines": (_FUT_KLINES, "§6.2 klines: 'likely alike', unverified"),
    "GET /fapi/v1/markPriceKlines": (_FUT_KLINES, "§6.2 klines: 'likely alike', unverified"),
    "GET /fapi/v1/premiumIndexKlines": (_FUT_KLINES, "§6.2 klines: 'likely alike', unverified"),
    "GET /fapi/v1/ticker/24hr": (W(1, no_symbol=40), "§6.2: symbol 1, none 40"),
    "GET /fapi/v2/ticker/price": (W(1, no_symbol=2), "§6.2: symbol 1, none 2"),
    "GET /fapi/v1/ticker/price": (W(1, no_symbol=2), "§6.2 gives v2 only (v1 deprecated): as v2"),
    "GET /fapi/v1/ticker/bookTicker": (W(2, no_symbol=5), "§6.2: symbol 2, none 5"),
    "GET /fapi/v1/premiumIndex": (W(1, no_symbol=10), "§6.2: symbol 1, none 10"),
    "GET /fapi/v1/trades": (W(5), "§6.2"),
    "GET /fapi/v1/aggTrades": (W(20), "§6.2"),
    "GET /fapi/v2/balance": (W(5), "§6.2"),
    "GET /fapi/v3/balance": (W(5), "§6.2"),
    "GET /fapi/v2/account": (W(5), "§6.2"),
    "GET /fapi/v3/account": (W(5), "§6.2"),
    "GET /fapi/v2/positionRisk": (W(5), "§6.2"),
    "GET /fapi/v3/positionRisk": (W(5), "§6.2"),
    "GET /fapi/v1/allOrders": (W(5), "§6.2"),
    "GET /fapi/v1/userTrades": (W(5), "§6.2"),
    "GET /fapi/v1/openOrders": (W(1, no_symbol=40), "§6.2: symbol 1, none 40"),
    "GET /fapi/v1/income": (W(30), "§6.2"),
    "POST /fapi/v1/order": (W(0), "§6.2: 0 IP"),
    "POST /fapi/v1/batchOrders": (W(5), "§6.2: 5 IP"),
    "POST /fapi/v1/algoOrder": (W(0), "§6.2: 0 IP"),
    "DELETE /fapi/v1/order": (W(1), "§6.2"),
    "POST /fapi/v1/leverage": (W(1), "§6.2"),
    "POST /fapi/v1/listenKey": (W(1), "§6.2"),
    "PUT /fapi/v1/listenKey": (W(1), "§6.2"),
    "DELETE /fapi/v1/listenKey": (W(1), "§6.2"),
    "GET /fapi/v1/rateLimit/order": (W(1), "§6.2"),
    "GET /fapi/v1/fundingRate": (W(0), "§2: its own pool, outside the weight pool"),
    "GET /fapi/v1/fundingInfo": (W(0), "§2: its own pool, outside the weight pool"),
    "GET /futures/data/openInterestHist": (W(0), "§2: its own pool, outside the weight pool"),
}

#: New orders one call adds to the account's ORDERS windows: (on each window, (interval_s,
#: count) where a window counts otherwise, source).
ORDERS: Final[dict[str, tuple[int, tuple[tuple[int, int], ...], str]]] = {
    "POST /api/v3/order": (1, (), "§6.1: new orders add +1 to ORDERS"),
    "POST /api/v3/sor/order": (1, (), "§6.1: new orders add +1 to ORDERS"),
    "POST /api/v3/order/cancelReplace": (
        1,
        (),
        "swagger: the new order counts 1, even when not attempted",
    ),
    "POST /api/v3/order/oco": (2, (), "openxapi: OCO adds 2 orders to the unfilled order count"),
    "POST /api/v3/orderList/oco": (2, (), "swagger: OCOs add 2 orders to the unfilled count"),
    "POST /api/v3/orderList/oto": (2, (), "swagger: OTOs add 2 orders to the unfilled count"),
    "POST /api/v3/orderList/otoco": (3, (), "swagger: OTOCOs add 3 orders to the unfilled count"),
    "POST /api/v3/orderList/opo": (
        2,
        (),
        "no count in shared/: a working and a pending order, as an OTO (2)",
    ),
    "POST /api/v3/orderList/opoco": (
        3,
        (),
        "no count in shared/: a working order and a pending OCO, as an OTOCO (3)",
    ),
    "POST /fapi/v1/order": (1, (), "§6.2: +1 on ORDER-COUNT-10S and on -1M"),
    "POST /fapi/v1/batchOrders": (1, ((10, 5),), "§6.2: +5 on the 10 s window, +1 on 1 min"),
}

#: §6.1, since 2026-04-02: successful spot order placements and cancels weigh 0 (failed ones
#: pay the documented weight); amend/keepPriority only if the order expires, so not here.
FREE_ON_SUCCESS: Final = frozenset(
    {
        "POST /api/v3/order",
        "DELETE /api/v3/order",
        "DELETE /api/v3/openOrders",
        "POST /api/v3/order/cancelReplace",
        "POST /api/v3/sor/order",
        "POST /api/v3/order/oco",  # a placement too, though not under orderList/
        "POST /api/v3/orderList/oco",
        "POST /api/v3/orderList/oto",
        "POST /api/v3/orderList/otoco",
        "POST /api/v3/orderList/opo",
        "POST /api/v3/orderList/opoco",
        "DELETE /api/v3/orderList",
    }
)

_FUNDING = OwnPool("fundingRate+fundingInfo", 500, 300)
#: §2: IP pools of their own, counted per request, outside REQUEST_WEIGHT.
POOLS: Final[dict[str, OwnPool]] = {
    "GET /fapi/v1/fundingRate": _FUNDING,
    "GET /fapi/v1/fundingInfo": _FUNDING,
    "GET /futures/data/openInterestHist": OwnPool("openInterestHist", 1000, 300),
}
_ASSUMED = "assumed 1: neither BINANCE.md nor the spec files give a weight"
_WRAP: Final = 70


# --- reading the files ------------------------------------------------------------------
def _tag(text: str) -> str | None:
    found = _TAG.search(text)
    return found.group(1).upper().replace(" ", "_") if found else None


def _postman(path: Path) -> dict[str, tuple[str | None, bool, tuple[str, ...]]]:
    """key -> (security tag, signed, required parameters)."""

    def leaves(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for item in items:
            out.extend(leaves(item["item"]) if "item" in item else [item])
        return out

    ops = {}
    for item in leaves(json.loads(path.read_text(encoding="utf-8"))["item"]):
        url = item["request"]["url"]
        body = (item["request"].get("body") or {}).get("urlencoded") or []
        params = url.get("query", []) + body
        names = {p["key"] for p in params}
        required = tuple(
            p["key"] for p in params if not p.get("disabled") and p["key"] not in TRANSPORT
        )
        key = f"{item['request']['method']} /{'/'.join(url['path'])}"
        ops[key] = (_tag(item["name"]), "signature" in names, required)
    return ops


def _openapi(path: Path) -> dict[str, tuple[str | None, bool, tuple[str, ...]]]:
    """key -> (security tag, keyed, required parameters)."""
    with path.open(encoding="utf-8") as f:
        doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506

    def ref(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = doc
            for part in str(node["$ref"]).removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    ops = {}
    for route, methods in doc["paths"].items():
        for verb in _VERBS:
            op = methods.get(verb)
            if op is None:
                continue
            required = [ref(p)["name"] for p in op.get("parameters", []) if ref(p).get("required")]
            for content in ref(op.get("requestBody", {})).get("content", {}).values():
                required += ref(content["schema"]).get("required", [])
            required = [n for n in required if n not in TRANSPORT]
            key = f"{verb.upper()} {route}"
            ops[key] = (
                _tag(str(op.get("summary", ""))),
                bool(op.get("security")),
                tuple(required),
            )
    return ops


def read_ops(specs: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every in-scope operation: key -> (security type, required parameters)."""
    files = [_postman(specs / n) for n in POSTMAN] + [_openapi(specs / n) for n in OPENAPI]
    keys = {k for ops in files for k in ops if k.split(" ", 1)[1].startswith(IN_SCOPE)} - GONE
    out = {}
    for key in sorted(keys):
        seen = [ops[key] for ops in files if key in ops]
        tags = [tag for tag, _, _ in seen if tag is not None]
        if not tags and any(keyed for _, keyed, _ in seen):
            raise SystemExit(f"{key}: keyed or signed in a file but no security tag: decide")
        out[key] = (tags[0] if tags else "NONE", seen[0][2])
    return out


def swagger_weights(specs: Path) -> dict[str, str]:
    """Spot operations whose swagger description states a weight: key -> its first line."""
    with (specs / SWAGGER).open(encoding="utf-8") as f:
        doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    out = {}
    for route, methods in doc["paths"].items():
        for verb in _VERBS:
            text = str((methods.get(verb) or {}).get("description", ""))
            at = text.find("Weight")
            if route.startswith("/api/v3/") and at >= 0:
                out[f"{verb.upper()} {route}"] = text[at : at + 60].split("\n", maxsplit=1)[0]
    return out


# --- writing the table ------------------------------------------------------------------
def build(specs: Path) -> list[Op]:
    """The rows; stops when a hand table names an operation the files lack, or when the
    swagger prices a spot operation nobody transcribed."""
    ops = read_ops(specs)
    for table in (WEIGHTS, ORDERS, POOLS, FREE_ON_SUCCESS):
        unknown = sorted(set(table) - set(ops))
        if unknown:
            raise SystemExit(f"not in the spec files: {unknown}")
    untranscribed = sorted(set(swagger_weights(specs)) - set(WEIGHTS) - GONE)
    if untranscribed:
        raise SystemExit(f"the swagger prices these; transcribe them: {untranscribed}")
    rows = []
    for key, (security, required) in ops.items():
        weight, source = WEIGHTS.get(key, (W(1), _ASSUMED))
        orders, by_window, orders_source = ORDERS.get(key, (0, (), ""))
        if orders_source:
            source = f"{source}; orders: {orders_source}"
        rows.append(
            Op(
                key,
                security,
                weight,
                required=required,
                free_on_success=key in FREE_ON_SUCCESS,
                orders=orders,
                orders_by_window=by_window,
                pool=POOLS.get(key),
                source=source,
            )
        )
    rows.sort(key=lambda op: (op.market != "spot", op.key.split(" ", 1)[1], op.key))
    return rows


def _args(obj: Any, positional: int) -> str:
    """``Name(a, b, field=value)``: the first ``positional`` fields, then non-defaults."""
    fields = dataclasses.fields(obj)
    parts = [_literal(getattr(obj, f.name)) for f in fields[:positional]]
    for f in fields[positional:]:
        value = getattr(obj, f.name)
        if value != f.default:
            parts.append(f"{f.name}={_literal(value)}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def _literal(value: Any) -> str:
    if isinstance(value, Weight | OwnPool):
        return _args(value, 1 if isinstance(value, Weight) else 3)
    if isinstance(value, str) and len(value) > _WRAP:  # a source: wrapped, as ruff leaves it
        lines = [""]
        for word in value.split(" "):
            if lines[-1] and len(lines[-1]) + len(word) >= _WRAP:
                lines.append("")
            lines[-1] += word + " "
        lines[-1] = lines[-1][:-1]
        return "(" + " ".join(repr(line) for line in lines) + ")"
    return repr(value)


def render(specs: Path) -> str:
    rows = build(specs)
    assumed = sum(op.source.startswith("assumed") for op in rows)
    head = f'''"""The fake exchange's endpoint table: security type, required parameters, weight,
pools and order counts of every REST operation it serves ({len(rows)}; {assumed} priced by no
source, charged 1). Read through ``OPS``; the types are in ``fake_weights``."""

# GENERATED by tests/fakes/gen_fake_weights.py from shared/specs/ and shared/BINANCE.md;
# do not edit by hand: edit the script and rerun it.

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from tests.fakes.fake_weights import Op, OwnPool, Weight

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("OPS",)

_ROWS: Final = (
'''
    body = [f"    {_args(op, 3)}," for op in rows]
    tail = "\n)\n\nOPS: Final[Mapping[str, Op]] = {op.key: op for op in _ROWS}\n"
    return _ruff_format(head + "\n".join(body) + tail)


def _ruff_format(text: str) -> str:
    done = subprocess.run(  # noqa: S603 - a fixed command on our own text
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(DEFAULT_OUT), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"ruff format failed: {done.stderr}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the fake exchange's endpoint table.")
    parser.add_argument("--specs", type=Path, default=DEFAULT_SPECS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is stale")
    args = parser.parse_args(argv)
    text = render(args.specs)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            sys.stderr.write(f"{args.out} is stale: run python -m tests.fakes.gen_fake_weights\n")
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
