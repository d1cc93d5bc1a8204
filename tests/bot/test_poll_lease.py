"""The poll lease on a real Redis and a real Redis Cluster: of two processes one polls at a
time, a stopping poller hands over at once, a poller whose lease another took stops polling at
its next renewal, and the key names the bot by a hash, never by its token."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Final

import pytest

from bot.poll_lease import PollLease, poll_key
from utils.redis_conn import connect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.conftest import RedisServer
    from tests.redis_cluster import LocalCluster
    from utils.redis_conn import RedisClient

LEASE_S: Final = 0.3
WAIT_S: Final = 10.0  # upper bound on anything awaited
BOT_ID: Final = 42


@pytest.fixture(params=["redis", "cluster"])
def redis_url(request: pytest.FixtureRequest) -> str:
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[RedisClient]:
    redis = connect(redis_url, max_connections=8)
    try:
        yield redis
    finally:
        await redis.aclose()


class Poller:
    """One process's polling, as ``PollLease.lead`` runs it: what it did, in order."""

    def __init__(self, name: str, journal: list[str]) -> None:
        self.name, self.journal = name, journal
        self.started = asyncio.Event()
        self.ended = asyncio.Event()

    async def poll(self, term: asyncio.Event) -> None:
        self.journal.append(f"{self.name} polls")
        self.started.set()
        await term.wait()
        self.journal.append(f"{self.name} stops")
        self.ended.set()


def lease(client: RedisClient, owner: str) -> PollLease:
    return PollLease(client, prefix="t:", bot_id=BOT_ID, owner=owner, lease_s=LEASE_S)


async def test_one_of_two_processes_polls_and_a_stopping_poller_hands_over_at_once(
    client: RedisClient,
) -> None:
    journal: list[str] = []
    stops = {"a": asyncio.Event(), "b": asyncio.Event()}
    pollers = {name: Poller(name, journal) for name in stops}
    leases = {name: lease(client, name) for name in stops}
    async with asyncio.TaskGroup() as group:
        for name, stop in stops.items():
            group.create_task(leases[name].lead(stop, pollers[name].poll))
        first = await first_set(pollers["a"].started, pollers["b"].started)
        second = "b" if first == "a" else "a"
        assert leases[first].leading
        assert not leases[second].leading
        stops[first].set()
        await asyncio.wait_for(pollers[second].started.wait(), WAIT_S)
        stops[second].set()
    assert journal == [f"{first} polls", f"{first} stops", f"{second} polls", f"{second} stops"]
    assert (leases[first].terms, leases[second].terms) == (1, 1)
    assert await client.exists(poll_key("t:", BOT_ID)) == 0  # released on the way out


async def test_a_poller_whose_lease_another_took_stops_polling_at_its_next_renewal(
    client: RedisClient,
) -> None:
    journal: list[str] = []
    stop = asyncio.Event()
    poller = Poller("a", journal)
    mine = lease(client, "a")
    task = asyncio.create_task(mine.lead(stop, poller.poll))
    try:
        await asyncio.wait_for(poller.started.wait(), WAIT_S)
        # As after a pause longer than the lease: it lapsed and another process took it.
        await client.set(poll_key("t:", BOT_ID), "another", px=60_000)
        await asyncio.wait_for(poller.ended.wait(), WAIT_S)
        assert not mine.leading
        poller.started.clear()
        await client.delete(poll_key("t:", BOT_ID))  # the other one stopped
        await asyncio.wait_for(poller.started.wait(), WAIT_S)
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)
    assert journal == ["a polls", "a stops", "a polls", "a stops"]
    assert mine.terms == 2


def test_the_key_names_the_bot_by_a_hash_in_its_own_slot() -> None:
    key = poll_key("btb:", 123456)
    assert re.fullmatch(r"btb:\{poll\}:[0-9a-f]{16}", key)
    assert "123456" not in key
    assert poll_key("btb:", 123457) != key


async def first_set(*events: asyncio.Event) -> str:
    """ "a" or "b": which of the two events is set first."""
    waits: dict[asyncio.Task[bool], str] = {
        asyncio.create_task(event.wait()): name for event, name in zip(events, "ab", strict=True)
    }
    done, pending = await asyncio.wait(waits, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    assert done, "nobody polls"
    return waits[next(iter(done))]
