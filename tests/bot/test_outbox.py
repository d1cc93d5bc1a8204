"""The delivery outbox: one contract run over SQLite, Redis and Redis Cluster (order,
exactly-once ids, capacity, retries, parked chats, dead letters, delivery policies and the
"sending" mark, durability across processes, the delivery lease), then what only one backend
has: an outage that raises and keys kept under the prefix in one hash tag (Redis, Redis
Cluster), a file from an older version (SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import aiosqlite
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.outbox import (
    ChatState,
    DeliveryPolicy,
    Job,
    OutboxFullError,
    RedisOutbox,
    SqliteOutbox,
    new_job_id,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from bot.outbox import Outbox
    from tests.conftest import RedisServer
    from tests.redis_cluster import LocalCluster
    from utils.redis_conn import RedisClient

ROOT: Final = Path(__file__).resolve().parents[2]
WAIT_S: Final = 10.0  # upper bound on anything a test awaits (a child process starting)
TTL_S: Final = 60.0  # delivered_ttl_s of the stores under test
UNKNOWN: Final = "outcome unknown after a crash"

# A second OS process on the same store: it puts a job, marks one "sending" or takes the
# lease, says so, then waits to be SIGKILLed.
CHILD: Final = """
import asyncio, sys
from bot.outbox import DeliveryPolicy, Job, RedisOutbox, SqliteOutbox

