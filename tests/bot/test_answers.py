"""Truthful answers, over the wire: a part of /balance that could not be read is named and no
total pretends to be complete; /price during an outage keeps retrying and puts the answer in
place of its apology; /stats stays out of groups; unknown commands and plain text get one
pointer to /help; commands in any case; ``/price eth/btc`` is ETHBTC."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from tests.bot.conftest import ADMIN, ALLOWED, STRANGER, Harness, running
from tests.bot.test_commands import rows

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram
    from tests.fakes.fake_telegram_wire import SentMessage
    from utils.config import Settings

SPOT_ACCOUNT = "GET /api/v3/account"
FUTURES_BALANCE = "GET /fapi/v2/balance"
GROUP = -4242


async def quiet(harness: Harness, *messages: tuple[int, str, dict[str, Any]]) -> list[str]:
    """Inject ``(chat_id, text, options)`` messages, wait until every one was handled and
    Telegram is idle; the texts the bot sent meanwhile, to any chat."""
    sent_before = len(harness.telegram.sent)
    handled = harness.app.in_flight.handled
    for chat_id, text, options in messages:
        harness.telegram.inject_message(chat_id, text, **options)
    await harness.app.in_flight.wait_handled(handled + len(messages), timeout_s=10.0)
    await harness.telegram.wait_until_idle()
    return [m.text for m in harness.telegram.sent[sent_before:]]


# --- /balance with a part missing -------------------------------------------------------


@pytest.mark.parametrize(
    ("failing", "lead", "shown", "hidden"),
    [
        (
            SPOT_ACCOUNT,
            "Spot balances could not be read right now; futures only:",
            "<b>Futures wallet</b>",
            "<b>Spot</b>",
        ),
        (
            FUTURES_BALANCE,
            "Futures balances could not be read right now; spot only:",
            "<b>Spot</b>",
            "<b>Futures wallet</b>",
        ),
    ],
)
async def test_balance_with_a_part_failing_names_it_and_gives_no_total_that_looks_complete(
    harness: Harness, failing: str, lead: str, shown: str, hidden: str
) -> None:
    harness.binance.fail_next(50, status=500, key=failing)
    (reply,) = await harness.ask(ALLOWED, "/balance")
    assert reply.text.startswith(lead)
    assert shown in reply.text
    assert hidden not in reply.text
    assert "USDT" in rows(reply.text)
    assert re.search(r"Total of what could be read ≈ [\d,]+\.\d\d USDT", reply.text)
    assert "Total ≈" not in reply.text
    for leak in ("HTTP 500", "failed", "/api/", "/fapi/", "-1001"):
        assert leak not in reply.text


async def test_balance_with_both_parts_failing_says_so_with_no_total(harness: Harness) -> None:
    harness.binance.fail_next(50, status=500, key=SPOT_ACCOUNT)
    harness.binance.fail_next(50, status=500, key=FUTURES_BALANCE)
    (reply,) = await harness.ask(ALLOWED, "/balance")
    assert reply.text == (
        "Neither your spot nor your futures balances could be read right now. "
        "Please try /balance again in a minute."
    )


async def test_balance_with_a_part_failing_in_turkish(harness: Harness) -> None:
    harness.binance.fail_next(50, status=500, key=SPOT_ACCOUNT)
    (reply,) = await harness.ask(ALLOWED, "/balance", language_code="tr")
    assert reply.text.startswith("Spot bakiyeler şu anda okunamadı; yalnızca vadeli:")
    assert "Okunabilenlerin toplamı ≈" in reply.text


async def test_balance_without_an_api_key_says_so_and_sends_nothing_to_binance(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> None:
    keyless = make_settings(binance_overrides={"api_key": None, "secret_key": None})
    async with running(keyless) as app:
        (reply,) = await Harness(telegram, binance, app).ask(ALLOWED, "/balance")
    assert reply.text == "This bot has no Binance API key configured, so it cannot read balances."
    assert not any(r.signed for r in binance.requests)


# --- /price during an outage ------------------------------------------------------------


@pytest.fixture
async def outage_harness(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> AsyncIterator[Harness]:
    """A bot whose breaker opens at the first 5xx (for 0.5 s), so that its retries come
    every second or two, and whose /price retries for 10 s: a 40 s outage, shortened."""
    settings = make_settings(price_retry_s=10.0, binance_overrides={"breaker_failures": 1})
    async with running(settings) as app:
        harness = Harness(telegram, binance, app)
        await harness.ask(ALLOWED, "/price btc")  # exchangeInfo is cached from here on
        yield harness


def edits(chat_id: int) -> Callable[[SentMessage], bool]:
    return lambda m: m.chat_id == chat_id and m.method == "editMessageText"


async def test_price_during_an_outage_retries_with_backoff_and_the_answer_replaces_the_apology(
    outage_harness: Harness,
) -> None:
    harness = outage_harness
    harness.binance.outage_status = 503
    (apology,) = await harness.ask(ALLOWED, "/price eth")
    assert re.fullmatch(r"Binance is not answering, I will retry in \d+ s\.", apology.text)
    # a first retry fails too: the apology now says when the next one comes, later than
    # the first (where the old bot retried once and gave up)
    (still,) = await harness.telegram.wait_for_sent(edits(ALLOWED), timeout=10.0)
    assert still.message_id == apology.message_id
    first, later = (int(re.findall(r"\d+", m.text)[0]) for m in (apology, still))
    assert re.fullmatch(r"Binance is not answering, I will retry in \d+ s\.", still.text)
    assert later > first
    harness.binance.outage_status = None  # Binance is back
    (answer,) = await harness.telegram.wait_for_sent(
        lambda m: edits(ALLOWED)(m) and "could not be read" not in m.text and "<pre>" in m.text,
        timeout=10.0,
    )
    assert answer.message_id == apology.message_id
    spot, mark, _funding, _change = rows(answer.text)["ETHUSDT"]
    assert (spot, mark) == ("3500.00", "3501.75")  # the fake's ETHUSDT: spot, mark
    await harness.telegram.wait_until_idle()
    assert harness.telegram.sent_to(ALLOWED)[-1].text == answer.text  # nothing after it


async def test_price_gives_up_after_the_bound_with_one_last_word(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(price_retry_s=2.0, binance_overrides={"breaker_failures": 1})
    async with running(settings) as app:
        harness = Harness(telegram, binance, app)
        await harness.ask(ALLOWED, "/price btc")
        binance.outage_status = 503
        (apology,) = await harness.ask(ALLOWED, "/price eth")
        last = await telegram.wait_for_sent(
            lambda m: edits(ALLOWED)(m) and "did not answer" in m.text, timeout=10.0
        )
        binance.outage_status = None
    assert last[0].message_id == apology.message_id
    assert last[0].text == "Binance did not answer for 2 s; please try /price again later."
    assert "HTTP" not in last[0].text


async def test_price_with_the_futures_mark_failing_names_it_in_words(harness: Harness) -> None:
    harness.binance.fail_next(50, status=500, key="GET /fapi/v1/premiumIndex")
    (reply,) = await harness.ask(ALLOWED, "/price eth")
    spot, mark, _funding, _change = rows(reply.text)["ETHUSDT"]
    assert spot == "3500.00"  # the fake's ETHUSDT
    assert mark == "—"
    assert "ETHUSDT: the futures mark price could not be read right now" in reply.text
    assert "HTTP" not in reply.text
    assert "/fapi/" not in reply.text


# --- /stats, unknown commands, plain text, case, pairs ----------------------------------


async def test_stats_in_a_group_is_refused_and_posts_no_figures(harness: Harness) -> None:
    harness.telegram.add_chat(GROUP, type="group")
    texts = await quiet(harness, (GROUP, "/stats", {"user_id": ADMIN}))
    assert texts == ["Statistics are shown only in a private chat with me."]
    (reply,) = await harness.ask(ADMIN, "/stats")  # in private it still answers
    assert "Bot statistics" in reply.text


async def test_an_unknown_command_gets_one_pointer_to_help(harness: Harness) -> None:
    (reply,) = await harness.ask(ALLOWED, "/foo bar")
    assert reply.text == "I don't know /foo — send /help for what I can do."
    (reply,) = await harness.ask(STRANGER, "/prices btc")
    assert reply.text == (
        "I don't know /prices — did you mean /price? Send /help for what I can do."
    )
    (reply,) = await harness.ask(ADMIN, "hello bot", language_code="tr")
    assert (
        reply.text == "Yalnızca komutlara yanıt veririm — neler yapabildiğim için /help gönderin."
    )


async def test_pointers_are_rate_limited_per_user(harness: Harness) -> None:
    texts = await quiet(
        harness,
        (ALLOWED, "/foo", {}),
        (ALLOWED, "/bar", {}),
        (ALLOWED, "just chatting", {}),
        (STRANGER, "hi", {}),
    )
    assert texts == [
        "I don't know /foo — send /help for what I can do.",
        "I answer commands only — send /help for what I can do.",
    ]
    (reply,) = await harness.ask(ALLOWED, "/help")  # real commands are never held back
    assert "I show Binance prices" in reply.text


async def test_group_chatter_gets_no_answer_but_a_command_addressed_to_the_bot_does(
    harness: Harness,
) -> None:
    harness.telegram.add_chat(GROUP, type="group")
    texts = await quiet(
        harness,
        (GROUP, "hello everyone", {"user_id": 801}),
        (GROUP, "/foo", {"user_id": 802}),  # maybe another bot's
        (GROUP, "/foo@other_bot", {"user_id": 803}),
    )
    assert texts == []
    texts = await quiet(harness, (GROUP, "/foo@fake_bot", {"user_id": 804}))
    assert texts == ["I don't know /foo — send /help for what I can do."]


async def test_commands_work_in_any_case(harness: Harness) -> None:
    (reply,) = await harness.ask(ALLOWED, "/PRICE btc")
    assert "BTCUSDT" in rows(reply.text)
    (reply,) = await harness.ask(ALLOWED, "/Help")
    assert "I show Binance prices" in reply.text


async def test_a_slash_joins_base_and_quote_into_one_pair(harness: Harness) -> None:
    (reply,) = await harness.ask(ALLOWED, "/price eth/btc")
    assert list(rows(reply.text)) == ["SYMBOL", "ETHBTC"]
    (reply,) = await harness.ask(ALLOWED, "/price eth / btc, bnb")
    assert list(rows(reply.text)) == ["SYMBOL", "ETHBTC", "BNBUSDT"]
    sent_before = harness.binance.count()
    (reply,) = await harness.ask(STRANGER, "/price eth/")  # another user: no throttle
    assert reply.text == "“eth/” is not a pair: write base/quote, like ETH/BTC."
    (reply,) = await harness.ask(STRANGER, "/price a/b/c")
    assert "is not a pair" in reply.text
    assert harness.binance.count() == sent_before
