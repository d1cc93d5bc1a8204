"""Every operation of the endpoint table, called through one real ``BinanceClient`` over HTTP
against the fake exchange: parameters from the entry's required names and enums (plus what
an operation needs to find, such as an order placed first), a Binance-shaped answer, and the
request seen by the fake with status 200."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import pytest
import pytest_asyncio

from tests.fakes.fake_binance import FakeBinance
from tests.utils.binance.conftest import API_KEY, SECRET, make_config, no_redis
from utils.binance import BinanceClient
from utils.binance.binance_constants import ENDPOINTS
from utils.binance.binance_exceptions import BinanceAPIError, BinanceInputError
from utils.binance.binance_types import Endpoint, HttpMethod, Market, Security

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

#: Tests on the module's one fake and one client share their event loop.
module_loop = pytest.mark.asyncio(loop_scope="module")

NOW_MS: Final = int(time.time() * 1000)
DAY_MS: Final = 86_400_000
KLINE: Final = "<kline row>"  # the answer is a list of 12-field kline rows
#: Answers Binance itself gives here: ``{}`` (ping, test order, closing a listenKey) or an
#: empty list (the fake never liquidates nor prevents a self-trade).
EMPTY: Final = {
    "GET /api/v3/ping",
    "GET /fapi/v1/ping",
    "POST /api/v3/order/test",
    "DELETE /fapi/v1/listenKey",
    "GET /api/v3/myPreventedMatches",
    "GET /fapi/v1/forceOrders",
}
#: Values for required parameters, before the entry's first enum value.
DEFAULTS: Final[dict[str, Any]] = {
    "symbol": "BTCUSDT",
    "pair": "BTCUSDT",
    "interval": "1h",
    "period": "1h",
    "contractType": "PERPETUAL",
    "fromId": 1,
    "asset": "USDT",
    "brokerId": "FAKEBRKR",
    "customerId": "customer1",
    "email": "trader@example.com",
    "startTime": NOW_MS - DAY_MS,
    "endTime": NOW_MS,
}
LIMIT: Final = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.001",
    "price": "60000",
}
MARKET: Final = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
OCO: Final = {
    "symbol": "BTCUSDT",
    "side": "SELL",
    "quantity": "0.001",
    "aboveType": "LIMIT_MAKER",
    "abovePrice": "70000",
    "belowType": "STOP_LOSS_LIMIT",
    "belowPrice": "59900",
    "belowStopPrice": "60000",
    "belowTimeInForce": "GTC",
}
WORKING: Final = {
    "symbol": "BTCUSDT",
    "workingType": "LIMIT",
    "workingSide": "BUY",
    "workingPrice": "60000",
    "workingQuantity": "0.001",
    "workingTimeInForce": "GTC",
    "pendingSide": "SELL",
}
ALGO: Final = {
    "algoType": "CONDITIONAL",
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "STOP_MARKET",
    "quantity": "0.001",
    "triggerPrice": "60000",
}


# --- what some operations need first ---------------------------------------------------
async def spot_order(client: BinanceClient) -> dict[str, Any]:
    return {"orderId": (await client.call("POST /api/v3/order", **LIMIT))["orderId"]}


async def replaceable(client: BinanceClient) -> dict[str, Any]:
    return {"cancelOrderId": (await spot_order(client))["orderId"]}


async def spot_fill(client: BinanceClient) -> dict[str, Any]:
    await client.call("POST /api/v3/order", **MARKET)
    return {}


async def sor_fill(client: BinanceClient) -> dict[str, Any]:
    await client.call("POST /api/v3/sor/order", **MARKET)
    return {}


async def spot_list(client: BinanceClient) -> dict[str, Any]:
    return {"orderListId": (await client.call("POST /api/v3/orderList/oco", **OCO))["orderListId"]}


async def amended(client: BinanceClient) -> dict[str, Any]:
    order = await spot_order(client)
    await client.call(
        "PUT /api/v3/order/amend/keepPriority", symbol="BTCUSDT", newQty="0.0005", **order
    )
    return order


async def futures_order(client: BinanceClient) -> dict[str, Any]:
    return {"orderId": (await client.call("POST /fapi/v1/order", **LIMIT))["orderId"]}


async def futures_fill(client: BinanceClient) -> dict[str, Any]:
    await client.call("POST /fapi/v1/order", **MARKET)
    return {}


async def modified(client: BinanceClient) -> dict[str, Any]:
    order = await futures_order(client)
    await client.call("PUT /fapi/v1/order", **{**LIMIT, "price": "59000"}, **order)
    return {}


async def batch_to_modify(client: BinanceClient) -> dict[str, Any]:
    order = await futures_order(client)
    return {"batchOrders": [{**LIMIT, "price": "59000", **order}]}


async def batch_to_cancel(client: BinanceClient) -> dict[str, Any]:
    return {"orderIdList": [(await futures_order(client))["orderId"]]}


async def algo(client: BinanceClient) -> dict[str, Any]:
    return {"algoId": (await client.call("POST /fapi/v1/algoOrder", **ALGO))["algoId"]}


async def quote(client: BinanceClient) -> dict[str, Any]:
    reply = await client.call(
        "POST /fapi/v1/convert/getQuote", fromAsset="USDT", toAsset="BTC", fromAmount="100"
    )
    return {"quoteId": reply["quoteId"]}


async def converted(client: BinanceClient) -> dict[str, Any]:
    reply = await client.call("POST /fapi/v1/convert/acceptQuote", **await quote(client))
    return {"orderId": reply["orderId"]}


async def listen_key(client: BinanceClient) -> dict[str, Any]:
    return {"listenKey": (await client.call("POST /fapi/v1/listenKey"))["listenKey"]}


async def margin_moved(client: BinanceClient) -> dict[str, Any]:
    await client.call("POST /fapi/v1/positionMargin", symbol="BTCUSDT", amount="10", type=1)
    return {}


async def customized(client: BinanceClient) -> dict[str, Any]:
    await client.call(
        "POST /fapi/v1/apiReferral/customization", customerId="customer1", email="t@example.com"
    )
    return {}


async def download(client: BinanceClient) -> dict[str, Any]:
    reply = await client.call(
        "GET /fapi/v1/income/asyn", startTime=NOW_MS - DAY_MS, endTime=NOW_MS
    )
    return {"downloadId": reply["downloadId"]}


@dataclass(frozen=True)
class Case:
    """One operation: a field its answer must have, extra parameters, what it needs first."""

    expect: str
    params: dict[str, Any] = field(default_factory=dict)
    prep: Callable[[BinanceClient], Awaitable[dict[str, Any]]] | None = None


SYM: Final = {"symbol": "BTCUSDT"}
S, F, D, R = "/api/v3", "/fapi/v1", "/futures/data", "/fapi/v1/apiReferral"
CASES: Final[dict[str, Case]] = {
    # spot market data
    f"GET {S}/ping": Case(""),
    f"GET {S}/time": Case("serverTime"),
    f"GET {S}/exchangeInfo": Case("rateLimits"),
    f"GET {S}/executionRules": Case("symbolRules", SYM),
    f"GET {S}/depth": Case("bids"),
    f"GET {S}/trades": Case("isBuyerMaker"),
    f"GET {S}/historicalTrades": Case("quoteQty"),
    f"GET {S}/historicalBlockTrades": Case("price"),
    f"GET {S}/aggTrades": Case("a"),
    f"GET {S}/klines": Case(KLINE),
    f"GET {S}/uiKlines": Case(KLINE),
    f"GET {S}/avgPrice": Case("mins"),
    f"GET {S}/ticker/24hr": Case("prevClosePrice", SYM),
    f"GET {S}/ticker/tradingDay": Case("priceChangePercent", SYM),
    f"GET {S}/ticker": Case("openTime", SYM),
    f"GET {S}/ticker/price": Case("price", SYM),
    f"GET {S}/ticker/bookTicker": Case("bidPrice", SYM),
    f"GET {S}/referencePrice": Case("referencePrice"),
    f"GET {S}/referencePrice/calculation": Case("calculationType"),
    # spot account and orders
    f"GET {S}/account": Case("balances"),
    f"GET {S}/account/commission": Case("standardCommission"),
    f"GET {S}/rateLimit/order": Case("rateLimitType"),
    f"GET {S}/myFilters": Case("symbolFilters"),
    f"GET {S}/myPreventedMatches": Case(""),
    f"POST {S}/order": Case("orderId", LIMIT),
    f"POST {S}/order/test": Case("", LIMIT),
    f"GET {S}/order": Case("status", prep=spot_order),
    f"DELETE {S}/order": Case("origClientOrderId", prep=spot_order),
    f"PUT {S}/order/amend/keepPriority": Case("amendedOrder", {"newQty": "0.0005"}, spot_order),
    f"GET {S}/order/amendments": Case("newQty", prep=amended),
    f"POST {S}/order/cancelReplace": Case(
        "cancelResponse", {**LIMIT, "cancelReplaceMode": "STOP_ON_FAILURE"}, replaceable
    ),
    f"GET {S}/openOrders": Case("orderId", SYM, spot_order),
    f"DELETE {S}/openOrders": Case("origClientOrderId", prep=spot_order),
    f"GET {S}/allOrders": Case("orderId", prep=spot_order),
    f"GET {S}/myTrades": Case("commission", prep=spot_fill),
    f"POST {S}/sor/order": Case("usedSor", MARKET),
    f"POST {S}/sor/order/test": Case(
        "standardCommissionForOrder", {**MARKET, "computeCommissionRates": "true"}
    ),
    f"GET {S}/myAllocations": Case("allocationType", prep=sor_fill),
    f"POST {S}/order/oco": Case(
        "orderReports",
        {
            "side": "SELL",
            "quantity": "0.001",
            "price": "70000",
            "stopPrice": "60000",
            "stopLimitPrice": "59900",
            "stopLimitTimeInForce": "GTC",
        },
    ),
    f"POST {S}/orderList/oco": Case("orderReports", OCO),
    f"POST {S}/orderList/oto": Case(
        "orderReports",
        {
            **WORKING,
            "pendingType": "LIMIT",
            "pendingPrice": "70000",
            "pendingQuantity": "0.001",
            "pendingTimeInForce": "GTC",
        },
    ),
    f"POST {S}/orderList/otoco": Case(
        "orderReports",
        {
            **WORKING,
            "pendingQuantity": "0.001",
            "pendingAboveType": "LIMIT_MAKER",
            "pendingAbovePrice": "70000",
            "pendingBelowType": "STOP_LOSS",
            "pendingBelowStopPrice": "55000",
        },
    ),
    f"POST {S}/orderList/opo": Case(
        "orderReports",
        {**WORKING, "pendingType": "LIMIT_MAKER", "pendingPrice": "70000"},
    ),
    f"POST {S}/orderList/opoco": Case(
        "orderReports",
        {
            **WORKING,
            "pendingAboveType": "LIMIT_MAKER",
            "pendingAbovePrice": "70000",
            "pendingBelowType": "STOP_LOSS_LIMIT",
            "pendingBelowPrice": "54900",
            "pendingBelowStopPrice": "55000",
            "pendingBelowTimeInForce": "GTC",
        },
    ),
    f"GET {S}/orderList": Case("listOrderStatus", prep=spot_list),
    f"DELETE {S}/orderList": Case("orderReports", prep=spot_list),
    f"GET {S}/openOrderList": Case("contingencyType", prep=spot_list),
    f"GET {S}/allOrderList": Case("listClientOrderId", prep=spot_list),
    # futures market data
    f"GET {F}/ping": Case(""),
    f"GET {F}/time": Case("serverTime"),
    f"GET {F}/exchangeInfo": Case("futuresType"),
    f"GET {F}/depth": Case("asks"),
    f"GET {F}/rpiDepth": Case("asks"),
    f"GET {F}/trades": Case("price"),
    f"GET {F}/historicalTrades": Case("quoteQty"),
    f"GET {F}/aggTrades": Case("T"),
    f"GET {F}/klines": Case(KLINE),
    f"GET {F}/continuousKlines": Case(KLINE),
    f"GET {F}/indexPriceKlines": Case(KLINE),
    f"GET {F}/markPriceKlines": Case(KLINE),
    f"GET {F}/premiumIndexKlines": Case(KLINE),
    f"GET {F}/premiumIndex": Case("markPrice", SYM),
    f"GET {F}/fundingRate": Case("fundingRate", {**SYM, "limit": 3}),
    f"GET {F}/fundingInfo": Case("fundingIntervalHours"),
    f"GET {F}/ticker/24hr": Case("lastPrice", SYM),
    f"GET {F}/ticker/price": Case("price", SYM),
    "GET /fapi/v2/ticker/price": Case("price", SYM),
    f"GET {F}/ticker/bookTicker": Case("askQty", SYM),
    f"GET {F}/openInterest": Case("openInterest"),
    f"GET {F}/assetIndex": Case("bidBuffer"),
    f"GET {F}/indexInfo": Case("baseAssetList"),
    f"GET {F}/constituents": Case("constituents"),
    f"GET {F}/insuranceBalance": Case("assets"),
    f"GET {F}/symbolAdlRisk": Case("adlRisk", SYM),
    f"GET {F}/tradingSchedule": Case("marketSchedules"),
    f"GET {F}/convert/exchangeInfo": Case("fromAssetMinAmount"),
    f"GET {D}/openInterestHist": Case("sumOpenInterest"),
    f"GET {D}/takerlongshortRatio": Case("buySellRatio"),
    f"GET {D}/globalLongShortAccountRatio": Case("longShortRatio"),
    f"GET {D}/topLongShortAccountRatio": Case("longAccount"),
    f"GET {D}/topLongShortPositionRatio": Case("shortAccount"),
    f"GET {D}/basis": Case("basisRate"),
    f"GET {D}/delivery-price": Case("deliveryPrice"),
    # futures account
    f"POST {F}/listenKey": Case("listenKey"),
    f"PUT {F}/listenKey": Case("listenKey", prep=listen_key),
    f"DELETE {F}/listenKey": Case("", prep=listen_key),
    "GET /fapi/v2/account": Case("feeTier"),
    "GET /fapi/v3/account": Case("totalWalletBalance"),
    "GET /fapi/v2/balance": Case("marginAvailable"),
    "GET /fapi/v3/balance": Case("crossWalletBalance"),
    "GET /fapi/v2/positionRisk": Case("marginType", prep=futures_fill),
    "GET /fapi/v3/positionRisk": Case("positionAmt", prep=futures_fill),
    f"GET {F}/accountConfig": Case("dualSidePosition"),
    f"GET {F}/symbolConfig": Case("leverage", SYM),
    f"POST {F}/leverage": Case("maxNotionalValue", {"leverage": 10}),
    f"GET {F}/leverageBracket": Case("brackets", SYM),
    f"POST {F}/marginType": Case("msg", {"marginType": "ISOLATED"}),
    f"GET {F}/positionSide/dual": Case("dualSidePosition"),
    f"POST {F}/positionSide/dual": Case("msg", {"dualSidePosition": "true"}),
    f"GET {F}/multiAssetsMargin": Case("multiAssetsMargin"),
    f"POST {F}/multiAssetsMargin": Case("msg", {"multiAssetsMargin": "true"}),
    f"GET {F}/feeBurn": Case("feeBurn"),
    f"POST {F}/feeBurn": Case("msg", {"feeBurn": "true"}),
    f"POST {F}/positionMargin": Case("amount", {"amount": "10", "type": 1}),
    f"GET {F}/positionMargin/history": Case("deltaType", prep=margin_moved),
    f"GET {F}/commissionRate": Case("takerCommissionRate"),
    f"GET {F}/adlQuantile": Case("adlQuantile", prep=futures_fill),
    f"GET {F}/apiTradingStatus": Case("indicators"),
    f"GET {F}/pmAccountInfo": Case("maxWithdrawAmountUSD"),
    f"GET {F}/rateLimit/order": Case("intervalNum"),
    f"GET {F}/income": Case("incomeType"),
    f"GET {F}/forceOrders": Case(""),
    f"POST {F}/stock/contract": Case("code"),
    f"GET {F}/income/asyn": Case("downloadId"),
    f"GET {F}/order/asyn": Case("downloadId"),
    f"GET {F}/trade/asyn": Case("downloadId"),
    f"GET {F}/income/asyn/id": Case("url", prep=download),
    f"GET {F}/order/asyn/id": Case("url", prep=download),
    f"GET {F}/trade/asyn/id": Case("url", prep=download),
    # futures orders
    f"POST {F}/order": Case("clientOrderId", LIMIT),
    f"POST {F}/order/test": Case("origType", LIMIT),
    f"GET {F}/order": Case("avgPrice", prep=futures_order),
    f"PUT {F}/order": Case("price", {**LIMIT, "price": "59000"}, futures_order),
    f"DELETE {F}/order": Case("status", prep=futures_order),
    f"GET {F}/openOrder": Case("orderId", prep=futures_order),
    f"GET {F}/openOrders": Case("orderId", SYM, futures_order),
    f"GET {F}/allOrders": Case("orderId", prep=futures_order),
    f"DELETE {F}/allOpenOrders": Case("msg", prep=futures_order),
    f"GET {F}/orderAmendment": Case("amendment", prep=modified),
    f"GET {F}/userTrades": Case("realizedPnl", prep=futures_fill),
    f"POST {F}/countdownCancelAll": Case("countdownTime", {"countdownTime": 120_000}),
    f"POST {F}/batchOrders": Case("orderId", {"batchOrders": [LIMIT, LIMIT]}),
    f"PUT {F}/batchOrders": Case("price", prep=batch_to_modify),
    f"DELETE {F}/batchOrders": Case("status", prep=batch_to_cancel),
    f"POST {F}/algoOrder": Case("algoId", ALGO),
    f"GET {F}/algoOrder": Case("algoStatus", prep=algo),
    f"DELETE {F}/algoOrder": Case("msg", prep=algo),
    f"GET {F}/openAlgoOrders": Case("triggerPrice", prep=algo),
    f"GET {F}/allAlgoOrders": Case("orderType", prep=algo),
    f"DELETE {F}/algoOpenOrders": Case("msg", prep=algo),
    # futures convert and API referral
    f"POST {F}/convert/getQuote": Case(
        "ratio", {"fromAsset": "USDT", "toAsset": "BTC", "fromAmount": "100"}
    ),
    f"POST {F}/convert/acceptQuote": Case("orderStatus", prep=quote),
    f"GET {F}/convert/orderStatus": Case("toAmount", prep=converted),
    f"GET {R}/ifNewUser": Case("ifNewUser"),
    f"POST {R}/customization": Case("customerId"),
    f"GET {R}/customization": Case("email", prep=customized),
    f"POST {R}/userCustomization": Case("brokerId"),
    f"GET {R}/userCustomization": Case("customerId"),
    f"GET {R}/overview": Case("totalTradeVol"),
    f"GET {R}/tradeVol": Case("tradeVol"),
    f"GET {R}/rebateVol": Case("rebateVol"),
    f"GET {R}/traderNum": Case("newTrader"),
    f"GET {R}/traderSummary": Case("customerId"),
}


async def prepared(client: BinanceClient, key: str) -> dict[str, Any]:
    """The parameters of ``key``: the case's, then defaults for the required rest."""
    ep, case = ENDPOINTS[key], CASES[key]
    params = dict(case.params)
    if case.prep is not None:
        params.update(await case.prep(client))
    enums = dict(ep.enums)
    for name in ep.required:
        if name not in params:
            params[name] = DEFAULTS[name] if name in DEFAULTS else enums[name][0]
    return params


