"""The limiter's shared ledger in Redis: one Lua script books a call atomically in every
window of every pool it counts against, so all processes behind one IP share one budget.

It speaks in window specs and numbers, never in requests; ``binance_ratelimit`` decides what
to book and falls back to its in-process ledger when a call here raises ``REDIS_ERRORS``.
Keys are built inside the scripts (single-instance Redis, not Redis Cluster).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import orjson
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from redis.asyncio import Redis

    from utils.binance.binance_types import RateWindow

__all__ = ("REDIS_ERRORS", "RedisLedger")

#: What "Redis is unavailable" looks like (a timeout of ours raises TimeoutError).
REDIS_ERRORS: Final = (RedisError, OSError, TimeoutError)
_TIMEOUT_S: Final = 1.0  # a Redis that does not answer in this time is "down"


class RedisLedger:
    """Bookings, settlements and pauses of the weight limiter, kept in Redis."""

    def __init__(self, redis: Redis, *, prefix: str, account: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._account = account
        self._book_script = redis.register_script(_BOOK_LUA)
        self._settle_script = redis.register_script(_SETTLE_LUA)

    def base(self, spec: RateWindow) -> str:
        """The key prefix of a window's slots; ``<base>:<index>`` holds one window."""
        scope = f"acct:{self._account}" if spec.per_account else "ip"
        return f"{self._prefix}:{spec.market}:{scope}:{spec.label or spec.kind}:{spec.interval_s}"

    def pause_key(self, scope: str) -> str:
        return f"{self._prefix}:pause:{scope}"

    async def book(
        self, rows: Sequence[tuple[RateWindow, int, int, str]], now: float, guard_s: float
    ) -> tuple[float, list[int]] | None:
        """Book ``(spec, effective, cost, pause scope)`` rows at the earliest time every window
        admits them; returns (start time, used per row after booking) or None if none can."""
        args: list[Any] = [int(now * 1000), int(guard_s * 1000), len(rows)]
        for spec, effective, cost, scope in rows:
            args += [self.base(spec), spec.interval_s * 1000, effective, cost]
            args += [spec.limit, self.pause_key(scope)]
        async with asyncio.timeout(_TIMEOUT_S):
            reply = await self._book_script(keys=[], args=args)
        at_ms = int(reply[0])
        if at_ms < 0:
            return None
        return at_ms / 1000, [int(u) for u in reply[1:]]

    async def settle(self, rows: Iterable[tuple[RateWindow, int, int, int, int, int]]) -> None:
        """Per ``(spec, index, cost, refund, seen header value or -1, current index)``: record
        the answer. One answered in the window after its own may be in that window's count: it
        is booked there as ours (``l``), so that it is not taken for a neighbour's spend."""
        args: list[Any] = [0]
        for spec, idx, cost, refund, seen, current in rows:
            args += [self.base(spec), idx, cost, refund, seen, current, spec.interval_s * 1000]
            args[0] += 1
        async with asyncio.timeout(_TIMEOUT_S):
            await self._settle_script(keys=[], args=args)

    async def add(self, charges: Iterable[tuple[RateWindow, int, int]]) -> None:
        """Add (or with a negative cost, take back) bookings ``(spec, index, cost)``."""
        async with asyncio.timeout(_TIMEOUT_S):
            pipe = self._redis.pipeline(transaction=False)
            for spec, idx, cost in charges:
                _ = pipe.hincrby(f"{self.base(spec)}:{idx}", "u", cost)
            await pipe.execute()

    async def learned_windows(self, market: str) -> list[tuple[str, int, int, bool]] | None:
        """The pools another process learned from ``exchangeInfo`` for ``market``:
        ``(kind, interval_s, limit, per_account)`` rows, or None when nobody has yet."""
        async with asyncio.timeout(_TIMEOUT_S):
            raw = await self._redis.get(f"{self._prefix}:limits:{market}")
        if raw is None:
            return None
        return [(str(k), int(i), int(n), bool(a)) for k, i, n, a in orjson.loads(raw)]

    async def learn_windows(self, specs: Sequence[RateWindow]) -> None:
        """Publish a market's pools as ``exchangeInfo`` gave them (kept a day)."""
        if not specs:
            return
        rows = [(str(s.kind), s.interval_s, s.limit, s.per_account) for s in specs]
        async with asyncio.timeout(_TIMEOUT_S):
            await self._redis.set(
                f"{self._prefix}:limits:{specs[0].market}", orjson.dumps(rows), ex=86400
            )

    async def pause(self, scopes: Iterable[str], until: float, seconds: float) -> None:
        ms = max(1, int(seconds * 1000))
        async with asyncio.timeout(_TIMEOUT_S):
            for scope in scopes:
                await self._redis.set(self.pause_key(scope), int(until * 1000), px=ms)

    async def pauses(self, scopes: Sequence[str]) -> Mapping[str, float]:
        """The pauses other processes set: scope -> end (epoch seconds)."""
        async with asyncio.timeout(_TIMEOUT_S):
            values = await self._redis.mget([self.pause_key(s) for s in scopes])
        return {s: int(v) / 1000 for s, v in zip(scopes, values, strict=True) if v is not None}


