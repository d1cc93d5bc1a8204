"""The endpoint table's security types decide signing: what needs a key, what is signed.
(Its weights, every BINANCE.md §6 case: ``test_endpoint_table.py``.)"""

from __future__ import annotations

from utils.binance.binance_constants import ENDPOINTS
from utils.binance.binance_types import Market, Security


def test_signing_follows_the_security_type() -> None:
    assert ENDPOINTS["GET /api/v3/account"].signed
    assert ENDPOINTS["POST /api/v3/order"].security is Security.TRADE
    assert not ENDPOINTS["GET /api/v3/ticker/price"].needs_key
    listen_key = ENDPOINTS["POST /fapi/v1/listenKey"]
    assert listen_key.needs_key
    assert not listen_key.signed
    assert {e.market for e in ENDPOINTS.values()} == {Market.SPOT, Market.FUTURES}