async def exercise(client: BinanceClient, fake: FakeBinance, key: str) -> Any:
    """Call ``key`` with valid parameters; the answer, after checking the fake answered it."""
    params = await prepared(client, key)
    before = fake.count(key, status=200)
    answer = await client.call(key, **params)
    assert fake.count(key, status=200) == before + 1, f"{key} did not reach the fake"
    return answer


def shaped(key: str, answer: Any) -> bool:
    """A dict or a list (of dicts or kline rows) carrying the case's field."""
    wanted = CASES[key].expect
    if key in EMPTY:
        return answer in ({}, [])
    first = answer[0] if isinstance(answer, list) and answer else answer
    if wanted == KLINE:
        return isinstance(first, list) and len(first) == 12 and isinstance(first[0], int)
    return isinstance(first, dict) and wanted in first


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake_binance() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(api_keys={API_KEY: SECRET}) as fake:
        yield fake


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(fake_binance: FakeBinance) -> AsyncIterator[BinanceClient]:
    async with BinanceClient(config=make_config(fake_binance), redis=no_redis()) as c:
        yield c


@module_loop
@pytest.mark.parametrize("key", list(ENDPOINTS))
async def test_operation_answers_in_binance_shape_over_http(
    client: BinanceClient, fake_binance: FakeBinance, key: str
) -> None:
    answer = await exercise(client, fake_binance, key)
    assert shaped(key, answer), f"{key} answered {str(answer)[:300]}"


