"""The alarm engine: which alarms a price update fires. Pure, synchronous, in memory: no
I/O, no asyncio, no ``Alarm`` objects kept (the service feeds it from the streams, persists
what it returns, and handles expiry by calling ``remove``).

API::

    engine = AlarmEngine(clock=time.time)
    engine.load(alarms)                      # start-up, bulk: each list sorted once
    engine.load_rows(rows)                   # the same from the stores' rows (armed_rows)
    with engine.loading() as load: load(page) ...  # the same, a page at a time
    engine.add(alarm, price=Decimal("..."))  # the price decides which side a CROSS is on
    engine.remove(alarm_id)                  # delete, pause, expire; resume = add again
    engine.on_price("spot", "BTCUSDT", 70012.5, ts, high=..., low=..., candle_t=...,
                    open_24h=...) -> list[Firing]
    engine.on_day_change("futures", "BTCUSDT", pct, price, ts) -> list[Firing]
    engine.gap("spot", "BTCUSDT", [(open_time_s, high, low, close), ...]) -> list[Firing]
    engine.tick(now)                         # re-arm repeats whose cooldown ended
    engine.symbols_with_spot_alarms()        # the @kline_1m streams to follow
    engine.held_symbols()                    # (market, symbol) of every alarm held
    engine.last_price(market, symbol); len(engine); engine.memory_stats()

``add`` holds an ARMED alarm, or a FIRED one that repeats or has a ``rearm_at`` (a snooze:
it sleeps until then); any other state removes it. A ``Firing`` carries the alarm's id,
chat, ``seq`` (the alarm's + 1, counted on in the engine for repeats), the touched price,
the price, ``touched_at`` (the update's time, or a gap candle's open time), ``fired_at``
(the clock) and ``late``.

Prices are floats, parsed once from Binance's strings (a float holds up to 15 significant
digits exactly, so comparisons with a level are exact); a ``Firing`` carries
``Decimal(repr(price))``, the wire value. ``ts`` is unix seconds (the event time ``E``).

Feeds: spot from ``!miniTicker@arr`` (``c``; ``o`` as ``open_24h``), futures from
``!markPrice@arr@1s`` (``p``). ``high``/``low`` are the current 1-minute candle's, from the
symbol's ``@kline_1m`` (``candle_t``: its open time ``t``): a new high or low of the candle
counts as traded since the last update, so a wick fires, with that extreme as the touched
price. DAY_CHANGE follows Binance's 24 h change, (last - open) / open * 100: on_price's
``open_24h`` for spot; the mark price has no 24 h open, so futures DAY_CHANGE alarms take
the futures ``!miniTicker@arr`` (last price) through ``on_day_change``.

Cost per update: two dict lookups and a few comparisons with the symbol's thresholds (the
nearest level of each list, the bounds of its change and 24 h alarms); an update past one
bisects, O(log n + k) for k fired, never a scan. Per (market, symbol) (``alarm_book``):
``up`` (ABOVE, a CROSS from below: fires when the high since the last update reaches the
level), ``dn`` (BELOW, a CROSS from above), re-arming points ``au``/``ad``; CHANGE alarms in
groups (window, direction) of percents over the symbol's price ``History`` (a rise of p %
fires when price >= min_over_window * (1 + p/100), a fall when price <= max * (1 - p/100));
DAY_CHANGE in groups by direction. The history of a symbol starts with its first percent
alarm (and at start-up): a move before that does not count.

Repeat: a firing takes a repeating alarm out until its cooldown ends (checked on each update
and by ``tick``), then until the price has moved back past the level by the hysteresis band
(ABOVE L: price <= L * (1 - h); a cross: h away on either side; a percent alarm: its change
back under (1 + p/100) * (1 - h)), measured after the cooldown. A one-shot leaves the
engine when it fires. A CROSS fires on reaching the level from the side it was on; at or
past the level (or with no price known) it first waits to be strictly on the other side.
When one update reaches past a re-arming point and back, the close decides (the order of
the extremes within an update is unknown).

``gap`` replays 1-minute candles (after a reconnect, a stall, a restart; call it before that
symbol's live updates resume): every alarm touched fires at most once, ``late=True``,
``touched_at`` the candle's open time.

Memory (``alarm_index``): per alarm 54 bytes in parallel arrays indexed by a dense slot, 12
per list entry, 12 in the id map; per symbol with percent alarms a ``History`` of at most
12.9 kB. 117 bytes an alarm measured with ``tracemalloc`` over ``bench/alarms.py``'s mix.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import time
from bisect import bisect_right
from decimal import Decimal
from typing import TYPE_CHECKING

from utils.alarms.alarm_book import INF, SECONDS, Pairs, change_test, passing
from utils.alarms.alarm_index import (
    COOL,
    DOWN,
    IN_AD,
    IN_AU,
    IN_DN,
    IN_GRP,
    IN_UP,
    UP,
    AlarmIndex,
)
from utils.alarms.alarm_model import Firing
from utils.alarms.alarm_rows import admit_rows

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from utils.alarms.alarm_book import Book, Change, Day
    from utils.alarms.alarm_codec import LiveRow
    from utils.alarms.alarm_model import Alarm

__all__ = ("AlarmEngine",)


class AlarmEngine:
    """Which alarms an update fires. Not thread-safe: one feeder (the service's loop)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        ix = self._ix = AlarmIndex()
        # The hot path reads these directly; the index mutates them in place, never rebinds.
        self._markets, self._cool = ix.markets, ix.cool
        self._lvl, self._where, self._win, self._kd, self._hys = (
            ix.lvl, ix.where, ix.win, ix.kd, ix.hys,
        )  # fmt: skip

    def __len__(self) -> int:
        return self._ix.live

    def load(self, alarms: Iterable[Alarm]) -> int:
        """Take many alarms at once (start-up): each list is sorted once at the end; an id
        seen again replaces the earlier one. Returns how many are held (as ``add``)."""
        ix = self._ix
        ix.begin_bulk()
        now = self._clock()
        taken = 0
        try:
            for alarm in alarms:
                taken += ix.admit(alarm, None, now)
        finally:
            ix.end_bulk()
        return taken

    def load_rows(self, rows: Iterable[LiveRow]) -> int:
        """``load`` from the stores' rows (``alarm_codec.LiveRow``, what ``armed_rows``
        yields): the same alarms held the same way, but no ``Alarm`` or ``Decimal`` built."""
        with self.loading() as load:
            return load(rows)

    @contextlib.contextmanager
    def loading(self) -> Iterator[Callable[[Iterable[LiveRow]], int]]:
        """A bulk load fed in parts (pages read from a store): yields ``load(rows) -> int``;
        each list is sorted once, when the block ends. Feed the engine no price until then."""
        ix = self._ix
        ix.begin_bulk()
        now = self._clock()
        try:
            yield lambda rows: admit_rows(ix, rows, now)
        finally:
            ix.end_bulk()

    def add(self, alarm: Alarm, *, price: Decimal | float | None = None) -> bool:
        """Arm (or replace) one alarm; ``price`` is the current price, which decides the
        side of a CROSS (else the last one seen). An alarm neither ARMED nor FIRED with a
        repeat or a ``rearm_at`` (cooling down, snoozed) is removed instead: a pause. True
        when held."""
        return self._ix.admit(alarm, None if price is None else float(price), self._clock())

    def remove(self, alarm_id: int) -> bool:
        """Forget an alarm (deleted, paused, expired, or fired and stored); False when it
        was not held (a one-shot leaves by itself when it fires)."""
        slot = self._ix.ids.get(alarm_id)
        if slot < 0:
            return False
        self._ix.drop(slot)
        return True

    def tick(self, now: float | None = None) -> None:
        """Re-arm repeating alarms whose cooldown has ended (``on_price`` does it too)."""
        self._ix.rearm_due(self._clock() if now is None else now)

    def on_price(  # noqa: C901, PLR0912 - the hot path, inlined (bench/alarms.py)
        self,
        market: str,
        symbol: str,
        price: float,
        ts: float,
        *,
        high: float | None = None,
        low: float | None = None,
        candle_t: float | None = None,
        open_24h: float | None = None,
    ) -> list[Firing]:
        """One price update; returns the firings (usually none)."""
        cool = self._cool
        if cool and cool[0][0] <= ts:
            self._ix.rearm_due(ts)
        books = self._markets.get(market)
        book = None if books is None else books.get(symbol)
        if book is None or not price > 0:
            return []
        hi = lo = price
        if high is not None or low is not None:
            hi, lo = book.wick(price, high, low, ts // 60 * 60 if candle_t is None else candle_t)
        book.last = price
        hot = hi >= book.hi_trig or lo <= book.lo_trig
        chg_hot = False
        chg = book.chg
        if chg is not None:
            hist = chg.hist
            sec, old = int(ts), hist.sec
            if sec == old + 1 and sec % 60:  # the next second, same minute: the common case
                hist.lo0[old % SECONDS], hist.hi0[old % SECONDS] = hist.alo, hist.ahi
                hist.sec, hist.alo, hist.ahi = sec, INF, -INF
            elif sec > old:
                hist.advance(sec)
            if (
                hi >= chg.up_trig
                or lo <= chg.dn_trig
                or chg.pend
                or (lo < price and price >= lo * chg.up_f)
                or (hi > price and price <= hi * chg.dn_f)
            ):
                chg_hot = True
            else:
                # Comparisons, not min()/max(): a call costs more than the rest of this block.
                if lo < hist.alo:  # noqa: PLR1730
                    hist.alo = lo
                if hi > hist.ahi:  # noqa: PLR1730
                    hist.ahi = hi
                hist.last = price
                if lo * chg.up_f < chg.up_trig:  # noqa: PLR1730
                    chg.up_trig = lo * chg.up_f
                if hi * chg.dn_f > chg.dn_trig:  # noqa: PLR1730
                    chg.dn_trig = hi * chg.dn_f
        pct = None
        day = book.day
        if day is not None and open_24h:
            pct = (price - open_24h) / open_24h * 100
            hot = hot or pct >= day.hi_trig or pct <= day.lo_trig or bool(day.pend)
        if hot or chg_hot:
            return self._evaluate(book, price, hi, lo, pct, ts, late=False, chg_hot=chg_hot)
        return []

    def on_day_change(
        self, market: str, symbol: str, pct: float, price: float, ts: float
    ) -> list[Firing]:
        """Binance's 24 h change (percent) of a symbol: fires DAY_CHANGE alarms."""
        cool = self._cool
        if cool and cool[0][0] <= ts:
            self._ix.rearm_due(ts)
        books = self._markets.get(market)
        book = None if books is None else books.get(symbol)
        day = None if book is None else book.day
        if day is None or not (pct >= day.hi_trig or pct <= day.lo_trig or day.pend):
            return []
        hits: list[tuple[int, float]] = []
        self._days(day, pct, price, hits)
        return self._fire_all(hits, price, ts, late=False)

    def gap(
        self, market: str, symbol: str, candles: Iterable[tuple[float, float, float, float]]
    ) -> list[Firing]:
        """Replay 1-minute candles ``(open_time_s, high, low, close)`` covering a gap in
        order: every alarm whose level (or change) was touched fires once, late."""
        books = self._markets.get(market)
        book = None if books is None else books.get(symbol)
        if book is None:
            return []
        out: list[Firing] = []
        for open_t, high, low, close in candles:
            if not close > 0:
                continue
            book.ct, book.ch, book.cl = open_t, high, low
            book.last = close
            if book.chg is not None:
                book.chg.hist.advance(int(open_t) + 59)
            hi, lo = max(high, close), min(low, close)
            chg_hot = book.chg is not None
            out += self._evaluate(book, close, hi, lo, None, open_t, late=True, chg_hot=chg_hot)
        return out

    def symbols_with_spot_alarms(self) -> frozenset[str]:
        """Spot symbols holding level or change alarms: those whose 1-minute klines (wicks)
        the service should follow."""
        return frozenset(s for s, b in self._markets["spot"].items() if b.n > 0)

    def held_symbols(self) -> set[tuple[str, str]]:
        """``(market, symbol)`` of every alarm held."""
        return {(b.market, b.symbol) for b in self._ix.books if b.n or b.day is not None}

    def last_price(self, market: str, symbol: str) -> float | None:
        book = self._markets.get(market, {}).get(symbol)
        return None if book is None or math.isnan(book.last) else book.last

    def memory_stats(self) -> dict[str, float]:
        """Bytes held, by part (an estimate from the arrays' sizes), and per alarm."""
        ix = self._ix
        slots = sum(64 + a.buffer_info()[1] * a.itemsize for a in ix.arrays())
        books = sum(b.nbytes() for b in ix.books)
        ids = ix.ids.nbytes()
        cool = 100 * len(ix.cool)
        total = slots + books + ids + cool
        return {
            "alarms": ix.live,
            "slot_bytes": slots,
            "book_bytes": books,
            "id_bytes": ids,
            "cooldown_bytes": cool,
            "total_bytes": total,
            "bytes_per_alarm": total / ix.live if ix.live else 0.0,
        }

    def _evaluate(
        self,
        book: Book,
        price: float,
        hi: float,
        lo: float,
        pct: float | None,
        at: float,
        *,
        late: bool,
        chg_hot: bool,
    ) -> list[Firing]:
        hits: list[tuple[int, float]] = []
        if hi >= book.hi_trig or lo <= book.lo_trig:
            self._levels(book, price, hi, lo, hits)
        chg = book.chg
        if chg is not None and chg_hot:
            self._changes(chg, price, hi, lo, hits)
        day = book.day
        if (
            day is not None
            and pct is not None
            and (pct >= day.hi_trig or pct <= day.lo_trig or day.pend)
        ):
            self._days(day, pct, price, hits)
        return self._fire_all(hits, price, at, late=late)

    def _levels(
        self, book: Book, price: float, hi: float, lo: float, hits: list[tuple[int, float]]
    ) -> None:
        if hi >= book.up.first():
            hits += ((s, hi) for s in book.up.take_le(hi))
        if lo <= book.dn.last():
            hits += ((s, lo) for s in book.dn.take_ge(lo))
        lvl, where = self._lvl, self._where
        if hi >= book.au.first():
            for s in book.au.take_le(hi):
                if where[s] & IN_AD:
                    book.ad.discard(self._ix.arm_levels(s)[1], s)
                if price <= lvl[s]:
                    where[s] = 0
                    hits.append((s, price))
                else:
                    where[s] = IN_DN
                    book.dn.insert(lvl[s], s)
        if lo <= book.ad.last():
            for s in book.ad.take_ge(lo):
                if where[s] & IN_AU:
                    book.au.discard(self._ix.arm_levels(s)[0], s)
                if price >= lvl[s]:
                    where[s] = 0
                    hits.append((s, price))
                else:
                    where[s] = IN_UP
                    book.up.insert(lvl[s], s)
        book.retrig()

    def _changes(
        self, chg: Change, price: float, hi: float, lo: float, hits: list[tuple[int, float]]
    ) -> None:
        hist = chg.hist
        wins: dict[int, tuple[float, float]] = {}

        def window(w: int) -> tuple[float, float]:
            if w not in wins:
                wins[w] = hist.window(w)
            return wins[w]

        for s in list(chg.pend):
            mn, mx = window(self._win[s])
            if self._change_calm(s, price, mn, mx):
                chg.pend.remove(s)
                self._where[s] = IN_GRP
                key = (self._win[s], self._kd[s] >> 3)
                chg.groups.setdefault(key, Pairs()).insert(self._lvl[s], s)
        for (w, d), grp in chg.groups.items():
            if grp.keys:
                mn, mx = window(w)
                j = passing(grp.keys, change_test(d, mn, mx, price, hi, lo))
                if j:
                    rise = change_test(UP, mn, mx, price, hi, lo)
                    for p, s in zip(grp.keys[:j], grp.take_first(j), strict=True):
                        if d != DOWN and rise(p):  # from the window's low, or this update's
                            touched = hi if mn * (1 + p / 100) <= hi else price
                        else:
                            touched = lo if lo <= mx * (1 - p / 100) else price
                        hits.append((s, touched))
        chg.retrig(window)
        hist.feed(price, hi, lo)
        chg.up_trig = min(chg.up_trig, lo * chg.up_f)
        chg.dn_trig = max(chg.dn_trig, hi * chg.dn_f)

    def _change_calm(self, s: int, price: float, mn: float, mx: float) -> bool:
        """Whether a repeating percent alarm past its cooldown may re-arm: its change is back
        under the band, (1 + p/100) * (1 - h) for a rise."""
        p, h, d = self._lvl[s], self._hys[s], self._kd[s] >> 3
        rise_calm = d == DOWN or price <= mn * (1 + p / 100) * (1 - h)
        fall_calm = d == UP or mx == -INF or price >= mx * (1 - p / 100) * (1 + h)
        return rise_calm and fall_calm

    def _days(self, day: Day, pct: float, price: float, hits: list[tuple[int, float]]) -> None:
        ratio = 1 + pct / 100
        for s in list(day.pend):
            p, h, d = self._lvl[s], self._hys[s], self._kd[s] >> 3
            if (d == DOWN or ratio <= (1 + p / 100) * (1 - h)) and (
                d == UP or ratio >= (1 - p / 100) * (1 + h)
            ):
                day.pend.remove(s)
                self._where[s] = IN_GRP
                day.groups[d].insert(p, s)
        up, dn, both = day.groups
        for grp, x in ((up, pct), (dn, -pct), (both, abs(pct))):
            if grp.keys and x >= grp.keys[0]:
                hits += ((s, price) for s in grp.take_first(bisect_right(grp.keys, x)))
        day.retrig()

    def _fire_all(
        self, hits: list[tuple[int, float]], price: float, at: float, *, late: bool
    ) -> list[Firing]:
        if not hits:
            return []
        now = self._clock()
        ix = self._ix
        decs = {price: _dec(price)}  # an update's firings share at most three prices
        out = []
        books: set[int] = set()
        for s, touched in hits:
            seq = ix.seq[s] + 1
            ix.seq[s] = seq
            out.append(
                Firing(
                    alarm_id=ix.aid[s],
                    chat_id=ix.chat[s],
                    seq=seq,
                    touched_price=decs.get(touched) or decs.setdefault(touched, _dec(touched)),
                    price=decs[price],
                    touched_at=at,
                    fired_at=now,
                    late=late,
                )
            )
            books.add(ix.book[s])
            if ix.rep[s] >= 0:
                ix.where[s] = COOL
                heapq.heappush(ix.cool, (now + ix.rep[s], s, ix.gen[s]))
            else:
                ix.release(s)
        for bid in books:
            ix.books[bid].retrig()
        return out


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))
