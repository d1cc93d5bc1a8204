"""The endpoint table against Binance's own files (shared/specs/) and the weight tables of
shared/BINANCE.md §6: every operation present, the security type and required parameters the
files give, every §6 weight rule evaluated for its documented cases, and the committed table
what ``scripts/gen_endpoints.py`` writes today."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from utils.binance.binance_constants import ENDPOINTS
from utils.binance.binance_endpoints import ENDPOINT_TABLE
from utils.binance.binance_types import Market, Security

if TYPE_CHECKING:
    from collections.abc import Iterator


REPO = Path(__file__).resolve().parents[3]
SPECS = REPO.parent / "shared" / "specs"
POSTMAN = (
    "postman_Binance_Spot_API.json",
    "postman_Binance_Derivatives_Trading_USDS_Futures_API.json",
)
OPENXAPI = ("openxapi_binance_spot.yaml", "openxapi_binance_umfutures.yaml")
IN_SCOPE = ("/api/v3/", "/fapi/", "/futures/data/")
#: Binance removed the spot listenKey endpoints on 2026-02-20 (BINANCE.md §9).
EXCLUDED = {f"{m} /api/v3/userDataStream" for m in ("POST", "PUT", "DELETE")}
TRANSPORT = {"timestamp", "signature", "recvWindow"}
TAG = re.compile(r"\(\s*(NONE|MARKET[ _]DATA|USER[ _]STREAM|USER[ _]DATA|TRADE)\s*\)", re.I)


def needs_specs() -> list[pytest.MarkDecorator]:
    """The marks of a module that reads Binance's spec files: they live in the workplace's
    shared/ folder beside the repo; without them a local run skips and CI fails."""
    if SPECS.is_dir():
        return []
    message = f"Binance's spec files are missing: expected them at {SPECS}"
    if "CI" in os.environ:
        raise RuntimeError(message)  # CI (any value) must never pass by skipping
    return [pytest.mark.skip(reason=message)]


def postman_items() -> Iterator[dict[str, Any]]:
    """Every operation (leaf item) of the Postman collections."""

    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            yield from walk(item["item"]) if "item" in item else (item,)

    for name in POSTMAN:
        yield from walk(json.loads((SPECS / name).read_text(encoding="utf-8"))["item"])


def openxapi_docs() -> Iterator[dict[str, Any]]:
    """The openxapi OpenAPI documents, parsed."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for name in OPENXAPI:
        with (SPECS / name).open(encoding="utf-8") as f:
            yield yaml.load(f, Loader=loader)  # noqa: S506 - loader is (C)SafeLoader


pytestmark = needs_specs()


class SpecOp:
    """One operation as one file describes it: name, security tag, parameters."""

    def __init__(self, name: str, keyed: bool, params: dict[str, bool]) -> None:
        found = TAG.search(name)
        self.tag = Security(found.group(1).upper().replace(" ", "_")) if found else None
        self.keyed, self.params = keyed, params
        self.enums: dict[str, list[str]] = {}

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(n for n, req in self.params.items() if req and n not in TRANSPORT)


# --- reading the files again, independently of the generator ---------------------------
@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """The generator, started first so it runs while this module parses the files."""
    out = tmp_path_factory.mktemp("gen") / "binance_endpoints.py"
    args = [sys.executable, str(REPO / "scripts" / "gen_endpoints.py"), "--out", str(out)]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)  # noqa: S603
    yield process, out
    process.kill()
    process.wait()
    if process.stderr is not None:  # unread when this worker ran no test that reads it
        process.stderr.close()


@pytest.fixture(scope="module")
def postman(regenerated: Any) -> dict[str, SpecOp]:
    ops: dict[str, SpecOp] = {}
    for item in postman_items():
        request = item["request"]
        url = request["url"]
        body = (request.get("body") or {}).get("urlencoded") or []
        params = {p["key"]: not p.get("disabled") for p in url.get("query", []) + body}
        key = f"{request['method']} /{'/'.join(url['path'])}"
        ops[key] = SpecOp(item["name"], "signature" in params, params)
    return ops


@pytest.fixture(scope="module")
def openxapi(regenerated: Any) -> dict[str, SpecOp]:
    ops: dict[str, SpecOp] = {}
    for doc in openxapi_docs():
        for path, methods in doc["paths"].items():
            for verb, raw in methods.items():
                if verb not in {"get", "post", "put", "delete"}:
                    continue
                params, enums = _openapi_params(doc, raw)
                op = SpecOp(str(raw.get("summary", "")), bool(raw.get("security")), params)
                op.enums = enums
                ops[f"{verb.upper()} {path}"] = op
    return ops


