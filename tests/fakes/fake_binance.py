"""A fake Binance REST server (spot ``/api/v3`` and futures ``/fapi``) on 127.0.0.1 for tests
and benchmarks: clock-aligned rate-limit windows with weight headers, 429 then escalating 418
bans, API-key and signature checks, timestamp windows, fault knobs and a request log.

Weights, order counts, pools, required parameters and security come from the fake's own
table (``fake_weights_table``, transcribed from shared/BINANCE.md and shared/specs/), never
from the product's; limits live in ``fake_limits``, key checks in ``fake_signing``, market data
and orders in ``fake_market``/``fake_trading`` (routed by ``fake_routes``). Not a matching
engine.
Run by hand: ``python -m tests.fakes.fake_binance --port 8000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from tests.fakes.fake_accounts import FakeAccounts
from tests.fakes.fake_limits import MarketLimits
from tests.fakes.fake_market import ApiError, Call, FakeMarket, Market
from tests.fakes.fake_routes import build_routes
from tests.fakes.fake_signing import KeyRing, missing_param
from tests.fakes.fake_trading import FakeTrading
from tests.fakes.fake_weights import DEFAULT_WINDOWS, PoolKind, Window, market_of
from tests.fakes.fake_weights_table import OPS
from tests.fakes.local_server import LocalServer

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from decimal import Decimal

    from tests.fakes.fake_weights import Op, WindowSpec

__all__ = ("TEST_API_KEY", "TEST_API_SECRET", "FakeBinance", "RecordedRequest", "main")

#: The HMAC pair of BINANCE.md §7's test vector; the fake knows it unless told other keys.
TEST_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
TEST_API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"

_JSON = "application/json;charset=UTF-8"
_5XX = {
    408: (
        -1007,
        "Timeout waiting for response from backend server. Send status unknown;"
        " execution status unknown.",
    ),
    503: (-1001, "Service Unavailable."),
}
_INTERNAL = (-1001, "Internal error; unable to process your request. Please try again.")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it; ``status`` 0 when it was never answered.

    ``signed`` says the request carried a signature; ``weight`` is what it was charged.
    ``t`` is when it was counted; ``received`` when a held one (``hold_until``) came in.
    """

    t: float
    market: Market
    key: str
    params: dict[str, str]
    status: int
    weight: int
    window: int
    api_key: str | None
    signed: bool
    received: float | None = None


@dataclass(slots=True)
class _Knob:
    kind: str  # fail | reset | hang | accept_then_hang
    left: int
    key: str | None
    status: int = 503


@dataclass(slots=True)
class _Req:
    """What the request path carries from arrival to the record."""

    now: float
    limits: MarketLimits
    key: str
    params: dict[str, str]
    api_key: str | None
    signed: bool
    raw: tuple[bytes, bytes]  # query string and body, as received
    charged: int = 0
    received: float | None = None  # set when the request was held before it was counted


