"""Write ``utils/binance/binance_endpoints.py``: every REST operation of Binance spot
``/api/v3`` and USDⓈ-M futures ``/fapi`` + ``/futures/data``, from Binance's own API
descriptions in ``<repo>/../shared/specs/`` and the weight tables of ``shared/BINANCE.md`` §6.

Operations are the union of the two Postman collections (newest), the openxapi OpenAPI files
and the official spot swagger, minus the exclusions in ``EXCLUDED``. Per operation:

- security type: the ``(USER_DATA)``-style tag of the request's name, newest file first
  (Postman, openxapi, swagger), else NONE; a keyed or signed request without a tag stops the
  script. Postman's ``signature`` parameter must agree with the tag.
- required parameters: Postman's enabled parameters, else the OpenAPI ``required`` flags;
  ``timestamp``, ``signature`` and ``recvWindow`` are the transport's.
- enums: the union of the values the OpenAPI files list.
- weight: ``WEIGHTS`` (BINANCE.md §6, which wins over the files), else a plain ``Weight(IP): N``
  of the swagger's description, else ``SPEC_WEIGHTS`` (swagger prose too irregular to parse),
  else 1, marked as a default in the output. Pools, cache TTLs, ORDERS counts (per window
  where a window counts otherwise) and the spot zero-weight-on-success rule are in the
  tables below.

Usage: ``python scripts/gen_endpoints.py [--specs DIR] [--out FILE] [--check]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from utils.binance.binance_types import (  # noqa: E402 - needs the repo on sys.path
    Endpoint,
    HttpMethod,
    Market,
    Security,
    WeightRule,
)

DEFAULT_SPECS = REPO.parent / "shared" / "specs"
DEFAULT_OUT = REPO / "utils" / "binance" / "binance_endpoints.py"

#: (file, origin, as of); every file's sha256 goes into the generated header.
SOURCES = (
    ("postman_Binance_Spot_API.json", "binance/binance-api-postman@03a10b5", "2026-07-22"),
    (
        "postman_Binance_Derivatives_Trading_USDS_Futures_API.json",
        "binance/binance-api-postman@03a10b5",
        "2026-07-22",
    ),
    ("openxapi_binance_spot.yaml", "openxapi/openxapi@e2791e4", "2025-11-08"),
    ("openxapi_binance_umfutures.yaml", "openxapi/openxapi@e2791e4", "2025-11-08"),
    ("binance_spot_api.yaml", "binance/binance-api-swagger@64b327c", "2024-10-08"),
)
POSTMAN = SOURCES[0][0], SOURCES[1][0]
OPENXAPI = SOURCES[2][0], SOURCES[3][0]
SWAGGER = SOURCES[4][0]

TRANSPORT_PARAMS = frozenset({"timestamp", "signature", "recvWindow"})
IN_SCOPE = ("/api/v3/", "/fapi/", "/futures/data/")
EXCLUDED = {
    "POST /api/v3/userDataStream": "removed 2026-02-20 (BINANCE.md §9)",
    "PUT /api/v3/userDataStream": "removed 2026-02-20 (BINANCE.md §9)",
    "DELETE /api/v3/userDataStream": "removed 2026-02-20 (BINANCE.md §9)",
}
OUT_OF_SCOPE_NOTE = "/sapi, /papi, /dapi, /eapi (margin, wallet, PM, COIN-M, options)"

_SPOT_DEPTH = WeightRule(
    5, by_limit=((100, 5), (500, 25), (1000, 50), (5000, 250)), limit_default=100
)
_FUT_DEPTH = WeightRule(10, by_limit=((50, 2), (100, 5), (500, 10), (1000, 20)), limit_default=500)
_FUT_KLINES = WeightRule(5, by_limit=((99, 1), (499, 2), (1000, 5), (1500, 10)), limit_default=500)
_SPOT_TICKER = WeightRule(2, no_symbol=4, by_symbols=((10**9, 4),))
_ROLLING = WeightRule(4, per_symbol=4, per_symbol_cap=200)
_COMMISSION = WeightRule(1, by_param=(("computeCommissionRates", 20),))

#: BINANCE.md §6: these win over the spec files. "unverified" rules are §6's guesses.
WEIGHTS: dict[str, tuple[WeightRule, str]] = {
    # spot, docs of 2026-07-21
    "GET /api/v3/ping": (WeightRule(1), "§6.1"),
    "GET /api/v3/time": (WeightRule(1), "§6.1"),
    "GET /api/v3/exchangeInfo": (WeightRule(20), "§6.1"),
    "GET /api/v3/depth": (_SPOT_DEPTH, "§6.1"),
    "GET /api/v3/trades": (WeightRule(25), "§6.1"),
    "GET /api/v3/historicalTrades": (WeightRule(25), "§6.1"),
    "GET /api/v3/aggTrades": (WeightRule(4), "§6.1"),
    "GET /api/v3/klines": (WeightRule(2), "§6.1"),
    "GET /api/v3/uiKlines": (WeightRule(2), "§6.1"),
    "GET /api/v3/avgPrice": (WeightRule(2), "§6.1"),
    "GET /api/v3/ticker/24hr": (
        WeightRule(2, no_symbol=80, by_symbols=((20, 2), (100, 40), (10**9, 80))),
        "§6.1",
    ),
    "GET /api/v3/ticker/price": (_SPOT_TICKER, "§6.1"),
    "GET /api/v3/ticker/bookTicker": (_SPOT_TICKER, "§6.1"),
    "GET /api/v3/ticker": (_ROLLING, "§6.1"),
    "GET /api/v3/ticker/tradingDay": (_ROLLING, "§6.1"),
    "POST /api/v3/order": (WeightRule(1), "§6.1"),
    "DELETE /api/v3/order": (WeightRule(1), "§6.1"),
    "DELETE /api/v3/openOrders": (WeightRule(1), "§6.1"),
    "POST /api/v3/order/cancelReplace": (WeightRule(1), "§6.1"),
    "POST /api/v3/sor/order": (WeightRule(1), "§6.1"),
    "POST /api/v3/orderList/oco": (WeightRule(1), "§6.1"),
    "POST /api/v3/orderList/oto": (WeightRule(1), "§6.1"),
    "POST /api/v3/orderList/otoco": (WeightRule(1), "§6.1"),
    "POST /api/v3/orderList/opo": (WeightRule(1), "§6.1"),
    "POST /api/v3/orderList/opoco": (WeightRule(1), "§6.1"),
    "DELETE /api/v3/orderList": (WeightRule(1), "§6.1"),
    "POST /api/v3/order/test": (_COMMISSION, "§6.1"),
    "GET /api/v3/order": (WeightRule(4), "§6.1"),
    "GET /api/v3/openOrders": (WeightRule(6, no_symbol=80), "§6.1"),
    "GET /api/v3/allOrders": (WeightRule(20), "§6.1"),
    "GET /api/v3/account": (WeightRule(20), "§6.1"),
    "GET /api/v3/account/commission": (WeightRule(20), "§6.1"),
    "GET /api/v3/myTrades": (WeightRule(20, by_param=(("orderId", 5),)), "§6.1"),
    "GET /api/v3/rateLimit/order": (WeightRule(40), "§6.1"),
    # USDⓈ-M futures, scraped 2026-05-28
    "GET /fapi/v1/ping": (WeightRule(1), "§6.2"),
    "GET /fapi/v1/time": (WeightRule(1), "§6.2"),
    "GET /fapi/v1/exchangeInfo": (WeightRule(1), "§6.2"),
    "GET /fapi/v1/openInterest": (WeightRule(1), "§6.2"),
    "GET /fapi/v1/order": (WeightRule(1), "§6.2"),
    "GET /fapi/v1/depth": (_FUT_DEPTH, "§6.2"),
    "GET /fapi/v1/klines": (_FUT_KLINES, "§6.2"),
    "GET /fapi/v1/continuousKlines": (_FUT_KLINES, "§6.2 klines, unverified"),
    "GET /fapi/v1/indexPriceKlines": (_FUT_KLINES, "§6.2 klines, unverified"),
    "GET /fapi/v1/markPriceKlines": (_FUT_KLINES, "§6.2 klines, unverified"),
    "GET /fapi/v1/premiumIndexKlines": (_FUT_KLINES, "§6.2 klines, unverified"),
    "GET /fapi/v1/ticker/24hr": (WeightRule(1, no_symbol=40), "§6.2"),
    "GET /fapi/v2/ticker/price": (WeightRule(1, no_symbol=2), "§6.2"),
    "GET /fapi/v1/ticker/price": (WeightRule(1, no_symbol=2), "§6.2 as v2 (v1 deprecated)"),
    "GET /fapi/v1/ticker/bookTicker": (WeightRule(2, no_symbol=5), "§6.2"),
    "GET /fapi/v1/premiumIndex": (WeightRule(1, no_symbol=10), "§6.2"),
    "GET /fapi/v1/trades": (WeightRule(5), "§6.2"),
    "GET /fapi/v1/aggTrades": (WeightRule(20), "§6.2"),
    "GET /fapi/v2/balance": (WeightRule(5), "§6.2"),
    "GET /fapi/v3/balance": (WeightRule(5), "§6.2"),
    "GET /fapi/v2/account": (WeightRule(5), "§6.2"),
    "GET /fapi/v3/account": (WeightRule(5), "§6.2"),
    "GET /fapi/v2/positionRisk": (WeightRule(5), "§6.2"),
    "GET /fapi/v3/positionRisk": (WeightRule(5), "§6.2"),
    "GET /fapi/v1/allOrders": (WeightRule(5), "§6.2"),
    "GET /fapi/v1/userTrades": (WeightRule(5), "§6.2"),
    "GET /fapi/v1/openOrders": (WeightRule(1, no_symbol=40), "§6.2"),
    "GET /fapi/v1/income": (WeightRule(30), "§6.2"),
    "POST /fapi/v1/order": (WeightRule(0), "§6.2"),
    "POST /fapi/v1/batchOrders": (WeightRule(5), "§6.2"),
    "POST /fapi/v1/algoOrder": (WeightRule(0), "§6.2"),
    "DELETE /fapi/v1/order": (WeightRule(1), "§6.2"),
    "POST /fapi/v1/leverage": (WeightRule(1), "§6.2"),
    "POST /fapi/v1/listenKey": (WeightRule(1), "§6.2"),
    "PUT /fapi/v1/listenKey": (WeightRule(1), "§6.2"),
    "DELETE /fapi/v1/listenKey": (WeightRule(1), "§6.2"),
    "GET /fapi/v1/rateLimit/order": (WeightRule(1), "§6.2"),
    "GET /fapi/v1/fundingRate": (WeightRule(0), "§2: own pool, outside the weight pool"),
    "GET /fapi/v1/fundingInfo": (WeightRule(0), "§2: own pool, outside the weight pool"),
    "GET /futures/data/openInterestHist": (WeightRule(0), "§2: own pool, outside the weight pool"),
}

#: Swagger weights in prose the plain-number parser can't read; transcribed by hand.
SPEC_WEIGHTS: dict[str, WeightRule] = {
    "GET /api/v3/myPreventedMatches": WeightRule(20, by_param=(("preventedMatchId", 2),)),
    "POST /api/v3/sor/order/test": _COMMISSION,
}

#: Per-endpoint IP pools outside REQUEST_WEIGHT (BINANCE.md §2): (name, limit, interval_s).
POOLS: dict[str, tuple[str, int, int]] = {
    "GET /fapi/v1/fundingRate": ("fundingRate", 500, 300),
    "GET /fapi/v1/fundingInfo": ("fundingRate", 500, 300),
    "GET /futures/data/openInterestHist": ("openInterestHist", 1000, 300),
}

#: What one call adds to each of the account's ORDERS windows (Binance counts an order
#: list's every order; spot "unfilled order count" is the ORDERS pool).
ORDERS: dict[str, int] = {
    "POST /api/v3/order": 1,  # §6.1: new orders add +1
    "POST /api/v3/order/oco": 2,  # openxapi: "OCO adds 2 orders to the unfilled order count"
    "POST /api/v3/orderList/oco": 2,  # swagger: "OCOs add 2 orders to the unfilled order count"
    "POST /api/v3/orderList/oto": 2,  # swagger: "OTOs add 2 orders to the unfilled order count"
    "POST /api/v3/orderList/otoco": 3,  # swagger: "OTOCOs add 3 orders against the unfilled..."
    "POST /api/v3/orderList/opo": 2,  # no count in shared/: working + pending order, as OTO
    "POST /api/v3/orderList/opoco": 3,  # no count in shared/: working order + pending OCO
    "POST /api/v3/sor/order": 1,  # §6.1: new orders add +1
    "POST /api/v3/order/cancelReplace": 1,  # swagger: the new order counts 1 even if not tried
    "POST /fapi/v1/order": 1,  # §6.2: +1 on ORDER-COUNT-10S and on -1M
    "POST /fapi/v1/batchOrders": 1,  # §6.2: +1 on the 1 min window (10 s: ORDERS_BY_WINDOW)
}

#: ``(interval_s, count)`` where one ORDERS window counts a call otherwise than ``ORDERS``.
ORDERS_BY_WINDOW: dict[str, tuple[tuple[int, int], ...]] = {
    "POST /fapi/v1/batchOrders": ((10, 5),),  # §6.2: +5 on the 10 s window, +1 on 1 min
}

#: Spot order placements and cancels cost 0 weight when they succeed (since 2026-04-02).
ZERO_ON_SUCCESS = frozenset(
    {
        "POST /api/v3/order",
        "DELETE /api/v3/order",
        "DELETE /api/v3/openOrders",
        "POST /api/v3/order/cancelReplace",
        "POST /api/v3/order/oco",
        "POST /api/v3/orderList/oco",
        "POST /api/v3/orderList/oto",
        "POST /api/v3/orderList/otoco",
        "POST /api/v3/orderList/opo",
        "POST /api/v3/orderList/opoco",
        "DELETE /api/v3/orderList",
        "POST /api/v3/sor/order",
    }
)

#: BINANCE.md §3: the futures weight header is "not accurate" on these.
IGNORE_WEIGHT_HEADER = frozenset({"GET /fapi/v2/ticker/price", "GET /fapi/v1/ticker/bookTicker"})

#: Seconds an answer may be reused; klines are left to the cache module (closed candles).
CACHE_TTL_S: dict[str, float] = {
    "GET /api/v3/exchangeInfo": 3600,
    "GET /fapi/v1/exchangeInfo": 3600,
    "GET /api/v3/depth": 1,
    "GET /api/v3/avgPrice": 1,
    "GET /api/v3/ticker": 1,
    "GET /api/v3/ticker/24hr": 1,
    "GET /api/v3/ticker/bookTicker": 1,
    "GET /api/v3/ticker/price": 1,
    "GET /api/v3/ticker/tradingDay": 1,
    "GET /fapi/v1/depth": 1,
    "GET /fapi/v1/premiumIndex": 1,
    "GET /fapi/v1/ticker/24hr": 1,
    "GET /fapi/v1/ticker/bookTicker": 1,
    "GET /fapi/v1/ticker/price": 1,
    "GET /fapi/v2/ticker/price": 1,
}

_TAG = re.compile(r"\(\s*(NONE|MARKET[ _]DATA|USER[ _]STREAM|USER[ _]DATA|TRADE)\s*\)", re.I)
_PLAIN_WEIGHT = re.compile(r"Weight(?:\(IP\))?:[ \t]*`?(\d+)`?[ \t]*(?:\n|$)")
_METHODS = {m.value.lower(): m for m in HttpMethod}
_SHORT = {"postman": "P", "openxapi": "X", "swagger": "W"}


@dataclass
class SourceOp:
    """One operation as one file describes it."""

    name: str
    tag: Security | None
    keyed: bool
    params: dict[str, bool]  # name -> required
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    weight_text: str = ""


@dataclass
class Operation:
    method: HttpMethod
    path: str
    seen: dict[str, SourceOp] = field(default_factory=dict)  # source kind -> op

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def market(self) -> Market:
        return Market.SPOT if self.path.startswith("/api/") else Market.FUTURES


# --- reading the files ------------------------------------------------------------------
def _load_yaml(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as f:
        doc: dict[str, Any] = yaml.load(f, Loader=loader)  # noqa: S506 - a safe loader
    return doc


def _tag(text: str) -> Security | None:
    found = _TAG.search(text)
    return Security(found.group(1).upper().replace(" ", "_")) if found else None


def _postman_ops(path: Path) -> dict[str, SourceOp]:
    def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for item in items:
            out.extend(walk(item["item"]) if "item" in item else [item])
        return out

    ops: dict[str, SourceOp] = {}
    for item in walk(json.loads(path.read_text(encoding="utf-8"))["item"]):
        request = item["request"]
        url = request["url"]
        body = (request.get("body") or {}).get("urlencoded") or []
        params = {p["key"]: not p.get("disabled", False) for p in url.get("query", []) + body}
        key = f"{request['method']} /{'/'.join(url['path'])}"
        ops[key] = SourceOp(item["name"], _tag(item["name"]), "signature" in params, params)
    return ops


def _openapi_ops(path: Path) -> dict[str, SourceOp]:
    doc = _load_yaml(path)
    ops: dict[str, SourceOp] = {}
    for route, methods in doc["paths"].items():
        for verb, op in methods.items():
            if verb not in _METHODS:
                continue
            params: dict[str, bool] = {}
            enums: dict[str, tuple[str, ...]] = {}
            for raw in op.get("parameters", []):
                param = _resolve(doc, raw)
                params[param["name"]] = bool(param.get("required"))
                _add_enum(enums, param["name"], _resolve(doc, param.get("schema", {})))
            if "requestBody" in op:
                for content in _resolve(doc, op["requestBody"])["content"].values():
                    schema = _resolve(doc, content["schema"])
                    required = set(schema.get("required", ()))
                    for name, prop in schema.get("properties", {}).items():
                        params[name] = name in required
                        _add_enum(enums, name, _resolve(doc, prop))
            summary = str(op.get("summary", ""))
            key = f"{verb.upper()} {route}"
            keyed = bool(op.get("security"))
            ops[key] = SourceOp(
                summary, _tag(summary), keyed, params, enums, str(op.get("description", ""))
            )
    return ops


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = doc
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _add_enum(enums: dict[str, tuple[str, ...]], name: str, schema: dict[str, Any]) -> None:
    values = schema.get("enum") or (schema.get("items") or {}).get("enum")
    if values:
        enums[name] = tuple(str(v) for v in values)


def read_operations(specs: Path) -> dict[str, Operation]:
    """Every in-scope operation of the five files, keyed ``"METHOD /path"``."""
    files: list[tuple[str, dict[str, SourceOp]]] = [
        *(("postman", _postman_ops(specs / name)) for name in POSTMAN),
        *(("openxapi", _openapi_ops(specs / name)) for name in OPENXAPI),
        ("swagger", _openapi_ops(specs / SWAGGER)),
    ]
    ops: dict[str, Operation] = {}
    for kind, source in files:
        for key, op in source.items():
            method, path = key.split(" ", 1)
            if not path.startswith(IN_SCOPE) or key in EXCLUDED:
                continue
            entry = ops.setdefault(key, Operation(HttpMethod(method), path))
            entry.seen.setdefault(kind, op)
    return ops


# --- deciding each field ----------------------------------------------------------------
def security_of(op: Operation) -> tuple[Security, str]:
    tags = {kind: src.tag for kind, src in op.seen.items() if src.tag is not None}
    keyed = any(src.keyed for src in op.seen.values())
    if not tags:
        if keyed:
            raise SystemExit(f"{op.key}: keyed or signed but no security tag; decide by hand")
        return Security.NONE, "no tag"
    security = next(iter(tags.values()))  # files are read newest first
    agree = [_SHORT[k] for k, t in tags.items() if t is security]
    differ = [f"{_SHORT[k]}={t}" for k, t in tags.items() if t is not security]
    postman = op.seen.get("postman")
    if postman is not None and postman.keyed != (security in (Security.TRADE, Security.USER_DATA)):
        raise SystemExit(f"{op.key}: Postman's signature disagrees with {security}")
    untagged = [_SHORT[k] for k in op.seen if k not in tags]
    notes = [f"not {', '.join(differ)}"] if differ else []
    notes += [f"{'+'.join(untagged)} untagged"] if untagged else []
    return security, "+".join(agree) + (f" ({'; '.join(notes)})" if notes else "")


def required_of(op: Operation) -> tuple[str, ...]:
    for kind in ("postman", "openxapi", "swagger"):
        if kind in op.seen:
            params = op.seen[kind].params
            return tuple(n for n, req in params.items() if req and n not in TRANSPORT_PARAMS)
    return ()


def enums_of(op: Operation) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each parameter's values in the files' order, newest file first."""
    merged: dict[str, dict[str, None]] = {}
    for src in op.seen.values():
        for name, values in src.enums.items():
            if name not in TRANSPORT_PARAMS:
                merged.setdefault(name, {}).update(dict.fromkeys(values))
    return tuple((name, tuple(merged[name])) for name in sorted(merged))


