"""The intake of incoming updates: one contract run over SQLite, Redis and a Redis Cluster
(order, each id stored once, done ids remembered for their TTL, owners and adoption,
durability across a SIGKILL); then what only the shared (Redis) intake has: chat turns across
owners (a chat's updates in update-id order by one owner at a time, never stranded, a gone
holder's chats adopted), keys under the prefix in one hash tag, a handed client left open."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final
from unittest.mock import ANY

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from bot.intake import SqliteIntake, StoredUpdate, Taken
from bot.intake_redis import RedisIntake
from utils.redis_conn import connect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from bot.intake import Intake
    from tests.conftest import RedisServer
    from tests.redis_cluster import LocalCluster
    from utils.redis_conn import RedisClient

ROOT: Final = Path(__file__).resolve().parents[2]
WAIT_S: Final = 10.0  # upper bound on anything a test awaits (a child process starting)
TTL_S: Final = 60.0  # done_ttl_s of the stores under test
LEASE_S: Final = 0.3  # lease_s of the Redis stores under test

# A second OS process on the same store: it puts update 41, says so, then waits to be killed.
CHILD: Final = """
import asyncio, sys
from bot.intake import SqliteIntake
from bot.intake_redis import RedisIntake

async def main(kind, target):
    store = SqliteIntake(target) if kind == "sqlite" else RedisIntake.from_url(target, lease_s=0.3)
    await store.open()
    await store.put(41, '{"update_id": 41}')
    print("stored", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""


class Clock:
    """Unix time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Backend:
    kind: str
    target: str  # the SQLite file or the Redis URL
    clock: Clock = dataclasses.field(default_factory=Clock)

    def make(self) -> SqliteIntake | RedisIntake:
        if self.kind == "sqlite":
            return SqliteIntake(self.target, done_ttl_s=TTL_S, clock=self.clock)
        return RedisIntake.from_url(
            self.target, lease_s=LEASE_S, done_ttl_s=TTL_S, clock=self.clock
        )

    def client(self) -> RedisClient:
        """A client of the Redis (decoding replies: str replies work too) or the cluster."""
        if self.kind == "cluster":
            return connect(self.target, max_connections=8)
        return Redis.from_url(self.target, decode_responses=True)

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[Intake]:
        store = self.make()
        await store.open()
        try:
            yield store
        finally:
            await store.close()


@pytest.fixture(params=["sqlite", "redis", "cluster"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "state" / "intake.sqlite3"))
    return shared_backend(request)


@pytest.fixture(params=["redis", "cluster"])
def shared(request: pytest.FixtureRequest) -> Backend:
    """The intakes several processes share (with chat turns): Redis and a Redis Cluster."""
    return shared_backend(request)


def shared_backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return Backend("cluster", cluster.url)
    server: RedisServer = request.getfixturevalue("redis_server")
    return Backend("redis", server.url)


@pytest.fixture
async def intake(backend: Backend) -> AsyncIterator[Intake]:
    async with backend.opened() as store:
        yield store


def raw(update_id: int) -> str:
    return f'{{"update_id": {update_id}, "message": {{"text": "/price btc ünïcode"}}}}'


def ids(updates: list[StoredUpdate]) -> list[int]:
    return [u.update_id for u in updates]


async def adopted_eventually(store: Intake) -> list[StoredUpdate]:
    """What ``store`` adopts once a gone owner's lease (Redis) has lapsed."""
    async with asyncio.timeout(WAIT_S):
        while not (adopted := await store.adopt()):  # noqa: ASYNC110 - a lease lapsing
            await asyncio.sleep(0.05)  # nothing to await: Redis expires the lease on its own
    return adopted


async def test_stored_updates_come_back_by_update_id_as_they_were_put(
    intake: Intake, backend: Backend
) -> None:
    for update_id in (12, 10, 11):
        assert await intake.put(update_id, raw(update_id))
    pending = await intake.pending()
    assert ids(pending) == [10, 11, 12]
    assert pending[0] == StoredUpdate(update_id=10, raw=raw(10), received_at=backend.clock.now)
    assert await intake.depth() == 3


async def test_an_update_id_is_stored_once_while_it_is_pending(intake: Intake) -> None:
    assert await intake.put(7, raw(7))
    assert not await intake.put(7, '{"update_id": 7, "other": true}')
    assert [u.raw for u in await intake.pending()] == [raw(7)]
    assert await intake.depth() == 1


async def test_a_done_update_is_forgotten_and_its_id_refused_until_the_ttl_has_passed(
    intake: Intake, backend: Backend
) -> None:
    assert await intake.put(7, raw(7))
    assert await intake.put(8, raw(8))
    await intake.done(7)
    await intake.done(7)  # idempotent
    await intake.done(99)  # never stored: nothing to forget, the id is remembered
    assert ids(await intake.pending()) == [8]
    assert await intake.depth() == 1
    backend.clock.now += TTL_S - 1
    assert not await intake.put(7, raw(7))  # Telegram re-delivered it: not handled twice
    assert not await intake.put(99, raw(99))
    backend.clock.now += 1.5
    assert await intake.put(7, raw(7))
    assert ids(await intake.pending()) == [7, 8]


async def test_a_store_adopts_nothing_of_its_own_nor_of_a_live_owner(
    intake: Intake, backend: Backend
) -> None:
    assert await intake.put(1, raw(1))
    assert await intake.adopt() == []
    async with backend.opened() as other:
        assert other.owner != intake.owner
        assert not await other.put(1, raw(1))  # stored by a live owner
        assert await other.adopt() == []
        assert await other.put(2, raw(2))
        assert await intake.adopt() == []
    assert ids(await intake.pending()) == [1, 2]


async def test_updates_of_a_closed_store_are_adopted_once_by_the_next(backend: Backend) -> None:
    async with backend.opened() as first:
        for update_id in (5, 3, 4):
            await first.put(update_id, raw(update_id))
        await first.done(4)
    async with backend.opened() as second, backend.opened() as third:
        adopted = await second.adopt()
        assert ids(adopted) == [3, 5]
        assert adopted[0].raw == raw(3)
        assert await third.adopt() == []  # second is alive: they are its own now
        assert await second.adopt() == []
        assert not await third.put(3, raw(3))
        await second.done(3)
        assert ids(await third.pending()) == [5]


async def test_an_update_whose_put_returned_survives_a_sigkill_and_is_adopted(
    backend: Backend,
) -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", CHILD, backend.kind, backend.target),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(WAIT_S):
            line = await process.stdout.readline()
        assert line.decode().strip() == "stored", (await process.communicate())[1].decode()
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.communicate()
    assert process.returncode == -signal.SIGKILL
    async with backend.opened() as store:
        assert ids(await store.pending()) == [41]
        assert not await store.put(41, raw(41))  # a re-delivery is refused meanwhile
        adopted = await adopted_eventually(store)
        assert adopted == [StoredUpdate(update_id=41, raw='{"update_id": 41}', received_at=ANY)]
        await store.done(41)
        assert await store.depth() == 0


async def test_a_store_that_is_not_open_refuses_work(backend: Backend) -> None:
    store = backend.make()
    with pytest.raises(RuntimeError, match="not open"):
        await store.put(1, raw(1))
    with pytest.raises(RuntimeError, match="not open"):
        await store.pending()


async def test_a_chats_updates_are_taken_in_update_id_order_by_the_owner_whose_turn_it_is(
    shared: Backend,
) -> None:
    async with shared.opened() as first, shared.opened() as second:
        a, b = turns(first), turns(second)
        assert await a.put_in_chat(12, raw(12), 5) is Taken.YOUR_TURN  # an idle chat
        assert await b.put_in_chat(10, raw(10), 5) is Taken.QUEUED  # a's turn: b only stores
        assert await b.put_in_chat(11, raw(11), 6) is Taken.YOUR_TURN  # another chat
        assert await b.first_in_chat(5) is None  # not b's turn
        assert await a.first_in_chat(6) is None
        first_up = await a.first_in_chat(5)
        assert first_up == StoredUpdate(update_id=10, raw=raw(10), received_at=shared.clock.now)
        assert ids_of(await a.done_in_chat(10, 5)) == [12]  # the next, by update id
        assert await a.done_in_chat(12, 5) is None  # the queue is empty: the turn has ended
        assert await b.put_in_chat(13, raw(13), 5) is Taken.YOUR_TURN  # so b takes it now
        assert ids(await first.pending()) == [11, 13]
        assert await a.adopt_chats() == []  # b is alive: its chats stay its own


async def test_an_update_queued_while_a_turn_ends_is_never_stranded(shared: Backend) -> None:
    async with shared.opened() as first, shared.opened() as second:
        a, b = turns(first), turns(second)
        assert await a.put_in_chat(1, raw(1), 7) is Taken.YOUR_TURN
        assert ids_of(await a.first_in_chat(7)) == [1]
        assert await b.put_in_chat(2, raw(2), 7) is Taken.QUEUED  # before a is done with 1
        assert ids_of(await a.done_in_chat(1, 7)) == [2]  # so a's done sees it
        assert await a.done_in_chat(2, 7) is None
        assert await b.put_in_chat(3, raw(3), 7) is Taken.YOUR_TURN  # after: the put takes it
        assert await a.first_in_chat(7) is None
        assert ids_of(await b.first_in_chat(7)) == [3]


async def test_a_repeated_update_is_refused_whichever_owner_or_chat_it_reaches(
    shared: Backend,
) -> None:
    async with shared.opened() as first, shared.opened() as second:
        a, b = turns(first), turns(second)
        assert await a.put_in_chat(4, raw(4), 1) is Taken.YOUR_TURN
        assert await b.put_in_chat(4, raw(4), 1) is Taken.REFUSED
        assert not await b.put(4, raw(4))
        assert await a.first_in_chat(1) is not None
        assert await a.done_in_chat(4, 1) is None
        shared.clock.now += TTL_S - 1
        assert await b.put_in_chat(4, raw(4), 1) is Taken.REFUSED  # done within the TTL
        assert await b.put_in_chat(5, raw(5), None) is Taken.YOUR_TURN  # an update of no chat
        assert ids_of(await b.first_in_chat(None)) == [5]
        assert ids(await first.pending()) == [5]


async def test_a_gone_holders_chats_are_adopted_once_with_what_others_queued_behind_it(
    shared: Backend,
) -> None:
    async with shared.opened() as other:
        async with shared.opened() as holder:
            assert await turns(holder).put_in_chat(1, raw(1), 9) is Taken.YOUR_TURN
            assert await turns(other).put_in_chat(2, raw(2), 9) is Taken.QUEUED
            assert await turns(holder).put_in_chat(3, raw(3), 8) is Taken.YOUR_TURN
            assert ids_of(await turns(holder).first_in_chat(9)) == [1]  # then it is gone
        async with shared.opened() as third:
            assert sorted(await turns(third).adopt_chats()) == [(8, 1), (9, 2)]
            assert await turns(other).adopt_chats() == []  # third is alive
            assert await third.adopt() == []  # queued updates go by chat, not by owner
            assert ids_of(await turns(third).first_in_chat(9)) == [1]
            assert await turns(other).put_in_chat(4, raw(4), 9) is Taken.QUEUED
        assert await turns(other).put_in_chat(5, raw(5), 9) is Taken.YOUR_TURN  # third gone
        assert ids_of(await turns(other).first_in_chat(9)) == [1]


async def test_a_handed_over_turn_goes_to_a_live_owner_that_adopts_it(shared: Backend) -> None:
    async with shared.opened() as first, shared.opened() as second:
        a, b = turns(first), turns(second)
        for update_id in (1, 2, 3):
            await a.put_in_chat(update_id, raw(update_id), 4)
        assert ids_of(await a.first_in_chat(4)) == [1]
        assert await a.done_in_chat(1, 4, take_next=False) is None  # stopping: handed over
        assert await a.first_in_chat(4) is None
        assert await b.adopt_chats() == [(4, 2)]
        assert ids_of(await b.first_in_chat(4)) == [2]
        await b.hand_over(4)
        assert await a.adopt_chats() == [(4, 2)]


async def test_a_dead_holders_turn_goes_to_the_next_put_once_its_lease_has_lapsed(
    shared: Backend,
) -> None:
    client = shared.client()
    holder = RedisIntake(client, lease_s=LEASE_S)
    await holder.open()
    assert await holder.put_in_chat(1, raw(1), 3) is Taken.YOUR_TURN
    await client.aclose()  # the process is gone without a word: its lease lapses on its own
    async with shared.opened() as store:
        update_id = 2
        async with asyncio.timeout(WAIT_S):
            while await turns(store).put_in_chat(update_id, raw(update_id), 3) is Taken.QUEUED:
                update_id += 1
                await asyncio.sleep(0.05)  # nothing to await: Redis expires the lease on its own
        assert ids_of(await turns(store).first_in_chat(3)) == [1]  # the dead holder's first


async def test_redis_keys_stay_under_the_prefix_in_one_hash_tag_and_a_handed_client_stays_open(
    shared: Backend,
) -> None:
    client = shared.client()
    try:
        store = RedisIntake(client, prefix="app:", lease_s=LEASE_S)
        await store.open()
        assert await store.put(1, raw(1))
        assert await store.put(2, raw(2))
        await store.done(2)
        assert await store.put_in_chat(3, raw(3), 77) is Taken.YOUR_TURN
        assert await store.put_in_chat(4, raw(4), 77) is Taken.YOUR_TURN
        keys = await all_keys(client)
        await store.close()
        assert await client.ping()  # not closed by the store
        after_close = await all_keys(client)
    finally:
        await client.aclose()
    assert all(key.startswith("app:{intake}:") for key in keys), keys
    assert f"app:{{intake}}:alive:{store.owner}" in keys
    assert f"app:{{intake}}:alive:{store.owner}" not in after_close  # released on close
    assert {"app:{intake}:update:1", "app:{intake}:queue:77", "app:{intake}:turn:77"} <= set(
        after_close
    )


def turns(store: Intake) -> RedisIntake:
    """The store's chat turns: only the shared (Redis) intake has them."""
    assert isinstance(store, RedisIntake)
    return store


def ids_of(update: StoredUpdate | None) -> list[int]:
    return [] if update is None else [update.update_id]


async def all_keys(client: RedisClient) -> list[str]:
    """Every key of the server, or of every master of the cluster."""
    if isinstance(client, RedisCluster):
        found = await client.keys("*", target_nodes=RedisCluster.PRIMARIES)
    else:
        found = await client.keys("*")
    return sorted(key.decode() if isinstance(key, bytes) else str(key) for key in found)
