"""Alarm id -> the engine's slot for it, in two sorted arrays (12 bytes an id): a removed id
leaves a tombstone until a rebuild, ids that arrive out of order wait in a small dict. Ids
from the store's counter come in order, so a load only appends."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("IdMap",)

_REBUILD_MIN: Final = 1024


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

    def top(self) -> int:
        """No id above this one is held (-1 when none is)."""
        top = self._ids[-1] if self._ids else -1
        stray = max(self._extra, default=-1)
        return max(top, stray)

    def extend(self, keys: Sequence[int], slots: Sequence[int]) -> None:
        """``put`` of many ids, ascending and all above ``top()``: a load's appends."""
        if keys and keys[0] <= self.top():
            raise ValueError(f"id {keys[0]} is not above every id held ({self.top()})")
        self._ids.extend(keys)
        self._slots.extend(slots)

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


def _nbytes(a: array[int]) -> int:
    return 64 + a.buffer_info()[1] * a.itemsize