def weight_of(op: Operation) -> tuple[WeightRule, str]:
    if op.key in WEIGHTS:
        return WEIGHTS[op.key]
    swagger = op.seen.get("swagger")
    text = swagger.weight_text if swagger else ""
    start = text.find("Weight")
    plain = _PLAIN_WEIGHT.match(text, start) if start >= 0 else None
    if plain:
        return WeightRule(int(plain.group(1))), "swagger 2024"
    if op.key in SPEC_WEIGHTS:
        return SPEC_WEIGHTS[op.key], "swagger 2024, by hand"
    if start >= 0:
        raise SystemExit(f"{op.key}: swagger weight {text[start : start + 80]!r}; add it by hand")
    return WeightRule(1), "default 1, unverified"


def name_of(op: Operation) -> str:
    for kind in ("postman", "openxapi", "swagger"):
        if kind in op.seen and op.seen[kind].name:
            name = _TAG.sub("", op.seen[kind].name).replace("\u2019", "'")
            return re.sub(r"\s+", " ", name).strip()
    return ""


# --- writing the module -----------------------------------------------------------------
_MARKET = {Market.SPOT: "S", Market.FUTURES: "F"}


def _render_rule(rule: WeightRule) -> str:
    args = [str(rule.base)]
    for f in dataclasses.fields(rule)[1:]:
        value = getattr(rule, f.name)
        if value != f.default:
            args.append(f"{f.name}={_literal(value)}")
    return f"WeightRule({', '.join(args)})"


