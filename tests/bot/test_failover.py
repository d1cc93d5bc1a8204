"""The outbox and the alarm store on a real Redis Cluster with one replica per master, at the
store level: a master SIGKILLed mid-run loses no acknowledged write and doubles none, and a
write returns only once a replica has it (``WAIT``), which is why the promoted replica has
everything acknowledged.

Workers put outbox jobs, complete (ack) them, add alarms, pause some and record firings of
others, each retrying a failed operation with the same arguments, as the bot's callers do
(``Notifier._store``, the alarm desk's ``_retrying``), until it returns. The master serving
one store's hash-tag slot is killed while they run; the pause (kill -> the first operation
started after the kill that succeeds, per store) is printed and kept as the test's
``failover_pause_s`` property. After the replica is promoted, every put that returned is
stored exactly once (pending, or acked and not pending again) and every acknowledged alarm
change is there, with no second alarm for one add.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import signal
import time
from collections import Counter, defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeVar

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.outbox import Job, RedisOutbox
from utils.alarms.alarm_model import AlarmState, Firing
from utils.alarms.alarm_parser import parse_alarm
from utils.alarms.alarm_store import AlarmExistsError, RedisAlarmStore
from utils.redis_conn import ReplicationTimeoutError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from tests.redis_cluster import ClusterNodeProcess, LocalCluster
    from utils.alarms.alarm_model import Alarm

PREFIX: Final = "fo:"
SLOT_KEYS: Final = {"outbox": "fo:{outbox}:seq", "alarms": "fo:{alarms}:id"}
NOW: Final = 1_800_000_000.0
RETRY_S: Final = 0.05  # a failed operation is tried again this much later
WARM_UP: Final = 40  # successful operations of each store before the kill
AFTER_KILL: Final = 40  # ... and started after it, before the workers stop
SAFETY_S: Final = 30.0  # a failover takes the node timeout (1 s) and an election: a net only
PAUSED: Final = AlarmState.PAUSED
_T = TypeVar("_T")


@dataclasses.dataclass
class Run:
    """What the workers did, and when."""

    killed_at: float | None = None
    ok: Counter[str] = dataclasses.field(default_factory=Counter)  # store -> successes
    ok_after_kill: Counter[str] = dataclasses.field(default_factory=Counter)
    failed: Counter[str] = dataclasses.field(default_factory=Counter)
    first_after_kill: dict[str, float] = dataclasses.field(default_factory=dict)
    last_ok_at: dict[str, float] = dataclasses.field(default_factory=dict)
    longest_gap_s: dict[str, float] = dataclasses.field(default_factory=dict)  # after the kill
    unexpected: list[str] = dataclasses.field(default_factory=list)
    progress: asyncio.Condition = dataclasses.field(default_factory=asyncio.Condition)
    stop: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def retrying(self, store: str, op: Callable[[], Awaitable[_T]]) -> tuple[_T, bool]:
        """``op()`` until it returns; and whether an earlier try failed."""
        failed = False
        while True:
            started = time.monotonic()
            try:
                result = await op()
            except (RedisError, OSError) as e:
                self.failed[f"{store}:{type(e).__name__}"] += 1
                self.failed[store] += 1
                failed = True
                await asyncio.sleep(RETRY_S)  # the store is away: nothing to await but time
                continue
            await self._succeeded(store, started)
            return result, failed

    def pause_s(self, store: str) -> float:
        assert self.killed_at is not None
        return self.first_after_kill[store] - self.killed_at

    async def _succeeded(self, store: str, started: float) -> None:
        now = time.monotonic()
        self.ok[store] += 1
        if self.killed_at is not None:
            gap = now - max(self.last_ok_at[store], self.killed_at)
            self.longest_gap_s[store] = max(self.longest_gap_s.get(store, 0.0), gap)
            if started > self.killed_at:
                self.ok_after_kill[store] += 1
                self.first_after_kill.setdefault(store, now)
        self.last_ok_at[store] = now
        async with self.progress:
            self.progress.notify_all()


@dataclasses.dataclass
class Expected:
    """Every write a store acknowledged."""

    put: set[str] = dataclasses.field(default_factory=set)
    acked: set[str] = dataclasses.field(default_factory=set)
    alarms: dict[int, dict[int, tuple[AlarmState, int]]] = dataclasses.field(
        default_factory=lambda: defaultdict(dict)
    )  # chat -> alarm id -> (state, seq)
    levels: dict[int, int] = dataclasses.field(default_factory=dict)  # alarm id -> level


@pytest.fixture
async def stores(
    redis_cluster_replicas: LocalCluster,
) -> AsyncIterator[tuple[RedisOutbox, RedisAlarmStore]]:
    outbox = RedisOutbox.from_url(redis_cluster_replicas.url, prefix=PREFIX)
    alarms = RedisAlarmStore.from_url(redis_cluster_replicas.url, prefix=PREFIX)
    await outbox.open()
    await alarms.open()
    try:
        yield outbox, alarms
    finally:
        await outbox.close()
        await alarms.close()


def firing(alarm_id: int, chat_id: int) -> Firing:
    return Firing(
        alarm_id=alarm_id,
        chat_id=chat_id,
        seq=1,
        touched_price=Decimal("70000.01"),
        price=Decimal("69990.5"),
        touched_at=NOW + 59,
        fired_at=NOW + 60,
    )


async def putter(run: Run, outbox: RedisOutbox, expected: Expected, worker: int) -> None:
    n = 0
    while not run.stop.is_set():
        job = Job(id=f"w{worker}-{n}", chat_id=worker, text=f"message {n}")
        stored, retried = await run.retrying("outbox", functools.partial(outbox.put, job))
        if stored is None and not retried:
            run.unexpected.append(f"{job.id} was refused as a duplicate on its first put")
        expected.put.add(job.id)
        n += 1


async def completer(run: Run, outbox: RedisOutbox, expected: Expected) -> None:
    while not run.stop.is_set():
        jobs, _ = await run.retrying("outbox", lambda: outbox.pending(limit=20))
        for job in jobs:
            done, retried = await run.retrying("outbox", functools.partial(outbox.ack, job.id))
            if not done and not retried:
                run.unexpected.append(f"{job.id} was pending, yet its first ack found nothing")
            expected.acked.add(job.id)
        if not jobs:
            async with run.progress:  # until a putter stores one more
                await run.progress.wait()


async def adder(run: Run, store: RedisAlarmStore, expected: Expected, chat: int) -> None:
    level = 0
    while not run.stop.is_set():
        level += 1
        spec = parse_alarm(f"btc > {level}", now=NOW)

        async def add(spec: Any = spec) -> tuple[int, bool]:
            """The alarm's id, and whether it was there already."""
            try:
                alarm = await store.add(
                    chat, 7, spec, now=NOW, per_chat_limit=10**6, global_limit=10**6
                )
            except AlarmExistsError as e:  # a retry meeting what its first try stored
                return e.existing_id, True
            return alarm.id, False

        (alarm_id, existed), retried = await run.retrying("alarms", add)
        if existed and not retried:
            run.unexpected.append(f"btc > {level} existed before its first add")
        expected.alarms[chat][alarm_id] = (AlarmState.ARMED, 0)
        expected.levels[alarm_id] = level
        if level % 3 == 1:
            await run.retrying("alarms", functools.partial(store.set_state, alarm_id, PAUSED))
            expected.alarms[chat][alarm_id] = (PAUSED, 0)
        elif level % 3 == 2:
            mark = functools.partial(
                store.mark_fired, firing(alarm_id, chat), state=AlarmState.FIRED, rearm_at=None
            )
            recorded, retried = await run.retrying("alarms", mark)
            if not recorded and not retried:
                run.unexpected.append(f"the firing of alarm {alarm_id} was recorded before")
            expected.alarms[chat][alarm_id] = (AlarmState.FIRED, 1)


