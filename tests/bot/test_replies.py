"""Replies that survive Telegram refusing them. A 429 is waited out (no request to that chat
inside its ``retry_after``, whoever met it: a reply or the delivery queue) and the admin is
told; a 5xx, a proxy's HTML 502 or a dropped connection is retried; a reply that still cannot
go out after ``TELEGRAM_REPLY_RETRY_S`` is handed to the delivery queue and arrives once
Telegram takes messages again. Each time the user reads the answer once, and no handler
failure is logged."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from aiogram import Router

from bot.app import build_app
from handler import FEATURES
from handler.commands import CommandSpec
from tests.bot.conftest import ADMIN, ALLOWED, Harness, running

if TYPE_CHECKING:
    import io
    from collections.abc import Callable

    from aiogram.types import Message

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import Call, FakeTelegram
    from utils.config import Settings


def sends_to(telegram: FakeTelegram, chat_id: int) -> list[Call]:
    """Every sendMessage request to ``chat_id`` the fake received, in order."""
    return [c for c in telegram.calls_of("sendMessage") if c.params["chat_id"] == str(chat_id)]


def assert_nothing_sent_inside_a_retry_after(
    telegram: FakeTelegram, chat_id: int, retry_after: float
) -> None:
    calls = sends_to(telegram, chat_id)
    floods = [c for c in calls if c.status == 429]
    assert floods
    for flood in floods:
        inside = [c for c in calls if flood.t < c.t < flood.t + retry_after]
        assert inside == [], f"sent {inside[0].t - flood.t:.2f} s into a {retry_after} s pause"


def assert_no_handler_failure(log: io.StringIO) -> None:
    text = log.getvalue()
    assert "handler_failed" not in text
    assert "Traceback" not in text


async def test_a_reply_that_meets_two_429s_waits_them_out_arrives_once_and_alerts_the_admin(
    telegram: FakeTelegram,
    binance: FakeBinance,
    make_settings: Callable[..., Settings],
    log_to: Callable[..., io.StringIO],
) -> None:
    log = log_to()
    telegram.fail_next("sendMessage", chat_id=ALLOWED, status=429, retry_after=3, times=2)
    async with running(make_settings()) as app:
        (reply,) = await Harness(telegram, binance, app).ask(ALLOWED, "/price btc", timeout=20)
        (alert,) = await telegram.wait_for_sent(lambda m: m.chat_id == ADMIN, timeout=10)
    assert "BTCUSDT" in reply.text
    assert telegram.sent_to(ALLOWED) == [reply]  # once, and no apology
    assert [c.status for c in sends_to(telegram, ALLOWED)] == [429, 429, 200]
    assert_nothing_sent_inside_a_retry_after(telegram, ALLOWED, retry_after=3)
    assert "telegram.429" in alert.text
    assert f"a reply to chat {ALLOWED} waits 3 s" in alert.text
    assert len(telegram.sent_to(ADMIN)) == 1  # the second 429 is within the alert's cooldown
    assert_no_handler_failure(log)


@pytest.mark.parametrize("fault", ["html_502", "json_502", "dropped_connection"])
async def test_a_reply_that_meets_a_bad_gateway_or_a_dropped_connection_arrives_once(
    fault: str, harness: Harness, log_to: Callable[..., io.StringIO]
) -> None:
    log = log_to()
    if fault == "html_502":
        harness.telegram.html_502("sendMessage")  # a proxy's page, not Telegram's JSON
    elif fault == "json_502":
        harness.telegram.fail_next("sendMessage", chat_id=ALLOWED, status=502, times=2)
    else:
        harness.telegram.drop_connection_next("sendMessage", chat_id=ALLOWED)
    (reply,) = await harness.ask(ALLOWED, "/price btc")
    await harness.telegram.wait_until_idle()
    assert "BTCUSDT" in reply.text
    assert harness.telegram.sent_to(ALLOWED) == [reply]
    assert sends_to(harness.telegram, ALLOWED)[-1].status == 200
    assert_no_handler_failure(log)


@pytest.mark.parametrize("first", ["queue", "reply"])
async def test_a_429_holds_every_request_to_that_chat_whoever_met_it(
    first: str,
    telegram: FakeTelegram,
    binance: FakeBinance,
    make_settings: Callable[..., Settings],
) -> None:
    telegram.fail_next("sendMessage", chat_id=ALLOWED, status=429, retry_after=2)
    async with running(make_settings()) as app:
        harness = Harness(telegram, binance, app)
        if first == "queue":
            await app.notifier.send(ALLOWED, "queued")
            await app.notifier.wait_until(lambda: app.notifier.counters["retry_after"] == 1, 5.0)
            await harness.ask(ALLOWED, "/help")
        else:
            telegram.inject_message(ALLOWED, "/help")
            await telegram.wait_for_sent(lambda m: m.chat_id == ADMIN)  # the flood was seen
            await app.notifier.send(ALLOWED, "queued")
        await telegram.wait_for_sent(lambda m: m.text == "queued", timeout=10)
        await telegram.wait_for_sent(lambda m: "I show Binance prices" in m.text, timeout=10)
    assert len(telegram.sent_to(ALLOWED)) == 2
    assert_nothing_sent_inside_a_retry_after(telegram, ALLOWED, retry_after=2)


async def test_a_reply_telegram_keeps_refusing_is_queued_and_arrives_once_it_takes_messages(
    telegram: FakeTelegram,
    binance: FakeBinance,
    make_settings: Callable[..., Settings],
    log_to: Callable[..., io.StringIO],
) -> None:
    log = log_to()
    # More failures than 0.3 s of retries can meet (at least 0.025 + 0.05 + 0.1 + 0.1 s apart)
    telegram.fail_next("sendMessage", chat_id=ALLOWED, status=502, times=6)
    async with running(make_settings(reply_retry_s=0.3)) as app:
        (reply,) = await Harness(telegram, binance, app).ask(ALLOWED, "/help", timeout=20)
        await app.notifier.wait_until(lambda: app.notifier.counters["sent"] == 1, 10.0)
        assert await app.outbox.depth() == 0
    assert "I show Binance prices" in reply.text
    assert telegram.sent_to(ALLOWED) == [reply]
    assert '"reply_handed_over"' in log.getvalue()
    assert_no_handler_failure(log)


async def test_an_edit_of_a_queued_reply_is_queued_after_it(
    telegram: FakeTelegram,
    binance: FakeBinance,
    make_settings: Callable[..., Settings],
    log_to: Callable[..., io.StringIO],
) -> None:
    log = log_to()
    twice = CommandSpec(name="twice", menu="Answer, then edit", help="answers, then edits")

    async def cmd_twice(message: Message) -> None:
        reply = await message.answer("working on it")
        await reply.edit_text("<b>done</b>")

    def get_router() -> Router:
        router = Router(name="twice")
        twice.register(router, cmd_twice)
        return router

    module = SimpleNamespace(COMMANDS=(twice,), get_router=get_router)
    *features, errors = FEATURES
    settings = make_settings(reply_retry_s=0.2)  # 0.2 s of retries meet at most 4 failures
    app = build_app(settings, features=(*features, module, errors))
    telegram.fail_next("sendMessage", chat_id=ALLOWED, status=502, times=5)
    async with running(settings, app=app):
        telegram.inject_message(ALLOWED, "/twice")
        sent = await telegram.wait_for_sent(lambda m: m.chat_id == ALLOWED, count=2, timeout=20)
        await app.notifier.wait_until(lambda: app.notifier.counters["sent"] == 2, 10.0)
    assert [m.text for m in sent] == ["working on it", "<b>done</b>"]
    assert len(telegram.sent_to(ALLOWED)) == 2
    assert telegram.calls_of("editMessageText") == []  # nothing to edit: it was not sent yet
    assert_no_handler_failure(log)


async def test_a_429_longer_than_the_retry_time_queues_the_reply_for_after_the_pause(
    telegram: FakeTelegram,
    binance: FakeBinance,
    make_settings: Callable[..., Settings],
    log_to: Callable[..., io.StringIO],
) -> None:
    log = log_to()
    telegram.fail_next("sendMessage", chat_id=ALLOWED, status=429, retry_after=3)
    async with running(make_settings(reply_retry_s=1, admin_chat_id=None)) as app:
        (reply,) = await Harness(telegram, binance, app).ask(ALLOWED, "/help", timeout=20)
        await app.notifier.wait_until(lambda: app.notifier.counters["sent"] == 1, 5.0)
    assert "I show Binance prices" in reply.text
    assert [c.status for c in sends_to(telegram, ALLOWED)] == [429, 200]
    assert_nothing_sent_inside_a_retry_after(telegram, ALLOWED, retry_after=3)
    assert '"reply_handed_over"' in log.getvalue()
    assert_no_handler_failure(log)
