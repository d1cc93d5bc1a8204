"""README, "Admin alerts": every kind the README lists reaches ``ADMIN_CHAT_ID`` over the fake
Bot API, with its numbers, when the running bot's own Binance client, delivery queue or Redis
meets it: a weight pool above 95 %, a 429 and a 418 with Retry-After, a breaker opening and
closing, Redis lost and back, a stream reconnecting, Telegram's flood control met by the
delivery queue, the outbox failing. (The 80 % alert and the cooldown: ``test_app.py``; the
flood alert of a reply: ``test_replies.py``.)"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import pytest

from tests.bot.conftest import ADMIN, ALLOWED, running
from tests.fakes.fake_ws import FakeBinanceWS
from tests.utils.binance.stream_helpers import Inbox
from utils.binance.binance_a import (
    BinanceCircuitOpenError,
    BinanceIPBannedError,
    BinanceUnknownStatusError,
    Market,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from tests.conftest import RedisServer
    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram
    from tests.fakes.fake_telegram_wire import SentMessage
    from utils.config import Settings

PING: Final = "GET /api/v3/ping"
PRICE: Final = "GET /api/v3/ticker/price"
WAIT_S: Final = 20.0


async def admin_alerts(telegram: FakeTelegram, *kinds: str) -> list[SentMessage]:
    """The admin's messages once one naming each of ``kinds`` has arrived, in that order."""
    for kind in kinds:
        await telegram.wait_for_sent(
            lambda m, k=kind: m.chat_id == ADMIN and f"<b>{k}</b>" in m.text, timeout=WAIT_S
        )
    return telegram.sent_to(ADMIN)


def alert(messages: list[SentMessage], kind: str) -> str:
    (text,) = [m.text for m in messages if f"<b>{kind}</b>" in m.text]
    return text


