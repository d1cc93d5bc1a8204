"""The fake exchange serves its whole endpoint table (``fake_weights_table``, the same
operations as the client's: ``tests/utils/binance/test_binance_fake_table.py``) with handlers
of its own, and the operations added for that keep the state the rest of the fake keeps
(checked here at the handler level; ``tests/utils/binance/test_binance_operations.py`` calls
every operation over HTTP through the client)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.fakes.fake_accounts import FakeAccounts
from tests.fakes.fake_binance import TEST_API_KEY
from tests.fakes.fake_market import ApiError, Call, FakeMarket, Market
from tests.fakes.fake_routes import Handler, build_routes
from tests.fakes.fake_trading import FakeTrading
from tests.fakes.fake_weights import DEFAULT_WINDOWS
from tests.fakes.fake_weights_table import OPS

NOW_MS = 1_750_000_000_000
LIMIT = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
LIMIT |= {"quantity": "0.001", "price": "60000"}


@pytest.fixture
def routes() -> dict[str, Handler]:
    market = FakeMarket()
    accounts = FakeAccounts(market)
    trading = FakeTrading(market, accounts.move_position)
    return build_routes(market, trading, accounts, lambda m: DEFAULT_WINDOWS[m])


def ask(routes: dict[str, Handler], key: str, **params: Any) -> Any:
    """What the fake answers an admitted, correctly signed request of ``key``."""
    sent = {k: str(v) for k, v in params.items()}
    symbol = sent.get("symbol")
    market = Market(OPS[key].market)
    call = Call(market, key, sent, TEST_API_KEY, NOW_MS, [symbol] if symbol else None)
    return routes[key](call)


def test_every_operation_of_the_table_has_a_handler_and_nothing_else_does(
    routes: dict[str, Handler],
) -> None:
    # ``{}`` answers (ping, order/test, closing a listenKey) come from handlers too: nothing
    # falls through to the fake's default.
    assert sorted(OPS.keys() - routes.keys()) == []
    assert sorted(routes.keys() - OPS.keys()) == []


def test_order_list_legs_are_ordinary_orders_and_cancelling_the_list_cancels_them(
    routes: dict[str, Handler],
) -> None:
    oco = ask(
        routes,
        "POST /api/v3/orderList/oco",
        symbol="BTCUSDT",
        side="SELL",
        quantity="0.001",
        aboveType="LIMIT_MAKER",
        abovePrice="70000",
        belowType="STOP_LOSS",
        belowStopPrice="60000",
    )
    legs = [o["orderId"] for o in oco["orders"]]
    stop = ask(routes, "GET /api/v3/order", symbol="BTCUSDT", orderId=legs[0])
    assert (stop["type"], stop["stopPrice"], stop["orderListId"]) == (
        "STOP_LOSS",
        "60000.00000000",
        oco["orderListId"],
    )
    done = ask(
        routes, "DELETE /api/v3/orderList", symbol="BTCUSDT", orderListId=oco["orderListId"]
    )
    assert done["listOrderStatus"] == "ALL_DONE"
    assert ask(routes, "GET /api/v3/openOrders", symbol="BTCUSDT") == []


def test_an_order_list_with_a_bad_leg_places_nothing(routes: dict[str, Handler]) -> None:
    with pytest.raises(ApiError, match="PRICE_FILTER"):
        ask(
            routes,
            "POST /api/v3/orderList/oco",
            symbol="BTCUSDT",
            side="SELL",
            quantity="0.001",
            aboveType="LIMIT_MAKER",
            abovePrice="70000",
            belowType="STOP_LOSS",
            belowStopPrice="60000.001",
        )
    assert ask(routes, "GET /api/v3/openOrders", symbol="BTCUSDT") == []


def test_a_pending_leg_waits_and_a_working_leg_rests(routes: dict[str, Handler]) -> None:
    oto = ask(
        routes,
        "POST /api/v3/orderList/oto",
        symbol="BTCUSDT",
        workingType="LIMIT",
        workingSide="BUY",
        workingPrice="60000",
        workingQuantity="0.001",
        workingTimeInForce="GTC",
        pendingType="MARKET",
        pendingSide="SELL",
        pendingQuantity="0.001",
    )
    assert [r["status"] for r in oto["orderReports"]] == ["NEW", "PENDING_NEW"]
    assert oto["orderReports"][1]["type"] == "MARKET"


def test_cancel_replace_stops_when_the_cancel_fails(routes: dict[str, Handler]) -> None:
    with pytest.raises(ApiError) as raised:
        ask(
            routes,
            "POST /api/v3/order/cancelReplace",
            cancelReplaceMode="STOP_ON_FAILURE",
            cancelOrderId=999,
            **LIMIT,
        )
    assert raised.value.code == -2022
    assert ask(routes, "GET /api/v3/openOrders", symbol="BTCUSDT") == []


def test_amending_keeps_the_order_and_records_the_amendment(routes: dict[str, Handler]) -> None:
    placed = ask(routes, "POST /api/v3/order", **LIMIT)
    ask(
        routes,
        "PUT /api/v3/order/amend/keepPriority",
        symbol="BTCUSDT",
        orderId=placed["orderId"],
        newQty="0.0004",
    )
    order = ask(routes, "GET /api/v3/order", symbol="BTCUSDT", orderId=placed["orderId"])
    history = ask(
        routes, "GET /api/v3/order/amendments", symbol="BTCUSDT", orderId=placed["orderId"]
    )
    assert (order["origQty"], order["status"]) == ("0.00040000", "NEW")
    assert [(a["origQty"], a["newQty"]) for a in history] == [("0.00100000", "0.00040000")]
    with pytest.raises(ApiError, match="increase"):
        ask(
            routes,
            "PUT /api/v3/order/amend/keepPriority",
            symbol="BTCUSDT",
            orderId=placed["orderId"],
            newQty="0.001",
        )


def test_a_futures_batch_answers_each_order_on_its_own(routes: dict[str, Handler]) -> None:
    tiny = {**LIMIT, "quantity": "0.00001"}
    answers = ask(
        routes, "POST /fapi/v1/batchOrders", batchOrders=orjson.dumps([LIMIT, tiny]).decode()
    )
    assert answers[0]["status"] == "NEW"
    assert answers[1]["code"] == -1013
    assert len(ask(routes, "GET /fapi/v1/openOrders", symbol="BTCUSDT")) == 1


def test_switching_a_futures_setting_to_its_current_value_is_refused(
    routes: dict[str, Handler],
) -> None:
    ask(routes, "POST /fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    with pytest.raises(ApiError) as raised:
        ask(routes, "POST /fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    assert raised.value.code == -4046
    config = ask(routes, "GET /fapi/v1/symbolConfig", symbol="BTCUSDT")
    assert config[0]["marginType"] == "ISOLATED"


def test_a_convert_quote_is_accepted_once(routes: dict[str, Handler]) -> None:
    quote = ask(
        routes, "POST /fapi/v1/convert/getQuote", fromAsset="USDT", toAsset="BTC", fromAmount="650"
    )
    assert quote["toAmount"] == "0.01000000"
    order = ask(routes, "POST /fapi/v1/convert/acceptQuote", quoteId=quote["quoteId"])
    status = ask(routes, "GET /fapi/v1/convert/orderStatus", orderId=order["orderId"])
    assert (status["orderStatus"], status["toAmount"]) == ("SUCCESS", "0.01000000")
    with pytest.raises(ApiError):
        ask(routes, "POST /fapi/v1/convert/acceptQuote", quoteId=quote["quoteId"])
