"""The limiter's shared ledger in Redis: one Lua script books a call atomically in every
window of every pool it counts against, so all processes behind one IP share one budget.

It speaks in window specs and numbers, never in requests; ``binance_ratelimit`` decides what
to book and falls back to its in-process ledger when a call here raises ``REDIS_ERRORS``.

Keys, all under one hash tag (``<root>`` is ``key_space("<REDIS_KEY_PREFIX>:rl:", "limiter")``,
``tgbot:rl:{limiter}:``), so that they are in one Redis Cluster slot: one booking touches the
IP's weight windows and the account's order windows at once, and a script runs on one slot.
Every key a script touches is passed in ``KEYS``; none is built inside a script.

- ``<root><market>:ip:<egress>:<pool>:<interval_s>``: an IP-scoped window spec (weight, raw
  requests, an endpoint's own pool). ``<egress>`` is ``BINANCE_EGRESS_ID``: processes behind one
  public IP share it and so share one budget; another id (another IP) has a budget of its own.
- ``<root><market>:acct:<account>:<pool>:<interval_s>``: an account's order windows, shared by
  every egress id (Binance counts orders per account, wherever they come from).
- Each is one hash. Per window index ``i``: ``i:u`` booked (less refunds), ``i:c`` answered,
  ``i:l`` ours booked in the window before and answered in this one, ``i:eh``/``i:el`` the
  others' spend (high/low bound). ``r:i``, ``r:p``, ``r:e``: the latest observed window, the
  others' spend in the one before it and the spend assumed for windows not yet observed;
  ``r:x`` (ms) ends that assumption 10 min after the last observation. The hash expires as a
  whole (``PEXPIRE`` on every touch); once it holds more than ``_MAX_FIELDS`` fields, a touch
  deletes the index fields older than two windows, so memory stays bounded.
- Pauses: ``<root>pause:<egress>:<market>:ip`` (a 429 or 418 on this IP),
  ``<root>pause:<egress>:<market>:banned`` (a 418: this IP's orders stop too) and
  ``<root>pause:<market>:acct`` (a -1015 "too many orders": every egress id's orders stop).
- ``<root>limits:<market>``: the pools ``exchangeInfo`` gave, the same for every IP.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import orjson
from redis.exceptions import RedisClusterException, RedisError

from utils.redis_conn import key_space

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from utils.binance.binance_types import RateWindow
    from utils.redis_conn import RedisClient

__all__ = ("REDIS_ERRORS", "RedisLedger", "ledger_root")

#: What "Redis is unavailable" looks like (a timeout of ours raises TimeoutError; a cluster
#: none of whose nodes answers, or with a slot no node serves, raises RedisClusterException,
#: which is no RedisError).
REDIS_ERRORS: Final = (RedisError, RedisClusterException, OSError, TimeoutError)
_TIMEOUT_S: Final = 1.0  # a Redis that does not answer in this time is "down"
_MAX_FIELDS: Final = 64  # a window hash beyond this many fields sweeps its old indexes
_RECENT_MS: Final = 600_000  # the others' spend is assumed ahead this long after last seen


def ledger_root(key_prefix: str) -> str:
    """The start of every limiter key: ``<key_prefix>:rl:{limiter}:``."""
    return key_space(f"{key_prefix}:rl:", "limiter")


class RedisLedger:
    """Bookings, settlements and pauses of the weight limiter, kept in Redis."""

    def __init__(self, redis: RedisClient, *, root: str, account: str, egress: str) -> None:
        self._redis = redis
        self._root = root
        self._account = account
        self._egress = egress
        self._book_script = redis.register_script(_BOOK_LUA)
        self._settle_script = redis.register_script(_SETTLE_LUA)

    def base(self, spec: RateWindow) -> str:
        """The hash that holds a window spec's windows, one set of fields per index."""
        scope = f"acct:{self._account}" if spec.per_account else f"ip:{self._egress}"
        pool = spec.label or spec.kind
        return f"{self._root}{spec.market}:{scope}:{pool}:{spec.interval_s}"

    def pause_key(self, scope: str) -> str:
        """Where a pause of ``scope`` is kept: ``<market>:acct`` (a -1015) for every egress id,
        ``<market>:ip`` and ``<market>:banned`` (a 418: this IP's orders) for this one."""
        if scope.endswith(":acct"):
            return f"{self._root}pause:{scope}"
        return f"{self._root}pause:{self._egress}:{scope}"

    def pause_keys(self, scope: str) -> tuple[str, ...]:
        """The keys whose pause stops ``scope`` (``<market>:ip`` or ``<market>:acct``): an
        account's orders stop for a -1015 sent from anywhere and for a ban of this IP."""
        if scope.endswith(":acct"):
            return self.pause_key(scope), self.pause_key(f"{scope.rpartition(':')[0]}:banned")
        return (self.pause_key(scope),)

    async def book(
        self, rows: Sequence[tuple[RateWindow, int, int, str]], now: float, guard_s: float
    ) -> tuple[float, list[int]] | None:
        """Book ``(spec, effective, cost, pause scope)`` rows at the earliest time every window
        admits them; returns (start time, used per row after booking) or None if none can."""
        pauses = dict.fromkeys(k for *_, scope in rows for k in self.pause_keys(scope))
        keys = [self.base(spec) for spec, _, _, _ in rows] + list(pauses)  # pauses once each
        args: list[Any] = [int(now * 1000), int(guard_s * 1000), len(rows)]
        for spec, effective, cost, _ in rows:
            args += [spec.interval_s * 1000, effective, cost, spec.limit]
        async with asyncio.timeout(_TIMEOUT_S):
            reply = await self._book_script(keys=keys, args=args)
        at_ms = int(reply[0])
        if at_ms < 0:
            return None
        return at_ms / 1000, [int(u) for u in reply[1:]]

    async def settle(
        self, rows: Sequence[tuple[RateWindow, int, int, int, int, int]], now: float
    ) -> None:
        """Per ``(spec, index, cost, refund, seen header value or -1, current index)``: record
        the answer. One answered in the window after its own may be in that window's count: it
        is booked there as ours (``l``), so that it is not taken for a neighbour's spend."""
        args: list[Any] = [int(now * 1000)]
        for spec, idx, cost, refund, seen, current in rows:
            args += [idx, cost, refund, seen, current, spec.interval_s * 1000]
        async with asyncio.timeout(_TIMEOUT_S):
            await self._settle_script(keys=[self.base(row[0]) for row in rows], args=args)

    async def add(self, charges: Iterable[tuple[RateWindow, int, int]]) -> None:
        """Add (or with a negative cost, take back) bookings ``(spec, index, cost)``."""
        async with asyncio.timeout(_TIMEOUT_S):
            # One slot (one hash tag): on a cluster the pipeline goes to one node.
            pipe = self._redis.pipeline(transaction=False)
            for spec, idx, cost in charges:
                base = self.base(spec)
                _ = pipe.hincrby(base, f"{idx}:u", cost)
                _ = pipe.pexpire(base, max(spec.interval_s * 3000 + 60_000, _RECENT_MS))
            await pipe.execute()

    async def learned_windows(self, market: str) -> list[tuple[str, int, int, bool]] | None:
        """The pools another process learned from ``exchangeInfo`` for ``market``:
        ``(kind, interval_s, limit, per_account)`` rows, or None when nobody has yet."""
        async with asyncio.timeout(_TIMEOUT_S):
            raw = await self._redis.get(f"{self._root}limits:{market}")
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
                f"{self._root}limits:{specs[0].market}", orjson.dumps(rows), ex=86400
            )

    async def pause(self, scopes: Iterable[str], until: float, seconds: float) -> None:
        """Pause ``<market>:ip`` (this egress id), ``<market>:banned`` (this egress id's
        orders) or ``<market>:acct`` (every egress id's orders) until the epoch ``until``."""
        ms = max(1, int(seconds * 1000))
        async with asyncio.timeout(_TIMEOUT_S):
            for scope in scopes:
                await self._redis.set(self.pause_key(scope), int(until * 1000), px=ms)

    async def pauses(self, scopes: Sequence[str]) -> Mapping[str, float]:
        """The pauses other processes set: scope -> end (epoch seconds)."""
        per_scope = [self.pause_keys(s) for s in scopes]
        keys = [k for ks in per_scope for k in ks]
        async with asyncio.timeout(_TIMEOUT_S):
            values = iter(await self._redis.mget(keys))  # one hash tag: one slot
        found: dict[str, float] = {}
        for scope, ks in zip(scopes, per_scope, strict=True):
            ends = [int(v) / 1000 for v in (next(values) for _ in ks) if v is not None]
            if ends:
                found[scope] = max(ends)
        return found


