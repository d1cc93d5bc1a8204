"""The weight-based rate limiter: no request leaves unless every pool it counts against
(REQUEST_WEIGHT and RAW_REQUESTS per IP, ORDERS per account) admits it in Binance's current
fixed, clock-aligned window.

How it works: a call *books* its cost into the earliest window that has room in every pool
(a ledger of windows, not a token bucket), then sleeps once until that window opens. Answers
reconcile the ledger with ``X-MBX-USED-WEIGHT-*`` / ``X-MBX-ORDER-COUNT-*``: what the server
counted beyond our own bookings is somebody else's spend on the same IP, held back in this
window and assumed again for the next one. A 429 or 418 pauses the pool; nothing of it leaves
until the pause ends. Each window admits only inside ``[start + guard, end - guard]`` so that
a request never lands in the server's neighbouring window.

With Redis the ledger lives in Redis and one Lua script books atomically, so every process
behind one IP shares one budget; without it the same algorithm runs in process.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from redis.exceptions import RedisError

from utils.binance.binance_exceptions import BinanceIPBannedError, BinanceRateLimitError
from utils.binance.binance_types import (
    BinanceEvent,
    Endpoint,
    Market,
    Params,
    PoolKind,
    RateWindow,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from redis.asyncio import Redis

__all__ = ("LimiterConfig", "Ticket", "WeightLimiter")

_MAX_STEPS: Final = 256
_REDIS_ERRORS: Final = (RedisError, OSError, TimeoutError)
_REDIS_TIMEOUT_S: Final = 1.0  # a Redis that does not answer in this time is "down"
_THRESHOLDS: Final = (0.8, 0.95)


@dataclass(frozen=True, slots=True, kw_only=True)
class LimiterConfig:
    margin: float = 0.05
    guard_s: float = 0.05
    max_pause_wait_s: float = 30.0
    redis_retry_s: float = 5.0  # how long to limit in process before trying Redis again


@dataclass(slots=True)
class _Slot:
    used: int = 0
    completed: int = 0
    ext_hi: int = 0
    ext_lo: int = 0


@dataclass(slots=True, eq=False)
class _Window:
    """A pool window and its ledger of slots, one per window index."""

    spec: RateWindow
    effective: int
    slots: dict[int, _Slot] = field(default_factory=dict)
    recent_idx: int = -1
    recent_ext: int = 0  # the neighbours' spend assumed for windows not yet observed
    previous_ext: int = 0  # what they spent in the window before the latest observed one
    alerted: dict[float, int] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        return f"{self.spec.market}:{'acct' if self.spec.per_account else 'ip'}"

    @property
    def key(self) -> str:
        return f"{self.spec.market}:{self.spec.kind}:{self.spec.interval_s}"


@dataclass(slots=True)
class Ticket:
    """A booking: what was charged where, and the window it was booked in."""

    endpoint: Endpoint
    charges: tuple[tuple[_Window, int, int], ...]  # (window, index, cost)
    at: float
    local: bool = True  # booked in the in-process ledger (no Redis, or Redis was down)


class WeightLimiter:
    """Books every request's cost before it is sent; see the module docstring."""

    def __init__(
        self,
        config: LimiterConfig,
        *,
        emit: Callable[[BinanceEvent], None],
        clock: Callable[[], float] = time.time,
        redis: Redis | None = None,
        key_prefix: str = "tgbot",
        account: str = "default",
        windows: Mapping[Market, Sequence[RateWindow]] | None = None,
    ) -> None:
        self._config = config
        self._emit = emit
        self._clock = clock
        self._redis = redis
        self._prefix = f"{key_prefix}:rl"
        self._account = account
        self._windows: dict[Market, tuple[_Window, ...]] = {}
        self._paused: dict[str, float] = {}
        self._pause_epoch = 0
        self._script: Any = None
        self._plans: dict[str, tuple[tuple[_Window, int], ...]] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self._redis_retry_at = 0.0
        self._redis_down = False
        for market, specs in (windows or {}).items():
            self.set_windows(market, specs)

    # --- configuration --------------------------------------------------------------
    def set_windows(self, market: Market, specs: Sequence[RateWindow]) -> None:
        """Install a market's pools (from ``exchangeInfo.rateLimits`` or the defaults)."""
        margin = self._config.margin
        self._windows[market] = tuple(
            _Window(spec, max(1, math.floor(spec.limit * (1 - margin)))) for spec in specs
        )
        self._plans.clear()

    async def adopt(self, endpoint: Endpoint, params: Params, headers: Mapping[str, str]) -> None:
        """Charge an already answered call (the one that brought the limits) to the pools
        just installed, so its weight is not mistaken for another process's spend."""
        now = self._clock()
        weight = endpoint.weight.cost(params)
        charges = []
        for w, kind in self._plans.get(endpoint.key) or self._plan(endpoint):
            cost = weight if kind == 0 else kind
            if cost:
                charges.append((w, int(now // w.spec.interval_s), cost))
        local = True
        if self._redis is not None and self._shared():
            try:
                async with asyncio.timeout(_REDIS_TIMEOUT_S):
                    pipe = self._redis.pipeline(transaction=False)
                    for w, idx, cost in charges:
                        _ = pipe.hincrby(self._rkey(w, idx), "u", cost)
                    await pipe.execute()
                local = False
            except _REDIS_ERRORS as e:
                self._redis_failed(e)
        if local:
            for w, idx, cost in charges:
                _slot(w, idx).used += cost
        await self.settle(Ticket(endpoint, tuple(charges), now, local), headers, succeeded=True)

    def windows(self, market: Market) -> tuple[RateWindow, ...]:
        return tuple(w.spec for w in self._windows.get(market, ()))

    def usage(self) -> list[dict[str, Any]]:
        """Per window: the current in-process view of used weight against the limit."""
        now = self._clock()
        rows = []
        for windows in self._windows.values():
            for w in windows:
                slot = w.slots.get(int(now // w.spec.interval_s))
                used = slot.used + max(slot.ext_hi, w.recent_ext) if slot else 0
                rows.append({"pool": w.spec.name, "used": used, "limit": w.spec.limit})
        return rows

    # --- the request path -------------------------------------------------------------
    async def acquire(self, endpoint: Endpoint, params: Params) -> Ticket:
        """Book the call's cost in every pool and wait until its window opens."""
        plan = self._plans.get(endpoint.key) or self._plan(endpoint)
        weight = endpoint.weight.cost(params)
        costs = tuple(
            (w, weight if kind == 0 else kind)
            for w, kind in plan
            if (weight if kind == 0 else kind)
        )
        while True:
            now = self._clock()
            self._check_pause(endpoint, costs, now)
            epoch = self._pause_epoch
            booked = await self._book_shared(costs, now) if self._shared() else None
            local = booked is None
            at, charges = self._book_local(costs, now) if booked is None else booked
            delay = at - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
                if not local:
                    await self._load_pauses(costs)
                if self._pause_epoch != epoch and self._blocked_until(costs) > at:
                    await self._unbook(charges, local=local)
                    continue
            if self._stale(charges):  # the loop ran late: the booked window is closing
                await self._unbook(charges, local=local)
                continue
            return Ticket(endpoint, charges, at, local)

    def _stale(self, charges: Sequence[tuple[_Window, int, int]]) -> bool:
        now, guard = self._clock(), self._config.guard_s
        return any(now > (idx + 1) * w.spec.interval_s - guard for w, idx, _ in charges)

    async def settle(
        self, ticket: Ticket, headers: Mapping[str, str] | None, *, succeeded: bool
    ) -> None:
        """Record the answer: refund zero-weight successes, reconcile with the server's count."""
        endpoint = ticket.endpoint
        now_idx_time = self._clock()
        refund_to = endpoint.weight_on_success if succeeded else None
        rows: list[tuple[_Window, int, int, int, int]] = []
        for w, idx, cost in ticket.charges:
            refund = 0
            if refund_to is not None and w.spec.kind is PoolKind.REQUEST_WEIGHT:
                refund = max(0, cost - refund_to)
            seen = -1
            if headers is not None and w.spec.header and not endpoint.ignore_weight_header:
                raw = headers.get(w.spec.header)
                if raw is not None and int(now_idx_time // w.spec.interval_s) == idx:
                    seen = int(raw)
            rows.append((w, idx, cost, refund, seen))
        if ticket.local:
            for w, idx, cost, refund, seen in rows:
                _settle_slot(w, idx, cost, refund, seen)
            return
        try:
            async with asyncio.timeout(_REDIS_TIMEOUT_S):
                await self._settle_redis(rows)
        except _REDIS_ERRORS as e:
            self._redis_failed(e)

    async def pause(
        self, market: Market, *, seconds: float, banned: bool, orders: bool, endpoint: str
    ) -> None:
        """A 429 (or, with ``banned``, a 418) arrived: stop the pool until it is over."""
        scope = f"{market}:{'acct' if orders and not banned else 'ip'}"
        until = self._clock() + seconds
        self._set_pause(scope, until)
        if banned:
            self._set_pause(f"{market}:acct", until)
            self._paused[f"{market}:banned"] = until
        redis = self._redis if self._shared() else None
        if redis is not None:  # other processes behind this IP must stop too
            ms = max(1, int(seconds * 1000))
            try:
                async with asyncio.timeout(_REDIS_TIMEOUT_S):
                    for paused in (scope, f"{market}:acct") if banned else (scope,):
                        key = f"{self._prefix}:pause:{paused}"
                        await redis.set(key, int(until * 1000), px=ms)
            except _REDIS_ERRORS as e:
                self._redis_failed(e)
        kind = "ratelimit.418" if banned else "ratelimit.429"
        what = "IP banned by Binance" if banned else "rate limit hit (429)"
        self._emit(
            BinanceEvent(
                kind,
                market,
                f"{market}: {what} on {endpoint}; pool paused for {seconds:.0f} s",
                {"retry_after_s": seconds, "endpoint": endpoint, "scope": scope},
            )
        )
        loop = asyncio.get_running_loop()
        self._timers = [t for t in self._timers if not t.cancelled()]
        self._timers.append(loop.call_later(seconds, self._resumed, scope, until, market))

    def close(self) -> None:
        """Forget pending "pause over" notifications."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # --- internals: planning and pauses ---------------------------------------------
    def _plan(self, endpoint: Endpoint) -> tuple[tuple[_Window, int], ...]:
        """Which windows a call of this endpoint counts against; 0 means "its weight"."""
        plan: list[tuple[_Window, int]] = []
        for w in self._windows.get(endpoint.market, ()):
            if w.spec.kind is PoolKind.REQUEST_WEIGHT:
                plan.append((w, 0))
            elif w.spec.kind is PoolKind.RAW_REQUESTS:
                plan.append((w, 1))
            elif w.spec.kind is PoolKind.ORDERS and endpoint.orders:
                plan.append((w, endpoint.orders))
        self._plans[endpoint.key] = result = tuple(plan)
        return result

    def _blocked_until(self, costs: Sequence[tuple[_Window, int]]) -> float:
        return max((self._paused.get(w.scope, 0.0) for w, _ in costs), default=0.0)

    def _check_pause(
        self, endpoint: Endpoint, costs: Sequence[tuple[_Window, int]], now: float
    ) -> None:
        wait = self._blocked_until(costs) - now
        if wait <= self._config.max_pause_wait_s:
            return
        market = endpoint.market
        if self._paused.get(f"{market}:banned", 0.0) > now:
            raise BinanceIPBannedError(
                -1003, "IP banned", endpoint=endpoint.key, retry_after_s=wait
            )
        raise BinanceRateLimitError(
            -1003,
            f"{market} rate limit pool is paused after a 429",
            endpoint=endpoint.key,
            retry_after_s=wait,
        )

    def _set_pause(self, scope: str, until: float) -> None:
        if until > self._paused.get(scope, 0.0):
            self._paused[scope] = until
            self._pause_epoch += 1

    def _resumed(self, scope: str, until: float, market: Market) -> None:
        if self._paused.get(scope) == until:
            self._emit(
                BinanceEvent(
                    "ratelimit.resumed",
                    market,
                    f"{market}: rate limit pause over",
                    {"scope": scope},
                )
            )

    async def _load_pauses(self, costs: Sequence[tuple[_Window, int]]) -> None:
        assert self._redis is not None  # noqa: S101 - only called in Redis mode
        scopes = sorted({w.scope for w, _ in costs})
        try:
            async with asyncio.timeout(_REDIS_TIMEOUT_S):
                values = await self._redis.mget([f"{self._prefix}:pause:{s}" for s in scopes])
        except _REDIS_ERRORS as e:
            self._redis_failed(e)
            return
        for scope, value in zip(scopes, values, strict=True):
            if value is not None:
                self._set_pause(scope, int(value) / 1000)

    # --- internals: the in-process ledger ---------------------------------------------
    def _book_local(
        self, costs: Sequence[tuple[_Window, int]], now: float
    ) -> tuple[float, tuple[tuple[_Window, int, int], ...]]:
        guard = self._config.guard_s
        t = max(now, self._blocked_until(costs))
        for _ in range(_MAX_STEPS):
            nxt = t
            for w, cost in costs:
                interval = w.spec.interval_s
                idx = int(t // interval)
                start = idx * interval
                if t < start + guard:
                    nxt = max(nxt, start + guard)
                    continue
                if t > start + interval - guard:
                    nxt = max(nxt, start + interval + guard)
                    continue
                slot = w.slots.get(idx)
                ext = max(slot.ext_hi, w.recent_ext) if slot else w.recent_ext
                used = (slot.used if slot else 0) + ext
                if used + cost > w.effective and (used > 0 or cost > w.spec.limit):
                    nxt = max(nxt, start + interval + guard)
            if nxt == t:
                charges = tuple(self._charge(w, int(t // w.spec.interval_s), c) for w, c in costs)
                return t, charges
            t = nxt
        raise BinanceRateLimitError(
            -1003, "no window can admit this request", endpoint="limiter", retry_after_s=t - now
        )

    def _charge(self, w: _Window, idx: int, cost: int) -> tuple[_Window, int, int]:
        slot = w.slots.get(idx)
        if slot is None:
            slot = w.slots[idx] = _Slot()
            current = int(self._clock() // w.spec.interval_s)
            for old in [i for i in w.slots if i < current - 2]:
                del w.slots[old]
        slot.used += cost
        if w.spec.kind is PoolKind.REQUEST_WEIGHT:
            self._alert(w, idx, slot.used + max(slot.ext_hi, w.recent_ext))
        return w, idx, cost

    def _alert(self, w: _Window, idx: int, used: int) -> None:
        for threshold in _THRESHOLDS:
            if used >= threshold * w.spec.limit and w.alerted.get(threshold) != idx:
                w.alerted[threshold] = idx
                self._emit(
                    BinanceEvent(
                        "ratelimit.threshold",
                        w.spec.market,
                        f"{w.spec.name}: {used}/{w.spec.limit} used "
                        f"({used / w.spec.limit:.0%}, above {threshold:.0%})",
                        {
                            "pool": w.spec.name,
                            "used": used,
                            "limit": w.spec.limit,
                            "threshold": threshold,
                        },
                    )
                )

    async def _unbook(self, charges: Sequence[tuple[_Window, int, int]], *, local: bool) -> None:
        if local or self._redis is None:
            for w, idx, cost in charges:
                slot = w.slots.get(idx)
                if slot is not None:
                    slot.used -= cost
            return
        try:
            async with asyncio.timeout(_REDIS_TIMEOUT_S):
                pipe = self._redis.pipeline(transaction=False)
                for w, idx, cost in charges:
                    _ = pipe.hincrby(self._rkey(w, idx), "u", -cost)
                await pipe.execute()
        except _REDIS_ERRORS as e:
            self._redis_failed(e)

    # --- internals: the Redis ledger ------------------------------------------------------
    def _shared(self) -> bool:
        """Use Redis now? Not without one, nor for a while after it failed."""
        return self._redis is not None and time.monotonic() >= self._redis_retry_at

    async def _book_shared(
        self, costs: Sequence[tuple[_Window, int]], now: float
    ) -> tuple[float, tuple[tuple[_Window, int, int], ...]] | None:
        """Book through Redis; None when Redis failed (the caller books in process)."""
        try:
            async with asyncio.timeout(_REDIS_TIMEOUT_S):
                booked = await self._book_redis(costs, now)
        except _REDIS_ERRORS as e:
            self._redis_failed(e)
            return None
        if self._redis_down:
            self._redis_down = False
            self._emit(
                BinanceEvent(
                    "ratelimit.redis_up", None, "Redis is back: the weight budget is shared again"
                )
            )
        return booked

    def _redis_failed(self, error: BaseException) -> None:
        self._redis_retry_at = time.monotonic() + self._config.redis_retry_s
        if not self._redis_down:
            self._redis_down = True
            self._emit(
                BinanceEvent(
                    "ratelimit.redis_down",
                    None,
                    f"Redis is unreachable ({type(error).__name__}): each process limits itself "
                    "from Binance's weight headers; retrying Redis every "
                    f"{self._config.redis_retry_s:.0f} s",
                    {"error": type(error).__name__},
                )
            )

    def _rkey(self, w: _Window, idx: int | str) -> str:
        scope = f"acct:{self._account}" if w.spec.per_account else "ip"
        return f"{self._prefix}:{w.spec.market}:{scope}:{w.spec.kind}:{w.spec.interval_s}:{idx}"

    async def _book_redis(
        self, costs: Sequence[tuple[_Window, int]], now: float
    ) -> tuple[float, tuple[tuple[_Window, int, int], ...]]:
        assert self._redis is not None  # noqa: S101 - only called in Redis mode
        if self._script is None:
            self._script = self._redis.register_script(_BOOK_LUA)
        args: list[Any] = [int(now * 1000), int(self._config.guard_s * 1000), len(costs)]
        for w, cost in costs:
            args += [self._rkey(w, "").rstrip(":"), w.spec.interval_s * 1000, w.effective, cost]
            args += [w.spec.limit, f"{self._prefix}:pause:{w.scope}"]
        reply = await self._script(keys=[], args=args)
        at_ms, used = int(reply[0]), reply[1:]
        if at_ms < 0:
            raise BinanceRateLimitError(
                -1003, "no window can admit this request", endpoint="limiter", retry_after_s=0
            )
        at = at_ms / 1000
        charges = []
        for (w, cost), pool_used in zip(costs, used, strict=True):
            idx = int(at_ms // (w.spec.interval_s * 1000))
            charges.append((w, idx, cost))
            if w.spec.kind is PoolKind.REQUEST_WEIGHT:
                self._alert(w, idx, int(pool_used))
        return at, tuple(charges)

    async def _settle_redis(self, rows: Sequence[tuple[_Window, int, int, int, int]]) -> None:
        assert self._redis is not None  # noqa: S101 - only called in Redis mode
        script = self._redis.register_script(_SETTLE_LUA)
        args: list[Any] = [len(rows)]
        for w, idx, cost, refund, seen in rows:
            args += [self._rkey(w, "").rstrip(":"), idx, cost, refund, seen]
        await script(keys=[], args=args)


def _slot(w: _Window, idx: int) -> _Slot:
    slot = w.slots.get(idx)
    if slot is None:
        slot = w.slots[idx] = _Slot()
    return slot


def _settle_slot(w: _Window, idx: int, cost: int, refund: int, seen: int) -> None:
    slot = _slot(w, idx)
    slot.used -= refund
    slot.completed += cost - refund
    if seen >= 0:
        slot.ext_hi = max(slot.ext_hi, seen - slot.completed)
        slot.ext_lo = max(slot.ext_lo, seen - slot.used)
        if idx > w.recent_idx:  # a new window: remember how the previous one ended
            last = w.slots.get(w.recent_idx) if w.recent_idx == idx - 1 else None
            w.previous_ext = last.ext_lo if last is not None else 0
            w.recent_idx = idx
        if idx == w.recent_idx:  # early in a window the lower bound is still low
            w.recent_ext = max(w.previous_ext, slot.ext_lo)


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

# ARGV: n, then per window: base key, idx, cost, refund, seen header value (-1 if none).
_SETTLE_LUA: Final = """
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local base = ARGV[2 + i * 5]; local idx = tonumber(ARGV[3 + i * 5])
  local cost = tonumber(ARGV[4 + i * 5]); local refund = tonumber(ARGV[5 + i * 5])
  local seen = tonumber(ARGV[6 + i * 5])
  local key = base .. ':' .. idx
  local u = redis.call('HINCRBY', key, 'u', 0 - refund)
  local c = redis.call('HINCRBY', key, 'c', cost - refund)
  if seen >= 0 then
    local eh = tonumber(redis.call('HGET', key, 'eh') or '0')
    local el = tonumber(redis.call('HGET', key, 'el') or '0')
    if seen - c > eh then redis.call('HSET', key, 'eh', seen - c) end
    if seen - u > el then el = seen - u; redis.call('HSET', key, 'el', el) end
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
