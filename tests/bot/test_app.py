"""The app around the handlers: admin alerts, webhook mode, /healthz and /metrics, one Redis
client per process."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import aiohttp
import orjson
from redis.asyncio import Redis

from bot.alerts import AdminAlerts
from bot.outbox import DeliveryPolicy
from tests.bot.conftest import ADMIN, ALLOWED, Harness, running
from utils.binance.binance_a import BinanceEvent, Market

if TYPE_CHECKING:
    from collections.abc import Callable

    from bot.outbox import Job
    from tests.conftest import RedisServer
    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram
    from utils.config import Settings


async def test_one_admin_alert_when_the_exchange_pushes_weight_past_80_percent(
    harness: Harness,
) -> None:
    limit = harness.binance.weight_limit(Market.SPOT)
    # Another process spends 85 % of every window (of each one, so a window that ends
    # during the test changes nothing).
    harness.binance.background_weight[Market.SPOT] = int(limit * 0.85)
    for symbol in ("btc", "eth", "bnb"):
        await harness.ask(ALLOWED, f"/price {symbol}")
    (alert,) = await harness.telegram.wait_for_sent(lambda m: m.chat_id == ADMIN, timeout=10)
    assert "ratelimit.threshold" in alert.text
    assert f"/{limit} used" in alert.text  # with the numbers
    assert "above 80%" in alert.text
    await harness.telegram.wait_until_idle()
    await harness.app.alerts.aclose()
    # one threshold alert (a loaded machine may add an alert of another kind: a reply flood)
    sent = [m for m in harness.telegram.sent_to(ADMIN) if "ratelimit.threshold" in m.text]
    assert len(sent) == 1


class _Recorder:
    """Stands where the notifier stands: records what would be queued."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def send(self, chat_id: int, text: str, *, policy: DeliveryPolicy) -> list[Job]:
        assert policy is DeliveryPolicy.AT_MOST_ONCE  # an alert is never sent twice
        self.texts.append(text)
        return []


async def test_alerts_of_one_kind_wait_out_the_cooldown_and_count_what_they_held_back() -> None:
    now = [0.0]
    recorder = _Recorder()
    alerts = AdminAlerts(recorder, ADMIN, cooldown_s=300, clock=lambda: now[0])  # type: ignore[arg-type]
    ban = BinanceEvent("ratelimit.418", Market.SPOT, "spot: IP banned", {"retry_after_s": 120})
    alerts.on_binance_event(ban)
    alerts.on_binance_event(ban)
    alerts.on_binance_event(BinanceEvent("breaker.open", Market.SPOT, "spot circuit open"))
    alerts.on_binance_event(BinanceEvent("time.resync", Market.SPOT, "resynced"))  # not alerted
    now[0] = 301.0
    alerts.on_binance_event(ban)
    await alerts.aclose()
    assert len(recorder.texts) == 3
    assert "Retry-After 120 s" in recorder.texts[0]
    assert "breaker.open" in recorder.texts[1]
    assert "1 more like this" in recorder.texts[2]


async def test_webhook_mode_rejects_a_request_without_the_secret(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        webhook_url="https://bot.example.org/telegram/webhook", webhook_secret="s3cret-Token_1"
    )
    async with running(settings) as app, aiohttp.ClientSession() as http:
        assert telegram.webhook.url == "https://bot.example.org/telegram/webhook"
        assert telegram.webhook.secret_token == "s3cret-Token_1"
        url = f"{app.http_url}/telegram/webhook"
        update = {
            "update_id": 77,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": ALLOWED, "type": "private"},
                "from": {"id": ALLOWED, "is_bot": False, "first_name": "A"},
                "text": "/help",
                "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            },
        }
        async with http.post(url, json=update) as response:
            assert response.status == 401
        bad = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
        async with http.post(url, json=update, headers=bad) as response:
            assert response.status == 401
        assert telegram.sent_to(ALLOWED) == []
        good = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"}
        async with http.post(url, json=update, headers=good) as response:
            assert response.status == 200
        (reply,) = await telegram.wait_for_sent(lambda m: m.chat_id == ALLOWED)
        assert "I show Binance prices" in reply.text
        assert telegram.calls_of("getUpdates") == []  # no polling in webhook mode


async def test_healthz_and_prometheus_metrics(harness: Harness) -> None:
    await harness.ask(ALLOWED, "/price btc")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{harness.app.http_url}/healthz") as response:
            assert response.status == 200
            health = orjson.loads(await response.read())
        async with http.get(f"{harness.app.http_url}/metrics") as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            metrics = await response.text()
    assert health["status"] == "ok"
    assert health["mode"] == "polling"
    assert health["delivery"]["depth"] == 0
    assert 'bot_outbox_jobs{state="depth"} 0' in metrics
    assert "bot_updates_handled_total 1" in metrics
    assert "GET /api/v3/ticker/price" in metrics  # the client's metrics ride along


async def test_with_redis_the_limiter_the_cache_and_the_outbox_share_one_connection_pool(
    telegram: FakeTelegram,
    binance: FakeBinance,
    make_settings: Callable[..., Settings],
    redis_server: RedisServer,
) -> None:
    settings = make_settings(redis_url=redis_server.url)
    async with running(settings) as app:
        harness = Harness(telegram, binance, app)
        await harness.ask(ALLOWED, "/price btc")  # weight booked and answers cached in Redis
        await harness.ask(ALLOWED, "/price btc")
        await app.notifier.send(ADMIN, "through the outbox")  # stored in Redis, then sent
        await telegram.wait_for_sent(lambda m: m.text == "through the outbox")
        # Telegram's OK comes first, the outbox's record of the delivery right after it.
        await app.notifier.wait_until(lambda: app.notifier.counters["sent"] >= 1, timeout_s=10)
        async with Redis.from_url(redis_server.url, decode_responses=True) as probe:
            keys = [str(key) for key in await probe.keys("test*")]
            probe_id = await probe.client_id()
            bot_connections = [c for c in await probe.client_list() if int(c["id"]) != probe_id]
    for user in ("test:rl:", "test:cache:", "test:{outbox}:delivered"):  # limiter, cache, outbox
        assert any(key.startswith(user) for key in keys), (user, keys)
    # A second pool (the client's own, or an outbox on its own URL) would show unnamed
    # connections: every connection the bot opened comes from the app's one named pool.
    assert bot_connections
    assert {c["name"] for c in bot_connections} == {f"test:bot:{os.getpid()}"}