# Shared by both scripts: a window hash's lifetime, and the sweep of its old index fields.
_HELPERS: Final = f"""
local function ttl(iv) return math.max(iv * 3 + 60000, {_RECENT_MS}) end
local function sweep(base, cur)
  if redis.call('HLEN', base) <= {_MAX_FIELDS} then return end
  local old = {{}}
  for _, f in ipairs(redis.call('HKEYS', base)) do
    local i = tonumber(string.match(f, '^(%-?%d+):'))
    if i ~= nil and i < cur - 2 then
      old[#old + 1] = f
      if #old == 200 then redis.call('HDEL', base, unpack(old)); old = {{}} end
    end
  end
  if #old > 0 then redis.call('HDEL', base, unpack(old)) end
end
"""

# One booking, atomically, across every window of every pool the call counts against.
# KEYS: the n window hashes, then every pause key that holds any of them back.
# ARGV: now_ms, guard_ms, n, then per window: interval_ms, effective, cost, limit.
# Returns {at_ms, used_1, ..., used_n} or {-1}.
_BOOK_LUA: Final = (
    _HELPERS
    + """
local now = tonumber(ARGV[1]); local guard = tonumber(ARGV[2]); local n = tonumber(ARGV[3])
local function used_at(base, idx)
  local h = redis.call('HMGET', base, idx .. ':u', idx .. ':eh', 'r:e', 'r:x')
  local recent = 0
  if (tonumber(h[4]) or 0) > now then recent = tonumber(h[3]) or 0 end
  return (tonumber(h[1]) or 0) + math.max(tonumber(h[2]) or 0, recent)
end
local t = now
for k = n + 1, #KEYS do
  local p = tonumber(redis.call('GET', KEYS[k]) or '0')
  if p > t then t = p end
end
for step = 1, 256 do
  local nxt = t
  for i = 0, n - 1 do
    local iv = tonumber(ARGV[4 + i * 4]); local eff = tonumber(ARGV[5 + i * 4])
    local cost = tonumber(ARGV[6 + i * 4]); local limit = tonumber(ARGV[7 + i * 4])
    local idx = math.floor(t / iv); local s = idx * iv
    if t < s + guard then
      if s + guard > nxt then nxt = s + guard end
    elseif t > s + iv - guard then
      if s + iv + guard > nxt then nxt = s + iv + guard end
    else
      local used = used_at(KEYS[i + 1], idx)
      if used + cost > eff and (used > 0 or cost > limit) then
        if s + iv + guard > nxt then nxt = s + iv + guard end
      end
    end
  end
  if nxt == t then
    local out = {t}
    for i = 0, n - 1 do
      local base = KEYS[i + 1]; local iv = tonumber(ARGV[4 + i * 4])
      local idx = math.floor(t / iv)
      redis.call('HINCRBY', base, idx .. ':u', tonumber(ARGV[6 + i * 4]))
      redis.call('PEXPIRE', base, ttl(iv))
      sweep(base, math.floor(now / iv))
      out[#out + 1] = used_at(base, idx)
    end
    return out
  end
  t = nxt
end
return {-1}
"""
)