def _openapi_params(doc: dict[str, Any], op: dict[str, Any]) -> tuple[dict[str, bool], Any]:
    def ref(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    params: dict[str, bool] = {}
    enums: dict[str, list[str]] = {}
    fields = [
        (p["name"], bool(p.get("required")), ref(p.get("schema", {})))
        for p in map(ref, op.get("parameters", []))
    ]
    for content in ref(op.get("requestBody", {"content": {}}))["content"].values():
        schema = ref(content["schema"])
        wanted = set(schema.get("required", ()))
        fields += [(n, n in wanted, ref(s)) for n, s in schema.get("properties", {}).items()]
    for name, required, schema in fields:
        params[name] = required
        values = schema.get("enum") or (schema.get("items") or {}).get("enum")
        if values and name not in TRANSPORT:
            enums[name] = [str(v) for v in values]
    return params, enums


def in_scope(ops: dict[str, SpecOp]) -> set[str]:
    return {k for k in ops if k.split(" ", 1)[1].startswith(IN_SCOPE) and k not in EXCLUDED}


# --- the table against the files --------------------------------------------------------
def test_every_operation_of_the_files_is_in_the_table_and_no_other(
    postman: dict[str, SpecOp], openxapi: dict[str, SpecOp]
) -> None:
    expected = in_scope(postman) | in_scope(openxapi)
    assert len(in_scope(postman)) == 48 + 95  # the Postman files' own counts
    assert sorted(expected - ENDPOINTS.keys()) == []
    assert sorted(ENDPOINTS.keys() - expected) == []
    assert not EXCLUDED & ENDPOINTS.keys()
    assert len(ENDPOINT_TABLE) == len(ENDPOINTS) == 153


def test_counts_per_market_and_security_type() -> None:
    counts: dict[tuple[Market, Security], int] = {}
    for e in ENDPOINT_TABLE:
        counts[e.market, e.security] = counts.get((e.market, e.security), 0) + 1
    S, F = Market.SPOT, Market.FUTURES
    assert counts == {
        (S, Security.NONE): 18,
        (S, Security.MARKET_DATA): 1,
        (S, Security.USER_DATA): 14,
        (S, Security.TRADE): 15,
        (F, Security.NONE): 32,
        (F, Security.MARKET_DATA): 3,
        (F, Security.USER_STREAM): 3,
        (F, Security.USER_DATA): 48,
        (F, Security.TRADE): 19,
    }


def test_security_type_is_the_newest_files_tag(
    postman: dict[str, SpecOp], openxapi: dict[str, SpecOp]
) -> None:
    for key, e in ENDPOINTS.items():
        tags = [ops[key].tag for ops in (postman, openxapi) if key in ops and ops[key].tag]
        assert e.security is (tags[0] if tags else Security.NONE), key
        if key in postman:  # Postman declares a signature exactly where one is needed
            assert e.signed == postman[key].keyed, key
        if not tags:
            assert not any(key in ops and ops[key].keyed for ops in (postman, openxapi)), key


def test_required_parameters_are_the_files(
    postman: dict[str, SpecOp], openxapi: dict[str, SpecOp]
) -> None:
    for key, e in ENDPOINTS.items():
        source = postman.get(key) or openxapi[key]
        assert e.required == source.required, key


def test_enums_cover_the_files_values(openxapi: dict[str, SpecOp]) -> None:
    for key, e in ENDPOINTS.items():
        table = dict(e.enums)
        for name, values in openxapi[key].enums.items() if key in openxapi else ():
            assert set(values) <= set(table.get(name, ())), (key, name)
    assert dict(ENDPOINTS["GET /api/v3/ticker/24hr"].enums)["type"] == ("FULL", "MINI")


def test_the_committed_table_is_what_the_generator_writes(regenerated: Any) -> None:
    process, out = regenerated
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    committed = REPO / "utils" / "binance" / "binance_endpoints.py"
    assert out.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8"), (
        "utils/binance/binance_endpoints.py is stale: run scripts/gen_endpoints.py"
    )


# --- BINANCE.md §6: every rule, every documented case -----------------------------------
def n_symbols(n: int) -> dict[str, Any]:
    return {"symbols": [f"S{i}USDT" for i in range(n)]}