def test_every_operation_of_the_table_has_a_case() -> None:
    assert sorted(ENDPOINTS.keys() - CASES.keys()) == []
    assert sorted(CASES.keys() - ENDPOINTS.keys()) == []


async def test_at_least_40_operations_of_every_security_type_succeed_through_one_client() -> None:
    done: dict[Security, int] = dict.fromkeys(Security, 0)
    failed: list[str] = []
    async with (
        FakeBinance(api_keys={API_KEY: SECRET}) as fake,
        BinanceClient(config=make_config(fake), redis=no_redis()) as one,
    ):
        for key, ep in ENDPOINTS.items():
            try:
                answer = await exercise(one, fake, key)
            except (BinanceAPIError, AssertionError) as e:
                failed.append(f"{key}: {e}")
                continue
            if shaped(key, answer):
                done[ep.security] += 1
            else:
                failed.append(f"{key}: {str(answer)[:200]}")
    assert failed == []
    assert sum(done.values()) >= 40, done
    assert all(done.values()), done


@module_loop
async def test_an_unknown_operation_is_refused_before_anything_is_sent(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    sent = fake_binance.count()
    with pytest.raises(BinanceInputError, match="not a known operation"):
        await client.call("GET /api/v3/tickers", symbol="BTCUSDT")
    assert fake_binance.count() == sent


@pytest.mark.parametrize(
    ("market", "path"), [(Market.SPOT, "/api/v3/tickers"), (Market.FUTURES, "/fapi/v1/tickers")]
)
@module_loop
async def test_an_unknown_path_answers_404_like_binance(
    client: BinanceClient, fake_binance: FakeBinance, market: Market, path: str
) -> None:
    unknown = Endpoint(market, HttpMethod.GET, path, Security.NONE)
    with pytest.raises(BinanceAPIError) as raised:
        await client.call_endpoint(unknown)
    assert (raised.value.http_status, raised.value.code) == (404, -5000)
    assert raised.value.msg == f"Path {path}, Method GET is invalid"
    assert fake_binance.count(f"GET {path}", status=404) == 1