async def test_a_pool_above_95_percent_is_an_alert_with_the_numbers(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> None:
    # Another program on the IP spends 5,760 of each 6,000 window; our 1 % margin leaves room.
    binance.background_weight[Market.SPOT] = 5760
    settings = make_settings(binance_overrides={"rate_limit_margin": 0.01})
    async with running(settings) as app:
        for _ in range(3):  # the first answer's header shows the neighbour's spend
            await app.binance.call(PRICE, symbol="BTCUSDT")
        sent = await admin_alerts(telegram, "ratelimit.threshold")
        await telegram.wait_for_sent(lambda m: "above 95%" in m.text, timeout=WAIT_S)
    texts = [m.text for m in telegram.sent_to(ADMIN)]
    assert len(texts) == 2, sent  # one per threshold: 80 % and 95 %
    above_95 = next(t for t in texts if "above 95%" in t)
    assert re.search(r"spot REQUEST_WEIGHT 1M: 57\d\d/6000 used \(9[67]%, above 95%\)", above_95)


async def test_a_429_and_a_418_are_alerts_with_their_retry_after(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> None:
    async with running(make_settings()) as app:
        binance.force_429(1, retry_after_s=1)
        await app.binance.call(PING)  # answered 429, waits 1 s, then answered
        # Another program on the IP keeps sending while 429'd: Binance bans the IP.
        binance.force_429(1, retry_after_s=30)
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                binance.in_flight_grace_s = 0.0
                async with http.get(f"{binance.url}/api/v3/ping") as response:
                    await response.read()
        with pytest.raises(BinanceIPBannedError):
            await app.binance.call(PING)
        sent = await admin_alerts(telegram, "ratelimit.429", "ratelimit.418")
    assert "pool paused for 1 s (Retry-After 1 s)" in alert(sent, "ratelimit.429")
    assert "IP banned by Binance on GET /api/v3/ping" in alert(sent, "ratelimit.418")
    assert re.search(r"\(Retry-After 1[12]\d s\)", alert(sent, "ratelimit.418"))


async def test_a_breaker_opening_and_closing_are_alerts(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> None:
    overrides = {"breaker_failures": 2, "breaker_open_s": 0.3, "retry_attempts": 0}
    async with running(make_settings(binance_overrides=overrides)) as app:
        await app.binance.call(PING)
        binance.outage_status = 503
        for _ in range(2):
            with pytest.raises(BinanceUnknownStatusError):
                await app.binance.call(PING)
        with pytest.raises(BinanceCircuitOpenError) as caught:
            await app.binance.call(PING)
        binance.outage_status = None
        await asyncio.sleep(caught.value.retry_in_s)  # the one deadline the breaker names
        await app.binance.call(PING)  # the probe: closed again
        sent = await admin_alerts(telegram, "breaker.open", "breaker.closed")
    assert "Binance spot circuit open: 2 failures in a row" in alert(sent, "breaker.open")
    assert "Binance spot circuit closed: answering again" in alert(sent, "breaker.closed")


async def test_redis_lost_and_back_and_the_outbox_failing_are_alerts(
    telegram: FakeTelegram,
    binance: FakeBinance,
    make_settings: Callable[..., Settings],
    redis_server: RedisServer,
) -> None:
    retry_s = 0.2
    settings = make_settings(
        redis_url=redis_server.url, binance_overrides={"redis_retry_s": retry_s}
    )
    async with running(settings) as app:
        outbox_down = asyncio.Event()
        forward = app.notifier.on_event

        def watch(kind: str, message: str, data: Any) -> None:
            if kind == "outbox.down":
                outbox_down.set()
            if forward is not None:
                forward(kind, message, data)

        app.notifier.on_event = watch
        await app.binance.call(PING)
        await redis_server.stop()
        await app.binance.call(PING)  # the limiter falls back to counting in process
        queued = asyncio.create_task(app.notifier.send(ALLOWED, "written while Redis was away"))
        await asyncio.wait_for(outbox_down.wait(), WAIT_S)
        await redis_server.start()
        await asyncio.wait_for(queued, WAIT_S)  # stored once Redis answered again
        await asyncio.sleep(retry_s)  # the limiter tries Redis again after this long
        await app.binance.call(PING)
        sent = await admin_alerts(
            telegram, "ratelimit.redis_down", "outbox.down", "outbox.up", "ratelimit.redis_up"
        )
        await telegram.wait_for_sent(lambda m: m.chat_id == ALLOWED, timeout=WAIT_S)
    assert "Redis is unreachable (ConnectionError)" in alert(sent, "ratelimit.redis_down")
    assert "the weight budget is shared again" in alert(sent, "ratelimit.redis_up")
    assert "The outbox is unreachable (ConnectionError)" in alert(sent, "outbox.down")
    assert "delivery resumed" in alert(sent, "outbox.up")


@pytest.fixture
async def spot_streams() -> AsyncIterator[FakeBinanceWS]:
    async with FakeBinanceWS(Market.SPOT) as fake:
        yield fake


async def test_a_stream_reconnecting_is_an_alert(
    telegram: FakeTelegram,
    spot_streams: FakeBinanceWS,
    make_settings: Callable[..., Settings],
) -> None:
    overrides = {"ws_url": spot_streams.url, "ws_backoff_base_s": 0.05, "ws_backoff_max_s": 0.2}
    async with running(make_settings(binance_overrides=overrides)) as app:
        await app.binance.ws_ticker("btcusdt", Inbox())
        await spot_streams.wait_for_subscribed("btcusdt@ticker")
        assert spot_streams.drop() == 1
        await spot_streams.wait_for_connections(2)
        sent = await admin_alerts(telegram, "ws.reconnect")
    assert f"reconnected {spot_streams.url}" in alert(sent, "ws.reconnect")


async def test_flood_control_met_by_the_delivery_queue_is_an_alert(
    telegram: FakeTelegram, make_settings: Callable[..., Settings]
) -> None:
    telegram.fail_next("sendMessage", chat_id=ALLOWED, status=429, retry_after=1)
    async with running(make_settings()) as app:
        await app.notifier.send(ALLOWED, "queued")
        sent = await admin_alerts(telegram, "telegram.429")
        await telegram.wait_for_sent(lambda m: m.text == "queued", timeout=WAIT_S)
    expected = f"Telegram flood control: chat {ALLOWED} paused for 1 s"
    assert expected in alert(sent, "telegram.429")