async def main(kind, target, action):
    store = SqliteOutbox(target) if kind == "sqlite" else RedisOutbox.from_url(target)
    await store.open()
    if action == "put":
        await store.put(Job(id="from-child", chat_id=7, text="<b>child</b>"))
        print("stored", flush=True)
    elif action == "mark":
        once = DeliveryPolicy.AT_MOST_ONCE
        await store.put(Job(id="from-child", chat_id=7, text="<b>child</b>", policy=once))
        assert await store.mark_sending("from-child")
        print("marked", flush=True)
    elif await store.lead("child", 0.5):
        print("leading", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""


class Clock:
    """Unix time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclasses.dataclass
class Backend:
    kind: str
    target: str  # the SQLite file or the Redis URL
    clock: Clock = dataclasses.field(default_factory=Clock)

    def make(self, *, capacity: int = 10_000) -> SqliteOutbox | RedisOutbox:
        if self.kind == "sqlite":
            return SqliteOutbox(
                self.target, capacity=capacity, delivered_ttl_s=TTL_S, clock=self.clock
            )
        return RedisOutbox.from_url(
            self.target, capacity=capacity, delivered_ttl_s=TTL_S, clock=self.clock
        )

    @contextlib.asynccontextmanager
    async def opened(self, *, capacity: int = 10_000) -> AsyncIterator[Outbox]:
        store = self.make(capacity=capacity)
        await store.open()
        try:
            yield store
        finally:
            await store.close()


@pytest.fixture(params=["sqlite", "redis", "cluster"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "state" / "outbox.db"))
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return Backend("cluster", cluster.url)
    server: RedisServer = request.getfixturevalue("redis_server")
    return Backend("redis", server.url)


@pytest.fixture
async def outbox(backend: Backend) -> AsyncIterator[Outbox]:
    async with backend.opened() as store:
        yield store


def job(n: int, chat_id: int = 1) -> Job:
    return Job(id=f"job-{n}", chat_id=chat_id, text=f"<b>message {n}</b>")


def once(n: int, chat_id: int = 1) -> Job:
    """``job(n)`` sent at most once."""
    return dataclasses.replace(job(n, chat_id), policy=DeliveryPolicy.AT_MOST_ONCE)


def ids(jobs: list[Job]) -> list[str]:
    return [j.id for j in jobs]


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Until ``check`` is true (a lease expiring has no event to await)."""
    async with asyncio.timeout(WAIT_S):
        while not await check():  # noqa: ASYNC110 (nothing to await: Redis expires the key)
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def child(backend: Backend, action: str, said: str) -> AsyncIterator[None]:
    """A second process acting on the store; SIGKILLed once the block ends."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", CHILD, backend.kind, backend.target, action),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(WAIT_S):
            line = await process.stdout.readline()
        assert line.decode().strip() == said, (await process.communicate())[1].decode()
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.communicate()
    assert process.returncode == -signal.SIGKILL


async def test_jobs_come_back_in_the_order_they_were_put(outbox: Outbox, backend: Backend) -> None:
    stored = [await outbox.put(job(n, chat_id=n % 2)) for n in range(5)]
    pending = await outbox.pending()
    assert ids(pending) == [f"job-{n}" for n in range(5)]
    assert pending == stored
    seqs = [j.seq for j in pending]
    assert seqs == sorted(set(seqs))
    assert seqs[0] > 0
    assert {j.created_at for j in pending} == {backend.clock.now}
    assert ids(await outbox.pending(limit=2)) == ["job-0", "job-1"]
    assert await outbox.pending(limit=0) == []
    assert await outbox.get("job-3") == stored[3]
    assert await outbox.get("nope") is None


async def test_a_job_keeps_the_fields_the_caller_set(outbox: Outbox) -> None:
    given = Job(
        id=new_job_id(),
        chat_id=-100_123_456_789,
        text="<b>BTCUSDT</b> ≥ 65 000 🚀 & <i>more</i>",
        attempts=2,
        not_before=1_700_000_123.25,
        created_at=1_600_000_000.5,
        policy=DeliveryPolicy.AT_MOST_ONCE,
        markup='[[["Snooze 1 h","al:snooze:12:3600"],["Delete","al:del:12:"]]]',
    )
    stored = await outbox.put(given)
    assert stored == dataclasses.replace(given, seq=stored.seq if stored else -1)
    assert await outbox.get(given.id) == stored
    assert await outbox.pending() == [stored]  # the list read carries every field too
    assert len(given.id) == 32
    assert given.id != new_job_id()


async def test_the_same_id_is_stored_once_while_it_is_pending(outbox: Outbox) -> None:
    first = await outbox.put(job(1))
    assert await outbox.put(dataclasses.replace(job(1), text="again")) is None
    assert await outbox.pending() == [first]
    assert await outbox.depth() == 1


async def test_a_delivered_id_is_refused_until_delivered_ttl_s_has_passed(
    outbox: Outbox, backend: Backend
) -> None:
    assert await outbox.put(job(1))
    assert await outbox.ack("job-1")
    backend.clock.advance(TTL_S - 1)
    assert await outbox.put(job(1)) is None
    assert await outbox.pending() == []
    backend.clock.advance(1.5)
    again = await outbox.put(job(1))
    assert again is not None
    assert await outbox.pending() == [again]


async def test_a_full_outbox_raises_and_stores_nothing(backend: Backend) -> None:
    async with backend.opened(capacity=3) as outbox:
        for n in range(3):
            assert await outbox.put(job(n, chat_id=n))
        await outbox.park_chat(0, ChatState.BLOCKED)  # parked jobs still take room
        with pytest.raises(OutboxFullError) as raised:
            await outbox.put(job(9))
        assert (raised.value.depth, raised.value.capacity) == (3, 3)
        assert "3 of 3" in str(raised.value)
        assert "nothing was stored" in str(raised.value)
        assert await outbox.get("job-9") is None
        assert await outbox.depth() == 2

        await outbox.dead_letter("job-1", "chat gone")  # dead letters free their room
        assert await outbox.put(job(9))


async def test_a_duplicate_put_at_capacity_returns_none_rather_than_raising(
    backend: Backend,
) -> None:
    async with backend.opened(capacity=2) as outbox:
        assert await outbox.put_many([job(1), job(2)]) != [None, None]
        assert await outbox.put(job(1)) is None
        assert await outbox.put_many([job(2), job(1)]) == [None, None]


async def test_put_many_dedupes_and_stores_all_or_nothing(backend: Backend) -> None:
    async with backend.opened(capacity=4) as outbox:
        assert await outbox.put(job(1))
        stored = await outbox.put_many([job(2), job(1), job(3), job(2)])
        assert [j.id if j else None for j in stored] == ["job-2", None, "job-3", None]
        assert await outbox.pending() == [await outbox.get(f"job-{n}") for n in (1, 2, 3)]
        with pytest.raises(OutboxFullError):
            await outbox.put_many([job(4), job(5)])
        assert await outbox.get("job-4") is None
        assert await outbox.depth() == 3
        assert await outbox.put_many([]) == []


async def test_ack_removes_the_job_and_an_unknown_ack_is_false(outbox: Outbox) -> None:
    await outbox.put_many([job(1), job(2)])
    assert await outbox.ack("job-1")
    assert ids(await outbox.pending()) == ["job-2"]
    assert await outbox.get("job-1") is None
    assert not await outbox.ack("job-1")
    assert not await outbox.ack("never-put")
    assert await outbox.depth() == 1


async def test_a_job_delivered_while_its_chat_was_parked_is_acked_out_of_parked(
    backend: Backend,
) -> None:
    async with backend.opened(capacity=2) as outbox:
        await outbox.put_many([job(1, chat_id=10), job(2, chat_id=10)])
        await outbox.park_chat(10, ChatState.BLOCKED)  # job-1 was already in flight
        assert await outbox.ack("job-1")
        assert ids(await outbox.parked(10)) == ["job-2"]
        assert await outbox.put(job(3, chat_id=20))  # its room is free again
        assert await outbox.reactivate_chat(10) == 1
        assert ids(await outbox.pending()) == ["job-2", "job-3"]


async def test_retry_records_attempts_and_not_before_and_keeps_the_place(
    outbox: Outbox,
) -> None:
    await outbox.put_many([job(1), job(2), job(3)])
    await outbox.retry("job-1", attempts=1, not_before=1_700_000_030.5)
    await outbox.retry("never-put", attempts=1, not_before=0.0)  # a no-op
    pending = await outbox.pending()
    assert ids(pending) == ["job-1", "job-2", "job-3"]
    assert (pending[0].attempts, pending[0].not_before) == (1, 1_700_000_030.5)
    assert (pending[1].attempts, pending[1].not_before) == (0, 0.0)
    assert await outbox.get("never-put") is None


async def test_parking_a_chat_moves_only_that_chats_jobs(outbox: Outbox) -> None:
    await outbox.put_many([job(1, chat_id=10), job(2, chat_id=20), job(3, chat_id=10)])
    assert await outbox.park_chat(10, ChatState.BLOCKED) == 2
    assert ids(await outbox.pending()) == ["job-2"]
    assert ids(await outbox.parked()) == ["job-1", "job-3"]
    assert ids(await outbox.parked(10)) == ["job-1", "job-3"]
    assert await outbox.parked(20) == []
    assert await outbox.chat_state(10) is ChatState.BLOCKED
    assert await outbox.chat_state(20) is ChatState.ACTIVE
    assert await outbox.depth() == 1
    assert await outbox.park_chat(10, ChatState.NOT_FOUND) == 0
    assert await outbox.chat_states() == {10: ChatState.NOT_FOUND}
    with pytest.raises(ValueError, match="reactivate_chat"):
        await outbox.park_chat(20, ChatState.ACTIVE)


async def test_a_job_for_a_parked_chat_is_stored_parked(outbox: Outbox) -> None:
    await outbox.park_chat(10, ChatState.NOT_FOUND)
    stored = await outbox.put(job(1, chat_id=10))
    assert stored is not None
    assert await outbox.pending() == []
    assert await outbox.parked(10) == [stored]
    assert await outbox.get("job-1") == stored
    assert await outbox.put(job(1, chat_id=10)) is None


async def test_reactivating_a_chat_restores_its_jobs_in_their_order(outbox: Outbox) -> None:
    await outbox.put_many([job(1, chat_id=10), job(2, chat_id=20), job(3, chat_id=10)])
    await outbox.park_chat(10, ChatState.BLOCKED)
    await outbox.put_many([job(4, chat_id=20), job(5, chat_id=10)])
    assert await outbox.reactivate_chat(10) == 3
    assert ids(await outbox.pending()) == [f"job-{n}" for n in range(1, 6)]
    assert await outbox.parked() == []
    assert await outbox.chat_state(10) is ChatState.ACTIVE
    assert await outbox.chat_states() == {}
    assert await outbox.reactivate_chat(10) == 0


async def test_a_dead_letter_keeps_its_reason_and_leaves_pending(outbox: Outbox) -> None:
    await outbox.put_many([job(1), job(2), job(3, chat_id=30)])
    await outbox.park_chat(30, ChatState.BLOCKED)
    await outbox.dead_letter("job-1", "Bad Request: message is too long")
    await outbox.dead_letter("job-3", "blocked for 30 days")
    await outbox.dead_letter("never-put", "a no-op")
    assert ids(await outbox.pending()) == ["job-2"]
    assert await outbox.parked() == []
    assert [(j.id, reason) for j, reason in await outbox.dead_letters()] == [
        ("job-1", "Bad Request: message is too long"),
        ("job-3", "blocked for 30 days"),
    ]
    assert await outbox.put(job(1)) is None  # a dead id is not stored again
    assert await outbox.reactivate_chat(30) == 0  # nor revived with its chat
    assert await outbox.depth() == 1


async def test_depth_counts_only_pending_jobs(outbox: Outbox) -> None:
    assert await outbox.depth() == 0
    await outbox.put_many([job(n, chat_id=n) for n in range(5)])
    await outbox.park_chat(0, ChatState.BLOCKED)
    await outbox.dead_letter("job-1", "gave up")
    await outbox.ack("job-2")
    assert await outbox.depth() == 2


async def test_each_job_keeps_its_delivery_policy_and_at_least_once_is_the_default(
    outbox: Outbox,
) -> None:
    assert job(1).policy is DeliveryPolicy.AT_LEAST_ONCE
    await outbox.put_many([job(1), once(2), once(3, chat_id=30)])
    await outbox.park_chat(30, ChatState.BLOCKED)
    await outbox.dead_letter("job-2", "gave up")
    assert [j.policy for j in await outbox.pending()] == [DeliveryPolicy.AT_LEAST_ONCE]
    assert [j.policy for j in await outbox.parked()] == [DeliveryPolicy.AT_MOST_ONCE]
    assert [j.policy for j, _ in await outbox.dead_letters()] == [DeliveryPolicy.AT_MOST_ONCE]
    stored = await outbox.get("job-3")
    assert stored is not None
    assert stored.policy is DeliveryPolicy.AT_MOST_ONCE


async def test_jobs_left_marked_sending_are_set_aside_but_for_those_kept(
    outbox: Outbox,
) -> None:
    stored = await outbox.put_many([once(1), once(2), once(3), job(4)])
    assert await outbox.mark_sending("job-1")
    assert await outbox.mark_sending("job-2")
    swept = await outbox.dead_letter_sending(UNKNOWN, keep={"job-2"})  # job-2: still in flight
    assert swept == [stored[0]]
    assert ids(await outbox.pending()) == ["job-2", "job-3", "job-4"]
    assert [(j.id, reason) for j, reason in await outbox.dead_letters()] == [("job-1", UNKNOWN)]
    assert await outbox.put(once(1)) is None  # never stored, so never sent, again
    assert ids(await outbox.dead_letter_sending(UNKNOWN)) == ["job-2"]
    assert await outbox.dead_letter_sending(UNKNOWN) == []
    assert await outbox.depth() == 2
    assert await outbox.depth("dead") == 2


async def test_an_outcome_recorded_clears_the_sending_mark_and_parking_keeps_it(
    outbox: Outbox,
) -> None:
    await outbox.put_many([once(1), once(2), once(3), once(4), once(5, chat_id=50)])
    for n in range(1, 6):
        assert await outbox.mark_sending(f"job-{n}")
    assert await outbox.ack("job-1")  # Telegram took it
    await outbox.retry("job-2", attempts=1, not_before=0.0)  # refused: tried again later
    await outbox.dead_letter("job-3", "Bad Request: can't parse entities")  # refused for good
    await outbox.park_chat(50, ChatState.BLOCKED)  # blocked meanwhile: the outcome is not known
    assert ids(await outbox.dead_letter_sending(UNKNOWN)) == ["job-4", "job-5"]
    assert ids(await outbox.pending()) == ["job-2"]
    assert await outbox.parked() == []
    assert [(j.id, reason) for j, reason in await outbox.dead_letters()] == [
        ("job-3", "Bad Request: can't parse entities"),
        ("job-4", UNKNOWN),
        ("job-5", UNKNOWN),
    ]


async def test_only_a_pending_job_can_be_marked_sending(outbox: Outbox) -> None:
    await outbox.put_many([once(1), once(2, chat_id=20), once(3)])
    await outbox.park_chat(20, ChatState.BLOCKED)
    await outbox.dead_letter("job-3", "gave up")
    assert not await outbox.mark_sending("job-2")  # parked
    assert not await outbox.mark_sending("job-3")  # dead
    assert not await outbox.mark_sending("never-put")
    assert await outbox.mark_sending("job-1")
    assert ids(await outbox.dead_letter_sending(UNKNOWN)) == ["job-1"]


async def test_a_sending_mark_outlives_the_process_killed_while_sending(
    outbox: Outbox, backend: Backend
) -> None:
    async with child(backend, "mark", said="marked"):
        pass
    swept = await outbox.dead_letter_sending(UNKNOWN)
    assert [(j.id, j.chat_id, j.policy) for j in swept] == [
        ("from-child", 7, DeliveryPolicy.AT_MOST_ONCE)
    ]
    assert await outbox.pending() == []


async def test_everything_survives_closing_and_opening_again(backend: Backend) -> None:
    async with backend.opened() as first:
        await first.put_many([job(n, chat_id=n % 3) for n in range(6)])
        await first.retry("job-0", attempts=3, not_before=1_700_000_100.0)
        await first.ack("job-1")
        await first.park_chat(2, ChatState.NOT_FOUND)
        await first.dead_letter("job-3", "gave up")
        before = (await first.pending(), await first.parked(), await first.dead_letters())
    async with backend.opened() as second:
        assert (await second.pending(), await second.parked(), await second.dead_letters()) == (
            before
        )
        assert await second.chat_states() == {2: ChatState.NOT_FOUND}
        assert await second.put(job(1)) is None  # still remembered as delivered
        newest = await second.put(job(6))
        assert newest is not None
        assert newest.seq > max(j.seq for j in await second.pending() if j.id != "job-6")


async def test_a_job_put_by_a_process_killed_right_after_is_kept(
    outbox: Outbox, backend: Backend
) -> None:
    await outbox.put(job(1))
    async with child(backend, "put", said="stored"):
        pass
    from_child = await outbox.get("from-child")
    assert from_child is not None
    assert (from_child.chat_id, from_child.text) == (7, "<b>child</b>")
    after = await outbox.put(job(2))
    assert after is not None
    assert ids(await outbox.pending()) == ["job-1", "from-child", "job-2"]


async def test_only_one_store_leads_until_the_leader_releases(
    outbox: Outbox, backend: Backend
) -> None:
    async with backend.opened() as other:
        assert await outbox.lead("a", 30)
        assert not await other.lead("b", 30)
        assert await outbox.lead("a", 30)  # renewal by the owner
        await other.release("b")  # not the owner: nothing happens
        assert not await other.lead("b", 30)
        await outbox.release("a")
        assert await other.lead("b", 30)
        assert not await outbox.lead("a", 30)


async def test_a_renewed_lease_outlives_its_first_ttl(outbox: Outbox, backend: Backend) -> None:
    async with backend.opened() as other:
        assert await outbox.lead("a", 0.2)
        assert await outbox.lead("a", 30)
        backend.clock.advance(0.3)  # past the first TTL: SQLite's clock,
        await asyncio.sleep(0.3)  # and Redis's own
        assert not await other.lead("b", 30)


async def test_a_lease_expires_when_its_owner_stops_renewing(
    outbox: Outbox, backend: Backend
) -> None:
    async with backend.opened() as other:
        assert await outbox.lead("a", 0.2)  # a live owner that then stops renewing
        assert not await other.lead("b", 30)
        backend.clock.advance(0.3)  # past its TTL: SQLite's clock; Redis expires it itself
        await eventually(lambda: other.lead("b", 30))
        assert not await outbox.lead("a", 30)  # it lost the lease


async def test_a_leader_that_is_killed_loses_the_lease(outbox: Outbox, backend: Backend) -> None:
    async with child(backend, "lead", said="leading"):
        assert not await outbox.lead("parent", 30)
    await eventually(lambda: outbox.lead("parent", 30))  # Redis: once its 0.5 s TTL ends


async def test_a_store_that_is_not_open_says_so(backend: Backend) -> None:
    store = backend.make()
    with pytest.raises(RuntimeError, match=r"not open: call open\(\) first"):
        await store.put(job(1))
    await store.close()


async def test_a_put_while_redis_is_down_raises_instead_of_losing_the_job(
    redis_server: RedisServer,
) -> None:
    async with Backend("redis", redis_server.url).opened() as outbox:
        assert await outbox.put(job(1))
        await redis_server.stop()
        with pytest.raises(RedisConnectionError):
            await outbox.put(job(2))
        with pytest.raises(RedisConnectionError):
            await outbox.depth()
        await redis_server.start()  # empty: this server keeps nothing on disk
        assert await outbox.put(job(2))
        assert ids(await outbox.pending()) == ["job-2"]


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
    client = redis_client
    first = RedisOutbox(client, prefix="one:", delivered_ttl_s=TTL_S)
    second = RedisOutbox(client, prefix="two:", delivered_ttl_s=TTL_S)
    for store in (first, second):
        await store.open()
        await store.put_many([job(1, chat_id=10), job(2, chat_id=20), job(3)])
        await store.park_chat(10, ChatState.BLOCKED)
        await store.ack("job-3")
        await store.dead_letter("job-2", "gave up")
        assert await store.mark_sending("job-1") is False  # parked
        assert await store.dead_letter_sending(UNKNOWN) == []
        assert await store.lead("me", 30)
    await first.ack("job-1")
    assert [j.id for j in await second.parked()] == ["job-1"]
    assert await first.parked() == []
    keys = await all_keys(client)
    assert keys
    assert all(key.startswith(("one:{outbox}:", "two:{outbox}:")) for key in keys), keys
    await first.close()
    await second.close()
    assert await client.ping()  # a client it was handed stays open


async def test_a_redis_job_stored_before_policies_existed_is_at_least_once(
    redis_server: RedisServer,
) -> None:
    client = Redis.from_url(redis_server.url)
    try:
        outbox = RedisOutbox(client, prefix="old:")
        await outbox.open()
        await outbox.put_many([once(1), once(2)])
        await client.hdel(
            "old:{outbox}:job:job-1", "policy", "sending"
        )  # as an older version left it
        old = await outbox.get("job-1")
        assert old is not None
        assert old.policy is DeliveryPolicy.AT_LEAST_ONCE
        assert [j.policy for j in await outbox.pending()] == [
            DeliveryPolicy.AT_LEAST_ONCE,
            DeliveryPolicy.AT_MOST_ONCE,
        ]
        assert await outbox.mark_sending("job-1")
        assert ids(await outbox.dead_letter_sending(UNKNOWN)) == ["job-1"]
        await outbox.close()
    finally:
        await client.aclose()


#: The jobs table as the first version of ``SqliteOutbox`` created it.
_FIRST_SCHEMA: Final = """
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    chat_id INTEGER NOT NULL,
    text TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    not_before REAL NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'parked', 'dead')),
    reason TEXT
);
INSERT INTO jobs (id, chat_id, text, attempts, not_before, created_at, state)
VALUES ('job-1', 1, '<b>message 1</b>', 0, 0.0, 1700000000.0, 'pending');
"""


async def test_a_sqlite_file_from_before_policies_opens_with_its_jobs_at_least_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    async with aiosqlite.connect(path) as db:
        await db.executescript(_FIRST_SCHEMA)
        await db.commit()
    store = SqliteOutbox(path)
    await store.open()
    try:
        assert await store.pending() == [dataclasses.replace(job(1), seq=1, created_at=1.7e9)]
        assert await store.put(once(2))
        assert await store.mark_sending("job-2")
        assert ids(await store.dead_letter_sending(UNKNOWN)) == ["job-2"]
    finally:
        await store.close()