SYM = {"symbol": "BTCUSDT"}
#: §6.1: documented weight 1, 0 when successful since 2026-04-02.
SPOT_ORDER_CALLS = (
    "POST /api/v3/order",
    "DELETE /api/v3/order",
    "DELETE /api/v3/openOrders",
    "POST /api/v3/order/cancelReplace",
    "POST /api/v3/sor/order",
    "POST /api/v3/orderList/oco",
    "POST /api/v3/orderList/oto",
    "POST /api/v3/orderList/otoco",
    "POST /api/v3/orderList/opo",
    "POST /api/v3/orderList/opoco",
    "DELETE /api/v3/orderList",
)
KLINE = {"symbol": "BTCUSDT", "interval": "1m"}

SPOT_CASES: list[tuple[str, dict[str, Any], int]] = [
    ("GET /api/v3/ping", {}, 1),
    ("GET /api/v3/time", {}, 1),
    ("GET /api/v3/exchangeInfo", {}, 20),
    *(
        ("GET /api/v3/depth", {**SYM, "limit": n}, w)
        for n, w in (
            (1, 5),
            (100, 5),
            (101, 25),
            (500, 25),
            (501, 50),
            (1000, 50),
            (1001, 250),
            (5000, 250),
        )
    ),
    ("GET /api/v3/depth", SYM, 5),
    ("GET /api/v3/trades", SYM, 25),
    ("GET /api/v3/historicalTrades", SYM, 25),
    ("GET /api/v3/aggTrades", SYM, 4),
    ("GET /api/v3/klines", {**KLINE, "limit": 1000}, 2),
    ("GET /api/v3/klines", {**KLINE, "limit": 1}, 2),
    ("GET /api/v3/uiKlines", {**KLINE, "limit": 1000}, 2),
    ("GET /api/v3/avgPrice", SYM, 2),
    ("GET /api/v3/ticker/24hr", SYM, 2),
    ("GET /api/v3/ticker/24hr", {}, 80),
    *(
        ("GET /api/v3/ticker/24hr", n_symbols(n), w)
        for n, w in ((1, 2), (20, 2), (21, 40), (100, 40), (101, 80), (500, 80))
    ),
    *(
        (f"GET /api/v3/ticker/{k}", p, w)
        for k in ("price", "bookTicker")
        for p, w in ((SYM, 2), ({}, 4), (n_symbols(1), 4), (n_symbols(300), 4))
    ),
    # ``symbols`` given already as the JSON text Binance reads
    ("GET /api/v3/ticker/price", {"symbols": '["BTCUSDT","ETHUSDT"]'}, 4),
    *(
        (f"GET /api/v3/{k}", p, w)
        for k in ("ticker", "ticker/tradingDay")
        for p, w in (
            (SYM, 4),
            (n_symbols(2), 8),
            (n_symbols(50), 200),
            (n_symbols(51), 200),
            (n_symbols(100), 200),
        )
    ),
    *((k, {}, 1) for k in SPOT_ORDER_CALLS),
    ("POST /api/v3/order/test", {}, 1),
    ("POST /api/v3/order/test", {"computeCommissionRates": "false"}, 1),
    ("POST /api/v3/order/test", {"computeCommissionRates": "true"}, 20),
    ("GET /api/v3/order", SYM, 4),
    ("GET /api/v3/openOrders", SYM, 6),
    ("GET /api/v3/openOrders", {}, 80),
    ("GET /api/v3/allOrders", SYM, 20),
    ("GET /api/v3/account", {}, 20),
    ("GET /api/v3/account/commission", SYM, 20),
    ("GET /api/v3/myTrades", SYM, 20),
    ("GET /api/v3/myTrades", {**SYM, "orderId": 7}, 5),
    ("GET /api/v3/rateLimit/order", {}, 40),
]

