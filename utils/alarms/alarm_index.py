"""What the alarm engine holds, compactly: no ``Alarm`` objects, only arrays.

- ``AlarmIndex``: every alarm as a dense slot in parallel arrays (id, chat, seq, level or
  percent, book, kind and direction, where it is, repeat, hysteresis, window, generation:
  54 bytes), the id map, the books, the cooldown heap; putting a slot into its book's lists
  and taking it out, re-arming after a cooldown.
- ``IdMap``: alarm id -> slot in two sorted arrays (12 bytes an id); a removed id leaves a
  tombstone until a rebuild, ids that arrive out of order wait in a small dict.

Where a slot is (``where`` bits): in ``up``/``dn`` (fires when the price reaches the level
from below/above), in ``au``/``ad`` (a re-arming point: reaching it moves the slot to
``dn``/``up``; ``STRICT`` when the point is the level itself, one float past it, else the
hysteresis band), in a percent group, cooling down, or pending (a percent alarm past its
cooldown waiting for its change to fall back under the band).
"""

from __future__ import annotations

import heapq
import math
from array import array
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Final

from utils.alarms.alarm_book import BOTH, DOWN, INF, UP, Book, Change, Day, Pairs
from utils.alarms.alarm_model import DEFAULT_HYSTERESIS, AlarmKind, AlarmState, Direction

if TYPE_CHECKING:
    from utils.alarms.alarm_model import Alarm

__all__ = (
    "ABOVE",
    "BELOW",
    "BOTH",
    "CHANGE",
    "COOL",
    "CROSS",
    "DAY",
    "DOWN",
    "IN_AD",
    "IN_AU",
    "IN_DN",
    "IN_GRP",
    "IN_UP",
    "PEND",
    "STRICT",
    "UP",
    "AlarmIndex",
    "IdMap",
)

ABOVE, BELOW, CROSS, CHANGE, DAY = range(5)
IN_UP, IN_DN, IN_AU, IN_AD, STRICT, IN_GRP, COOL, PEND = (1 << i for i in range(8))
_KINDS: Final = {
    AlarmKind.ABOVE: ABOVE,
    AlarmKind.BELOW: BELOW,
    AlarmKind.CROSS: CROSS,
    AlarmKind.CHANGE: CHANGE,
    AlarmKind.DAY_CHANGE: DAY,
}
_DIRS: Final = {Direction.UP: UP, Direction.DOWN: DOWN, Direction.BOTH: BOTH}
_REBUILD_MIN: Final = 1024
_DEFAULT_HYS: Final = float(DEFAULT_HYSTERESIS)
_ARMED: Final = AlarmState.ARMED  # a module global: an enum class attribute costs 0.15 µs
_FIRED: Final = AlarmState.FIRED


class IdMap:
    """Alarm id -> slot (``-1`` when absent). Lookups, inserts and removals are O(log n)
    (amortized: a rebuild, O(n log n), once tombstones or strays pass a fraction of n)."""

    __slots__ = ("_dead", "_extra", "_ids", "_slots", "holding")

    def __init__(self) -> None:
        self.holding = False  # bulk load: no rebuild until it ends
        self._ids = array("q")
        self._slots = array("i")
        self._extra: dict[int, int] = {}
        self._dead = 0

    def __len__(self) -> int:
        return len(self._ids) - self._dead + len(self._extra)

    def get(self, key: int) -> int:
        ids = self._ids
        i = bisect_left(ids, key)
        if i < len(ids) and ids[i] == key and self._slots[i] >= 0:
            return self._slots[i]
        return self._extra.get(key, -1)

    def put(self, key: int, slot: int) -> None:
        ids = self._ids
        i = bisect_left(ids, key)
        if i < len(ids) and ids[i] == key:
            if self._slots[i] < 0:
                self._dead -= 1
            self._slots[i] = slot
        elif i == len(ids):  # ids from a counter come in order: the common case
            ids.append(key)
            self._slots.append(slot)
        else:
            self._extra[key] = slot
            if not self.holding and len(self._extra) > max(_REBUILD_MIN, len(ids) >> 4):
                self.rebuild()

    def pop(self, key: int) -> int:
        ids = self._ids
        i = bisect_left(ids, key)
        if i < len(ids) and ids[i] == key and self._slots[i] >= 0:
            slot = self._slots[i]
            self._slots[i] = -1
            self._dead += 1
            if not self.holding and self._dead > max(_REBUILD_MIN, len(ids) >> 1):
                self.rebuild()
            return slot
        return self._extra.pop(key, -1)

    def rebuild(self) -> None:
        if not self._extra and not self._dead:
            return
        live = {k: s for k, s in zip(self._ids, self._slots, strict=True) if s >= 0}
        live.update(self._extra)
        keys = sorted(live)
        self._ids = array("q", keys)
        self._slots = array("i", [live[k] for k in keys])
        self._extra.clear()
        self._dead = 0

    def nbytes(self) -> int:
        return _nbytes(self._ids) + _nbytes(self._slots) + 100 * len(self._extra)