# One booking, atomically, across every window of every pool the call counts against.
# ARGV: now_ms, guard_ms, n, then per window: base key, interval_ms, effective, cost, limit,
# pause key. Returns {at_ms, used_1, ..., used_n} or {-1}.
_BOOK_LUA: Final = """
local now = tonumber(ARGV[1]); local guard = tonumber(ARGV[2]); local n = tonumber(ARGV[3])
local t = now
for i = 0, n - 1 do
  local p = tonumber(redis.call('GET', ARGV[9 + i * 6]) or '0')
  if p > t then t = p end
end
for step = 1, 256 do
  local nxt = t
  for i = 0, n - 1 do
    local base = ARGV[4 + i * 6]; local iv = tonumber(ARGV[5 + i * 6])
    local eff = tonumber(ARGV[6 + i * 6]); local cost = tonumber(ARGV[7 + i * 6])
    local limit = tonumber(ARGV[8 + i * 6])
    local idx = math.floor(t / iv); local s = idx * iv
    if t < s + guard then
      if s + guard > nxt then nxt = s + guard end
    elseif t > s + iv - guard then
      if s + iv + guard > nxt then nxt = s + iv + guard end
    else
      local h = redis.call('HMGET', base .. ':' .. idx, 'u', 'eh')
      local recent = tonumber(redis.call('HGET', base .. ':recent', 'e') or '0')
      local ext = math.max(tonumber(h[2]) or 0, recent)
      local used = (tonumber(h[1]) or 0) + ext
      if used + cost > eff and (used > 0 or cost > limit) then
        if s + iv + guard > nxt then nxt = s + iv + guard end
      end
    end
  end
  if nxt == t then
    local out = {t}
    for i = 0, n - 1 do
      local base = ARGV[4 + i * 6]; local iv = tonumber(ARGV[5 + i * 6])
      local key = base .. ':' .. math.floor(t / iv)
      local u = redis.call('HINCRBY', key, 'u', tonumber(ARGV[7 + i * 6]))
      redis.call('PEXPIRE', key, iv * 3 + 60000)
      local recent = tonumber(redis.call('HGET', base .. ':recent', 'e') or '0')
      local eh = tonumber(redis.call('HGET', key, 'eh') or '0')
      out[#out + 1] = u + math.max(eh, recent)
    end
    return out
  end
  t = nxt
end
return {-1}
"""

# ARGV: n, then per window: base key, idx, cost, refund, seen header value (-1 if none),
# the current window index, interval_ms. A window's hash: u booked (less refunds), c answered,
# l ours booked in the window before and answered in this one, eh/el others' spend (high/low).
_SETTLE_LUA: Final = """
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local o = 2 + i * 7
  local base = ARGV[o]; local idx = tonumber(ARGV[o + 1])
  local cost = tonumber(ARGV[o + 2]); local refund = tonumber(ARGV[o + 3])
  local seen = tonumber(ARGV[o + 4]); local cur = tonumber(ARGV[o + 5])
  local key = base .. ':' .. idx
  local u = redis.call('HINCRBY', key, 'u', 0 - refund)
  local c = redis.call('HINCRBY', key, 'c', cost - refund)
  if cur == idx + 1 then
    local now_key = base .. ':' .. cur
    redis.call('HINCRBY', now_key, 'l', cost - refund)
    redis.call('PEXPIRE', now_key, tonumber(ARGV[o + 6]) * 3 + 60000)
  end
  if seen >= 0 then
    local eh = tonumber(redis.call('HGET', key, 'eh') or '0')
    local el = tonumber(redis.call('HGET', key, 'el') or '0')
    local ours = u + tonumber(redis.call('HGET', key, 'l') or '0')
    local h = redis.call('HMGET', base .. ':' .. (idx - 1), 'u', 'c')
    local open = (tonumber(h[1]) or 0) - (tonumber(h[2]) or 0)
    if open > 0 then ours = ours + open end
    if seen - c > eh then redis.call('HSET', key, 'eh', seen - c) end
    if seen - ours > el then el = seen - ours; redis.call('HSET', key, 'el', el) end
    local recent = base .. ':recent'
    local ri = tonumber(redis.call('HGET', recent, 'i') or '-1')
    if idx > ri then
      local prev = 0
      if ri == idx - 1 then prev = tonumber(redis.call('HGET', base .. ':' .. ri, 'el') or '0') end
      redis.call('HSET', recent, 'i', idx, 'p', prev)
      ri = idx
    end
    if idx == ri then
      local prev = tonumber(redis.call('HGET', recent, 'p') or '0')
      redis.call('HSET', recent, 'e', math.max(prev, el))
      redis.call('PEXPIRE', recent, 600000)
    end
  end
end
return 1
"""