class FakeBinance(LocalServer):
    """The fake exchange; ``async with FakeBinance() as fake:`` serves at ``fake.url``.

    ``spot_windows``/``futures_windows`` replace BINANCE.md §2's pools (shorter windows,
    lower limits): any objects with ``kind``, ``interval_s`` and ``limit``.
    """

    def __init__(
        self,
        *,
        spot_windows: Sequence[WindowSpec] | None = None,
        futures_windows: Sequence[WindowSpec] | None = None,
        api_keys: Mapping[str, str | bytes] | None = None,
        count_rejected_weight: bool = False,
        first_ban_s: float = 120.0,
    ) -> None:
        self.count_rejected_weight, self.first_ban_s = count_rejected_weight, first_ban_s
        self.latency_s = self.clock_skew_s = 0.0
        #: While set, every request is answered with this 5xx status (an outage), no knob needed.
        self.outage_status: int | None = None
        self.background_weight: dict[Market, int] = {Market.SPOT: 0, Market.FUTURES: 0}
        given = {Market.SPOT: spot_windows, Market.FUTURES: futures_windows}
        self._limits = {
            m: MarketLimits(
                m,
                [Window.of(m, w) for w in given[m] or DEFAULT_WINDOWS[m]],
                partial(self._background, m),
            )
            for m in Market
        }
        self._keys = KeyRing({TEST_API_KEY: TEST_API_SECRET} if api_keys is None else api_keys)
        self.market = FakeMarket(clock=self.now)  # candles follow the fake's clock
        self.accounts = FakeAccounts(self.market)
        self.trading = FakeTrading(self.market, self.accounts.move_position)
        self._routes = build_routes(
            self.market, self.trading, self.accounts, lambda m: self._limits[m].windows
        )
        self.requests: list[RecordedRequest] = []
        self.orders: list[dict[str, Any]] = self.trading.placed
        self._counts: Counter[str] = Counter()
        self._waiters: list[tuple[int, str | None, asyncio.Future[None]]] = []
        self._knobs: list[_Knob] = []
        self._holds: list[tuple[str | None, float]] = []
        #: Set when a request arrives and starts waiting out a ``hold_until``.
        self.hold_reached = asyncio.Event()
        self._closed = asyncio.Event()
        self.url = ""

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._closed.clear()
        self.url = await self._serve(app, host, port, "http")

    async def close(self) -> None:
        """Stop serving; hung requests are released and their connections aborted."""
        self._closed.set()
        await self._stop_serving()

    # --- knobs -------------------------------------------------------------------------
    def now(self) -> float:
        """The fake's clock in epoch seconds (serverTime, timestamp checks, windows)."""
        return time.time() + self.clock_skew_s

    def set_price(self, symbol: str, price: Decimal | str, market: str | None = None) -> None:
        """Spot price (futures mark follows by a small basis), or pin the futures mark."""
        self.market.set_price(symbol, price, None if market is None else Market(market))

    def fail_next(self, n: int, *, status: int = 503, key: str | None = None) -> None:
        self._knobs.append(_Knob("fail", n, key, status))

    def reset_next(self, n: int, *, key: str | None = None) -> None:
        self._knobs.append(_Knob("reset", n, key))

    def hang_next(self, n: int, *, key: str | None = None) -> None:
        self._knobs.append(_Knob("hang", n, key))

    def accept_then_hang(self, key: str, n: int = 1) -> None:
        self._knobs.append(_Knob("accept_then_hang", n, key))

    def hold_until(self, at: float, *, key: str | None = None) -> None:
        """The next request (of ``key``) reaches the exchange only at ``at`` on the fake's
        clock, as a slow network or a starved sender delays it: counted, with its window and
        headers, from then on."""
        self._holds.append((key, at))

    def force_429(self, n: int = 1, *, retry_after_s: int = 1, market: str = Market.SPOT) -> None:
        limits = self._limits[Market(market)]
        limits.forced, limits.forced_retry_s = n, retry_after_s

    @property
    def in_flight_grace_s(self) -> float:
        """How long after a 429 a request still counts as already in flight (no ban)."""
        return self._limits[Market.SPOT].grace_s

    @in_flight_grace_s.setter
    def in_flight_grace_s(self, seconds: float) -> None:
        for limits in self._limits.values():
            limits.grace_s = seconds

    def burn_weight(self, market: str, weight: int) -> None:
        self._limits[Market(market)].charge(self.now(), weight)

    # --- recording ---------------------------------------------------------------------
    @property
    def orders_placed(self) -> int:
        return len(self.orders)

    @property
    def last_order(self) -> dict[str, Any] | None:
        return self.orders[-1] if self.orders else None

    def count(self, key: str | None = None, *, status: int | None = None) -> int:
        if status is not None:
            return sum(
                1 for r in self.requests if r.status == status and (key is None or r.key == key)
            )
        return len(self.requests) if key is None else self._counts[key]

    def window_usage(self, market: str, interval_s: int | None = None) -> dict[int, int]:
        """Window index -> weight used, for every REQUEST_WEIGHT window seen so far."""
        pools = self._limits[Market(market)].weight
        return dict(next(p for p in pools if interval_s in (None, p.interval)).counts)

    def order_usage(
        self, market: str, interval_s: int, api_key: str | None = TEST_API_KEY
    ) -> dict[int, int]:
        """Window index -> new orders the key placed, for the ORDERS window of
        ``interval_s`` seconds (the fake's own count, as its -1015 decisions use it)."""
        pool = next(p for p in self._limits[Market(market)].orders if p.interval == interval_s)
        return {idx: n for (key, idx), n in pool.counts.items() if key == api_key}

    def weight_limit(self, market: str) -> int:
        return self._limits[Market(market)].weight[0].limit

    def weight_window_s(self, market: str) -> int:
        return self._limits[Market(market)].weight[0].interval

    async def wait_for_requests(
        self,
        n: int,
        *,
        key: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the brief's API: a test helper's deadline
    ) -> None:
        """Return once ``n`` requests (of ``key``) were recorded; TimeoutError otherwise."""
        if self.count(key) >= n:
            return
        waiter = (n, key, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter[2]
        finally:
            self._waiters.remove(waiter)

    # --- the request path --------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path, method = request.path, request.method
        raw_query = request.rel_url.raw_query_string.encode("utf-8", "surrogateescape")
        raw_body = await request.read() if request.body_exists else b""
        params = dict(parse_qsl(raw_body.decode("utf-8", "replace"), keep_blank_values=True))
        params.update(parse_qsl(raw_query.decode("utf-8", "replace"), keep_blank_values=True))
        market = Market(market_of(path))
        received = await self._held(f"{method} {path}")
        req = _Req(
            self.now(),
            self._limits[market],
            f"{method} {path}",
            params,
            request.headers.get("X-MBX-APIKEY"),
            params.pop("signature", None) is not None,
            (raw_query, raw_body),
            received=received,
        )
        op, headers = OPS.get(req.key), {"Content-Type": _JSON}
        hang_after, result = False, None
        try:
            if op is None:
                raise ApiError(404, -5000, f"Path {path}, Method {method} is invalid")
            req.charged, err = req.limits.admit(
                req.now,
                op.weight.of(params),
                count_rejected=self.count_rejected_weight,
                first_ban_s=self.first_ban_s,
            )
            if err is not None:
                raise err
            if op.pool is not None:
                req.limits.admit_own(req.now, op.pool)
            if self.outage_status is not None:
                raise ApiError(self.outage_status, *_5XX.get(self.outage_status, _INTERNAL))
            knob = self._take_knob(req.key, before=True)
            if knob is not None and knob.kind == "fail":
                raise ApiError(knob.status, *_5XX.get(knob.status, _INTERNAL))
            if knob is not None:  # reset or hang: no answer, nothing processed
                self._record(req, 0)
                if knob.kind == "hang":
                    await self._closed.wait()
                return _abort(request)
            call = self._admitted_call(op, req)
            hang_after = self._take_knob(req.key, before=False) is not None
            result = self._run(op, req, call, headers)
            status = 200
        except ApiError as e:
            status, result = e.status, {"code": e.code, "msg": e.msg}
            headers.update(e.headers)
        req.limits.weight_headers(req.now, headers)
        self._record(req, 0 if hang_after else status)
        if hang_after:
            await self._closed.wait()
            return _abort(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return web.Response(body=orjson.dumps(result), status=status, headers=headers)

    def _admitted_call(self, op: Op, req: _Req) -> Call:
        """Key, signature, parameter and ORDERS checks; the call for the handler."""
        if op.needs_key:
            self._keys.check_key(req.api_key)
        now_ms = int(req.now * 1000)
        if op.signed:
            self._keys.check_signed(req.api_key or "", req.params, req.raw, now_ms)
        missing = next((name for name in op.required if not req.params.get(name)), None)
        if missing is not None:
            raise missing_param(missing)
        call = Call(req.limits.market, op.key, req.params, req.api_key, now_ms)
        call.symbols = self.market.check_symbols(call)
        if op.places_orders:
            req.limits.admit_orders(req.now, req.api_key, op)
        return call

    def _run(self, op: Op, req: _Req, call: Call, headers: dict[str, str]) -> Any:
        """The handler's result; a success of a spot order or cancel is refunded to 0."""
        handler = self._routes.get(op.key)
        result = handler(call) if handler is not None else {}
        if op.free_on_success:
            req.limits.charge(req.now, -req.charged)
            req.charged = 0
        if op.places_orders:
            req.limits.order_headers(req.now, req.api_key, headers)
        return result

    async def _held(self, key: str) -> float | None:
        """Wait out a ``hold_until`` for this request; when it came in, or None if not held."""
        hold = next((h for h in self._holds if h[0] in (None, key)), None)
        if hold is None:
            return None
        self._holds.remove(hold)
        received = self.now()
        self.hold_reached.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(hold[1] - received):
                await self._closed.wait()
        return received

    def _background(self, market: Market) -> int:
        return self.background_weight.get(market, 0)

    def _take_knob(self, key: str, *, before: bool) -> _Knob | None:
        for knob in self._knobs:
            if (knob.kind != "accept_then_hang") == before and knob.key in (None, key):
                knob.left -= 1
                if knob.left <= 0:
                    self._knobs.remove(knob)
                return knob
        return None

    def _record(self, req: _Req, status: int) -> None:
        self.requests.append(
            RecordedRequest(
                req.now,
                req.limits.market,
                req.key,
                req.params,
                status,
                req.charged,
                req.limits.window_index(req.now),
                req.api_key,
                req.signed,
                req.received,
            )
        )
        self._counts[req.key] += 1
        for n, wanted, fut in self._waiters:
            if not fut.done() and self.count(wanted) >= n:
                fut.set_result(None)


def _abort(request: web.Request) -> web.Response:
    """Drop the connection; aiohttp then fails to write this dummy answer and moves on."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response()


async def _serve_forever(args: argparse.Namespace) -> None:
    def windows(market: str, limit: int) -> list[Window]:
        rest = [w for w in DEFAULT_WINDOWS[market] if w.kind is not PoolKind.REQUEST_WEIGHT]
        return [Window(market, PoolKind.REQUEST_WEIGHT, args.window_s, limit), *rest]

    fake = FakeBinance(
        spot_windows=windows(Market.SPOT, args.spot_weight_limit),
        futures_windows=windows(Market.FUTURES, args.futures_weight_limit),
        api_keys={args.api_key: args.api_secret},
        count_rejected_weight=args.count_rejected_weight,
        first_ban_s=args.first_ban_s,
    )
    fake.latency_s, fake.clock_skew_s = args.latency_ms / 1000, args.clock_skew_s
    await fake.serve_until_signalled(host=args.host, port=args.port)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tests.fakes.fake_binance``: serve until Ctrl-C, the URL on stdout."""
    parser = argparse.ArgumentParser(description="Serve the fake Binance REST API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--window-s", type=int, default=60)
    parser.add_argument("--spot-weight-limit", type=int, default=6000)
    parser.add_argument("--futures-weight-limit", type=int, default=2400)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--clock-skew-s", type=float, default=0.0)
    parser.add_argument("--first-ban-s", type=float, default=120.0)
    parser.add_argument("--count-rejected-weight", action="store_true")
    parser.add_argument("--api-key", default=TEST_API_KEY)
    parser.add_argument("--api-secret", default=TEST_API_SECRET)
    asyncio.run(_serve_forever(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