class AlarmIndex:
    """Every alarm held, by dense slot, and where each one sits in its book."""

    def __init__(self) -> None:
        self.markets: dict[str, dict[str, Book]] = {"spot": {}, "futures": {}}
        self.books: list[Book] = []
        self.ids = IdMap()
        self.aid, self.chat = array("q"), array("q")
        self.seq, self.book, self.gen = array("I"), array("I"), array("I")
        self.lvl = array("d")  # the level, or the percent of CHANGE and DAY
        self.kd, self.where = array("B"), array("B")  # kind | direction << 3; where bits
        self.rep, self.win = array("i"), array("i")  # repeat_s (-1: once); window_s
        self.hys = array("d")
        self.free = array("i")
        self.cool: list[tuple[float, int, int]] = []  # (rearm_at, slot, generation)
        self.live = 0
        self._bulk = False  # loading: lists take appends, sorted once at the end
        self._bulk_books: set[int] = set()

    def arrays(self) -> tuple[array[int] | array[float], ...]:
        return (*(self.aid, self.chat, self.seq, self.book, self.gen, self.lvl, self.kd),
                *(self.where, self.rep, self.win, self.hys, self.free))  # fmt: skip

    def admit(self, alarm: Alarm, price: float | None, now: float) -> bool:
        """Hold ``alarm`` (replacing one with its id): armed, or cooling down when it fired
        and repeats or has a ``rearm_at`` (a snooze). Any other state only removes it. True
        when held."""
        old = self.ids.get(alarm.id)
        if old >= 0:
            self.drop(old)
        spec = alarm.spec
        if alarm.state is _ARMED:
            until = None
        elif alarm.state is _FIRED and (spec.repeat_s is not None or alarm.rearm_at is not None):
            until = alarm.rearm_at  # a repeat's cooldown, or a snooze
            if until is None:
                until = (alarm.fired_at or now) + (spec.repeat_s or 0)
        else:
            return False
        book = self._book(spec.market, spec.symbol)
        s = self._alloc(alarm, book)
        if until is not None and until > now:
            self.where[s] = COOL
            heapq.heappush(self.cool, (until, s, self.gen[s]))
        elif until is not None:
            self.rearm(s)
        else:
            self._place(s, book, book.last if price is None else price)
        return True

    def drop(self, s: int) -> None:
        """Take slot ``s`` out of everything and free it."""
        w, book = self.where[s], self.books[self.book[s]]
        k, d, level = self.kd[s] & 7, self.kd[s] >> 3, self.lvl[s]
        if w & IN_UP:
            self._sorted(book.up).discard(level, s)
        if w & IN_DN:
            self._sorted(book.dn).discard(level, s)
        if w & (IN_AU | IN_AD):
            up, dn = self.arm_levels(s)
            if w & IN_AU:
                self._sorted(book.au).discard(up, s)
            if w & IN_AD:
                self._sorted(book.ad).discard(dn, s)
        if w & (IN_GRP | PEND) and k == CHANGE and book.chg is not None:
            if w & IN_GRP:
                self._sorted(book.chg.groups[self.win[s], d]).discard(level, s)
            else:
                book.chg.pend.remove(s)
        if w & (IN_GRP | PEND) and k == DAY and book.day is not None:
            if w & IN_GRP:
                self._sorted(book.day.groups[d]).discard(level, s)
                book.day.retrig()
            else:
                book.day.pend.remove(s)
        self.release(s)
        book.retrig()

    def release(self, s: int) -> None:
        """Free slot ``s`` (already out of every list): a one-shot that fired, or a drop."""
        self.ids.pop(self.aid[s])
        self.where[s] = 0
        self.free.append(s)
        self.live -= 1
        book, k = self.books[self.book[s]], self.kd[s] & 7
        if k != DAY:
            book.n -= 1
        if k == CHANGE and book.chg is not None:
            book.chg.n -= 1
            if not book.chg.n:  # no update pays for a history nobody reads
                book.chg = None
        elif k == DAY and book.day is not None:
            book.day.n -= 1
            if not book.day.n:
                book.day = None

    def rearm_due(self, now: float) -> None:
        cool = self.cool
        while cool and cool[0][0] <= now:
            _, s, gen = heapq.heappop(cool)
            if self.gen[s] == gen and self.where[s] == COOL:
                self.rearm(s)

    def rearm(self, s: int) -> None:
        """After the cooldown: back in the lists once the price is past the hysteresis band,
        else at the band's re-arming points (percent alarms: pending until the change falls
        back under the band)."""
        book = self.books[self.book[s]]
        k, d, level, h = self.kd[s] & 7, self.kd[s] >> 3, self.lvl[s], self.hys[s]
        self.where[s] = 0
        if k == CHANGE and book.chg is not None:
            book.chg.pend.append(s)
            self.where[s] = PEND
            return
        if k == DAY and book.day is not None:
            book.day.pend.append(s)
            self.where[s] = PEND
            return
        rises = k == ABOVE or (k == CROSS and d != DOWN)  # fires again from below
        falls = k == BELOW or (k == CROSS and d != UP)
        up_band, dn_band, last = level * (1 + h), level * (1 - h), book.last
        if rises and last <= dn_band:
            self._put(book.up, level, s, IN_UP)
        elif falls and last >= up_band:
            self._put(book.dn, level, s, IN_DN)
        else:
            if rises:
                self._put(book.ad, dn_band, s, IN_AD)
            if falls:
                self._put(book.au, up_band, s, IN_AU)
        if not self._bulk:
            book.retrig()

    def arm_levels(self, s: int) -> tuple[float, float]:
        """Slot ``s``'s re-arming points in ``au`` and ``ad``."""
        level = self.lvl[s]
        if self.where[s] & STRICT:
            return math.nextafter(level, INF), math.nextafter(level, -INF)
        h = self.hys[s]
        return level * (1 + h), level * (1 - h)

    def begin_bulk(self) -> None:
        self._bulk, self._bulk_books = True, set()
        self.ids.holding = True

    def end_bulk(self) -> None:
        self._bulk = False
        self.ids.holding = False
        self.ids.rebuild()
        for bid in self._bulk_books:
            book = self.books[bid]
            for pairs in book.lists():
                pairs.sort()
            book.retrig()
            if book.chg is not None:
                book.chg.retrig(book.chg.hist.window)
            if book.day is not None:
                book.day.retrig()

    def _book(self, market: str, symbol: str) -> Book:
        books = self.markets.get(market)
        if books is None:
            books = self.markets[market] = {}
        book = books.get(symbol)
        if book is None:
            book = books[symbol] = Book(market, symbol, len(self.books))
            self.books.append(book)
        return book

    def _alloc(self, alarm: Alarm, book: Book) -> int:
        spec = alarm.spec
        k, d = _KINDS[spec.kind], _DIRS[spec.direction]
        value = spec.level if k <= CROSS else spec.percent
        window = spec.window_s or 0
        if value is None or (k == CHANGE and window <= 0):
            need = "a level" if k <= CROSS else "a percent" + (" and a window" * (k == CHANGE))
            raise ValueError(f"alarm {alarm.id}: a {spec.kind} alarm needs {need}")
        rep = -1 if spec.repeat_s is None else spec.repeat_s
        h = spec.hysteresis  # float(Decimal) costs 0.3-0.5 µs: skip it for the default
        hys = _DEFAULT_HYS if h is DEFAULT_HYSTERESIS else float(h)
        if self.free:
            s = self.free.pop()
            row = (alarm.id, alarm.chat_id, alarm.seq, book.bid, float(value), k | d << 3, 0,
                   rep, window, hys)  # fmt: skip
            arrays: tuple[array[Any], ...] = (self.aid, self.chat, self.seq, self.book,
                                              self.lvl, self.kd, self.where, self.rep,
                                              self.win, self.hys)  # fmt: skip
            for a, v in zip(arrays, row, strict=True):
                a[s] = v
            self.gen[s] += 1
        else:  # one append per array, no loop: the bulk load's cost is mostly here
            s = len(self.aid)
            self.aid.append(alarm.id)
            self.chat.append(alarm.chat_id)
            self.seq.append(alarm.seq)
            self.book.append(book.bid)
            self.lvl.append(float(value))
            self.kd.append(k | d << 3)
            self.where.append(0)
            self.rep.append(rep)
            self.win.append(window)
            self.hys.append(hys)
            self.gen.append(0)
        self.ids.put(alarm.id, s)
        self.live += 1
        if k == CHANGE:
            if book.chg is None:
                book.chg = Change()
            book.chg.hist.reach(window)
            book.chg.n += 1
        elif k == DAY:
            if book.day is None:
                book.day = Day()
            book.day.n += 1
        if k != DAY:
            book.n += 1
        if self._bulk:
            self._bulk_books.add(book.bid)
        return s

    def _place(self, s: int, book: Book, price: float) -> None:
        k, d, level = self.kd[s] & 7, self.kd[s] >> 3, self.lvl[s]
        if k == ABOVE or (k == CROSS and d != DOWN and price < level):
            self._put(book.up, level, s, IN_UP)
        elif k == BELOW or (k == CROSS and d != UP and price > level):
            self._put(book.dn, level, s, IN_DN)
        elif k == CROSS:  # at or past the level, or no price: first to the other side
            self.where[s] = STRICT
            if d != DOWN:
                self._put(book.ad, math.nextafter(level, -INF), s, IN_AD)
            if d != UP:
                self._put(book.au, math.nextafter(level, INF), s, IN_AU)
        elif k == CHANGE and book.chg is not None:
            self._put(book.chg.groups.setdefault((self.win[s], d), Pairs()), level, s, IN_GRP)
            if not self._bulk:
                book.chg.retrig(book.chg.hist.window)
        elif book.day is not None:
            self._put(book.day.groups[d], level, s, IN_GRP)
            if not self._bulk:
                book.day.retrig()
        if not self._bulk:
            book.retrig()

    def _put(self, pairs: Pairs, key: float, s: int, bit: int) -> None:
        self.where[s] |= bit
        if self._bulk:  # sorted once in end_bulk
            pairs.keys.append(key)
            pairs.slots.append(s)
        else:
            pairs.insert(key, s)

    def _sorted(self, pairs: Pairs) -> Pairs:
        if self._bulk:
            pairs.sort()
        return pairs


def _nbytes(a: array[int] | array[float]) -> int:
    return 64 + a.buffer_info()[1] * a.itemsize
