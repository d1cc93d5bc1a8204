"""The weight-based rate limiter: no request leaves unless every pool it counts against
(REQUEST_WEIGHT and RAW_REQUESTS per IP, ORDERS per account) admits it in Binance's current
fixed, clock-aligned window. Orders are booked per ORDERS window as Binance counts them
(``Endpoint.order_count``: a futures batch is 5 on the 10 s window and 1 on the minute).

How it works: a call *books* its cost into the earliest window that has room in every pool
(a ledger of windows, not a token bucket), then sleeps once until that window opens. Answers
reconcile the ledger with ``X-MBX-USED-WEIGHT-*`` / ``X-MBX-ORDER-COUNT-*``: what the server
counted beyond our own bookings is somebody else's spend on the same IP, held back in this
window and assumed again for the next one. A 429 or 418 pauses the pool; nothing of it leaves
until the pause ends. Each window admits only inside ``[start + guard, end - guard]`` so that
a request rarely lands in the server's neighbouring window.

Rarely is not never: a request booked in one window that a starved loop or a slow network
delivers after the boundary is counted by Binance in the next. The limiter knows what it
sent: the requests booked in the previous window and still unanswered when a window opened
(answered since, or not yet) may be in its count, so they are ours there, not a neighbour's.
They still hold back bookings in that window (Binance counted them there), but they are not
assumed for the windows ahead, nor do they bring the full margin back.

With Redis the ledger lives in Redis (``binance_ratelimit_redis``: one Lua script books
atomically, on a single Redis or a Redis Cluster), so every process behind one IP shares one
budget; without it, or while Redis is away, the same algorithm runs in process. ``egress``
(``BINANCE_EGRESS_ID``) names the public IP a process sends from: processes with one id share
the IP pools and their pauses, processes with different ids (machines with their own IPs) each
have the full budget; the account's ORDERS windows and a -1015 pause are shared by all.

``RequestCap`` is the optional, self-imposed cap of the seed's settings
(``MAX_REQUESTS_PER_SECOND``, ``LIMITER_RATE``/``LIMITER_PERIOD``, ``MIN_REQUEST_INTERVAL``): a
count of requests per sliding window, per process, on top of the weight limiter. Binance's
limits never need it; it is for staying deliberately below them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

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
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from utils.binance.binance_ratelimit_redis import RedisLedger
    from utils.redis_conn import RedisClient

__all__ = ("LimiterConfig", "RequestCap", "Ticket", "WeightLimiter")

_MAX_STEPS: Final = 256
_THRESHOLDS: Final = (0.8, 0.95)


@dataclass(frozen=True, slots=True, kw_only=True)
class LimiterConfig:
    margin: float = 0.05
    # The margin while Binance's own count has shown no spend but ours (one process alone on
    # its IP): the reserve against unseen spend shrinks to this, and grows back at once when
    # the weight headers show someone else.
    quiet_margin: float = 0.01
    guard_s: float = 0.05
    max_pause_wait_s: float = 30.0
    redis_retry_s: float = 5.0  # how long to limit in process before trying Redis again
    threshold_events: bool = True  # ENABLE_RATE_LIMIT_CHECKS: 80 %/95 % events on or off


@dataclass(slots=True)
class _Slot:
    used: int = 0  # booked here, less refunds; ``used - completed`` is still unanswered
    completed: int = 0
    ext_hi: int = 0  # the server's count beyond our answered bookings: holds this window back
    ext_lo: int = 0  # beyond all ours it may hold: a neighbour's spend, assumed for the next
    late: int = 0  # ours booked in the window before, answered after this one opened


@dataclass(slots=True, eq=False)
class _Window:
    """A pool window and its ledger of slots, one per window index."""

    spec: RateWindow
    effective: int  # what may be booked in a window now: ``strict`` or ``relaxed``
    relaxed: int = 0  # with the quiet margin: nobody else seen in this window or the last
    slots: dict[int, _Slot] = field(default_factory=dict)
    recent_idx: int = -1
    recent_ext: int = 0  # the neighbours' spend assumed for windows not yet observed
    previous_ext: int = 0  # what they spent in the window before the latest observed one
    alerted: dict[float, int] = field(default_factory=dict)
    # Derived once: read on every request.
    scope: str = ""
    interval: int = 0
    header: str = ""
    first_alert: float = 0.0
    strict: int = 0

    def __post_init__(self) -> None:
        spec = self.spec
        self.strict = self.effective
        self.relaxed = self.relaxed or self.effective
        self.scope = f"{spec.market}:{'acct' if spec.per_account else 'ip'}"
        self.interval = spec.interval_s
        self.header = spec.header
        self.first_alert = (
            min(_THRESHOLDS) * spec.limit if spec.kind is PoolKind.REQUEST_WEIGHT else math.inf
        )


@dataclass(slots=True)
class Ticket:
    """A booking: what was charged where, and the window it was booked in."""

    endpoint: Endpoint
    charges: tuple[tuple[_Window, int, int], ...]  # (window, index, cost)
    at: float
    local: bool = True  # booked in the in-process ledger (no Redis, or Redis was down)


class RequestCap:
    """At most ``count`` requests in any ``period_s`` seconds, for each ``(count, period_s)``
    window given. Requests leave in the order they ask; each books its turn and sleeps once
    until it comes (a cancelled waiter's turn stays booked: the cap errs on the slow side).
    """

    def __init__(
        self,
        windows: Sequence[tuple[int, float]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not windows or any(count < 1 or period <= 0 for count, period in windows):
            raise ValueError(f"a cap needs windows of at least 1 request per > 0 s: {windows}")
        # Only the latest ``count`` turns of a window matter, so each keeps just those.
        self._windows = tuple((period, deque[float](maxlen=count)) for count, period in windows)
        self._clock = clock
        self._last = -math.inf

    def reserve(self) -> float:
        """Book the next turn; the seconds until it (0.0 when it is now)."""
        now = self._clock()
        at = max(now, self._last)
        for period, turns in self._windows:
            if len(turns) == turns.maxlen:
                at = max(at, turns[0] + period)
        for _, turns in self._windows:
            turns.append(at)
        self._last = at
        return at - now

    async def wait(self) -> None:
        """Book a turn and sleep until it comes."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


class WeightLimiter:
    """Books every request's cost before it is sent; see the module docstring.

    ``LimiterConfig.threshold_events`` (on by default; ``ENABLE_RATE_LIMIT_CHECKS``)
    publishes a ``ratelimit.threshold`` event when a weight pool passes 80 % and 95 %.
    """

    def __init__(
        self,
        config: LimiterConfig,
        *,
        emit: Callable[[BinanceEvent], None],
        clock: Callable[[], float] = time.time,
        redis: RedisClient | None = None,
        key_prefix: str = "tgbot",
        account: str = "default",
        egress: str = "default",
        windows: Mapping[Market, Sequence[RateWindow]] | None = None,
    ) -> None:
        self._config = config
        self._emit = emit
        self._clock = clock
        self.threshold_events = config.threshold_events
        self._ledger: RedisLedger | None = None
        self._redis_errors: tuple[type[BaseException], ...] = ()  # catches nothing
        if redis is not None:  # imported only when Redis is used: it costs ~80 ms otherwise
            from utils.binance.binance_ratelimit_redis import (  # noqa: PLC0415
                REDIS_ERRORS,
                RedisLedger,
                ledger_root,
            )

            root = ledger_root(key_prefix)
            self._ledger = RedisLedger(redis, root=root, account=account, egress=egress)
            self._redis_errors = REDIS_ERRORS
        self._windows: dict[Market, tuple[_Window, ...]] = {}
        self._named: dict[str, _Window] = {}  # endpoints' own pools, by label
        self._paused: dict[str, float] = {}
        self._pause_epoch = 0
        self._plans: dict[str, tuple[tuple[_Window, int], ...]] = {}
        self._cost_cache: dict[tuple[str, int], tuple[tuple[_Window, int], ...]] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self._redis_retry_at = 0.0
        self._redis_down = False
        for market, specs in (windows or {}).items():
            self.set_windows(market, specs)

    # --- configuration --------------------------------------------------------------
    def set_windows(self, market: Market, specs: Sequence[RateWindow]) -> None:
        """Install a market's pools (from ``exchangeInfo.rateLimits`` or the defaults)."""
        self._windows[market] = tuple(self._window(spec) for spec in specs)
        self._plans.clear()
        self._cost_cache.clear()

    async def load_shared_windows(self, market: Market) -> bool:
        """Install the pools another process sharing this Redis learned for ``market``, so
        that this process's own first call (the ``exchangeInfo`` that teaches it the limits)
        is booked in the windows everyone uses. False when there are none (or no Redis)."""
        if self._ledger is None or not self._shared():
            return False
        try:
            rows = await self._ledger.learned_windows(str(market))
        except self._redis_errors as e:
            self._redis_failed(e)
            return False
        if not rows:
            return False
        self.set_windows(
            market,
            [
                RateWindow(market, PoolKind(kind), iv, limit, acct)
                for kind, iv, limit, acct in rows
            ],
        )
        return True

    async def share_windows(self, market: Market) -> None:
        """Publish the pools this process learned for ``market`` to the others (Redis)."""
        if self._ledger is None or not self._shared():
            return
        specs = [w.spec for w in self._windows.get(market, ())]
        try:
            await self._ledger.learn_windows(specs)
        except self._redis_errors as e:
            self._redis_failed(e)

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
        if self._ledger is not None and self._shared():
            try:
                await self._ledger.add((w.spec, idx, cost) for w, idx, cost in charges)
                local = False
            except self._redis_errors as e:
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
        for windows in (*self._windows.values(), tuple(self._named.values())):
            for w in windows:
                slot = w.slots.get(int(now // w.spec.interval_s))
                used = slot.used + max(slot.ext_hi, w.recent_ext) if slot else 0
                rows.append({"pool": w.spec.name, "used": used, "limit": w.spec.limit})
        return rows

    # --- the request path -------------------------------------------------------------
    def acquire_now(self, endpoint: Endpoint, params: Params) -> Ticket | None:
        """The common case without an await: in-process ledger, nothing paused, and room in
        the current window. None means "use ``acquire``" (which may wait)."""
        if self._paused or (self._ledger is not None and self._shared()):
            return None
        now = self._clock()
        costs = self._costs(endpoint, params)
        guard = self._config.guard_s
        # _book_local's first step, unrolled: the hot path of every call
        for w, cost in costs:
            interval = w.interval
            idx = int(now // interval)
            start = idx * interval
            if now < start + guard or now > start + interval - guard:
                return None  # at a window's edge: acquire() books the next one and waits
            slot = w.slots.get(idx)
            recent = w.recent_ext
            if slot is None:
                used = recent
            else:
                used = slot.used + (slot.ext_hi if slot.ext_hi > recent else recent)
            if used + cost > w.effective and (used > 0 or cost > w.spec.limit):
                return None
        return Ticket(
            endpoint, tuple([self._charge(w, int(now // w.interval), c) for w, c in costs]), now
        )

    async def acquire(self, endpoint: Endpoint, params: Params) -> Ticket:
        """Book the call's cost in every pool and wait until its window opens."""
        costs = self._costs(endpoint, params)
        while True:
            now = self._clock()
            if self._paused:
                self._check_pause(endpoint, costs, now)
            epoch = self._pause_epoch
            booked = await self._book_shared(costs, now) if self._shared() else None
            local = booked is None
            at, charges = self._book_local(costs, now) if booked is None else booked
            if at > now:
                await asyncio.sleep(at - self._clock())
                if not local:
                    await self._load_pauses(costs)
                if self._pause_epoch != epoch and self._blocked_until(costs) > at:
                    await self._unbook(charges, local=local)
                    continue
                if self._stale(charges):  # the loop woke late: the window is closing
                    await self._unbook(charges, local=local)
                    continue
            return Ticket(endpoint, charges, at, local)

    def _costs(self, endpoint: Endpoint, params: Params) -> tuple[tuple[_Window, int], ...]:
        """(window, cost) for every pool the call counts against; cached per weight."""
        weight = endpoint.weight.cost(params)
        costs = self._cost_cache.get((endpoint.key, weight))
        if costs is None:
            plan = self._plans.get(endpoint.key) or self._plan(endpoint)
            pairs = [(w, weight if kind == 0 else kind) for w, kind in plan]
            costs = tuple((w, cost) for w, cost in pairs if cost)
            self._cost_cache[endpoint.key, weight] = costs
        return costs

    def _stale(self, charges: Sequence[tuple[_Window, int, int]]) -> bool:
        now, guard = self._clock(), self._config.guard_s
        return any(now > (idx + 1) * w.interval - guard for w, idx, _ in charges)

    def settle_now(
        self, ticket: Ticket, headers: Mapping[str, str] | None, *, succeeded: bool
    ) -> bool:
        """Settle an in-process booking without an await; False means "use ``settle``"."""
        if not ticket.local:
            return False
        self._settle_rows(ticket, headers, succeeded=succeeded)
        return True

    async def settle(
        self, ticket: Ticket, headers: Mapping[str, str] | None, *, succeeded: bool
    ) -> None:
        """Record the answer: refund zero-weight successes, reconcile with the server's count."""
        rows = self._settle_rows(ticket, headers, succeeded=succeeded)
        if rows and self._ledger is not None:
            try:
                await self._ledger.settle(rows, self._clock())
            except self._redis_errors as e:
                self._redis_failed(e)

    def _settle_rows(
        self, ticket: Ticket, headers: Mapping[str, str] | None, *, succeeded: bool
    ) -> list[tuple[RateWindow, int, int, int, int, int]]:
        """Settle in process, or return the rows the Redis ledger must settle."""
        endpoint = ticket.endpoint
        now = self._clock()
        refund_to = endpoint.weight_on_success if succeeded else None
        read = headers if not endpoint.ignore_weight_header else None
        local = ticket.local
        rows: list[tuple[RateWindow, int, int, int, int, int]] = []
        for w, idx, cost in ticket.charges:
            refund = 0
            if refund_to is not None and w.spec.kind is PoolKind.REQUEST_WEIGHT:
                refund = max(0, cost - refund_to)
            current = int(now // w.interval)
            seen = -1
            if read is not None and w.header and current == idx:
                raw = read.get(w.header)
                if raw is not None:
                    seen = int(raw)
            if local:
                _settle_slot(w, idx, cost, refund, seen, current)
            else:
                rows.append((w.spec, idx, cost, refund, seen, current))
        return rows

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
        if self._ledger is not None and self._shared():  # other processes must stop too
            # A ban is this IP's: its orders stop, not those sent from other egress ids.
            scopes = (scope, f"{market}:banned") if banned else (scope,)
            try:
                await self._ledger.pause(scopes, until, seconds)
            except self._redis_errors as e:
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
            elif w.spec.kind is PoolKind.ORDERS:
                orders = endpoint.order_count(w.spec.interval_s)  # batchOrders: 5 on 10 s
                if orders:
                    plan.append((w, orders))
        if endpoint.pool is not None:  # outside the weight pool, counted per request
            plan.append((self._endpoint_pool(endpoint), 1))
        self._plans[endpoint.key] = result = tuple(plan)
        return result

    def _endpoint_pool(self, endpoint: Endpoint) -> _Window:
        assert endpoint.pool is not None  # noqa: S101 - the caller checked
        label, limit, interval_s = endpoint.pool
        window = self._named.get(label)
        if window is None:
            spec = RateWindow(
                endpoint.market, PoolKind.RAW_REQUESTS, interval_s, limit, label=label
            )
            window = self._named[label] = self._window(spec)
        return window

    def _window(self, spec: RateWindow) -> _Window:
        margin = self._config.margin
        quiet = min(margin, self._config.quiet_margin)
        return _Window(
            spec,
            max(1, math.floor(spec.limit * (1 - margin))),
            relaxed=max(1, math.floor(spec.limit * (1 - quiet))),
        )

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
            for key in (scope, f"{market}:banned", f"{market}:acct"):
                if self._paused.get(key) == until:
                    del self._paused[key]  # keeps the no-pause fast path fast
            self._emit(
                BinanceEvent(
                    "ratelimit.resumed",
                    market,
                    f"{market}: rate limit pause over",
                    {"scope": scope},
                )
            )

    async def _load_pauses(self, costs: Sequence[tuple[_Window, int]]) -> None:
        assert self._ledger is not None  # noqa: S101 - only called in Redis mode
        try:
            pauses = await self._ledger.pauses(sorted({w.scope for w, _ in costs}))
        except self._redis_errors as e:
            self._redis_failed(e)
            return
        for scope, until in pauses.items():
            self._set_pause(scope, until)

    # --- internals: the in-process ledger ---------------------------------------------
    def _book_local(
        self, costs: Sequence[tuple[_Window, int]], now: float
    ) -> tuple[float, tuple[tuple[_Window, int, int], ...]]:
        guard = self._config.guard_s
        t = max(now, self._blocked_until(costs)) if self._paused else now
        for _ in range(_MAX_STEPS):
            nxt = t
            for w, cost in costs:
                interval = w.interval
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
                charges = tuple(self._charge(w, int(t // w.interval), c) for w, c in costs)
                return t, charges
            t = nxt
        raise BinanceRateLimitError(
            -1003, "no window can admit this request", endpoint="limiter", retry_after_s=t - now
        )

    def _charge(self, w: _Window, idx: int, cost: int) -> tuple[_Window, int, int]:
        slot = w.slots.get(idx)
        if slot is None:
            slot = w.slots[idx] = _Slot()
            current = int(self._clock() // w.interval)
            for old in [i for i in w.slots if i < current - 2]:
                del w.slots[old]
        slot.used += cost
        used = slot.used + max(slot.ext_hi, w.recent_ext)
        if used >= w.first_alert:
            self._alert(w, idx, used)
        return w, idx, cost

    def _alert(self, w: _Window, idx: int, used: int) -> None:
        if not self.threshold_events:
            return
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
        if local or self._ledger is None:
            _unbook_local(charges)
            return
        try:
            await self._ledger.add((w.spec, idx, -cost) for w, idx, cost in charges)
        except self._redis_errors as e:
            self._redis_failed(e)

    # --- internals: the Redis ledger ------------------------------------------------------
    def _shared(self) -> bool:
        """Use Redis now? Not without one, nor for a while after it failed."""
        return self._ledger is not None and time.monotonic() >= self._redis_retry_at

    async def _book_shared(
        self, costs: Sequence[tuple[_Window, int]], now: float
    ) -> tuple[float, tuple[tuple[_Window, int, int], ...]] | None:
        """Book through Redis; None when Redis failed (the caller books in process)."""
        assert self._ledger is not None  # noqa: S101 - _shared() said so
        rows = [(w.spec, w.effective, cost, w.scope) for w, cost in costs]
        try:
            reply = await self._ledger.book(rows, now, self._config.guard_s)
        except self._redis_errors as e:
            self._redis_failed(e)
            return None
        if reply is None:
            raise BinanceRateLimitError(
                -1003, "no window can admit this request", endpoint="limiter", retry_after_s=0
            )
        at, used = reply
        charges = []
        for (w, cost), pool_used in zip(costs, used, strict=True):
            idx = int(at // w.interval)
            charges.append((w, idx, cost))
            if pool_used >= w.first_alert:
                self._alert(w, idx, pool_used)
        booked = at, tuple(charges)
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


def _slot(w: _Window, idx: int) -> _Slot:
    slot = w.slots.get(idx)
    if slot is None:
        slot = w.slots[idx] = _Slot()
    return slot


def _unbook_local(charges: Iterable[tuple[_Window, int, int]]) -> None:
    for w, idx, cost in charges:
        slot = w.slots.get(idx)
        if slot is not None:
            slot.used -= cost


def _settle_slot(w: _Window, idx: int, cost: int, refund: int, seen: int, current: int) -> None:
    slot = _slot(w, idx)
    slot.used -= refund
    slot.completed += cost - refund
    if current == idx + 1:  # answered after its window closed: it may be counted in this one
        _slot(w, current).late += cost - refund
    if seen >= 0:
        slot.ext_hi = max(slot.ext_hi, seen - slot.completed)
        # Ours that this count may hold: booked here, and those of the window before that were
        # unanswered when this one opened (answered since, or still on their way).
        ours = slot.used + slot.late
        before = w.slots.get(idx - 1)
        if before is not None and before.used > before.completed:
            ours += before.used - before.completed
        slot.ext_lo = max(slot.ext_lo, seen - ours)
        if idx > w.recent_idx:  # a new window: remember how the previous one ended
            last = w.slots.get(w.recent_idx) if w.recent_idx == idx - 1 else None
            w.previous_ext = last.ext_lo if last is not None else 0
            w.recent_idx = idx
        if idx == w.recent_idx:  # early in a window the lower bound is still low
            w.recent_ext = max(w.previous_ext, slot.ext_lo)
            # Alone on the IP (the server counted nothing but ours, here and in the window
            # before): the quiet margin. Anyone else seen: the full margin again, at once.
            w.effective = w.relaxed if w.recent_ext == 0 else w.strict