@pytest.mark.parametrize("victim", ["outbox", "alarms"])
async def test_a_master_killed_mid_run_loses_no_acknowledged_write_and_doubles_none(
    redis_cluster_replicas: LocalCluster,
    stores: tuple[RedisOutbox, RedisAlarmStore],
    victim: str,
    record_property: Callable[[str, object], None],
) -> None:
    outbox, alarms = stores
    run, expected = Run(), Expected()
    workers = [
        *(asyncio.create_task(putter(run, outbox, expected, w)) for w in (1, 2, 3)),
        asyncio.create_task(completer(run, outbox, expected)),
        *(asyncio.create_task(adder(run, alarms, expected, chat)) for chat in (10, 20)),
    ]
    try:
        async with asyncio.timeout(SAFETY_S), run.progress:
            await run.progress.wait_for(lambda: min(run.ok["outbox"], run.ok["alarms"]) >= WARM_UP)
        killed = redis_cluster_replicas.master_of(SLOT_KEYS[victim])
        run.killed_at = time.monotonic()
        killed.kill()
        async with asyncio.timeout(SAFETY_S), run.progress:
            await run.progress.wait_for(
                lambda: min(run.ok_after_kill["outbox"], run.ok_after_kill["alarms"]) >= AFTER_KILL
            )
    finally:
        run.stop.set()
        async with run.progress:
            run.progress.notify_all()
        async with asyncio.timeout(SAFETY_S):
            await asyncio.gather(*workers)

    pauses = {store: round(run.pause_s(store), 3) for store in ("outbox", "alarms")}
    gaps = {store: round(gap, 3) for store, gap in run.longest_gap_s.items()}
    print(  # noqa: T201
        f"failover, {victim}'s master killed: kill -> first success started after it {pauses} s;"
        f" longest time without a success {gaps} s; failed tries {dict(run.failed)}"
    )
    record_property("failover_pause_s", pauses)
    record_property("failover_longest_gap_s", gaps)
    assert redis_cluster_replicas.master_of(SLOT_KEYS[victim]).port != killed.port  # promoted
    assert run.unexpected == []

    pending = [job.id for job in await outbox.pending()]
    assert len(pending) == len(set(pending)) == await outbox.depth()
    assert set(pending) == expected.put - expected.acked  # none lost, none back after its ack
    assert expected.acked <= expected.put
    again = [Job(id=job_id, chat_id=1, text="again") for job_id in sorted(expected.acked)]
    assert await outbox.put_many(again) == [None] * len(again)  # delivered ids kept: no resend
    for chat, acknowledged in expected.alarms.items():
        listed = await alarms.chat_alarms(chat, limit=100_000)
        assert {a.id for a in listed} == set(acknowledged)  # none lost, no second alarm per add
        for alarm in listed:
            assert (alarm.state, alarm.seq) == acknowledged[alarm.id]
            assert alarm.spec.level == Decimal(expected.levels[alarm.id])


