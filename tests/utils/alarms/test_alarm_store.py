"""The alarm store: one contract run over SQLite, Redis and Redis Cluster (adding with its
refusals and limits, paging, deleting, states, a blocked chat paused and resumed, the engine's
stream of armed alarms, as alarms and as the stored rows of the start-up load, firings
recorded once, expiry, time zones, the change log, bulk import, survival across reopening,
concurrent adds from two stores), then what only Redis has: a restart mid-run losing nothing
acknowledged, and keys under one prefix and hash tag (on one server and on a cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from utils.alarms.alarm_codec import SPEC_FIELDS, decode_row
from utils.alarms.alarm_engine import AlarmEngine
from utils.alarms.alarm_model import DEFAULT_EXPIRY_S, Alarm, AlarmState, Firing
from utils.alarms.alarm_parser import parse_alarm
from utils.alarms.alarm_startup import load_engine
from utils.alarms.alarm_store import (
    HISTORY_KEEP,
    AlarmChangesLostError,
    AlarmExistsError,
    AlarmLimitError,
    RedisAlarmStore,
    SqliteAlarmStore,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.conftest import RedisServer
    from tests.redis_cluster import LocalCluster
    from utils.alarms.alarm_model import AlarmSpec
    from utils.alarms.alarm_store import AlarmStore
    from utils.redis_conn import RedisClient

NOW: Final = 1_800_000_000.0
ARMED, FIRED, PAUSED, EXPIRED = (
    AlarmState.ARMED,
    AlarmState.FIRED,
    AlarmState.PAUSED,
    AlarmState.EXPIRED,
)
LOTS: Final = 1_000_000  # a limit that is not reached


@dataclasses.dataclass
class Backend:
    kind: str
    target: str  # the SQLite file or the Redis URL

    def make(self, *, keep_changes: int = 100_000) -> SqliteAlarmStore | RedisAlarmStore:
        if self.kind == "sqlite":
            return SqliteAlarmStore(self.target, keep_changes=keep_changes)
        return RedisAlarmStore.from_url(self.target, keep_changes=keep_changes)

    @contextlib.asynccontextmanager
    async def opened(self, *, keep_changes: int = 100_000) -> AsyncIterator[AlarmStore]:
        store = self.make(keep_changes=keep_changes)
        await store.open()
        try:
            yield store
        finally:
            await store.close()


@pytest.fixture(params=["sqlite", "redis", "cluster"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "state" / "alarms.db"))
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return Backend("cluster", cluster.url)
    server: RedisServer = request.getfixturevalue("redis_server")
    return Backend("redis", server.url)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[AlarmStore]:
    async with backend.opened() as opened:
        yield opened


def spec(text: str) -> AlarmSpec:
    return parse_alarm(text, now=NOW)


async def add(
    store: AlarmStore, text: str, chat_id: int = 1, *, per_chat: int = LOTS, total: int = LOTS
) -> Alarm:
    return await store.add(
        chat_id, 7, spec(text), now=NOW, per_chat_limit=per_chat, global_limit=total
    )


def firing(alarm: Alarm, seq: int, *, at: float = NOW + 60) -> Firing:
    return Firing(
        alarm_id=alarm.id,
        chat_id=alarm.chat_id,
        seq=seq,
        touched_price=Decimal("70000.01"),
        price=Decimal("69990.5"),
        touched_at=at - 1,
        fired_at=at,
    )


async def armed_ids(store: AlarmStore, page: int = 5_000) -> list[int]:
    return [alarm.id async for alarm in store.armed(page=page)]


async def test_an_added_alarm_is_armed_with_the_default_expiry_and_reads_back(
    store: AlarmStore,
) -> None:
    alarm = await add(store, "btc > 70,000 futures repeat 30m take profit")
    assert alarm.id == 1
    assert (alarm.chat_id, alarm.user_id, alarm.state, alarm.seq) == (1, 7, ARMED, 0)
    assert (alarm.created_at, alarm.expires_at) == (NOW, NOW + DEFAULT_EXPIRY_S)
    assert alarm.spec == spec("btc > 70000 futures repeat 30m take profit")
    assert await store.get(alarm.id) == alarm
    assert await store.get(999) is None


async def test_an_alarm_with_its_own_expiry_keeps_it(store: AlarmStore) -> None:
    alarm = await add(store, "eth < 2500 for 7d")
    assert alarm.expires_at == NOW + 7 * 86_400
    assert await store.get(alarm.id) == alarm


async def test_short_ids_count_up_and_are_never_reused(store: AlarmStore) -> None:
    first = await add(store, "btc > 1")
    second = await add(store, "btc > 2", chat_id=2)
    assert await store.delete(second.id)
    third = await add(store, "btc > 3")
    assert (first.id, second.id, third.id) == (1, 2, 3)


async def test_the_same_condition_twice_in_a_chat_names_the_first_and_stores_nothing(
    store: AlarmStore,
) -> None:
    first = await add(store, "btc > 70000 take profit")
    cursor = await store.change_cursor()
    for same in ("BTC >= 70,000", "btc > 70k now", "btc > 70000 repeat for 7d other note"):
        with pytest.raises(AlarmExistsError) as refused:
            await add(store, same)
        assert refused.value.existing_id == first.id
    assert await store.count(1) == 1
    assert await store.changes_since(cursor) == ([], cursor)
    assert (await add(store, "btc > 70000", chat_id=2)).id == 2  # another chat may
    assert (await add(store, "btc > 70000 futures")).id == 3  # another market is another


async def test_a_finished_alarm_does_not_block_setting_it_again(store: AlarmStore) -> None:
    first = await add(store, "btc > 70000")
    assert await store.mark_fired(firing(first, 1), state=FIRED, rearm_at=None)
    again = await add(store, "btc > 70000")
    with pytest.raises(AlarmExistsError) as refused:
        await add(store, "btc > 70000")
    assert refused.value.existing_id == again.id


async def test_the_per_chat_limit_refuses_with_the_numbers_and_stores_nothing(
    store: AlarmStore,
) -> None:
    for level in range(1, 4):
        await add(store, f"btc > {level}", per_chat=3)
    with pytest.raises(AlarmLimitError) as refused:
        await add(store, "btc > 4", per_chat=3)
    assert (refused.value.count, refused.value.limit, refused.value.scope) == (3, 3, "chat")
    assert await store.count(1) == 3
    await add(store, "btc > 4", chat_id=2, per_chat=3)  # other chats have their own
    first = (await store.chat_alarms(1))[0]
    assert await store.mark_fired(firing(first, 1), state=FIRED, rearm_at=None)
    await add(store, "btc > 4", per_chat=3)  # a finished alarm no longer counts
    assert (await store.open_count(1), await store.count(1)) == (3, 4)


async def test_the_global_limit_refuses_with_the_numbers(store: AlarmStore) -> None:
    await add(store, "btc > 1", chat_id=1, total=2)
    await add(store, "btc > 1", chat_id=2, total=2)
    with pytest.raises(AlarmLimitError) as refused:
        await add(store, "btc > 1", chat_id=3, total=2)
    assert (refused.value.count, refused.value.limit, refused.value.scope) == (2, 2, "global")
    assert await store.open_count() == 2
    await store.delete(1)
    assert (await add(store, "btc > 1", chat_id=3, total=2)).id == 3


async def test_a_chats_alarms_come_in_pages_by_id(store: AlarmStore) -> None:
    for level in range(1, 13):
        await add(store, f"btc > {level}", chat_id=5)
    await add(store, "btc > 1", chat_id=6)
    page_one = await store.chat_alarms(5)
    page_two = await store.chat_alarms(5, offset=10)
    assert [a.id for a in page_one] == list(range(1, 11))
    assert [a.id for a in page_two] == [11, 12]
    assert [a.spec.level for a in page_two] == [Decimal(11), Decimal(12)]
    assert await store.chat_alarms(5, offset=12) == []
    assert await store.chat_alarms(5, limit=0) == []
    assert (await store.count(5), await store.count(6), await store.count(7)) == (12, 1, 0)


async def test_deleting_one_alarm_or_a_whole_chat(store: AlarmStore) -> None:
    kept = await add(store, "eth < 2000", chat_id=2)
    for level in (1, 2, 3):
        await add(store, f"btc > {level}")
    await store.set_tz(1, "Europe/Istanbul")
    one = (await store.chat_alarms(1))[0]
    assert await store.mark_fired(firing(one, 1), state=FIRED, rearm_at=None)
    assert await store.delete(one.id)
    assert not await store.delete(one.id)
    assert await store.get(one.id) is None
    assert await store.delete_chat(1) == 2
    assert await store.delete_chat(1) == 0
    assert (await store.count(1), await store.open_count()) == (0, 1)
    assert await store.chat_alarms(2) == [kept]
    assert await store.get_tz(1) == "Europe/Istanbul"  # settings and history stay
    assert len(await store.history(1)) == 1
    assert (await add(store, "btc > 1")).id == 5  # and the condition is free again


async def test_set_state_pauses_rearms_and_moves_the_expiry(store: AlarmStore) -> None:
    alarm = await add(store, "btc > 70000 repeat")
    paused = await store.set_state(alarm.id, PAUSED)
    assert paused == dataclasses.replace(alarm, state=PAUSED)
    assert await store.get(alarm.id) == paused
    assert await armed_ids(store) == []
    assert await store.open_count(1) == 1  # a paused alarm still counts
    snoozed = await store.set_state(alarm.id, FIRED, rearm_at=NOW + 3600, expires_at=NOW + 7200)
    assert snoozed == dataclasses.replace(
        alarm, state=FIRED, rearm_at=NOW + 3600, expires_at=NOW + 7200
    )
    assert await armed_ids(store) == [alarm.id]
    rearmed = await store.set_state(alarm.id, ARMED)
    assert rearmed == dataclasses.replace(alarm, expires_at=NOW + 7200)
    assert await store.set_state(404, ARMED) is None


async def test_a_blocked_chat_is_paused_and_start_resumes_only_what_the_block_paused(
    store: AlarmStore,
) -> None:
    await add(store, "btc > 1")
    cooling = await add(store, "btc > 2 repeat")
    assert await store.mark_fired(firing(cooling, 1), state=FIRED, rearm_at=NOW + 900)
    by_user = await add(store, "btc > 3")
    await store.set_state(by_user.id, PAUSED)
    done = await add(store, "btc > 4")
    assert await store.mark_fired(firing(done, 1), state=FIRED, rearm_at=None)
    other = await add(store, "btc > 1", chat_id=2)
    before = {a.id: a for a in await store.chat_alarms(1)}

    assert await store.pause_chat(1) == 2
    assert [a.state for a in await store.chat_alarms(1)] == [PAUSED, PAUSED, PAUSED, FIRED]
    assert await armed_ids(store) == [other.id]
    assert await store.pause_chat(1) == 0

    assert await store.resume_chat(1) == 2
    assert {a.id: a for a in await store.chat_alarms(1)} == before
    assert await store.resume_chat(1) == 0


async def test_a_users_choice_during_the_block_is_not_undone_by_resuming(
    store: AlarmStore,
) -> None:
    alarm = await add(store, "btc > 1")
    await store.pause_chat(1)
    await store.set_state(alarm.id, PAUSED)  # the user pauses it for good
    assert await store.resume_chat(1) == 0
    assert (await store.get(alarm.id)) == dataclasses.replace(alarm, state=PAUSED)


async def test_armed_streams_every_live_alarm_by_id_across_pages(store: AlarmStore) -> None:
    alarms = [await add(store, f"btc > {level}", chat_id=level % 3) for level in range(1, 12)]
    await store.set_state(alarms[0].id, PAUSED)
    assert await store.mark_fired(firing(alarms[1], 1), state=FIRED, rearm_at=None)
    assert await store.mark_fired(firing(alarms[2], 1), state=FIRED, rearm_at=NOW + 900)
    await store.delete(alarms[3].id)
    expected = [a.id for a in alarms if a.id not in {1, 2, 4}]
    assert await armed_ids(store, page=3) == expected
    assert await armed_ids(store, page=8) == expected
    streamed = [a async for a in store.armed(page=4)]
    assert streamed[0] == dataclasses.replace(
        alarms[2], state=FIRED, seq=1, fired_at=NOW + 60, rearm_at=NOW + 900
    )
    assert streamed[1:] == alarms[4:]


async def test_a_reader_that_stops_early_leaves_nothing_running(store: AlarmStore) -> None:
    for level in range(1, 8):
        await add(store, f"btc > {level}")
    tasks = asyncio.all_tasks()
    stream = store.armed(page=2)
    assert [await anext(stream) for _ in range(3)] == await store.chat_alarms(1, limit=3)
    await stream.aclose()  # type: ignore[attr-defined]
    assert asyncio.all_tasks() <= tasks
    assert len(await store.chat_alarms(1)) == 7  # and the store still answers


async def test_armed_rows_are_the_armed_alarms_as_stored_rows_page_by_page(
    store: AlarmStore,
) -> None:
    alarms = [await add(store, f"btc > {level}", chat_id=level % 3) for level in range(1, 12)]
    alarms.append(await add(store, "eth < 2,500.5 futures repeat 30m for 7d take profit"))
    await store.set_state(alarms[0].id, PAUSED)
    assert await store.mark_fired(firing(alarms[1], 1), state=FIRED, rearm_at=None)
    assert await store.mark_fired(firing(alarms[2], 1), state=FIRED, rearm_at=NOW + 900)
    await store.delete(alarms[3].id)
    cooling = dataclasses.replace(
        alarms[2], state=FIRED, seq=1, fired_at=NOW + 60, rearm_at=NOW + 900
    )
    pages = [page async for page in store.armed_rows(page=3)]
    assert [len(page) for page in pages] == [3, 3, 3]
    rows = [row for page in pages for row in page]
    assert [decode_row(row) for row in rows] == [cooling, *alarms[4:]]
    assert [decode_row(row) for row in rows] == [a async for a in store.armed(page=3)]
    first = rows[0]
    assert tuple(first[:7]) == (3, 0, "fired", 1, NOW + 60, NOW + 900, NOW + DEFAULT_EXPIRY_S)
    spec = dict(zip(SPEC_FIELDS, rows[-1][7], strict=True))
    assert (spec["symbol"], spec["market"], spec["kind"], spec["direction"]) == (
        alarms[-1].spec.symbol, "futures", "below", "both",
    )  # fmt: skip
    assert (spec["level"], spec["repeat_s"], spec["hysteresis"]) == ("2500.5", 1800, "0.002")


async def test_a_row_reader_that_stops_early_leaves_nothing_running(store: AlarmStore) -> None:
    for level in range(1, 8):
        await add(store, f"btc > {level}")
    tasks = asyncio.all_tasks()
    pages = store.armed_rows(page=2)
    assert [decode_row(row).id for row in await anext(pages)] == [1, 2]
    await pages.aclose()
    assert asyncio.all_tasks() <= tasks
    assert len(await store.chat_alarms(1)) == 7  # and the store still answers


async def test_the_start_up_load_holds_every_live_alarm_but_those_set_after_the_checkpoint(
    store: AlarmStore,
) -> None:
    """The leader's load: a market's alarms created after its checkpoint join the replay
    instead, so they come back as alarms; a market without a checkpoint loads them all."""
    btc, eth = await add(store, "btc > 70000"), await add(store, "eth < 2000 futures")
    paused = await add(store, "bnb > 900")
    await store.set_state(paused.id, PAUSED)

    async def add_later(text: str) -> Alarm:
        return await store.add(
            1, 7, spec(text), now=NOW + 120, per_chat_limit=LOTS, global_limit=LOTS
        )

    later_spot, later_futures = await add_later("sol > 300"), await add_later("btc < 5 futures")
    engine = AlarmEngine(clock=lambda: NOW + 200)
    checkpoint = {"spot": int((NOW + 60) * 1000), "futures": None}
    loaded = await load_engine(store, engine, since=checkpoint)
    assert loaded.later == {"spot": [later_spot]}
    assert (loaded.held, len(engine)) == (3, 3)
    assert loaded.symbols == {(a.spec.market, a.spec.symbol) for a in (btc, eth, later_futures)}
    assert gc.isenabled()
    assert [f.alarm_id for f in engine.on_price("spot", btc.spec.symbol, 70001.0, NOW + 201)] == [
        btc.id
    ]
    assert engine.on_price("spot", later_spot.spec.symbol, 301.0, NOW + 201) == []


async def test_a_firing_is_recorded_once_however_often_it_is_reported(
    store: AlarmStore,
) -> None:
    alarm = await add(store, "btc > 70000 repeat")
    first = firing(alarm, 1)
    assert await store.mark_fired(first, state=FIRED, rearm_at=NOW + 900)
    assert not await store.mark_fired(first, state=FIRED, rearm_at=NOW + 900)
    assert not await store.mark_fired(firing(alarm, 3), state=FIRED, rearm_at=None)
    assert await store.get(alarm.id) == dataclasses.replace(
        alarm, state=FIRED, seq=1, fired_at=NOW + 60, rearm_at=NOW + 900
    )
    second = firing(alarm, 2, at=NOW + 2000)
    assert await store.mark_fired(second, state=ARMED, rearm_at=None)
    assert await store.history(1) == [second, first]
    assert not await store.mark_fired(
        firing(dataclasses.replace(alarm, id=99), 1), state=FIRED, rearm_at=None
    )


async def test_history_keeps_the_last_hundred_firings_per_chat_newest_first(
    store: AlarmStore,
) -> None:
    alarm = await add(store, "btc > 1 repeat")
    other = await add(store, "btc > 1", chat_id=2)
    for seq in range(1, HISTORY_KEEP + 6):
        assert await store.mark_fired(firing(alarm, seq, at=NOW + seq), state=ARMED, rearm_at=None)
    assert await store.mark_fired(firing(other, 1), state=FIRED, rearm_at=None)
    kept = await store.history(1, limit=1_000)
    assert [f.seq for f in kept] == list(range(HISTORY_KEEP + 5, 5, -1))
    assert [f.seq for f in await store.history(1)] == list(range(105, 85, -1))
    assert await store.history(2) == [firing(other, 1)]
    assert await store.history(3) == []


async def test_expired_alarms_are_returned_once(store: AlarmStore) -> None:
    soon = await add(store, "btc > 1 for 1h")
    later = await add(store, "btc > 2 for 2h", chat_id=2)
    paused = await add(store, "btc > 3 for 1h")
    await store.set_state(paused.id, PAUSED)
    done = await add(store, "btc > 4 for 1h")
    assert await store.mark_fired(firing(done, 1), state=FIRED, rearm_at=None)
    assert await store.expire(NOW + 3599) == []
    expired = await store.expire(NOW + 3600)
    assert expired == [
        dataclasses.replace(soon, state=EXPIRED),
        dataclasses.replace(paused, state=EXPIRED),
    ]
    assert await store.expire(NOW + 3600) == []
    assert await store.expire(NOW + 9999, limit=5) == [dataclasses.replace(later, state=EXPIRED)]
    assert await armed_ids(store) == []
    assert await store.open_count() == 0
    assert (await add(store, "btc > 1")).id == 5  # an expired alarm blocks nothing


async def test_expire_returns_at_most_limit_soonest_first(store: AlarmStore) -> None:
    for hours in (3, 1, 2):
        await add(store, f"btc > {hours} for {hours}h")
    assert [a.id for a in await store.expire(NOW + 86_400, limit=2)] == [2, 3]
    assert [a.id for a in await store.expire(NOW + 86_400, limit=2)] == [1]


async def test_a_chats_time_zone_is_kept_until_cleared(store: AlarmStore) -> None:
    assert await store.get_tz(1) is None
    await store.set_tz(1, "Europe/Istanbul")
    await store.set_tz(1, "America/New_York")
    await store.set_tz(-100_200, "Asia/Kolkata")
    assert await store.get_tz(1) == "America/New_York"
    assert await store.get_tz(-100_200) == "Asia/Kolkata"
    await store.set_tz(1, None)
    assert await store.get_tz(1) is None


async def test_the_change_log_names_every_alarm_changed_since_a_cursor(
    store: AlarmStore,
) -> None:
    start = await store.change_cursor()
    assert await store.changes_since(start) == ([], start)
    one = await add(store, "btc > 1")
    two = await add(store, "btc > 2", chat_id=2)
    ids, cursor = await store.changes_since(start)
    assert ids == [one.id, two.id]
    assert cursor == await store.change_cursor()
    await store.set_state(one.id, PAUSED)
    await store.delete(two.id)
    await store.set_state(one.id, ARMED)
    ids, after = await store.changes_since(cursor)
    assert ids == [one.id, two.id]  # each once, in the order of their first change
    assert await store.changes_since(after) == ([], after)
    assert (await store.changes_since(start, limit=1))[0] == [one.id]


async def test_a_cursor_older_than_the_kept_log_says_to_reload(backend: Backend) -> None:
    async with backend.opened(keep_changes=10) as store:
        start = await store.change_cursor()
        for level in range(1, 301):
            await add(store, f"btc > {level}")
        with pytest.raises(AlarmChangesLostError) as lost:
            await store.changes_since(start)
        head = lost.value.cursor
        assert head == await store.change_cursor()
        await add(store, "btc > 999")
        assert (await store.changes_since(head))[0] == [301]
        with pytest.raises(AlarmChangesLostError):
            await store.changes_since(head + 100)  # a cursor this log never gave


async def test_imported_alarms_keep_their_ids_and_new_ids_follow_them(
    store: AlarmStore,
) -> None:
    base = await add(store, "btc > 1")
    imported = [
        dataclasses.replace(base, id=10, chat_id=3, state=PAUSED),
        dataclasses.replace(
            base, id=12, chat_id=3, seq=4, state=FIRED, fired_at=NOW, rearm_at=NOW + 1
        ),
        dataclasses.replace(base, id=11, chat_id=4, spec=spec("eth +5% 1h now")),
    ]
    assert await store.import_alarms(imported) == 3
    assert [await store.get(a.id) for a in imported] == imported
    assert await armed_ids(store) == [1, 11, 12]
    assert (await add(store, "btc > 2")).id == 13
    with pytest.raises(ValueError, match="alarm 10 is already stored"):
        await store.import_alarms([dataclasses.replace(base, id=10)])
    assert await store.get(10) == imported[0]


async def test_everything_survives_closing_and_opening_again(backend: Backend) -> None:
    async with backend.opened() as first:
        alarm = await add(first, "btc > 70000 repeat 1h until 2027-06-01 moon")
        other = await add(first, "eth -5% 15m futures", chat_id=-1001)
        assert await first.mark_fired(firing(alarm, 1), state=FIRED, rearm_at=NOW + 3600)
        await first.pause_chat(-1001)
        await first.set_tz(-1001, "Europe/Istanbul")
        before = (await first.chat_alarms(1), await first.chat_alarms(-1001))
        cursor = await first.change_cursor()
    async with backend.opened() as second:
        assert (await second.chat_alarms(1), await second.chat_alarms(-1001)) == before
        assert await second.history(1) == [firing(alarm, 1)]
        assert await second.get_tz(-1001) == "Europe/Istanbul"
        assert await second.change_cursor() == cursor
        assert await armed_ids(second) == [alarm.id]
        assert await second.resume_chat(-1001) == 1
        assert (await second.get(other.id)) == other
        assert (await add(second, "btc > 1")).id == 3
        assert (await second.changes_since(cursor))[0] == [other.id, 3]


async def test_two_stores_adding_at_once_never_pass_the_per_chat_limit(
    backend: Backend,
) -> None:
    async with backend.opened() as one, backend.opened() as two:

        async def attempt(store: AlarmStore, level: int) -> bool:
            try:
                await add(store, f"btc > {level}", per_chat=25)
            except AlarmLimitError:
                return False
            return True

        results = await asyncio.gather(*(attempt(one if n % 2 else two, n) for n in range(1, 61)))
        assert sum(results) == 25
        assert (await one.open_count(1), await two.count(1)) == (25, 25)


async def test_a_store_that_is_not_open_says_so(backend: Backend) -> None:
    store = backend.make()
    with pytest.raises(RuntimeError, match=r"not open: call open\(\) first"):
        await add(store, "btc > 1")
    await store.close()


async def test_a_redis_restart_mid_run_loses_nothing_acknowledged(
    redis_server: RedisServer,
) -> None:
    redis_server.appendonly = True  # as docker-compose runs it: AOF, fsync always
    await redis_server.restart()
    acked: list[Alarm] = []
    restarted = asyncio.Event()
    async with Backend("redis", redis_server.url).opened() as store:

        async def keep_adding() -> None:
            for level in range(1, 20_000):  # bounded; stops 30 acks after the restart
                try:
                    acked.append(await add(store, f"btc > {level}"))
                except AlarmExistsError:  # stored, but the answer was lost: not acknowledged
                    pass
                except (RedisError, OSError):
                    await asyncio.sleep(0.01)  # Redis is down: nothing to await but time
                if restarted.is_set() and len(acked) >= after_restart + 30:
                    return

        after_restart = 1_000_000
        writer = asyncio.create_task(keep_adding())
        async with asyncio.timeout(30):
            while len(acked) < 30:  # noqa: ASYNC110 (the writer has no event per add)
                await asyncio.sleep(0.005)
            await redis_server.restart()
            after_restart = len(acked)
            restarted.set()
            await writer
        assert len(acked) >= after_restart + 30
        for alarm in acked:
            assert await store.get(alarm.id) == alarm
        ids = [a.id for a in acked]
        assert ids == sorted(ids)
        assert set(ids) <= set(await armed_ids(store))


async def all_keys(client: RedisClient) -> list[str]:
    """Every key of the server, or of every master of the cluster."""
    if isinstance(client, RedisCluster):
        found = await client.keys("*", target_nodes=RedisCluster.PRIMARIES)
    else:
        found = await client.keys("*")
    return [key.decode() if isinstance(key, bytes) else str(key) for key in found]


async def test_redis_keys_stay_under_their_prefix_in_one_hash_tag(
    redis_client: RedisClient,
) -> None:
    """Every operation, on two stores sharing one client: the cluster refuses a script that
    touches a key outside its slot, and no key lands outside the prefix's hash tag."""
    client = redis_client
    first = RedisAlarmStore(client, prefix="one:")
    second = RedisAlarmStore(client, prefix="two:")
    for store in (first, second):
        await store.open()
        alarm = await add(store, "btc > 1 repeat")
        await add(store, "eth < 2", chat_id=2)
        assert await store.mark_fired(firing(alarm, 1), state=FIRED, rearm_at=NOW)
        await store.set_tz(1, "UTC")
        await store.pause_chat(2)
        assert await store.resume_chat(2) == 1
        await store.pause_chat(2)
        assert await store.set_state(alarm.id, PAUSED) is not None
        assert await store.set_state(alarm.id, ARMED) is not None
        assert await store.history(1) == [firing(alarm, 1)]
        assert await store.get_tz(1) == "UTC"
        assert await store.get(alarm.id) is not None
        assert len(await store.chat_alarms(1)) == 1
        assert await armed_ids(store, page=1) == [alarm.id]
        assert (await store.changes_since(0))[0] == [alarm.id, 2]
        imported = dataclasses.replace(alarm, id=50, chat_id=3)
        assert await store.import_alarms([imported]) == 1
        assert await store.delete(imported.id)
        assert [a.id for a in await store.expire(NOW + 2 * DEFAULT_EXPIRY_S)] == [1, 2]
    await first.delete_chat(1)
    assert await first.count(1) == 0
    assert await second.count(1) == 1
    keys = await all_keys(client)
    assert keys
    assert all(key.startswith(("one:{alarms}:", "two:{alarms}:")) for key in keys), keys
    await first.close()
    await second.close()
    assert await client.ping()  # a client it was handed stays open