FUTURES_CASES: list[tuple[str, dict[str, Any], int]] = [
    *((k, {}, 1) for k in ("GET /fapi/v1/ping", "GET /fapi/v1/time", "GET /fapi/v1/exchangeInfo")),
    ("GET /fapi/v1/openInterest", SYM, 1),
    ("GET /fapi/v1/order", SYM, 1),
    *(
        ("GET /fapi/v1/depth", {**SYM, "limit": n}, w)
        for n, w in ((5, 2), (10, 2), (20, 2), (50, 2), (100, 5), (500, 10), (1000, 20))
    ),
    ("GET /fapi/v1/depth", SYM, 10),
    *(
        ("GET /fapi/v1/klines", {**KLINE, "limit": n}, w)
        for n, w in (
            (1, 1),
            (99, 1),
            (100, 2),
            (499, 2),
            (500, 5),
            (1000, 5),
            (1001, 10),
            (1500, 10),
        )
    ),
    ("GET /fapi/v1/klines", KLINE, 5),
    ("GET /fapi/v1/ticker/24hr", SYM, 1),
    ("GET /fapi/v1/ticker/24hr", {}, 40),
    ("GET /fapi/v2/ticker/price", SYM, 1),
    ("GET /fapi/v2/ticker/price", {}, 2),
    ("GET /fapi/v1/ticker/bookTicker", SYM, 2),
    ("GET /fapi/v1/ticker/bookTicker", {}, 5),
    ("GET /fapi/v1/premiumIndex", SYM, 1),
    ("GET /fapi/v1/premiumIndex", {}, 10),
    ("GET /fapi/v1/trades", SYM, 5),
    ("GET /fapi/v1/aggTrades", SYM, 20),
    *(
        (f"GET /fapi/{k}", {}, 5)
        for k in (
            "v2/balance",
            "v3/balance",
            "v2/account",
            "v3/account",
            "v2/positionRisk",
            "v3/positionRisk",
        )
    ),
    ("GET /fapi/v1/allOrders", SYM, 5),
    ("GET /fapi/v1/userTrades", SYM, 5),
    ("GET /fapi/v1/openOrders", SYM, 1),
    ("GET /fapi/v1/openOrders", {}, 40),
    ("GET /fapi/v1/income", {}, 30),
    ("POST /fapi/v1/order", SYM, 0),
    ("POST /fapi/v1/batchOrders", {}, 5),
    ("POST /fapi/v1/algoOrder", SYM, 0),
    *((k, SYM, 1) for k in ("DELETE /fapi/v1/order", "POST /fapi/v1/leverage")),
    *((f"{m} /fapi/v1/listenKey", {}, 1) for m in ("POST", "PUT", "DELETE")),
    ("GET /fapi/v1/rateLimit/order", {}, 1),
    # BINANCE.md §2: counted in their own pools, outside REQUEST_WEIGHT
    ("GET /fapi/v1/fundingRate", {}, 0),
    ("GET /fapi/v1/fundingInfo", {}, 0),
    ("GET /futures/data/openInterestHist", {}, 0),
]


@pytest.mark.parametrize(("key", "params", "weight"), SPOT_CASES + FUTURES_CASES)
def test_weight_rule_gives_binance_md_weight(
    key: str, params: dict[str, Any], weight: int
) -> None:
    assert ENDPOINTS[key].weight.cost(params) == weight


def test_spot_orders_are_free_on_success_and_count_as_orders() -> None:
    zero = {k for k, e in ENDPOINTS.items() if e.weight_on_success == 0}
    assert set(SPOT_ORDER_CALLS) <= zero
    assert all(k.startswith(("POST /api/v3/", "DELETE /api/v3/")) for k in zero)
    assert "PUT /api/v3/order/amend/keepPriority" not in zero  # free only if the order expires
    placing = {k for k, e in ENDPOINTS.items() if e.orders}
    assert {"POST /api/v3/order", "POST /api/v3/sor/order", "POST /fapi/v1/order"} <= placing
    assert not {k for k in placing if "test" in k or not k.startswith("POST")}


def test_pools_headers_and_cache_ttls() -> None:
    funding = ENDPOINTS["GET /fapi/v1/fundingRate"].pool
    assert funding == ENDPOINTS["GET /fapi/v1/fundingInfo"].pool == ("fundingRate", 500, 300)
    assert ENDPOINTS["GET /futures/data/openInterestHist"].pool == ("openInterestHist", 1000, 300)
    assert {k for k, e in ENDPOINTS.items() if e.ignore_weight_header} == {
        "GET /fapi/v2/ticker/price",
        "GET /fapi/v1/ticker/bookTicker",
    }
    assert ENDPOINTS["GET /api/v3/exchangeInfo"].cache_ttl_s == 3600
    assert ENDPOINTS["GET /fapi/v1/exchangeInfo"].cache_ttl_s == 3600
    assert ENDPOINTS["GET /api/v3/klines"].cache_ttl_s is None
    assert all(e.cache_ttl_s is None for e in ENDPOINT_TABLE if e.needs_key)


def test_table_order_is_market_path_method() -> None:
    order = [(list(Market).index(e.market), e.path, e.method) for e in ENDPOINT_TABLE]
    assert [(m, p) for m, p, _ in order] == sorted((m, p) for m, p, _ in order)