# --- WAIT: a write returns once a replica has it ----------------------------------------------


def replica_of(cluster: LocalCluster, master: ClusterNodeProcess) -> ClusterNodeProcess:
    for node in cluster.nodes:
        if node is not master and node.alive:
            with node.client() as c:
                role = c.execute_command("ROLE")
            if role[0] == "slave" and int(role[2]) == master.port:
                return node
    raise RuntimeError(f"no replica of {master.port}")


@contextlib.contextmanager
def frozen(node: ClusterNodeProcess) -> Iterator[None]:
    """SIGSTOP: the replica stays connected to its master but takes in nothing until the
    block ends (SIGCONT)."""
    assert node.process is not None
    os.kill(node.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(node.process.pid, signal.SIGCONT)


@contextlib.asynccontextmanager
async def replica_reader(cluster: LocalCluster, key: str) -> AsyncIterator[Redis]:
    """One connection to the replica of the master serving ``key``, reading (``READONLY``)."""
    replica = replica_of(cluster, cluster.master_of(key))
    reader = Redis(port=replica.port, single_connection_client=True)
    try:
        await reader.execute_command("READONLY")
        yield reader
    finally:
        await reader.aclose()


async def test_a_put_returns_once_the_replica_has_it_and_a_put_retried_after_none_did_is_kept_once(
    redis_cluster_replicas: LocalCluster, stores: tuple[RedisOutbox, RedisAlarmStore]
) -> None:
    cluster, (outbox, _) = redis_cluster_replicas, stores
    replica = replica_of(cluster, cluster.master_of(SLOT_KEYS["outbox"]))
    async with replica_reader(cluster, SLOT_KEYS["outbox"]) as reader:
        for n in range(20):
            assert await outbox.put(Job(id=f"job-{n}", chat_id=1, text=f"message {n}"))
            assert await reader.hget(f"{PREFIX}{{outbox}}:job:job-{n}", "text") == (
                f"message {n}".encode()
            )
        assert await outbox.ack("job-0")
        assert not await reader.exists(f"{PREFIX}{{outbox}}:job:job-0")

        late = Job(id="late", chat_id=1, text="put while the replica is frozen")
        with frozen(replica), pytest.raises(ReplicationTimeoutError):
            await outbox.put(late)  # on the master only: a failover now would lose it
        assert await outbox.put(late) is None  # the retry: already stored, so not again
        assert await reader.hget(f"{PREFIX}{{outbox}}:job:late", "text") == late.text.encode()
    assert [job.id for job in await outbox.pending()] == [
        *(f"job-{n}" for n in range(1, 20)),
        "late",
    ]


async def test_an_alarm_change_returns_once_the_replica_has_it_and_a_retried_add_makes_one_alarm(
    redis_cluster_replicas: LocalCluster, stores: tuple[RedisOutbox, RedisAlarmStore]
) -> None:
    cluster, (_, store) = redis_cluster_replicas, stores
    replica = replica_of(cluster, cluster.master_of(SLOT_KEYS["alarms"]))

    async def add(text: str) -> Alarm:
        spec = parse_alarm(text, now=NOW)
        return await store.add(1, 7, spec, now=NOW, per_chat_limit=10, global_limit=10)

    async with replica_reader(cluster, SLOT_KEYS["alarms"]) as reader:

        async def row(alarm_id: int) -> bytes | None:
            """The alarm's stored row, as the replica has it."""
            value = await reader.hget(f"{PREFIX}{{alarms}}:a", str(alarm_id))
            assert value is None or isinstance(value, bytes)
            return value

        first = await add("btc > 70000")
        assert b'"armed"' in (await row(first.id) or b"")

        with frozen(replica), pytest.raises(ReplicationTimeoutError):
            await add("eth < 2000")
        with pytest.raises(AlarmExistsError) as again:  # the retry meets its first try
            await add("eth < 2000")
        second = again.value.existing_id
        assert await row(second) is not None

        with frozen(replica), pytest.raises(ReplicationTimeoutError):
            await store.set_state(second, AlarmState.PAUSED)
        assert (await store.set_state(second, AlarmState.PAUSED)) is not None  # retried
        assert b'"paused"' in (await row(second) or b"")

        fired = firing(first.id, 1)
        with frozen(replica), pytest.raises(ReplicationTimeoutError):
            await store.mark_fired(fired, state=AlarmState.FIRED, rearm_at=None)
        assert not await store.mark_fired(fired, state=AlarmState.FIRED, rearm_at=None)
        assert b'"fired",1,' in (await row(first.id) or b"")

        with frozen(replica), pytest.raises(ReplicationTimeoutError):
            await store.delete(first.id)
        assert not await store.delete(first.id)  # retried: already gone
        assert await row(first.id) is None
    assert [(a.id, a.state) for a in await store.chat_alarms(1)] == [(second, AlarmState.PAUSED)]
