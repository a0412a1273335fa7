"""Product id → catalogue row, looked up for many ids at once (Rank's candidates).

A small catalogue keeps a dict. A large one (``table_from`` ids or more) keeps a hash
table in numpy arrays instead, because a dict lookup in a million keys follows four
pointers into cold memory one after another (index, entry, key string, value int):
about 0.7 µs an id, 620 of the 830 µs that Rank of 1,000 candidates cost in-process
on a million products. The table is looked up for every candidate in a few numpy
calls, and the processor overlaps their cache misses: 0.25 µs an id there.

The table: Python's own string hash (keyed SipHash, so ids cannot be chosen to pile
into one place), buckets of eight slots of ``tag | row`` (one cache line), filled in
order, the next bucket when one is full; at most half the slots are used. A tag match
counts only once the id's UTF-8 bytes equal those kept in an arena, compared eight
bytes at a time. With the candidates' bytes at hand (:class:`EncodedIds`, from Rank's
bulk decoding) that comparison is vectorised too; otherwise the ids are compared in
Python. For a million ids it holds 34 MB of slots, 8 MB of places and 10 MB of bytes
(the dict and its int objects: 63 MB).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import repeat
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
ByteArray = npt.NDArray[np.uint8]

# From this many ids, the table. Server CPU per Rank call, dict -> table (paired runs):
# 1,000 candidates 0.80x on 100,000 products and 0.53x on a million; 100 candidates
# 1.05x and 0.98x (the table's fixed cost: some 25 numpy calls). In-process, the two
# cost the same for 1,000 ids near 60,000 products.
TABLE_FROM = 65_536
# Up to this many ids, the table is read one id at a time: quicker than its numpy calls
# (10 ids on a million: 13 against 18 µs).
ONE_BY_ONE_UP_TO = 12
SLOTS = 8  # per bucket: 8 hashes fill one 64-byte cache line
PADDING = 7  # bytes readable after the last id (eight-byte reads from any id's start)
LENGTH_BITS = 20  # an id's place in the arena: start << LENGTH_BITS | length
_LENGTH_MASK = (1 << LENGTH_BITS) - 1
_ROW_MASK = (1 << 32) - 1
_TAG_MASK = -(1 << 32)  # (the high 32 bits, as a signed 64-bit number)
_TAG_BIT = 1 << 32
# Ids are UTF-8 (the wire and the stores see to it); a lone surrogate, were one to come,
# is kept as its three bytes rather than raise.
_ANY = "surrogatepass"
# _KEEP[k]: the low k bytes of a little-endian word.
_KEEP = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


class EncodedIds(NamedTuple):
    """The UTF-8 bytes of n ids: id i is ``data[start[i] : start[i] + length[i]]``, and
    ``data`` has at least PADDING bytes after the last of them."""

    data: ByteArray
    start: IntArray
    length: IntArray


def _words(data: ByteArray) -> npt.NDArray[np.uint64]:
    """Every eight bytes of ``data`` as a little-endian word, item i starting at byte i."""
    return np.ndarray((data.size - PADDING,), dtype="<u8", buffer=data, strides=(1,))


def _same_bytes(
    a: npt.NDArray[np.uint64],
    a_start: IntArray,
    b: npt.NDArray[np.uint64],
    b_start: IntArray,
    length: IntArray,
    b_longest: int,
) -> npt.NDArray[np.bool_]:
    """Whether each of the byte strings of these lengths in ``a`` and ``b`` (as _words) are
    equal, compared eight bytes at a time, up to ``b_longest`` bytes: ``b`` holds no
    longer string, and has that many bytes and PADDING after each of its strings."""
    if not length.size:
        return np.ones(0, dtype=bool)
    longest, shortest = min(int(length.max()), b_longest), int(length.min())
    # A word past an id's end is masked out, so it may be read from anywhere: from the
    # last word when it would be past the end. (Indexing, not take: take first copies
    # all of a view that is not contiguous.)
    a_fits = int(a_start.max()) + longest <= a.size
    differs = np.zeros(length.size, dtype=np.uint64)
    for step in range(0, longest, 8):
        x = a[a_start + step if a_fits else np.minimum(a_start + step, a.size - 1)]
        x ^= b[b_start + step]
        if step + 8 > shortest:  # some id ends within this word
            x &= _KEEP.take(np.minimum(np.maximum(length - step, 0), 8))
        differs |= x
    same: npt.NDArray[np.bool_] = differs == 0
    return same


def encode(product_ids: Sequence[str]) -> EncodedIds:
    """The ids' bytes, joined and padded."""
    joined = "".join(product_ids)
    if joined.isascii():
        data = joined.encode("ascii")
        length = np.fromiter(map(len, product_ids), np.int64, len(product_ids))
    else:
        encoded = [i.encode("utf-8", _ANY) for i in product_ids]
        data = b"".join(encoded)
        length = np.fromiter(map(len, encoded), np.int64, len(encoded))
    start = length.cumsum()
    start -= length
    return EncodedIds(np.frombuffer(data + bytes(PADDING), dtype=np.uint8), start, length)


