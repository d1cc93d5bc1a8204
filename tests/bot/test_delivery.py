"""The delivery queue end to end, with the SQLite outbox and with a real Redis: flood limits
kept by scheduling, blocked chats parked, long texts split, nothing lost or sent twice; what a
send whose outcome is unknown becomes under each delivery policy, down to a ``python -m bot``
killed at random moments while it delivers (``scripts/crash_delivery.py``, scaled down)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bot.outbox import ChatState, DeliveryPolicy, Job, OutboxFullError, RedisOutbox, SqliteOutbox
from scripts.crash_delivery import Shape, measure
from tests.bot.conftest import ADMIN, running

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bot.outbox import Outbox
    from tests.conftest import RedisServer
    from tests.fakes.fake_telegram import FakeTelegram
    from utils.config import Settings

CHATS = list(range(1000, 1050))
PER_CHAT = 6


async def test_300_messages_to_50_chats_arrive_once_in_order_within_the_limits(
    outbox_backend: str | None, telegram: FakeTelegram, make_settings: Callable[..., Settings]
) -> None:
    for chat in CHATS:
        telegram.add_chat(chat)
    blocked, flooded = CHATS[7], CHATS[3]
    telegram.block(blocked)
    telegram.fail_next("sendMessage", chat_id=flooded, status=429, retry_after=1)
    async with running(make_settings(redis_url=outbox_backend)) as app:
        for i in range(PER_CHAT):
            for chat in CHATS:
                await app.notifier.send(chat, f"msg {chat} #{i} &amp; more")
        expected = (len(CHATS) - 1) * PER_CHAT
        await telegram.wait_for_sent(
            lambda m: m.text.startswith("msg"), count=expected, timeout=60
        )
        await app.notifier.wait_until(lambda: app.notifier.counters["sent"] >= expected, 10.0)
        assert await app.outbox.chat_states() == {blocked: ChatState.BLOCKED}
        assert len(await app.outbox.parked(blocked)) == PER_CHAT  # kept, not retried
        assert await app.outbox.depth() == 0
    texts = [m.text for m in telegram.sent if m.text.startswith("msg")]
    assert len(texts) == expected
    assert len(set(texts)) == expected  # none twice
    for chat in CHATS:
        if chat != blocked:
            assert [m.text for m in telegram.sent_to(chat)] == [
                f"msg {chat} #{i} &amp; more" for i in range(PER_CHAT)
            ]
    # the only 429 is the one the fake was told to give: the pace kept every limit
    assert telegram.flood_429s == 1
    assert telegram.flood_429s_by_chat == {flooded: 1}


async def test_a_blocked_user_who_comes_back_gets_the_parked_messages(
    telegram: FakeTelegram, make_settings: Callable[..., Settings]
) -> None:
    chat = 1100
    telegram.add_chat(chat)
    telegram.block(chat)
    async with running(make_settings()) as app:
        await app.notifier.send(chat, "while you were away")
        await app.notifier.wait_until(lambda: app.notifier.counters["chat_blocked"] == 1, 5.0)
        assert await app.outbox.chat_state(chat) is ChatState.BLOCKED
        assert telegram.sent_to(chat) == []
        telegram.unblock(chat)
        telegram.inject_message(chat, "/start")
        await telegram.wait_for_sent(lambda m: m.text == "while you were away", timeout=10)


async def test_a_long_text_is_split_and_a_full_outbox_refuses_loudly(
    telegram: FakeTelegram, make_settings: Callable[..., Settings]
) -> None:
    chat = 1200
    telegram.add_chat(chat)
    long_text = "\n".join(f"line {i:05d} " + "x" * 60 for i in range(200))  # ~14,000 chars
    async with running(make_settings(outbox_capacity=5)) as app:
        jobs = await app.notifier.send(chat, long_text)
        assert len(jobs) == 4
        parts = await telegram.wait_for_sent(lambda m: m.chat_id == chat, count=4, timeout=10)
        assert "".join(p.text for p in parts) == long_text
        await app.notifier.stop()  # nothing is taken out of the outbox from here on
        for i in range(5):
            await app.notifier.send(chat, f"queued {i}")
        with pytest.raises(OutboxFullError, match="5"):
            await app.notifier.send(chat, "one too many")
        assert app.notifier.counters["refused_full"] == 1


async def test_messages_survive_redis_going_away_and_coming_back(
    telegram: FakeTelegram, make_settings: Callable[..., Settings], redis_server: RedisServer
) -> None:
    chat = 1300
    telegram.add_chat(chat)
    redis_server.appendonly = True  # as docker-compose runs it
    await redis_server.restart()
    telegram.delay("sendMessage", 0.1)  # messages wait in the outbox while Redis goes away
    settings = make_settings(redis_url=redis_server.url, admin_chat_id=None)  # no outage alerts
    async with running(settings) as app:
        for i in range(10):
            await app.notifier.send(chat, f"accepted {i}")
        await telegram.wait_for_call("sendMessage")
        await redis_server.stop()
        await redis_server.start()
        sent = await telegram.wait_for_sent(lambda m: m.chat_id == chat, count=10, timeout=30)
        await app.notifier.wait_until(lambda: app.notifier.counters["sent"] >= 10, 10.0)
        assert await app.outbox.depth() == 0
    assert [m.text for m in sent] == [f"accepted {i}" for i in range(10)]
    assert len(telegram.sent_to(chat)) == 10  # none twice


async def test_network_errors_are_retried_and_what_telegram_refuses_is_set_aside(
    telegram: FakeTelegram, make_settings: Callable[..., Settings]
) -> None:
    flaky, gone, fine = 1400, 1401, 1402
    for chat in (flaky, fine):
        telegram.add_chat(chat)  # `gone` never started the bot: "chat not found"
    telegram.fail_next("sendMessage", chat_id=flaky, status=502, times=2)
    telegram.drop_connection_next("sendMessage", chat_id=flaky)
    async with running(make_settings(admin_chat_id=None)) as app:
        await app.notifier.send(flaky, "third time lucky")
        await app.notifier.send(gone, "to nobody")
        await app.notifier.send(fine, "<b>bad html</i>")  # a caller's bug: never deliverable
        await app.notifier.send(fine, "after the bad one")
        await telegram.wait_for_sent(lambda m: m.text == "third time lucky", timeout=10)
        await telegram.wait_for_sent(lambda m: m.text == "after the bad one", timeout=10)
        await app.notifier.wait_until(lambda: app.notifier.counters["sent"] >= 2, 5.0)
        assert app.notifier.counters["retries"] == 3
        assert await app.outbox.chat_states() == {gone: ChatState.NOT_FOUND}
        ((dead, reason),) = await app.outbox.dead_letters()
        assert dead.text == "<b>bad html</i>"
        assert "can't parse entities" in reason
        assert await app.outbox.depth() == 0
    assert len(telegram.sent_to(flaky)) == 1


def store_of(outbox_backend: str | None, tmp_path: Path) -> Outbox:
    """The outbox the bot of ``make_settings(redis_url=outbox_backend)`` uses."""
    if outbox_backend:
        return RedisOutbox.from_url(outbox_backend, prefix="test:")
    return SqliteOutbox(tmp_path / "outbox.sqlite3")


async def test_an_at_most_once_message_a_crash_left_sending_is_set_aside_never_sent(
    outbox_backend: str | None,
    telegram: FakeTelegram,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    chat = 1500
    telegram.add_chat(chat)
    once, twice = DeliveryPolicy.AT_MOST_ONCE, DeliveryPolicy.AT_LEAST_ONCE
    store = store_of(outbox_backend, tmp_path)
    await store.open()
    await store.put_many(
        [
            Job(id="in-flight", chat_id=chat, text="was being sent", policy=once),
            Job(id="next", chat_id=chat, text="was waiting", policy=once),
            Job(id="alarm", chat_id=chat, text="an alarm", policy=twice),
        ]
    )
    assert await store.mark_sending("in-flight")  # then the process was killed
    await store.close()
    async with running(make_settings(redis_url=outbox_backend, admin_chat_id=None)) as app:
        sent = await telegram.wait_for_sent(lambda m: m.chat_id == chat, count=2, timeout=10)
        await app.notifier.wait_until(lambda: app.notifier.counters["sent"] == 2, 5.0)
        ((dead, reason),) = await app.outbox.dead_letters()
        assert app.notifier.counters["unknown_after_crash"] == 1
    assert [m.text for m in sent] == ["was waiting", "an alarm"]
    assert len(telegram.sent_to(chat)) == 2
    assert (dead.id, reason) == ("in-flight", "outcome unknown after a crash")


async def test_a_lost_answer_sets_an_at_most_once_message_aside_and_resends_the_others(
    telegram: FakeTelegram, make_settings: Callable[..., Settings]
) -> None:
    lost_once, lost_twice, refused_once = 1600, 1601, 1602
    for chat in (lost_once, lost_twice, refused_once):
        telegram.add_chat(chat)
    for chat in (lost_once, lost_twice):
        telegram.drop_connection_next("sendMessage", chat_id=chat)  # the answer never comes
    telegram.fail_next("sendMessage", chat_id=refused_once, status=502)  # Telegram says no
    once = DeliveryPolicy.AT_MOST_ONCE
    async with running(make_settings(admin_chat_id=None)) as app:
        await app.notifier.send(lost_once, "maybe arrived", policy=once)
        await app.notifier.send(lost_twice, "sent again")
        await app.notifier.send(refused_once, "refused, then sent", policy=once)
        await telegram.wait_for_sent(lambda m: m.chat_id == lost_twice, timeout=10)
        await telegram.wait_for_sent(lambda m: m.chat_id == refused_once, timeout=10)
        await app.notifier.wait_until(lambda: app.notifier.counters["dead"] == 1, 5.0)
        ((dead, reason),) = await app.outbox.dead_letters()
        assert await app.outbox.depth() == 0
    assert dead.text == "maybe arrived"
    assert reason.startswith("outcome unknown: TelegramNetworkError")
    assert telegram.sent_to(lost_once) == []
    assert [m.text for m in telegram.sent_to(lost_twice)] == ["sent again"]
    assert [m.text for m in telegram.sent_to(refused_once)] == ["refused, then sent"]


async def test_admin_alerts_are_queued_at_most_once(
    telegram: FakeTelegram, make_settings: Callable[..., Settings]
) -> None:
    async with running(make_settings()) as app:
        await app.notifier.stop()  # keep what is queued in the outbox
        app.alerts.on_bot_event("outbox.down", "The outbox is unreachable (a test)", {})
        await app.alerts.aclose()  # until the alert is stored
        (alert,) = await app.outbox.pending()
    assert (alert.chat_id, alert.policy) == (ADMIN, DeliveryPolicy.AT_MOST_ONCE)


@pytest.mark.parametrize("policy", list(DeliveryPolicy))
async def test_a_bot_killed_at_random_moments_loses_no_at_least_once_and_repeats_no_at_most_once(
    policy: DeliveryPolicy, tmp_path: Path
) -> None:
    tally = await measure(policy, Shape(messages=20, kills=3, seed=7), workdir=tmp_path)
    assert tally.kills == 3
    assert tally.unaccounted == 0  # what did not arrive is a dead letter that says why
    if policy is DeliveryPolicy.AT_LEAST_ONCE:
        assert (tally.lost, tally.set_aside) == (0, 0)
    else:
        assert tally.duplicated == 0
