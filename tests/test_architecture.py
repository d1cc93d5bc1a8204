"""Who may import whom (STYLE.md §3): handler/, analysis/ and bot/ reach Binance only through
``utils.binance.binance_a``, and inside ``utils/binance`` each mechanism stays in its lane."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINANCE = "utils.binance"

# module -> utils.binance modules it must not import (STYLE.md §3)
MECHANISMS = {"binance_ratelimit", "binance_circuit_breaker", "binance_cache", "binance_metrics"}
TRANSPORTS = {
    "binance_request",
    "binance_websocket",
    "binance_ws_connection",
    "binance_ws_dispatch",
    "binance_ws_user",
}
HELPERS = {"binance_public", "binance_private"}
FORBIDDEN: dict[str, set[str]] = {
    "binance_constants": MECHANISMS | TRANSPORTS | HELPERS | {"binance_a", "binance_utils"},
    "binance_types": MECHANISMS | TRANSPORTS | HELPERS | {"binance_a"},
    "binance_models": MECHANISMS | TRANSPORTS | HELPERS | {"binance_a", "binance_utils"},
    "binance_exceptions": MECHANISMS | TRANSPORTS | HELPERS | {"binance_a", "binance_utils"},
    "binance_utils": MECHANISMS | TRANSPORTS | HELPERS | {"binance_a"},
    **{m: (MECHANISMS - {m}) | TRANSPORTS | HELPERS | {"binance_a"} for m in MECHANISMS},
    **{t: MECHANISMS | HELPERS | {"binance_a"} for t in TRANSPORTS},
    **{h: MECHANISMS | TRANSPORTS | {"binance_a"} for h in HELPERS},
}
THIRD_PARTY_FORBIDDEN = {
    "binance_ratelimit": {"aiohttp"},
    "binance_circuit_breaker": {"aiohttp", "redis"},
    "binance_cache": {"aiohttp"},
    "binance_metrics": {"aiohttp", "redis"},
    "binance_utils": {"aiohttp", "redis"},
    "binance_a": {"aiogram", "bot", "handler", "analysis"},
}


def imports_of(path: Path) -> set[str]:
    """Every module named by an import statement in the file (top level or nested)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize(
    "path",
    python_files("handler", "analysis", "bot"),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_app_code_reaches_binance_only_through_binance_a(path: Path) -> None:
    breaches = sorted(
        name
        for name in imports_of(path)
        if name.startswith(f"{BINANCE}.") and not name.startswith(f"{BINANCE}.binance_a")
    )
    assert not breaches, (
        f"{path.relative_to(ROOT)} imports {breaches}; use utils.binance.binance_a"
    )


@pytest.mark.parametrize("module", sorted(FORBIDDEN | THIRD_PARTY_FORBIDDEN))
def test_each_client_module_imports_only_what_its_layer_allows(module: str) -> None:
    path = ROOT / "utils" / "binance" / f"{module}.py"
    if not path.exists():  # a module a later issue adds (binance_websocket)
        assert module in TRANSPORTS
        return
    names = imports_of(path)
    inner = {n.split(".")[2] for n in names if n.startswith(f"{BINANCE}.binance_")}
    outer = {n.split(".")[0] for n in names}
    assert not inner & FORBIDDEN.get(module, set()), (module, inner & FORBIDDEN[module])
    assert not outer & THIRD_PARTY_FORBIDDEN.get(module, set())


def test_the_rule_catches_a_breach(tmp_path: Path) -> None:
    bad = tmp_path / "handler_price.py"
    bad.write_text("from utils.binance.binance_request import Transport\n")
    assert "utils.binance.binance_request" in imports_of(bad)