_Hashes = TypeVar("_Hashes", int, IntArray)


def _tags(hashes: _Hashes) -> _Hashes:
    """The high half of each hash, bit 32 set so that no tag is 0 (an empty slot)."""
    return (hashes | _TAG_BIT) & _TAG_MASK


class _Table:
    """The hash table and the arena of the ids' bytes (see the module docstring).

    A slot holds ``tag | row``: the high 32 bits of the id's hash (see _tags) and its row
    (below 2**32), so one cache line holds a bucket's hashes and rows. An id's place in
    the arena is ``start << LENGTH_BITS | length``, one number to read per row.
    """

    def __init__(
        self, ids: list[str], product_ids: Sequence[str], rows: IntArray, room: int
    ) -> None:
        """A table of ``product_ids`` at ``rows`` (distinct), with slots for ``room`` ids."""
        self._ids = ids  # row -> id (the index's own list)
        n = len(product_ids)
        buckets = 16
        while buckets * SLOTS < 2 * max(n, room):
            buckets *= 2
        self._mask = buckets - 1
        self._slots = np.zeros((buckets, SLOTS), dtype=np.int64)  # 0: an empty slot
        self.count = n
        capacity = max(int(rows.max()) + 1 if rows.size else 1, 1024)
        if capacity - 1 > _ROW_MASK:
            raise ValueError("a row out of the index's range")
        encoded = encode(product_ids)
        if encoded.length.size and int(encoded.length.max()) >= 1 << LENGTH_BITS:
            raise ValueError("a product id is too long to index")
        self._place = np.zeros(capacity, dtype=np.int64)  # row -> its id in the arena
        self._place[rows] = (encoded.start << LENGTH_BITS) | encoded.length
        self._used = encoded.data.size - PADDING
        self._longest = int(encoded.length.max()) if n else 0
        self._arena = np.zeros(2 * (self._used + self._longest + PADDING) + 4096, np.uint8)
        self._arena[: encoded.data.size] = encoded.data
        self._arena_words = _words(self._arena)
        hashes = np.fromiter(map(hash, product_ids), np.int64, n)
        self._fill(hashes & self._mask, _tags(hashes) | rows)

    def _fill(self, bucket: IntArray, value: IntArray) -> None:
        """Puts the slot values of distinct new ids in their buckets, all at once: the ids
        aimed at one bucket take its free slots in turn, those left over the next bucket."""
        filled = np.count_nonzero(self._slots, axis=1)
        while bucket.size:
            order = np.argsort(bucket)  # (any order within a bucket will do)
            bucket, value = bucket[order], value[order]
            first = np.ones(bucket.size, dtype=bool)
            first[1:] = bucket[1:] != bucket[:-1]
            at = np.arange(bucket.size)
            slot = filled[bucket] + at - np.maximum.accumulate(np.where(first, at, 0))
            fits = slot < SLOTS
            self._slots[bucket[fits], slot[fits]] = value[fits]
            filled += np.bincount(bucket[fits], minlength=filled.size)
            left = ~fits
            bucket, value = (bucket[left] + 1) & self._mask, value[left]

    # -- one id ------------------------------------------------------------------------------

    def _find(self, product_id: str, h: int) -> tuple[int, int, int]:
        """(bucket, slot, row) of the id, or of the empty slot where it would go (row 0)."""
        tag = _tags(h)
        bucket = h & self._mask
        ids, slots = self._ids, self._slots
        while True:
            for slot, value in enumerate(slots[bucket].tolist()):
                if value == 0:
                    return bucket, slot, 0
                row = value & _ROW_MASK
                if value - row == tag and ids[row] == product_id:
                    return bucket, slot, row
            bucket = (bucket + 1) & self._mask

    def get(self, product_id: str) -> int:
        return self._find(product_id, hash(product_id))[2]

    def add(self, product_id: str, row: int) -> bool:
        """Maps the id to ``row``; False, doing nothing, when the table must grow first."""
        data = product_id.encode("utf-8", _ANY)
        if not 0 < row <= _ROW_MASK or len(data) >= 1 << LENGTH_BITS:
            raise ValueError("a product id or row out of the index's range")
        h = hash(product_id)
        bucket, slot, held = self._find(product_id, h)
        if held == 0:
            if 2 * (self.count + 1) > self._slots.size:
                return False
            self.count += 1
        self._slots[bucket, slot] = _tags(h) | row
        if row >= self._place.size:
            more = max(row + 1, 2 * self._place.size) - self._place.size
            self._place = np.concatenate([self._place, np.zeros(more, np.int64)])
        end = self._used + len(data)
        self._longest = max(self._longest, len(data))
        # Room for reading the longest id from where any id starts, and PADDING.
        if end + self._longest + PADDING > self._arena.size:
            arena = np.zeros(2 * (end + self._longest + PADDING), dtype=np.uint8)
            arena[: self._used] = self._arena[: self._used]
            self._arena, self._arena_words = arena, _words(arena)
        self._arena[self._used : end] = np.frombuffer(data, dtype=np.uint8)
        self._place[row] = (self._used << LENGTH_BITS) | len(data)
        self._used = end
        return True

    # -- many ids ----------------------------------------------------------------------------

    def rows(self, product_ids: Sequence[str], encoded: EncodedIds | None) -> IntArray:
        n = len(product_ids)
        if n <= ONE_BY_ONE_UP_TO:
            return np.fromiter(map(self.get, product_ids), np.int64, n)
        hashes = np.fromiter(map(hash, product_ids), np.int64, n)
        bucket = hashes & self._mask
        # Each id's bucket, flat, xor its tag: a slot of the id's is then its row, below
        # 2**32. (Flat arrays: numpy's broadcasting and reductions over rows of eight
        # cost several times more.)
        held = self._slots.take(bucket, axis=0).ravel()
        held ^= np.repeat(_tags(hashes), SLOTS)
        at = np.flatnonzero(held.view(np.uint64) <= _ROW_MASK)
        rows = np.zeros(n, dtype=np.int64)
        rows[at >> 3] = held[at]  # (SLOTS == 8)
        if at.size < n:
            # Not in its bucket, which is full: it may be in one after (the slow way).
            missing = np.flatnonzero(rows == 0)
            full = self._slots.ravel().take(bucket[missing] * SLOTS + SLOTS - 1) != 0
            for i in missing[full].tolist():
                rows[i] = self.get(product_ids[i])
        # A tag match is a match only if the bytes are the same.
        if encoded is not None:
            place = self._place.take(rows)
            same = ((place & _LENGTH_MASK) == encoded.length) & _same_bytes(
                _words(encoded.data),
                encoded.start,
                self._arena_words,
                place >> LENGTH_BITS,
                encoded.length,
                self._longest,
            )
        else:
            same = np.fromiter(
                map(operator.eq, map(self._ids.__getitem__, rows.tolist()), product_ids),
                dtype=bool,
                count=n,
            )
        wrong = np.flatnonzero(~same & (rows != 0))
        for i in wrong.tolist():  # two ids with one tag in a bucket: rare
            rows[i] = self.get(product_ids[i])
        return rows

    def grow(self) -> None:
        """Twice the slots, each id held put in its new bucket; the arena stays. (Done
        under the catalogue's lock: 0.34 s for a million ids, once per doubling.)"""
        rows = self.used_rows()
        ids = self._ids  # (each id's hash is cached on its string: none is computed again)
        hashes = np.fromiter(map(hash, map(ids.__getitem__, rows.tolist())), np.int64, rows.size)
        self._mask = 2 * self._slots.shape[0] - 1
        self._slots = np.zeros((self._mask + 1, SLOTS), dtype=np.int64)
        self._fill(hashes & self._mask, _tags(hashes) | rows)

    def used_rows(self) -> IntArray:
        rows: IntArray = self._slots[self._slots != 0] & _ROW_MASK
        rows.sort()
        return rows