def _literal(value: Any) -> str:
    if isinstance(value, int) and value >= 10**9:
        return "10**9"
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def render_entry(op: Operation) -> str:
    key = op.key
    security, security_src = security_of(op)
    rule, weight_src = weight_of(op)
    args = [_MARKET[op.market], str(op.method), json.dumps(op.path), security.name]
    args.append(_render_rule(rule))
    extras: list[tuple[str, Any]] = [
        ("orders", ORDERS.get(key, 0)),
        ("weight_on_success", 0 if key in ZERO_ON_SUCCESS else None),
        ("required", required_of(op)),
        ("cache_ttl_s", CACHE_TTL_S.get(key)),
        ("ignore_weight_header", key in IGNORE_WEIGHT_HEADER),
        ("enums", enums_of(op)),
        ("pool", POOLS.get(key)),
        ("orders_by_window", ORDERS_BY_WINDOW.get(key, ())),
    ]
    defaults = {f.name: f.default for f in dataclasses.fields(Endpoint)}
    args += [f"{n}={_literal(v)}" for n, v in extras if v != defaults[n]]
    seen = "".join(_SHORT[k] for k in ("postman", "openxapi", "swagger") if k in op.seen)
    comment = f"    # {name_of(op)} [{seen}]; security: {security_src}; weight: {weight_src}"
    lines = _wrap_comment(comment)
    return "\n".join([*lines, f"    Endpoint({', '.join(args)}),"])


