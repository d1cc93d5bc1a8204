"""One (market, symbol) in the alarm engine: level lists, percent groups, the price history
they read, and the thresholds that let an update skip them all. Arrays, no ``Alarm`` objects.

- ``Pairs``: float keys ascending with int slots alongside, 12 bytes an entry: a book's level
  lists and percent groups. Bisect finds a boundary, one slice takes everything past it.
- ``History``: the min and max over any rolling window from 1 minute to 7 days, in fixed rings
  of min/max buckets (``LEVELS``): per second for the last 5 minutes, per minute for 4 hours,
  per 15 minutes for a day, per hour for 7 days; a symbol keeps only the levels its longest
  window needs (at most 12.9 kB). The open second accumulates in ``alo``/``ahi``; a coarse
  bucket is rolled up from the finer ring when it ends, so an update writes one second only.
  A bucket with no update holds the price then in force. A window's far edge is as precise
  as the coarsest level it reads: to the second up to 5 minutes, to the minute up to 4 hours,
  to 15 minutes up to a day, to the hour beyond (whole buckets: never further back than
  asked).
- ``Change``, ``Day``: a symbol's percent-change and 24 h change alarms; ``change_test``
  whether a change of p % happened, ``passing`` how many of a group's percents did.
- ``Book``: all of one (market, symbol).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = (
    "BOTH",
    "DOWN",
    "INF",
    "LEVELS",
    "SECONDS",
    "UP",
    "Book",
    "Change",
    "Day",
    "History",
    "Pairs",
    "change_test",
    "passing",
)

INF: Final = math.inf
UP, DOWN, BOTH = range(3)  # direction codes
#: (bucket seconds, buckets) per history level; each bucket size divides the next.
LEVELS: Final = ((1, 300), (60, 240), (900, 96), (3600, 168))
#: Buckets of the per-second ring (the engine writes it inline on its hot path).
SECONDS: Final = LEVELS[0][1]


class Pairs:
    """Float keys kept ascending with their slots alongside (``keys[i]`` belongs to
    ``slots[i]``). A bulk load appends to both arrays, then calls ``sort`` once."""

    __slots__ = ("keys", "slots")

    def __init__(self) -> None:
        self.keys = array("d")
        self.slots = array("i")

    def insert(self, key: float, slot: int) -> None:
        i = bisect_right(self.keys, key)
        self.keys.insert(i, key)
        self.slots.insert(i, slot)

    def sort(self) -> None:
        keys, slots = self.keys, self.slots
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self.keys = array("d", [keys[i] for i in order])
        self.slots = array("i", [slots[i] for i in order])

    def discard(self, key: float, slot: int) -> bool:
        """Remove the entry (key, slot); False when it is not there."""
        keys, slots = self.keys, self.slots
        i, n = bisect_left(keys, key), len(keys)
        while i < n and keys[i] == key:
            if slots[i] == slot:
                del keys[i], slots[i]
                return True
            i += 1
        return False

    def take_le(self, x: float) -> array[int]:
        """Remove and return the slots whose key is at most ``x`` (ascending keys)."""
        j = bisect_right(self.keys, x)
        return self.take_first(j)

    def take_ge(self, x: float) -> array[int]:
        """Remove and return the slots whose key is at least ``x``."""
        j = bisect_left(self.keys, x)
        out = self.slots[j:]
        del self.keys[j:], self.slots[j:]
        return out

    def take_first(self, j: int) -> array[int]:
        out = self.slots[:j]
        del self.keys[:j], self.slots[:j]
        return out

    def first(self) -> float:
        return self.keys[0] if self.keys else INF

    def last(self) -> float:
        return self.keys[-1] if self.keys else -INF

    def nbytes(self) -> int:
        return _nbytes(self.keys) + _nbytes(self.slots)


class History:
    """A symbol's price range per bucket at each level, and the open second's."""

    __slots__ = ("ahi", "alo", "depth", "hi", "hi0", "last", "lo", "lo0", "sec", "span")

    def __init__(self) -> None:
        self.sec = -1  # the open second; -1 until the first price
        self.alo, self.ahi, self.last = INF, -INF, math.nan
        self.lo: list[array[float]] = []
        self.hi: list[array[float]] = []
        self.depth = 0
        self.span: float = 0  # the longest window the levels kept serve
        self.reach(1)
        self.lo0, self.hi0 = self.lo[0], self.hi[0]

    def reach(self, window_s: int) -> None:
        """Keep enough levels for windows up to ``window_s`` seconds."""
        if window_s <= self.span:  # the common case at start-up: one comparison
            return
        need = next((k + 1 for k, (b, n) in enumerate(LEVELS) if b * n >= window_s), 4)
        while self.depth < need:
            n = LEVELS[self.depth][1]
            self.lo.append(array("d", [INF]) * n)
            self.hi.append(array("d", [-INF]) * n)
            self.depth += 1
        size, n = LEVELS[self.depth - 1]
        self.span = INF if self.depth == len(LEVELS) else size * n

    def feed(self, price: float, hi: float, lo: float) -> None:
        self.alo, self.ahi, self.last = min(self.alo, lo), max(self.ahi, hi), price

    def advance(self, sec: int) -> None:
        """Close the open second and every coarser bucket that ends before ``sec``; buckets
        skipped without an update hold the last price."""
        old, self.sec = self.sec, sec
        if old < 0 or sec <= old:
            self.sec = max(old, sec)
            return
        lo, hi, last = self.lo, self.hi, self.last
        i = old % LEVELS[0][1]
        lo[0][i], hi[0][i] = self.alo, self.ahi
        self.alo, self.ahi = INF, -INF
        top = 0
        for k in range(1, self.depth):
            size, fine = LEVELS[k][0], LEVELS[k - 1][0]
            bucket = old // size
            if bucket == sec // size:
                break
            start, stop = bucket * (size // fine), old // fine + 1
            j = bucket % LEVELS[k][1]
            lo[k][j] = _ring_min(lo[k - 1], start, stop)
            hi[k][j] = _ring_max(hi[k - 1], start, stop)
            top = k
        if last == last:  # noqa: PLR0124 - NaN before the first close: nothing to fill with
            for k in range(top + 1):
                size = LEVELS[k][0]
                _ring_fill(lo[k], old // size + 1, sec // size, last)
                _ring_fill(hi[k], old // size + 1, sec // size, last)

    def window(self, window_s: int) -> tuple[float, float]:
        """Min and max over the last ``window_s`` seconds up to the open second (included)."""
        sec, mn, mx = self.sec, self.alo, self.ahi
        if sec < 0:  # no second closed yet: the rings are empty (a start-up load asks often)
            return mn, mx
        for k in range(self.depth):
            size, n = LEVELS[k]
            cur = sec // size
            if size * n >= window_s or k == self.depth - 1:
                first = (sec - window_s) // size + 1  # buckets wholly inside the window
                return (
                    min(mn, _ring_min(self.lo[k], first, cur)),
                    max(mx, _ring_max(self.hi[k], first, cur)),
                )
            mn = min(mn, _ring_min(self.lo[k], cur - n + 1, cur))
            mx = max(mx, _ring_max(self.hi[k], cur - n + 1, cur))
        return mn, mx

    def nbytes(self) -> int:
        return sum(_nbytes(a) for a in (*self.lo, *self.hi))


class Change:
    """A symbol's percent-change alarms: groups keyed (window_s, direction code) of percents
    ascending; ``up_trig``/``dn_trig`` bound the prices that could fire any of them (a price
    strictly between fires none), ``up_f``/``dn_f`` the factors of the smallest percents."""

    __slots__ = ("dn_f", "dn_trig", "groups", "hist", "n", "pend", "up_f", "up_trig")

    def __init__(self) -> None:
        self.n = 0  # alarms held, cooling ones included: at 0 the book drops its history
        self.groups: dict[tuple[int, int], Pairs] = {}
        self.hist = History()
        self.pend: list[int] = []  # repeating alarms past their cooldown, awaiting hysteresis
        self.up_trig, self.dn_trig, self.up_f, self.dn_f = INF, -INF, INF, -INF

    def retrig(self, window: Callable[[int], tuple[float, float]]) -> None:
        """Exact thresholds from the windows' (min, max): the lowest price that could fire a
        rise, the highest that could fire a fall, the factors of the smallest percents (that
        narrow them as prices come in)."""
        up_trig, dn_trig, up_f, dn_f = INF, -INF, INF, -INF
        for (w, d), grp in self.groups.items():
            if not grp.keys:
                continue
            mn, mx = window(w)
            p = grp.keys[0]
            if d != DOWN:
                f = 1 + p / 100
                up_f, up_trig = min(up_f, f), min(up_trig, mn * f)
            g = 1 - p / 100
            if d != UP and g > 0:
                dn_f = max(dn_f, g)
                if mx > -INF:
                    dn_trig = max(dn_trig, mx * g)
        self.up_trig, self.dn_trig, self.up_f, self.dn_f = up_trig, dn_trig, up_f, dn_f


class Day:
    """A symbol's 24 h change alarms by direction code (up, down, both): percents ascending;
    a 24 h change strictly between ``lo_trig`` and ``hi_trig`` fires none."""

    __slots__ = ("groups", "hi_trig", "lo_trig", "n", "pend")

    def __init__(self) -> None:
        self.n = 0
        self.groups = (Pairs(), Pairs(), Pairs())
        self.pend: list[int] = []
        self.hi_trig, self.lo_trig = INF, -INF

    def retrig(self) -> None:
        up, dn, both = self.groups
        self.hi_trig = min(up.first(), both.first())
        self.lo_trig = -min(dn.first(), both.first())


class Book:
    """One (market, symbol): the level lists, their thresholds and the last price.

    ``up`` fires when the price since the last update reached its key (ABOVE, a CROSS below
    its level), ``dn`` when it fell to it; ``au``/``ad`` are re-arming points: reaching one
    moves the alarm to ``dn``/``up``. ``hi_trig``/``lo_trig``: no list reacts to a price
    strictly between them. ``ct``/``ch``/``cl``: the current 1-minute candle and its range."""

    __slots__ = (
        "ad",
        "au",
        "bid",
        "ch",
        "chg",
        "cl",
        "ct",
        "day",
        "dn",
        "hi_trig",
        "last",
        "lo_trig",
        "market",
        "n",
        "symbol",
        "up",
    )

    def __init__(self, market: str, symbol: str, bid: int) -> None:
        self.market, self.symbol, self.bid = market, symbol, bid
        self.up, self.dn, self.au, self.ad = Pairs(), Pairs(), Pairs(), Pairs()
        self.chg: Change | None = None
        self.day: Day | None = None
        self.hi_trig, self.lo_trig = INF, -INF
        self.last = math.nan
        self.ct, self.ch, self.cl = math.nan, -INF, INF
        self.n = 0  # level and change alarms held (they want the symbol's klines)

    def lists(self) -> list[Pairs]:
        """Every list and group of the book."""
        out = [self.up, self.dn, self.au, self.ad]
        if self.chg is not None:
            out += self.chg.groups.values()
        if self.day is not None:
            out += self.day.groups
        return out

    def retrig(self) -> None:
        self.hi_trig = min(self.up.first(), self.au.first())
        self.lo_trig = max(self.dn.last(), self.ad.last())

    def wick(
        self, price: float, high: float | None, low: float | None, candle_t: float
    ) -> tuple[float, float]:
        """The highest and lowest price traded since the last update: the price, and a new
        high or low of the current candle (all of a candle not seen before)."""
        hi = lo = price
        if candle_t != self.ct:
            self.ct, self.ch, self.cl = candle_t, -INF, INF
        if high is not None and high > self.ch:
            self.ch = high
            hi = max(hi, high)
        if low is not None and low < self.cl:
            self.cl = low
            lo = min(lo, low)
        return hi, lo

    def nbytes(self) -> int:
        total = sum(p.nbytes() for p in (self.up, self.dn, self.au, self.ad)) + 200
        if self.chg is not None:
            total += self.chg.hist.nbytes() + sum(g.nbytes() for g in self.chg.groups.values())
        if self.day is not None:
            total += sum(g.nbytes() for g in self.day.groups)
        return total


def passing(keys: Sequence[float], test: Callable[[float], bool]) -> int:
    """How many of the ascending ``keys`` pass ``test`` (true for a prefix): a binary search
    with the exact test, so a float quotient never moves the boundary."""
    a, b = 0, len(keys)
    while a < b:
        m = (a + b) // 2
        if test(keys[m]):
            a = m + 1
        else:
            b = m
    return a


def change_test(
    d: int, mn: float, mx: float, price: float, hi: float, lo: float
) -> Callable[[float], bool]:
    """Whether a change of p % in direction ``d`` happened: a rise from the window's low
    (``mn``) to this update's high, or from its low (which came before the close) to the
    close; a fall likewise."""
    mn2, mx2 = min(mn, lo), max(mx, hi)

    def rise(p: float) -> bool:
        f = 1 + p / 100
        return mn * f <= hi or mn2 * f <= price

    def fall(p: float) -> bool:
        g = 1 - p / 100
        return g > 0 and (lo <= mx * g or price <= mx2 * g)

    if d == UP:
        return rise
    if d == DOWN:
        return fall
    return lambda p: rise(p) or fall(p)


def _ring_min(ring: array[float], start: int, stop: int) -> float:
    """Min over the absolute bucket numbers [start, stop) of a ring (the last len(ring))."""
    n = len(ring)
    start = max(start, stop - n)
    if start >= stop:
        return INF
    i, count = start % n, stop - start
    if i + count <= n:
        return min(ring[i : i + count])
    return min(min(ring[i:]), min(ring[: i + count - n]))  # noqa: PLW3301 - two C loops


def _ring_max(ring: array[float], start: int, stop: int) -> float:
    n = len(ring)
    start = max(start, stop - n)
    if start >= stop:
        return -INF
    i, count = start % n, stop - start
    if i + count <= n:
        return max(ring[i : i + count])
    return max(max(ring[i:]), max(ring[: i + count - n]))  # noqa: PLW3301 - two C loops


def _ring_fill(ring: array[float], start: int, stop: int, value: float) -> None:
    n = len(ring)
    start = max(start, stop - n)
    if start >= stop:
        return
    i, count = start % n, stop - start
    head = min(count, n - i)
    ring[i : i + head] = array("d", [value]) * head
    if count > head:
        ring[: count - head] = array("d", [value]) * (count - head)


def _nbytes(a: array[int] | array[float]) -> int:
    return 64 + a.buffer_info()[1] * a.itemsize