class IdIndex:
    """Product id → row (rows from 1; 0 is "not there"), and row → id (``ids``)."""

    def __init__(self, table_from: int = TABLE_FROM) -> None:
        self.table_from = table_from
        self.ids: list[str] = [""]  # row -> id ("" for a row without one; row 0 never has)
        self._dict: dict[str, int] | None = {}
        self._table: _Table | None = None

    def __len__(self) -> int:
        if self._dict is not None:
            return len(self._dict)
        assert self._table is not None
        return self._table.count

    @property
    def uses_table(self) -> bool:
        return self._table is not None

    def replace(self, product_ids: Sequence[str], rows: IntArray) -> None:
        """Replaces everything with these ids at these rows (distinct, each > 0)."""
        size = int(rows.max()) + 1 if rows.size else 1
        ids = [""] * size
        for row, product_id in zip(rows.tolist(), product_ids, strict=True):
            ids[row] = product_id
        self.ids = ids
        if len(product_ids) >= self.table_from:
            self._dict = None
            # (Room to grow by half before the table grows, which holds up lookups.)
            self._table = _Table(self.ids, product_ids, rows, len(product_ids) * 3 // 2)
        else:
            self._dict = dict(zip(product_ids, rows.tolist(), strict=True))
            self._table = None

    def add(self, product_id: str, row: int) -> None:
        """Maps ``product_id`` to ``row`` (> 0), as a dict assignment would."""
        ids = self.ids
        if row >= len(ids):
            ids.extend([""] * (row + 1 - len(ids)))
        elif ids[row] == product_id:
            return
        ids[row] = product_id
        if self._dict is not None:
            self._dict[product_id] = row
            if len(self._dict) >= self.table_from:
                self._rebuild()
        else:
            assert self._table is not None
            if not self._table.add(product_id, row):  # half full: first twice the slots
                self._table.grow()
                self._table.add(product_id, row)

    def _rebuild(self) -> None:
        """The first table, from the dict, with room for twice as many ids."""
        assert self._dict is not None
        product_ids, rows = list(self._dict), np.fromiter(self._dict.values(), np.int64)
        self._dict = None
        self._table = _Table(self.ids, product_ids, rows, 2 * len(product_ids))

    def get(self, product_id: str) -> int:
        if self._dict is not None:
            return self._dict.get(product_id, 0)
        assert self._table is not None
        return self._table.get(product_id)

    def rows(self, product_ids: Sequence[str], encoded: EncodedIds | None = None) -> IntArray:
        """Each id's row, 0 for an id not held. ``encoded``: the same ids' bytes (optional,
        makes a large lookup quicker)."""
        if self._dict is not None:
            n = len(product_ids)
            return np.fromiter(map(self._dict.get, product_ids, repeat(0, n)), np.int64, n)
        assert self._table is not None
        return self._table.rows(product_ids, encoded)

    def used_rows(self) -> IntArray:
        """The rows that ids map to, in order."""
        if self._dict is not None:
            return np.array(sorted(self._dict.values()), dtype=np.int64)
        assert self._table is not None
        return self._table.used_rows()