async def test_an_indicator_alarm_is_stored_read_back_recorded_and_left_out_of_the_price_engine(
    store: AlarmStore,
) -> None:
    """Indicator kinds (issue 14) round-trip on both backends; the price engine's start-up
    load skips them (``alarm_indicator`` evaluates them on candle closes)."""
    rsi = await add(store, "btc rsi > 70 1h repeat 30m overbought")
    ema = await add(store, "eth ema 50 cross down 1d futures")
    assert rsi.spec == spec("btc rsi > 70 1h repeat 30m overbought")
    assert await store.get(rsi.id) == rsi
    assert await store.get(ema.id) == ema
    rows = [row async for page in store.armed_rows() for row in page]
    assert [decode_row(row) for row in rows] == [rsi, ema]
    fired = firing(rsi, 1, at=NOW + 10)
    assert await store.mark_fired(fired, state=AlarmState.FIRED, rearm_at=NOW + 1810)
    assert await store.get(rsi.id) == dataclasses.replace(
        rsi, state=AlarmState.FIRED, seq=1, fired_at=NOW + 10, rearm_at=NOW + 1810
    )
    engine = AlarmEngine(clock=lambda: NOW + 20)
    loaded = await load_engine(store, engine, since={"spot": None, "futures": None})
    assert (loaded.held, len(engine)) == (0, 0)