# KEYS: per row its window hash. ARGV: now_ms, then per row: idx, cost, refund, seen header
# value (-1 if none), the current window index, interval_ms.
_SETTLE_LUA: Final = (
    _HELPERS
    + f"""
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local base = KEYS[i]; local o = 2 + (i - 1) * 6
  local idx = tonumber(ARGV[o]); local cost = tonumber(ARGV[o + 1])
  local refund = tonumber(ARGV[o + 2]); local seen = tonumber(ARGV[o + 3])
  local cur = tonumber(ARGV[o + 4]); local iv = tonumber(ARGV[o + 5])
  local f = idx .. ':'
  local u = redis.call('HINCRBY', base, f .. 'u', 0 - refund)
  local c = redis.call('HINCRBY', base, f .. 'c', cost - refund)
  if cur == idx + 1 then redis.call('HINCRBY', base, cur .. ':l', cost - refund) end
  if seen >= 0 then
    local b = (idx - 1) .. ':'
    local h = redis.call('HMGET', base, f .. 'eh', f .. 'el', f .. 'l', b .. 'u', b .. 'c',
      'r:i', 'r:p', 'r:x')
    local eh = tonumber(h[1]) or 0; local el = tonumber(h[2]) or 0
    local ours = u + (tonumber(h[3]) or 0)
    local open = (tonumber(h[4]) or 0) - (tonumber(h[5]) or 0)
    if open > 0 then ours = ours + open end
    if seen - c > eh then redis.call('HSET', base, f .. 'eh', seen - c) end
    if seen - ours > el then el = seen - ours; redis.call('HSET', base, f .. 'el', el) end
    local ri = -1; local prev = tonumber(h[7]) or 0
    if (tonumber(h[8]) or 0) > now then ri = tonumber(h[6]) or -1 end
    if idx > ri then
      prev = 0
      if ri == idx - 1 then prev = tonumber(redis.call('HGET', base, ri .. ':el') or '0') end
      redis.call('HSET', base, 'r:i', idx, 'r:p', prev)
      ri = idx
    end
    if idx == ri then
      redis.call('HSET', base, 'r:e', math.max(prev, el), 'r:x', now + {_RECENT_MS})
    end
  end
  redis.call('PEXPIRE', base, ttl(iv))
  sweep(base, cur)
end
return 1
"""
)
