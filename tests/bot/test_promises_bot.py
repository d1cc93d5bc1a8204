"""README promises of the running bot that no other test proves: a 429 pauses its own chat
only, group chats are spaced by ``TELEGRAM_GROUP_INTERVAL_S``, ``/healthz`` and ``/metrics``
answer in webhook mode, ``/balance`` answers an admin who is not in ``ALLOWED_USER_IDS``,
``/stats`` has every line it promises, ``/price`` takes up to 10 symbols, and
``ALARMS_ALLOWED=users`` keeps alarms to the authorised users and admins."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

import aiohttp
import orjson

from tests.bot.conftest import ADMIN, ALLOWED, STRANGER, TOKEN, Harness, bot_settings, running
from tests.fakes.fake_telegram import FakeTelegram

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import Call
    from utils.config import Settings

WAIT_S: Final = 20.0
HELP: Final = "I show Binance prices"


def sends_to(telegram: FakeTelegram, chat_id: int) -> list[Call]:
    return [c for c in telegram.calls_of("sendMessage") if c.params["chat_id"] == str(chat_id)]


async def test_a_429_pauses_its_chat_only_and_the_others_keep_receiving(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> None:
    neighbour = 3100
    telegram.add_chat(neighbour)
    # 30 s: far longer than this test runs, so the paused chat gets nothing while it does.
    telegram.fail_next("sendMessage", chat_id=ALLOWED, status=429, retry_after=30)
    async with running(make_settings(admin_chat_id=None)) as app:
        await app.notifier.send(ALLOWED, "held back")
        await app.notifier.wait_until(lambda: app.notifier.counters["retry_after"] == 1, WAIT_S)
        for i in range(5):
            await app.notifier.send(neighbour, f"flows {i}")
        flowed = await telegram.wait_for_sent(
            lambda m: m.chat_id == neighbour, count=5, timeout=WAIT_S
        )
        (reply,) = await Harness(telegram, binance, app).ask(STRANGER, "/help")  # replies too
        assert await app.outbox.depth() == 1  # "held back" waits for its chat's pause
    assert [m.text for m in flowed] == [f"flows {i}" for i in range(5)]
    assert HELP in reply.text
    assert [c.status for c in sends_to(telegram, ALLOWED)] == [429]  # nothing inside the pause
    assert telegram.sent_to(ALLOWED) == []


async def test_messages_to_a_group_are_spaced_by_the_group_interval(
    binance: FakeBinance, tmp_path: Path
) -> None:
    group = -4100
    # Telegram's group limit scaled down: one message per 0.3 s (a private chat: per 0.05 s).
    async with FakeTelegram(
        TOKEN, chat_rate=1, chat_window_s=0.05, global_rate=200, group_rate=1, group_window_s=0.3
    ) as telegram:
        telegram.add_chat(group, type="group")
        settings = bot_settings(
            telegram, binance, tmp_path, admin_chat_id=None, group_interval_s=0.3
        )
        async with running(settings) as app:
            for i in range(4):
                await app.notifier.send(group, f"to the group {i}")
            sent = await telegram.wait_for_sent(
                lambda m: m.chat_id == group, count=4, timeout=WAIT_S
            )
    assert [m.text for m in sent] == [f"to the group {i}" for i in range(4)]
    assert telegram.flood_429s == 0  # the fake's own group window was never exceeded
    assert [c.status for c in sends_to(telegram, group)] == [200] * 4


async def test_healthz_and_metrics_answer_in_webhook_mode(
    telegram: FakeTelegram, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        webhook_url="https://bot.example.org/telegram/webhook", webhook_secret="s3cret-Token_1"
    )
    async with running(settings) as app, aiohttp.ClientSession() as http:
        async with http.get(f"{app.http_url}/healthz") as response:
            assert response.status == 200
            health = orjson.loads(await response.read())
        async with http.get(f"{app.http_url}/metrics") as response:
            assert response.status == 200
            metrics = await response.text()
    assert health["status"] == "ok"
    assert health["mode"] == "webhook"
    assert health["breakers"] == {"spot": "closed", "futures": "closed"}
    assert health["delivery"] == {"depth": 0, "parked": 0, "dead": 0, "leading": True}
    assert "bot_updates_handled_total 0" in metrics
    assert 'bot_outbox_jobs{state="depth"} 0' in metrics
    assert telegram.calls_of("getUpdates") == []


async def test_balance_answers_an_admin_who_is_not_an_allowed_user(harness: Harness) -> None:
    (reply,) = await harness.ask(ADMIN, "/balance")
    # The fake exchange's account: 0.5 BTC at 65,000 and 1,000 USDT spot, 1,000 USDT futures.
    assert reply.text == (
        "<b>Spot</b>\n<pre>ASSET AMOUNT      USDT\n"
        "BTC      0.5 32,500.00\n"
        "USDT    1000  1,000.00</pre>\n"
        "<b>Futures wallet</b>\n<pre>ASSET AMOUNT     USDT\n"
        "USDT    1000 1,000.00</pre>\n"
        "Total ≈ 34,500.00 USDT"
    )
    assert any(r.key == "GET /api/v3/account" and r.signed for r in harness.binance.requests)


async def test_stats_has_every_line_the_readme_promises(harness: Harness) -> None:
    await harness.ask(ALLOWED, "/price btc")
    (reply,) = await harness.ask(ADMIN, "/stats")
    lines = reply.text.splitlines()
    assert lines[0] == "<b>Bot statistics</b>"
    assert re.fullmatch(r"Uptime: 0h 00m \d\ds", lines[1])
    assert lines[2] == "Binance requests: 7"  # the fake saw the seven the /price needed
    assert len(harness.binance.requests) == 7
    assert lines[3] == "Cache hit rate: 0% (0 hits, 5 misses)"  # the public answers
    assert lines[4] == "Breakers: spot closed, futures closed"
    assert lines[5] == "Streams: 0 connections, 0 streams, 0 reconnects"
    assert lines[6] == "Delivery queue: 0 waiting, 0 parked, 0 undeliverable"
    assert lines[7] == "Weight used per pool:"
    table = "\n".join(lines[8:])
    for pool, limit in (
        ("spot REQUEST_WEIGHT 1M", 6000),
        ("spot RAW_REQUESTS 5M", 300000),
        ("spot ORDERS 10S", 50),
        ("spot ORDERS 1D", 160000),
        ("futures REQUEST_WEIGHT 1M", 2400),
        ("futures ORDERS 10S", 300),
        ("futures ORDERS 1M", 1200),
    ):
        assert re.search(rf"^(<pre>)?{pool} +\d+/{limit} +\d+%", table, re.MULTILINE), pool
    assert re.search(r"^spot REQUEST_WEIGHT 1M +[1-9]\d*/6000 ", table, re.MULTILINE)


async def test_price_takes_up_to_ten_symbols_and_refuses_more_before_asking_binance(
    harness: Harness,
) -> None:
    ten = "btc eth bnb sol xrp ada doge trx link avax"
    (reply,) = await harness.ask(ALLOWED, f"/price {ten}")
    assert len(re.findall(r"^[A-Z]+USDT ", reply.text, re.MULTILINE)) == 10
    asked = len(harness.binance.requests)
    (refusal,) = await harness.ask(ALLOWED, f"/price {ten} dot")
    assert refusal.text == "Up to 10 symbols at a time, please (you asked for 11)."
    assert len(harness.binance.requests) == asked


async def test_with_alarms_allowed_users_only_they_and_admins_may_set_alarms(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(alarm_overrides={"allowed": "users"})
    async with running(settings) as app:
        harness = Harness(telegram, binance, app)
        (refusal,) = await harness.ask(STRANGER, "/alarm btc > 70000")
        (allowed,) = await harness.ask(ALLOWED, "/alarm btc > 70000")
        (admin,) = await harness.ask(ADMIN, "/alarm eth < 2500")
    assert refusal.text == "Alarms are for the authorised users of this bot."
    assert allowed.text.startswith("Alarm #1 is set: BTCUSDT")
    assert admin.text.startswith("Alarm #2 is set: ETHUSDT")
