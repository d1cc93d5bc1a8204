"""Self-tests of the fake Binance server, through a plain aiohttp ClientSession."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.fakes.fake_binance import TEST_API_KEY, TEST_API_SECRET, FakeBinance
from tests.fakes.fake_market import Market
from tests.fakes.fake_weights import PoolKind, Window

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

KEY_HEADER = {"X-MBX-APIKEY": TEST_API_KEY}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DOC_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    async with FakeBinance() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def spot_weight(interval_s: int, limit: int) -> list[Window]:
    return [
        Window(Market.SPOT, PoolKind.REQUEST_WEIGHT, interval_s, limit),
        Window(Market.SPOT, PoolKind.ORDERS, 10, 50),
    ]


def align(fake: FakeBinance, interval_s: int, offset_s: float) -> None:
    """Skew the fake's clock to ``offset_s`` into one of its windows, so a test never
    straddles a boundary by accident."""
    now = time.time()
    fake.clock_skew_s = (math.floor(now / interval_s) + 1) * interval_s + offset_s - now


def signed(fake: FakeBinance, params: dict[str, Any], secret: str = TEST_API_SECRET) -> str:
    query = urlencode({**params, "timestamp": int(fake.now() * 1000)})
    return f"{query}&signature={hmac.new(secret.encode(), query.encode(), 'sha256').hexdigest()}"


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **kw: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.request(method, url, **kw) as resp:
        return resp.status, await resp.json(content_type=None), resp


BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}


async def test_every_answer_carries_the_lower_case_weight_header_even_errors(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    for path, expected in (
        ("/api/v3/ping", 200),
        ("/api/v3/nothing", 404),
        ("/api/v3/depth", 400),
        ("/api/v3/account", 401),
    ):
        status, _, resp = await call(http, "GET", fake.url + path)
        assert status == expected
        names = [name for name, _ in resp.raw_headers]
        assert b"x-mbx-used-weight-1m" in names, path
        assert resp.headers["Content-Type"] == "application/json;charset=UTF-8"


async def test_overflowing_the_window_answers_429_then_418_for_sending_while_429d(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeBinance(spot_windows=spot_weight(60, 10)) as fake:
        fake.in_flight_grace_s = 0
        align(fake, 60, 0.1)
        for _ in range(10):
            assert (await call(http, "GET", fake.url + "/api/v3/ping"))[0] == 200
        status, body, resp = await call(http, "GET", fake.url + "/api/v3/ping")
        assert (status, body["code"]) == (429, -1003)
        assert "current limit is 10 request weight per 1 MINUTE" in body["msg"]
        assert 59 <= int(resp.headers["Retry-After"]) <= 60
        assert resp.headers["x-mbx-used-weight-1m"] == "10"
        status, body, resp = await call(http, "GET", fake.url + "/api/v3/ping")
        assert (status, body["code"]) == (418, -1003)
        assert "IP banned until" in body["msg"]
        assert int(resp.headers["Retry-After"]) == 120
        assert fake.count(status=429) == fake.count(status=418) == 1


async def test_bans_escalate_and_every_request_during_one_is_refused(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeBinance(spot_windows=spot_weight(60, 1), first_ban_s=0.2) as fake:
        fake.in_flight_grace_s = 0
        align(fake, 60, 0.1)
        ping = fake.url + "/api/v3/ping"
        bans = []
        assert (await call(http, "GET", ping))[0] == 200
        for _ in range(2):
            assert (await call(http, "GET", ping))[0] == 429
            status, body, _ = await call(http, "GET", ping)
            assert status == 418
            until_s = int(body["msg"].split("until ")[1].split(".")[0]) / 1000
            bans.append(until_s - fake.requests[-1].t)
            assert (await call(http, "GET", ping))[0] == 418  # still banned
            await asyncio.sleep(until_s - fake.now() + 0.01)
        assert bans == [pytest.approx(0.2, abs=0.002), pytest.approx(0.4, abs=0.002)]


async def test_weight_resets_at_the_clock_aligned_window_boundary(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeBinance(spot_windows=spot_weight(1, 3)) as fake:
        align(fake, 1, 0.5)
        ping = fake.url + "/api/v3/ping"
        for _ in range(3):
            assert (await call(http, "GET", ping))[0] == 200
        status, _, resp = await call(http, "GET", ping)
        assert (status, resp.headers["Retry-After"]) == (429, "1")
        first = fake.requests[-1].window
        await asyncio.sleep(first + 1 - fake.now() + 0.01)
        status, _, resp = await call(http, "GET", ping)
        assert (status, resp.headers["x-mbx-used-weight-1s"]) == (200, "1")
        assert fake.window_usage(Market.SPOT) == {first: 3, first + 1: 1}


async def test_background_weight_is_spent_at_the_start_of_every_window(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeBinance(spot_windows=spot_weight(1, 100)) as fake:
        fake.background_weight[Market.SPOT] = 40
        align(fake, 1, 0.5)
        ping = fake.url + "/api/v3/ping"
        assert (await call(http, "GET", ping))[2].headers["x-mbx-used-weight-1s"] == "41"
        assert (await call(http, "GET", ping))[2].headers["x-mbx-used-weight-1s"] == "42"
        await asyncio.sleep(math.floor(fake.now()) + 1 - fake.now() + 0.01)
        assert (await call(http, "GET", ping))[2].headers["x-mbx-used-weight-1s"] == "41"


async def test_burned_weight_shows_in_the_next_answers_header(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    align(fake, 60, 0.1)
    before = int(
        (await call(http, "GET", fake.url + "/api/v3/ping"))[2].headers["x-mbx-used-weight-1m"]
    )
    fake.burn_weight(Market.SPOT, 500)
    _, _, resp = await call(http, "GET", fake.url + "/api/v3/ping")
    assert int(resp.headers["x-mbx-used-weight-1m"]) == before + 500 + 1


async def test_count_rejected_weight_makes_429d_requests_pay(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeBinance(spot_windows=spot_weight(60, 1), count_rejected_weight=True) as fake:
        align(fake, 60, 0.1)
        await call(http, "GET", fake.url + "/api/v3/ping")
        _, _, resp = await call(http, "GET", fake.url + "/api/v3/ping")
        assert (resp.status, resp.headers["x-mbx-used-weight-1m"]) == (429, "2")


async def test_forced_429_behaves_like_an_overflow(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    fake.in_flight_grace_s = 0
    fake.force_429(retry_after_s=7)
    status, body, resp = await call(http, "GET", fake.url + "/api/v3/ping")
    assert (status, body["code"], resp.headers["Retry-After"]) == (429, -1003, "7")
    assert (await call(http, "GET", fake.url + "/api/v3/ping"))[0] == 418
    assert (await call(http, "GET", fake.url + "/fapi/v1/ping"))[0] == 200  # other market


async def test_requests_already_in_flight_when_a_429_went_out_are_not_banned(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    fake.in_flight_grace_s = 60.0
    fake.force_429(retry_after_s=7)
    assert (await call(http, "GET", fake.url + "/api/v3/ping"))[0] == 429
    assert (await call(http, "GET", fake.url + "/api/v3/ping"))[0] == 429  # not 418
    fake.in_flight_grace_s = 0
    assert (await call(http, "GET", fake.url + "/api/v3/ping"))[0] == 418


async def test_doc_hmac_vector_verifies_with_its_secret(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    digest = hmac.new(TEST_API_SECRET.encode(), DOC_PAYLOAD.encode(), hashlib.sha256)
    assert digest.hexdigest() == DOC_SIGNATURE
    fake.clock_skew_s = 1499827319.559 + 0.5 - time.time()
    status, body, _ = await call(
        http,
        "POST",
        f"{fake.url}/api/v3/order",
        data=f"{DOC_PAYLOAD}&signature={DOC_SIGNATURE}",
        headers={**KEY_HEADER, **FORM},
    )
    assert (status, body["status"], body["symbol"]) == (200, "NEW", "LTCBTC")


async def test_signature_covers_the_percent_encoded_bytes(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    fake.clock_skew_s = 1499827319.559 + 0.5 - time.time()
    payload = DOC_PAYLOAD.replace(
        "LTCBTC", "%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"
    )
    sig = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
    status, body, _ = await call(
        http,
        "POST",
        f"{fake.url}/api/v3/order?{payload}",
        data=f"signature={sig}",
        headers={**KEY_HEADER, **FORM},
    )
    assert (status, body["code"]) == (400, -1121)  # signature accepted, symbol unknown


async def test_a_correctly_signed_order_is_accepted_and_a_tampered_one_is_not(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    query = signed(fake, BUY)
    status, body, _ = await call(
        http, "POST", f"{fake.url}/api/v3/order?{query}", headers=KEY_HEADER
    )
    assert (status, body["status"]) == (200, "FILLED")
    tampered = query.replace("quantity=0.001", "quantity=0.002")
    status, body, _ = await call(
        http, "POST", f"{fake.url}/api/v3/order?{tampered}", headers=KEY_HEADER
    )
    assert (status, body) == (
        400,
        {"code": -1022, "msg": "Signature for this request is not valid."},
    )
    assert fake.orders_placed == 1


async def test_ed25519_keys_verify_base64_signatures(http: aiohttp.ClientSession) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    async with FakeBinance(api_keys={"edkey": pem}) as fake:
        query = urlencode({"timestamp": int(fake.now() * 1000)})
        sig = base64.b64encode(private.sign(query.encode())).decode()
        url = f"{fake.url}/api/v3/account?{query}&{urlencode({'signature': sig})}"
        status, body, _ = await call(http, "GET", url, headers={"X-MBX-APIKEY": "edkey"})
        assert status == 200
        assert {"asset": "USDT", "free": "1000.00000000", "locked": "0.00000000"} in (
            body["balances"]
        )


@pytest.mark.parametrize(
    ("shift_ms", "msg"),
    [
        (1500, "Timestamp for this request was 1000ms ahead of the server's time."),
        (-6000, "Timestamp for this request is outside of the recvWindow."),
    ],
)
async def test_timestamps_outside_the_window_answer_1021(
    fake: FakeBinance, http: aiohttp.ClientSession, shift_ms: int, msg: str
) -> None:
    query = urlencode({"timestamp": int(fake.now() * 1000) + shift_ms})
    sig = hmac.new(TEST_API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    status, body, _ = await call(
        http, "GET", f"{fake.url}/api/v3/account?{query}&signature={sig}", headers=KEY_HEADER
    )
    assert (status, body) == (400, {"code": -1021, "msg": msg})


async def test_clock_skew_shifts_server_time(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    fake.clock_skew_s = 3600.0
    _, body, _ = await call(http, "GET", fake.url + "/api/v3/time")
    assert body["serverTime"] / 1000 == pytest.approx(time.time() + 3600, abs=1)


async def test_keys_are_required_and_checked(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    url = fake.url + "/fapi/v1/listenKey"
    assert (await call(http, "POST", url))[1]["code"] == -2015
    assert (await call(http, "POST", url, headers={"X-MBX-APIKEY": "nobody"}))[1]["code"] == -2015
    assert (await call(http, "POST", url, headers={"X-MBX-APIKEY": ""}))[1]["code"] == -2014
    status, body, _ = await call(http, "PUT", url, headers=KEY_HEADER)
    assert (status, body["code"]) == (400, -1125)
    listen_key = (await call(http, "POST", url, headers=KEY_HEADER))[1]["listenKey"]
    assert (await call(http, "PUT", url, headers=KEY_HEADER))[1] == {"listenKey": listen_key}


async def test_accept_then_hang_places_the_order_but_never_answers(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    fake.accept_then_hang("POST /api/v3/order")
    with pytest.raises(TimeoutError):
        await call(
            http,
            "POST",
            f"{fake.url}/api/v3/order?{signed(fake, BUY)}",
            headers=KEY_HEADER,
            timeout=aiohttp.ClientTimeout(total=0.3),
        )
    assert fake.orders_placed == 1
    assert fake.last_order is not None
    assert fake.last_order["status"] == "FILLED"
    assert fake.requests[-1].status == 0


async def test_reset_next_drops_the_connection_without_processing(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    fake.reset_next(1, key="POST /api/v3/order")
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(
            http, "POST", f"{fake.url}/api/v3/order?{signed(fake, BUY)}", headers=KEY_HEADER
        )
    assert fake.orders_placed == 0
    assert (await call(http, "GET", fake.url + "/api/v3/ping"))[0] == 200


async def test_hang_next_never_answers_until_close(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    fake.hang_next(1)
    request = asyncio.ensure_future(call(http, "GET", fake.url + "/api/v3/ping"))
    await fake.wait_for_requests(1)
    assert not request.done()
    await fake.close()
    with pytest.raises(aiohttp.ClientConnectionError):
        await request


async def test_fail_next_answers_5xx_and_still_charges_weight(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    fake.fail_next(1, status=503, key="GET /api/v3/exchangeInfo")
    status, body, _ = await call(http, "GET", fake.url + "/api/v3/exchangeInfo")
    assert (status, body) == (503, {"code": -1001, "msg": "Service Unavailable."})
    assert fake.requests[-1].weight == 20
    assert (await call(http, "GET", fake.url + "/api/v3/exchangeInfo"))[0] == 200


async def test_unknown_path_is_404_5000(fake: FakeBinance, http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "DELETE", fake.url + "/api/v3/time")
    assert (status, body) == (
        404,
        {"code": -5000, "msg": "Path /api/v3/time, Method DELETE is invalid"},
    )


async def test_missing_mandatory_parameter_is_1102(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await call(http, "GET", fake.url + "/api/v3/klines?symbol=BTCUSDT")
    assert (status, body["code"]) == (400, -1102)
    assert body["msg"].startswith("Mandatory parameter 'interval' was not sent")


async def test_successful_spot_order_costs_no_weight_but_counts_as_an_order(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    align(fake, 60, 0.1)
    before = (await call(http, "GET", fake.url + "/api/v3/ping"))[2].headers
    _, _, resp = await call(
        http, "POST", f"{fake.url}/api/v3/order?{signed(fake, BUY)}", headers=KEY_HEADER
    )
    assert resp.headers["x-mbx-used-weight-1m"] == before["x-mbx-used-weight-1m"]
    assert resp.headers["x-mbx-order-count-10s"] == "1"
    assert fake.requests[-1].weight == 0


async def test_orders_over_the_orders_limit_answer_1015(http: aiohttp.ClientSession) -> None:
    windows = [
        Window(Market.SPOT, PoolKind.REQUEST_WEIGHT, 60, 6000),
        Window(Market.SPOT, PoolKind.ORDERS, 10, 1),
    ]
    async with FakeBinance(spot_windows=windows) as fake:
        align(fake, 10, 0.1)
        url = f"{fake.url}/api/v3/order"
        assert (await call(http, "POST", f"{url}?{signed(fake, BUY)}", headers=KEY_HEADER))[
            0
        ] == 200
        status, body, resp = await call(
            http, "POST", f"{url}?{signed(fake, BUY)}", headers=KEY_HEADER
        )
        assert (status, body["code"]) == (429, -1015)
        assert body["msg"] == "Too many new orders; current limit is 1 orders per 10 SECOND."
        assert "Retry-After" in resp.headers


async def test_exchange_info_renders_rate_limits_from_the_windows(
    http: aiohttp.ClientSession,
) -> None:
    windows = [
        Window(Market.SPOT, PoolKind.REQUEST_WEIGHT, 2, 120),
        Window(Market.SPOT, PoolKind.RAW_REQUESTS, 300, 1000),
        Window(Market.SPOT, PoolKind.ORDERS, 86400, 100),
    ]
    async with FakeBinance(spot_windows=windows) as fake:
        _, body, resp = await call(http, "GET", fake.url + "/api/v3/exchangeInfo")
        assert body["rateLimits"] == [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "SECOND",
                "intervalNum": 2,
                "limit": 120,
            },
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": 1000,
            },
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 100},
        ]
        assert "x-mbx-used-weight-2s" in resp.headers


async def test_prices_are_settable_and_futures_follow_by_a_small_basis(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    fake.set_price("BTCUSDT", "50123.45")
    _, spot, _ = await call(http, "GET", fake.url + "/api/v3/ticker/price?symbol=BTCUSDT")
    _, mark, _ = await call(http, "GET", fake.url + "/fapi/v1/premiumIndex?symbol=BTCUSDT")
    assert spot == {"symbol": "BTCUSDT", "price": "50123.45000000"}
    assert float(mark["markPrice"]) == pytest.approx(50123.45, rel=0.002)
    _, many, _ = await call(
        http, "GET", fake.url + '/api/v3/ticker/price?symbols=["BTCUSDT","ETHUSDT"]'
    )
    assert [row["symbol"] for row in many] == ["BTCUSDT", "ETHUSDT"]


async def test_klines_are_12_field_rows_ending_at_the_current_price(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    _, rows, _ = await call(
        http, "GET", fake.url + "/api/v3/klines?symbol=ETHUSDT&interval=1h&limit=5"
    )
    assert len(rows) == 5
    assert all(len(row) == 12 for row in rows)
    assert rows[-1][4] == "3500.00000000"
    assert rows[1][0] - rows[0][0] == 3_600_000


async def test_wait_for_requests_wakes_on_the_nth_request(
    fake: FakeBinance, http: aiohttp.ClientSession
) -> None:
    waiter = asyncio.ensure_future(fake.wait_for_requests(2, key="GET /api/v3/ping"))
    await call(http, "GET", fake.url + "/api/v3/ping")
    assert not waiter.done()
    await call(http, "GET", fake.url + "/api/v3/ping")
    await asyncio.wait_for(waiter, 1)
    with pytest.raises(TimeoutError):
        await fake.wait_for_requests(3, timeout=0.05)
