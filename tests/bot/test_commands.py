"""What a Telegram user sees: /price, /balance, /stats, /help, in English and Turkish, with
bad input, refusals, throttling and Binance failing."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import TYPE_CHECKING

from aiogram import Router

from bot.app import build_app
from handler import FEATURES
from handler.commands import CommandSpec
from tests.bot.conftest import ADMIN, ALLOWED, STRANGER, Harness, running

if TYPE_CHECKING:
    import io
    from collections.abc import Callable

    from aiogram.types import Message

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram
    from utils.config import Settings


def rows(text: str) -> dict[str, list[str]]:
    """The ``<pre>`` table of a reply, by its first column."""
    table = re.search(r"<pre>(.*?)</pre>", text, re.S)
    assert table is not None, text
    return {line.split()[0]: line.split()[1:] for line in table.group(1).splitlines()}


async def test_price_answers_spot_and_futures_for_both_symbols_in_one_fan_out(
    harness: Harness,
) -> None:
    (reply,) = await harness.ask(ALLOWED, "/price btc eth")
    table = rows(reply.text)
    # The fake exchange's prices; its futures mark sits 0.05 % above spot.
    assert table == {
        "SYMBOL": ["SPOT", "MARK", "FUNDING", "24H"],
        "BTCUSDT": ["65000.00", "65032.50", "+0.0100%", "+2.04%"],
        "ETHUSDT": ["3500.00", "3501.75", "+0.0100%", "+2.04%"],
    }
    # one batched spot call for prices, one for 24 h changes, a mark price per symbol
    assert harness.binance.count("GET /api/v3/ticker/price") == 1
    assert harness.binance.count("GET /api/v3/ticker/24hr") == 1
    assert harness.binance.count("GET /fapi/v1/premiumIndex") == 2


async def test_price_without_symbols_shows_usage_and_asks_nothing(harness: Harness) -> None:
    sent_before = harness.binance.count()
    (reply,) = await harness.ask(ALLOWED, "/price")
    assert reply.text.startswith("Usage: /price BTCUSDT")
    (reply,) = await harness.ask(ALLOWED, "/price " + " ".join(f"C{i}USDT" for i in range(11)))
    assert "Up to 10 symbols" in reply.text
    (reply,) = await harness.ask(ALLOWED, "/price <b>")
    assert "is not a symbol name" in reply.text
    assert "&lt;b&gt;" in reply.text  # the user's text is escaped, never parsed
    assert harness.binance.count() == sent_before


async def test_an_unknown_symbol_is_named_with_the_closest_ones(harness: Harness) -> None:
    (reply,) = await harness.ask(ALLOWED, "/price BTCUSTD eth")
    assert "unknown symbol BTCUSTD — did you mean BTCUSDT" in reply.text
    assert "ETHUSDT" in rows(reply.text)  # the good symbol is still answered


async def test_balance_for_an_allowed_user_and_a_refusal_for_others(harness: Harness) -> None:
    (reply,) = await harness.ask(ALLOWED, "/balance")
    assert "<b>Spot</b>" in reply.text
    assert "<b>Futures wallet</b>" in reply.text
    assert "Total ≈" in reply.text
    assert "USDT" in rows(reply.text)
    signed_before = sum(r.signed for r in harness.binance.requests)
    (refusal,) = await harness.ask(STRANGER, "/balance")
    assert "only for authorised users" in refusal.text
    assert str(STRANGER) in refusal.text
    assert sum(r.signed for r in harness.binance.requests) == signed_before
    group = -4000
    harness.telegram.add_chat(group, type="group")
    harness.telegram.inject_message(group, "/balance", user_id=ALLOWED)
    (in_group,) = await harness.telegram.wait_for_sent(lambda m: m.chat_id == group)
    assert in_group.text == "Balances are shown only in a private chat with me."
    assert sum(r.signed for r in harness.binance.requests) == signed_before


async def test_stats_for_admins_only(harness: Harness) -> None:
    await harness.ask(ALLOWED, "/price btc")
    (reply,) = await harness.ask(ADMIN, "/stats")
    assert "Bot statistics" in reply.text
    assert re.search(r"Binance requests: [1-9]", reply.text)
    assert "Delivery queue: 0 waiting" in reply.text
    assert "REQUEST_WEIGHT" in reply.text
    (refusal,) = await harness.ask(ALLOWED, "/stats")
    assert "for the bot's admins only" in refusal.text


async def test_a_turkish_user_gets_turkish_text_and_menus_exist_in_both(
    harness: Harness,
) -> None:
    (reply,) = await harness.ask(ALLOWED, "/help", language_code="tr")
    assert "Binance fiyatlarını ve bakiyelerinizi gösteririm." in reply.text
    (reply,) = await harness.ask(ALLOWED, "/price", language_code="tr-TR")
    assert reply.text.startswith("Kullanım: /price")
    (reply,) = await harness.ask(ALLOWED, "/help", language_code="de")
    assert "I show Binance prices" in reply.text  # English is the fallback
    english = {c["command"]: c["description"] for c in harness.telegram.commands_for("")}
    turkish = {c["command"]: c["description"] for c in harness.telegram.commands_for("tr")}
    assert (
        list(english)
        == list(turkish)
        == [
            *("price", "alarm", "alarms", "delalarm", "history", "tz", "ta", "chart"),
            *("balance", "stats", "help"),
        ]
    )
    assert turkish["balance"] == "Spot ve vadeli bakiyeleriniz"
    assert english["balance"] == "Your spot and futures balances"


async def test_a_flood_of_commands_is_answered_once_then_ignored(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> None:
    # One command per 1,000 s after the burst of 3: a slow machine handling the ten over
    # more than a second must not earn a fourth answer.
    async with running(make_settings(throttle_rate=0.001)) as app:
        for _ in range(10):
            telegram.inject_message(ALLOWED, "/help")
        await app.in_flight.wait_handled(10, timeout_s=10.0)
        await telegram.wait_until_idle()
    texts = [m.text for m in telegram.sent_to(ALLOWED)]
    assert sum("I show Binance prices" in t for t in texts) == 3  # the burst
    assert sum("Too many commands" in t for t in texts) == 1


async def test_binance_down_says_when_it_retries_then_answers_in_place(
    harness: Harness,
) -> None:
    await harness.ask(ALLOWED, "/price btc")  # exchangeInfo is cached from here on
    harness.binance.outage_status = 503
    (reply,) = await harness.ask(ALLOWED, "/price eth")  # not in the cache
    assert re.fullmatch(r"Binance is not answering, I will retry in \d+ s\.", reply.text)
    assert "Traceback" not in reply.text
    harness.binance.outage_status = None  # Binance is back
    edited = await harness.telegram.wait_for_sent(
        lambda m: m.chat_id == ALLOWED and m.method == "editMessageText", timeout=15.0
    )
    assert "ETHUSDT" in rows(edited[0].text)


async def test_a_handler_error_is_logged_with_the_update_id_and_the_user_gets_an_apology(
    telegram: FakeTelegram,
    binance: FakeBinance,
    make_settings: Callable[..., Settings],
    log_to: Callable[..., io.StringIO],
) -> None:
    log = log_to()
    boom = CommandSpec(name="boom")

    async def cmd_boom(_message: object) -> None:
        raise RuntimeError("boom")

    def get_router() -> Router:
        router = Router(name="broken")
        boom.register(router, cmd_boom)
        return router

    broken = SimpleNamespace(COMMANDS=(boom,), get_router=get_router)  # a handler/broken.py
    *features, errors = FEATURES
    app = build_app(make_settings(), features=(*features, broken, errors))
    async with running(make_settings(), app=app):
        update_id = telegram.inject_message(ALLOWED, "/boom")["update_id"]
        (reply,) = await telegram.wait_for_sent(lambda m: m.chat_id == ALLOWED)
    assert reply.text.startswith("Sorry, something went wrong on my side.")
    assert "boom" not in reply.text
    failures = [
        json.loads(line) for line in log.getvalue().splitlines() if "handler_failed" in line
    ]
    assert [f["update_id"] for f in failures] == [update_id]


async def test_a_newly_declared_command_is_in_both_menus_and_in_help_with_nothing_else_touched(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> None:
    ping = CommandSpec(name="ping", menu="Check that I answer", help="answers pong", access="user")

    async def cmd_ping(message: Message) -> None:
        await message.answer("pong")

    def get_router() -> Router:
        router = Router(name="ping")
        ping.register(router, cmd_ping)
        return router

    module = SimpleNamespace(COMMANDS=(ping,), get_router=get_router)  # a new handler/ping.py
    *features, errors = FEATURES
    app = build_app(make_settings(), features=(*features, module, errors))
    async with running(make_settings(), app=app):
        harness = Harness(telegram, binance, app)
        for language in ("", "tr"):
            menu = {c["command"]: c["description"] for c in telegram.commands_for(language)}
            assert list(menu) == [
                *("price", "alarm", "alarms", "delalarm", "history", "tz", "ta", "chart"),
                *("balance", "stats", "help", "ping"),
            ]
            assert menu["ping"] == "Check that I answer"  # no Turkish yet: English stands in
        (help_reply,) = await harness.ask(ALLOWED, "/help")
        assert help_reply.text.endswith(
            "/help — this text\n/ping — answers pong (authorised users)"
        )
        (help_reply,) = await harness.ask(ALLOWED, "/help", language_code="tr")
        assert "/ping — answers pong (yetkili kullanıcılar)" in help_reply.text
        (reply,) = await harness.ask(ALLOWED, "/ping")
        assert reply.text == "pong"
        (refusal,) = await harness.ask(STRANGER, "/ping")  # the access came with the declaration
        assert "only for authorised users" in refusal.text
