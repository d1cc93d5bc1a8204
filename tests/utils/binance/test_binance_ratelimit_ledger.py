"""The limiter's Redis ledger, on a single Redis and on a Redis Cluster: clients with one egress
id (BINANCE_EGRESS_ID, one public IP) book into one budget, another id has a budget of its own,
the account's order windows and a -1015 pause are shared by every id while a 429 or a ban stops
only its own IP; learned limits are shared; every key stays under the prefix, in one cluster
slot, expiring, and a window's hash stays small however many windows pass.

Times are Binance's clock as the limiter passes it (``now``): fixed here, so that which window
a booking lands in is known in advance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pytest
from redis.asyncio.cluster import RedisCluster

from utils.binance.binance_ratelimit import LimiterConfig, WeightLimiter
from utils.binance.binance_ratelimit_redis import RedisLedger, ledger_root
from utils.binance.binance_types import Market, PoolKind, RateWindow
from utils.redis_conn import connect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from utils.binance.binance_types import BinanceEvent
    from utils.redis_conn import RedisClient

PREFIX: Final = "test"
ROOT: Final = ledger_root(PREFIX)
NOW: Final = 1_700_000_000.5  # the middle of a one-second window
NEXT: Final = 1_700_000_001.05  # the next window's start plus the guard
GUARD_S: Final = 0.05
ACCOUNT: Final = "acct-1"
WEIGHT: Final = RateWindow(Market.SPOT, PoolKind.REQUEST_WEIGHT, 1, 100)
ORDERS: Final = RateWindow(Market.SPOT, PoolKind.ORDERS, 1, 10, per_account=True)
IP, ACCT = "spot:ip", "spot:acct"  # the limiter's pause scopes of those windows


@pytest.fixture
async def clients(shared_redis: str) -> AsyncIterator[Callable[[], RedisClient]]:
    """Separate clients of one Redis (or cluster), as separate processes would have."""
    made: list[RedisClient] = []

    def new() -> RedisClient:
        made.append(connect(shared_redis, max_connections=8))
        return made[-1]

    yield new
    for client in made:
        await client.aclose()


def ledger(client: RedisClient, egress: str) -> RedisLedger:
    return RedisLedger(client, root=ROOT, account=ACCOUNT, egress=egress)


def limiter(client: RedisClient, egress: str, events: list[BinanceEvent]) -> WeightLimiter:
    return WeightLimiter(
        LimiterConfig(guard_s=GUARD_S),
        emit=events.append,
        clock=lambda: NOW,
        redis=client,
        key_prefix=PREFIX,
        account=ACCOUNT,
        egress=egress,
        windows={Market.SPOT: [WEIGHT, ORDERS]},
    )


async def booked_at(book: Any) -> float:
    reply = await book
    assert reply is not None
    return round(reply[0], 3)


async def all_keys(client: RedisClient) -> list[str]:
    pattern = f"{PREFIX}:*"
    if isinstance(client, RedisCluster):
        raw = await client.keys(pattern, target_nodes=RedisCluster.PRIMARIES)
    else:
        raw = await client.keys(pattern)
    return sorted(k.decode() if isinstance(k, bytes) else str(k) for k in raw)


# --- budgets per egress id -------------------------------------------------------------------
async def test_clients_with_one_egress_id_book_into_one_weight_budget(
    clients: Callable[[], RedisClient],
) -> None:
    first, second = ledger(clients(), "eu-1"), ledger(clients(), "eu-1")
    assert await first.book([(WEIGHT, 100, 60, IP)], NOW, GUARD_S) == (NOW, [60])
    # 60 + 60 > 100: the second client's call waits for the next window
    assert await second.book([(WEIGHT, 100, 60, IP)], NOW, GUARD_S) == (NEXT, [60])


async def test_another_egress_id_books_into_a_weight_budget_of_its_own(
    clients: Callable[[], RedisClient],
) -> None:
    eu, us = ledger(clients(), "eu-1"), ledger(clients(), "us-1")
    assert await eu.book([(WEIGHT, 100, 90, IP)], NOW, GUARD_S) == (NOW, [90])
    assert await us.book([(WEIGHT, 100, 90, IP)], NOW, GUARD_S) == (NOW, [90])


async def test_the_accounts_order_windows_are_shared_by_every_egress_id(
    clients: Callable[[], RedisClient],
) -> None:
    eu, us = ledger(clients(), "eu-1"), ledger(clients(), "us-1")
    order = [(WEIGHT, 100, 1, IP), (ORDERS, 10, 6, ACCT)]
    assert await eu.book(order, NOW, GUARD_S) == (NOW, [1, 6])
    # 6 + 6 orders > 10 on the account: held to the next window, where the us-1 IP has spent
    # nothing and the account 6 (both booked atomically, in one script)
    assert await us.book(order, NOW, GUARD_S) == (NEXT, [1, 6])
    assert await us.book([(WEIGHT, 100, 1, IP)], NOW, GUARD_S) == (NOW, [1])


# --- pauses -------------------------------------------------------------------------------
async def test_a_429_pauses_every_client_of_its_ip_and_no_other_ip(
    clients: Callable[[], RedisClient],
) -> None:
    events: list[BinanceEvent] = []
    hit = limiter(clients(), "eu-1", events)
    await hit.pause(Market.SPOT, seconds=30, banned=False, orders=False, endpoint="GET /x")
    hit.close()
    same_ip, other_ip = ledger(clients(), "eu-1"), ledger(clients(), "us-1")
    assert await booked_at(same_ip.book([(WEIGHT, 100, 1, IP)], NOW, GUARD_S)) == NOW + 30
    assert await booked_at(other_ip.book([(WEIGHT, 100, 1, IP)], NOW, GUARD_S)) == NOW
    assert await same_ip.pauses([IP, ACCT]) == {IP: NOW + 30}
    assert await other_ip.pauses([IP, ACCT]) == {}


async def test_too_many_orders_pauses_the_accounts_orders_from_every_egress_id(
    clients: Callable[[], RedisClient],
) -> None:
    events: list[BinanceEvent] = []
    hit = limiter(clients(), "eu-1", events)
    await hit.pause(Market.SPOT, seconds=30, banned=False, orders=True, endpoint="POST /o")
    hit.close()
    other_ip = ledger(clients(), "us-1")
    order = [(WEIGHT, 100, 1, IP), (ORDERS, 10, 1, ACCT)]
    assert await booked_at(other_ip.book(order, NOW, GUARD_S)) == NOW + 30
    assert await booked_at(other_ip.book([(WEIGHT, 100, 1, IP)], NOW, GUARD_S)) == NOW
    assert await other_ip.pauses([IP, ACCT]) == {ACCT: NOW + 30}


async def test_a_ban_stops_its_own_ips_orders_and_not_another_ips(
    clients: Callable[[], RedisClient],
) -> None:
    events: list[BinanceEvent] = []
    banned = limiter(clients(), "eu-1", events)
    await banned.pause(Market.SPOT, seconds=30, banned=True, orders=False, endpoint="GET /x")
    banned.close()
    same_ip, other_ip = ledger(clients(), "eu-1"), ledger(clients(), "us-1")
    only_orders = [(ORDERS, 10, 1, ACCT)]  # a futures order costs no IP weight
    assert await booked_at(same_ip.book(only_orders, NOW, GUARD_S)) == NOW + 30
    assert await booked_at(other_ip.book(only_orders, NOW, GUARD_S)) == NOW
    assert await same_ip.pauses([IP, ACCT]) == {IP: NOW + 30, ACCT: NOW + 30}
    assert await other_ip.pauses([IP, ACCT]) == {}


# --- learned limits, keys and memory -----------------------------------------------------------
async def test_limits_one_process_learned_are_found_by_another_on_any_ip(
    clients: Callable[[], RedisClient],
) -> None:
    events: list[BinanceEvent] = []
    learned = [
        RateWindow(Market.SPOT, PoolKind.REQUEST_WEIGHT, 60, 1200),
        RateWindow(Market.SPOT, PoolKind.ORDERS, 10, 7, per_account=True),
    ]
    teacher = limiter(clients(), "eu-1", events)
    teacher.set_windows(Market.SPOT, learned)
    await teacher.share_windows(Market.SPOT)
    pupil = limiter(clients(), "us-1", events)
    assert await pupil.load_shared_windows(Market.SPOT)
    assert pupil.windows(Market.SPOT) == tuple(learned)
    assert [e.kind for e in events] == []  # no "redis_down": it all went through Redis


async def test_every_key_is_under_the_prefix_in_one_slot_and_expires(
    clients: Callable[[], RedisClient],
) -> None:
    client, events = clients(), []
    book = limiter(client, "eu-1", events)
    await book.share_windows(Market.SPOT)
    order = [(WEIGHT, 100, 1, IP), (ORDERS, 10, 1, ACCT)]
    await ledger(client, "eu-1").book(order, NOW, GUARD_S)
    await ledger(client, "us-1").book([(WEIGHT, 100, 1, IP)], NOW, GUARD_S)
    await book.pause(Market.SPOT, seconds=30, banned=True, orders=False, endpoint="GET /x")
    book.close()
    keys = await all_keys(client)
    assert len(keys) == 6, keys  # limits, 2 IPs' weight, the account's orders, 2 pauses
    assert all(k.startswith("test:rl:{limiter}:") for k in keys), keys
    assert all([await client.pttl(k) > 0 for k in keys])
    if isinstance(client, RedisCluster):
        assert len({await client.cluster_keyslot(k) for k in keys}) == 1


async def test_a_windows_hash_stays_small_however_many_windows_pass(
    clients: Callable[[], RedisClient],
) -> None:
    client = clients()
    book = ledger(client, "eu-1")
    for second in range(500):  # a booking and its answer in each of 500 one-second windows
        now = NOW + second
        at, _ = await book.book([(WEIGHT, 100, 1, IP)], now, GUARD_S) or (None, None)
        assert at == now
        await book.settle([(WEIGHT, int(now), 1, 0, 50, int(now))], now)
    size = await client.hlen(book.base(WEIGHT))
    assert size <= 80, size  # 5 fields a window: without the sweep, 2,500 or so
    assert 0 < await client.pttl(book.base(WEIGHT)) <= 600_000