def _wrap_comment(text: str, width: int = 99) -> list[str]:
    lines: list[str] = []
    while len(text) > width:
        cut = text.rfind(" ", 0, width)
        lines.append(text[:cut])
        text = "    #   " + text[cut + 1 :]
    return [*lines, text]


def _order(op: Operation) -> tuple[int, str, int]:
    return (list(Market).index(op.market), op.path, list(HttpMethod).index(op.method))


def render(specs: Path) -> str:
    """The module's text, formatted by ruff."""
    ops = sorted(read_operations(specs).values(), key=_order)
    counts = {m: sum(op.market is m for op in ops) for m in Market}
    by_security = {s: sum(security_of(op)[0] is s for op in ops) for s in Security}
    sources = [
        f"#   {name}\n#     {origin}, as of {as_of}, sha256 {_sha(specs / name)}"
        for name, origin, as_of in SOURCES
    ]
    excluded = [f"#   {key}: {why}" for key, why in EXCLUDED.items()]
    head = [
        '"""Every REST operation of Binance spot /api/v3 and USDⓈ-M futures /fapi and',
        "/futures/data: security type, weight rule, pools, cache TTL, required parameters and",
        'enums. Read through ``binance_constants.ENDPOINTS``."""',
        "",
        "# GENERATED by scripts/gen_endpoints.py; do not edit by hand, edit the script and rerun.",
        "# From shared/specs/ (newest first) and the weight tables of shared/BINANCE.md §6:",
        *sources,
        "# Excluded:",
        *excluded,
        f"#   out of scope: {OUT_OF_SCOPE_NOTE}",
        f"# {len(ops)} operations: " + ", ".join(f"{m} {n}" for m, n in counts.items()),
        "#   by security: " + ", ".join(f"{s.name} {n}" for s, n in by_security.items()),
        "# Each entry's comment: its name [found in Postman P, openxapi X, swagger W]; which",
        "# files' tags give its security type; where its weight rule comes from.",
        "",
        "from __future__ import annotations",
        "",
        "from utils.binance.binance_types import (",
        "    Endpoint, HttpMethod, Market, Security, WeightRule",
        ")",
        "",
        '__all__ = ("ENDPOINT_TABLE",)',
        "",
        "S, F = Market.SPOT, Market.FUTURES",
        "GET, POST = HttpMethod.GET, HttpMethod.POST",
        "PUT, DELETE = HttpMethod.PUT, HttpMethod.DELETE",
        "NONE, MARKET_DATA = Security.NONE, Security.MARKET_DATA",
        "USER_STREAM, USER_DATA, TRADE = Security.USER_STREAM, Security.USER_DATA, Security.TRADE",
        "",
        "ENDPOINT_TABLE: tuple[Endpoint, ...] = (",
    ]
    body = [render_entry(op) for op in ops]
    return _ruff_format("\n".join([*head, *body, ")", ""]))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--specs", type=Path, default=DEFAULT_SPECS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is stale")
    args = parser.parse_args(argv)
    text = render(args.specs)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            sys.stderr.write(f"{args.out} is stale: run scripts/gen_endpoints.py\n")
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
