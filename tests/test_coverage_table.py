"""The README's coverage table, measured: per market, the operations in Binance's spec files,
those callable through ``client.call`` (the endpoint table) and those with a typed helper.

``UPDATE_README=1 pytest tests/test_coverage_table.py`` rewrites the table in README.md
instead of failing when it is out of date."""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from tests.utils.binance.test_endpoint_table import (
    IN_SCOPE,
    needs_specs,
    openxapi_docs,
    postman_items,
)
from utils.binance import binance_constants
from utils.binance.binance_constants import ENDPOINTS
from utils.binance.binance_types import Endpoint, Market

if TYPE_CHECKING:
    from collections.abc import Iterable


REPO: Final = Path(__file__).resolve().parents[1]
README: Final = REPO / "README.md"
HELPER_MODULES: Final = ("binance_public.py", "binance_private.py")
START, END = "<!-- coverage:start -->", "<!-- coverage:end -->"
MARKETS: Final = {
    Market.SPOT: "Spot (`/api/v3`)",
    Market.FUTURES: "USDⓈ-M futures (`/fapi`, `/futures/data`)",
}

pytestmark = needs_specs()


def spec_operations() -> set[str]:
    """``"METHOD /path"`` of every in-scope operation in the Postman and openxapi files."""

    keys = {
        f"{item['request']['method']} /{'/'.join(item['request']['url']['path'])}"
        for item in postman_items()
    }
    for doc in openxapi_docs():
        paths = doc["paths"]
        keys |= {
            f"{verb.upper()} {path}"
            for path, methods in paths.items()
            for verb in methods
            if verb in {"get", "post", "put", "delete"}
        }
    return {k for k in keys if k.split(" ", 1)[1].startswith(IN_SCOPE)}


def helper_operations() -> set[str]:
    """Table keys written as string literals in the typed-helper modules."""
    found: set[str] = set()
    for name in HELPER_MODULES:
        tree = ast.parse((REPO / "utils" / "binance" / name).read_text(encoding="utf-8"))
        found |= {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in ENDPOINTS
        }
        # Lookups shared with the pipeline live in the table module and are imported by name.
        found |= {
            entry.key
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == binance_constants.__name__
            for alias in node.names
            if isinstance(table := getattr(binance_constants, alias.name), Mapping)
            for entry in table.values()
            if isinstance(entry, Endpoint)
        }
    return found


def market_of(key: str) -> Market:
    return Market.SPOT if key.split(" ", 1)[1].startswith("/api/") else Market.FUTURES


def render(spec: set[str], callable_: Iterable[str], helpers: set[str]) -> str:
    columns = (spec, set(callable_), helpers)
    head = ("Market", "Operations in the spec files", "Callable (`client.call`)", "Typed helpers")
    rows = ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|"]
    for market, label in MARKETS.items():
        counts = [sum(1 for k in keys if market_of(k) is market) for keys in columns]
        rows.append(f"| {label} | " + " | ".join(map(str, counts)) + " |")
    rows.append("| **All** | " + " | ".join(f"**{len(keys)}**" for keys in columns) + " |")
    return "\n".join(rows)


@pytest.fixture(scope="module")
def spec() -> set[str]:
    return spec_operations()


def test_readme_coverage_table_is_the_measured_one(spec: set[str]) -> None:
    table = render(spec, ENDPOINTS, helper_operations())
    readme = README.read_text(encoding="utf-8")
    assert START in readme, f"README.md lacks the {START} ... {END} markers"
    head, rest = readme.split(START, 1)
    current, tail = rest.split(END, 1)
    if os.environ.get("UPDATE_README") == "1":
        README.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")
        return
    assert current.strip("\n") == table, "run: UPDATE_README=1 pytest tests/test_coverage_table.py"


def test_every_operation_of_the_spec_files_is_callable_but_the_removed_ones(
    spec: set[str],
) -> None:
    removed = {f"{m} /api/v3/userDataStream" for m in ("POST", "PUT", "DELETE")}
    assert spec - ENDPOINTS.keys() == removed
    assert helper_operations() <= ENDPOINTS.keys()
