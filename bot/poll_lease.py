"""One long-poller per bot among the processes sharing a Redis: a lease elects it.

Telegram lets one ``getUpdates`` wait per bot; a second one ends the first with 409
("terminated by other getUpdates request"), and two processes polling one token answer each
other with 409s for as long as both run. So with Redis, ``PollLease.lead`` polls only while
this process holds the bot's poll lease: the poller renews it every third of ``lease_s``
(``TELEGRAM_POLL_LEASE_S``) and stops polling at once, cancelling the ``getUpdates`` in
flight, when a renewal is refused, or when Redis has not confirmed it for so long that the
lease could lapse before the next try. Every other process is a standby: it tries to take
the lease every third of ``lease_s`` (serving /healthz, alarms and delivery meanwhile) and
polls once it has it, so a dead poller is replaced within about ``lease_s`` and a stopped
one (which releases the lease) within a third of it. Without Redis there is no lease: the one
process polls.

The key is ``<prefix>{poll}:<hash>``, the hash a SHA-256 of the bot's numeric id (the part
of the token before the colon): never the token, whose secret half must reach no Redis key
and no log line. It holds the owner's id, with a PX expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import TYPE_CHECKING, Final

import structlog
from redis.exceptions import RedisError

from utils.redis_conn import key_space

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from utils.redis_conn import RedisClient

__all__ = ("PollLease", "poll_key")

_ERRORS: Final = (RedisError, TimeoutError, OSError)
_log = structlog.get_logger(__name__)


def poll_key(prefix: str, bot_id: int) -> str:
    """The Redis key of the poll lease of the bot whose numeric id is ``bot_id``."""
    digest = hashlib.sha256(str(bot_id).encode()).hexdigest()[:16]
    return key_space(prefix, "poll") + digest


class PollLease:
    """The poll lease of one bot, held by ``owner`` while it polls."""

    def __init__(
        self, redis: RedisClient, *, prefix: str, bot_id: int, owner: str, lease_s: float
    ) -> None:
        self._redis = redis
        self._key = poll_key(prefix, bot_id)
        self._owner = owner
        self._lease_s = lease_s
        self._lease_ms = max(1, round(lease_s * 1000))
        self._claim = redis.register_script(_CLAIM_LUA)
        self._release = redis.register_script(_RELEASE_LUA)
        self.leading = False  # True while this process holds the lease and polls
        self.terms = 0  # times this process took the lease
        self._failing = False  # the last try to take the lease met a Redis error

    async def lead(
        self, stop: asyncio.Event, poll: Callable[[asyncio.Event], Awaitable[None]]
    ) -> None:
        """Until ``stop`` is set: take the lease when it is free and run ``poll(term)`` while
        holding it; ``term`` is set at ``stop`` or when the lease is lost."""
        loop = asyncio.get_running_loop()
        standing_by = False
        while not stop.is_set():
            claimed_at = loop.time()
            if await self._try_claim():
                standing_by = False
                await self._term(stop, poll, claimed_at)
                continue
            if not standing_by:
                _log.info("poller_standby", lease_s=self._lease_s)
                standing_by = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._lease_s / 3)

    async def _term(
        self,
        stop: asyncio.Event,
        poll: Callable[[asyncio.Event], Awaitable[None]],
        claimed_at: float,
    ) -> None:
        """One term as the poller: ``poll`` until ``stop`` or the lease is lost."""
        term = asyncio.Event()
        self.leading = True
        self.terms += 1
        _log.info("poller_leading", lease_s=self._lease_s)
        keeper = asyncio.create_task(self._keep(term, claimed_at))
        ender = asyncio.create_task(stop.wait())
        ender.add_done_callback(lambda _: term.set())
        try:
            await poll(term)
        finally:
            self.leading = False
            for task in (keeper, ender):
                task.cancel()
            await asyncio.gather(keeper, ender, return_exceptions=True)
            # Stopping, or unsure of it: let a standby take over now rather than at the lapse.
            with contextlib.suppress(*_ERRORS):
                async with asyncio.timeout(self._lease_s / 3):
                    await self._release(keys=[self._key], args=[self._owner])

    async def _keep(self, term: asyncio.Event, confirmed_at: float) -> None:
        """Renew every third of the lease; set ``term`` when it is lost or may lapse."""
        loop = asyncio.get_running_loop()
        step = self._lease_s / 3
        while True:
            await asyncio.sleep(step)
            asked_at = loop.time()
            try:
                async with asyncio.timeout(step):
                    held = bool(await self._claim(keys=[self._key], args=self._args))
            except _ERRORS as e:
                if loop.time() + step < confirmed_at + self._lease_s:
                    continue  # still ours for longer than the next try takes
                _log.warning("poller_lease_unconfirmed", error=repr(e))
                term.set()
                return
            if not held:
                _log.warning("poller_lease_lost", lease_s=self._lease_s)
                term.set()
                return
            confirmed_at = asked_at  # it expires lease_s after Redis ran it: later than this

    async def _try_claim(self) -> bool:
        try:
            async with asyncio.timeout(self._lease_s / 3):
                claimed = bool(await self._claim(keys=[self._key], args=self._args))
        except _ERRORS as e:
            if not self._failing:  # once per outage, not every third of the lease
                _log.warning("poller_lease_failed", error=repr(e))
            self._failing = True
            return False
        self._failing = False
        return claimed

    @property
    def _args(self) -> list[str | int]:
        return [self._owner, self._lease_ms]


# KEYS: the lease. ARGV: owner, lease ms. Takes the lease when free, renews it when the
# owner's; 1 when the owner holds it after the call, else 0.
_CLAIM_LUA: Final = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: the lease. ARGV: owner. Deletes the lease if the owner holds it.
_RELEASE_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""
