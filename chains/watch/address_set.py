"""A set of EVM-style addresses (lower-case 40-hex strings) in 20 bytes each.

The watcher holds every pool address of a protocol in memory; ten million of them as Python
strings in a dict cost ~1.3 GB (an 89-byte string object and a dict slot each). Here each address
is a fixed-width 20-byte key, kept sorted in two flat buffers — the first 8 bytes as an unsigned
integer in an `array('Q')`, the other 12 in one `bytearray` at the same position — so a look-up
is a binary search done in C (`bisect` over the array) and a 12-byte comparison to confirm; a
shared 8-byte prefix only means a few more comparisons, never a false match. Neither buffer is
a container of objects: the garbage collector never walks them (a full collection over a set of
a million strings was a ~90 ms pause, docs/performance.md).

Most recipients a watcher looks up are strangers. In front of the search sits a bitmap of 2^28
bits (32 MB, allocated lazily by the kernel: a small pool touches few of its pages), one bit per
value of an address's first 7 hex digits, set for every member: a clear bit answers "no" with
one slice, one `int` and one byte — most strangers never reach the search (at ten million
members 4% of them do). A set bit only sends the look-up on to the exact search.

Addresses added since the last compaction sit in a small dict of strings (the delta); when it
grows past a share of the sorted part it is merged in, in one pass that copies the sorted
buffers between the delta's insertion points. That suits a pool growing by imports, not a
first load of millions: each merge moves the whole sorted part again (ten million took five
minutes on a busy box). A first load goes through `BulkLoad` instead: the keys gathered as flat
20-byte records split by their first byte, then each part sorted on its own and appended —
every address handled a fixed number of times, whatever the pool's size. Membership is exact:
no false positives, no false negatives; a string that is not 40 lower-case hex digits is simply
not a member.
"""

from __future__ import annotations

import mmap
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator

HEAD_BYTES = 8  # the part searched in the array
TAIL_BYTES = 12  # the part compared to confirm
KEY_BYTES = HEAD_BYTES + TAIL_BYTES
LINE_BYTES = 2 * KEY_BYTES + 1  # 40 hex digits and a newline
# The delta is merged when it reaches an eighth of the sorted part, between these bounds: small
# enough that its strings (~130 bytes an address) stay a fraction of the set, large enough that
# a merge (a copy of both buffers) is rare while a pool is loaded.
DELTA_MIN = 65_536
DELTA_MAX = 262_144
FILTER_DIGITS = 7  # hex digits of an address that index the bitmap: 28 bits


def _key(hex20: object) -> bytes | None:
    """The 20 bytes of a lower-case 40-hex string; None for anything else."""
    if not isinstance(hex20, str) or len(hex20) != 40 or hex20 != hex20.lower():
        return None
    try:
        key = bytes.fromhex(hex20)
    except ValueError:
        return None
    # fromhex skips whitespace between pairs: 40 characters with a space are fewer bytes.
    return key if len(key) == 20 else None


def _keys(hex20s: list[str]) -> bytes:
    """The 20-byte keys of a page of addresses, back to back, checked as one string (a call per
    page, not per address); ValueError naming the first that is not lower-case 40-hex."""
    try:
        joined = "".join(hex20s)
        blob = bytes.fromhex(joined) if joined == joined.lower() else b""
    except (TypeError, ValueError):
        blob = b""
    # Each exactly 40 long, and fromhex skipped no whitespace: the keys are where they seem.
    if len(blob) == KEY_BYTES * len(hex20s) and all(len(hex20) == 40 for hex20 in hex20s):
        return blob
    bad = next(hex20 for hex20 in hex20s if _key(hex20) is None)
    raise ValueError(f"not a lower-case 40-hex address: {bad!r}")


class BulkLoad:
    """Addresses gathered for one `AddressSet.load`: 20 bytes each in one of 256 flat parts by
    their first byte (so a part is a slice of the sorted order), with nothing sorted or merged
    until the load. A page of strings is turned into keys as it is added and dropped."""

    def __init__(self) -> None:
        self.parts = [bytearray() for _ in range(256)]
        self._rest = b""  # add_lines: the start of a line cut by the end of a chunk

    def add(self, hex20s: Iterable[str]) -> None:
        """Gather a page; ValueError (nothing of this page gathered) for anything but
        lower-case 40-hex."""
        self._gather(_keys(list(hex20s)))

    def add_lines(self, text: bytes) -> None:
        """Gather addresses from text, one lower-case 40-hex a line, each line ended by a
        newline (what PostgreSQL's COPY sends), in chunks cut anywhere: a line cut short waits
        for the next chunk. ValueError for a line that is not lower-case 40-hex."""
        text = self._rest + text
        whole = len(text) - len(text) % LINE_BYTES
        lines, self._rest = text[:whole], text[whole:]
        count = whole // LINE_BYTES
        blob = b""
        if lines[KEY_BYTES * 2 :: LINE_BYTES] == b"\n" * count and lines == lines.lower():
            try:
                blob = bytes.fromhex(lines.decode("ascii"))  # the newlines are skipped
            except (UnicodeDecodeError, ValueError):
                blob = b""
        if len(blob) != KEY_BYTES * count:
            lines_read = (line.decode(errors="replace") for line in lines.split(b"\n")[:-1])
            bad = next((line for line in lines_read if _key(line) is None), lines[:LINE_BYTES])
            raise ValueError(f"not a lower-case 40-hex address: {bad!r}")
        self._gather(blob)

    def finish_lines(self) -> None:
        """The text ended: nothing may be left of a line."""
        if self._rest:
            raise ValueError(f"not a lower-case 40-hex address: {self._rest!r}")

    def _gather(self, blob: bytes) -> None:
        parts = self.parts
        for at in range(0, len(blob), KEY_BYTES):
            parts[blob[at]] += blob[at : at + KEY_BYTES]


class AddressSet:
    def __init__(self, hex20s: Iterable[str] = ()) -> None:
        self._heads = array("Q")  # sorted by (head, tail)
        self._tails = bytearray()  # TAIL_BYTES per address, in the heads' order
        self._delta: dict[str, None] = {}  # values unused: a dict of strings is not GC-tracked
        # An anonymous map: zero pages cost nothing until a bit in them is set.
        self._filter = mmap.mmap(-1, 1 << (4 * FILTER_DIGITS - 3))
        self.update(hex20s)

    def __len__(self) -> int:
        return len(self._heads) + len(self._delta)

    def __contains__(self, hex20: object) -> bool:
        if not self._may_hold(hex20):
            return False
        if hex20 in self._delta:
            return True
        key = _key(hex20)
        return key is not None and self._sorted_index(key) >= 0

    def __iter__(self) -> Iterator[str]:
        tails = self._tails
        for i, head in enumerate(self._heads):
            yield (
                head.to_bytes(HEAD_BYTES, "big").hex()
                + tails[i * TAIL_BYTES : (i + 1) * TAIL_BYTES].hex()
            )
        yield from list(self._delta)

    def footprint(self) -> int:
        """Bytes held: the sorted buffers as allocated, the bitmap, the delta's dict and keys."""
        return (
            self._heads.buffer_info()[1] * self._heads.itemsize
            + sys.getsizeof(self._tails)
            + len(self._filter)
            + sys.getsizeof(self._delta)
            + sum(sys.getsizeof(hex20) for hex20 in self._delta)
        )

    def matching(self, hex20s: Iterable[str]) -> set[str]:
        """Those of `hex20s` in the set: a whole range's recipients at once, each distinct one
        looked up once."""
        delta, bits = self._delta, self._filter
        found: set[str] = set()
        for hex20 in set(hex20s):
            try:
                prefix = int(hex20[:FILTER_DIGITS], 16)
            except (TypeError, ValueError):
                continue
            if not bits[prefix >> 3] & (1 << (prefix & 7)):
                continue
            if hex20 in delta:
                found.add(hex20)
                continue
            key = _key(hex20)
            if key is not None and self._sorted_index(key) >= 0:
                found.add(hex20)
        return found

    def add(self, hex20: str) -> bool:
        """Add one address; False if it was already there."""
        return self.update((hex20,)) == 1

    def update(self, hex20s: Iterable[str]) -> int:
        """Add addresses; returns how many were new. Anything but a lower-case 40-hex string is
        refused (ValueError, the set unchanged from that one on): the set could never find it."""
        delta, bits = self._delta, self._filter
        added = 0
        for hex20 in hex20s:
            key = _key(hex20)
            if key is None:
                raise ValueError(f"not a lower-case 40-hex address: {hex20!r}")
            prefix = int(hex20[:FILTER_DIGITS], 16)
            bit = 1 << (prefix & 7)
            if bits[prefix >> 3] & bit:
                # Only a set bit can mean a member; a clear one is a new address for certain.
                if hex20 in delta or self._sorted_index(key) >= 0:
                    continue
            else:
                bits[prefix >> 3] |= bit
            delta[hex20] = None
            added += 1
            if len(delta) >= min(DELTA_MAX, max(DELTA_MIN, len(self._heads) // 8)):
                self.compact()
                delta = self._delta
        return added

    def load(self, bulk: BulkLoad) -> int:
        """Add what `bulk` gathered; returns how many were new. Into an empty set (a first load)
        each part is sorted and appended to the buffers; into one that holds addresses
        already, they go through `update`. The parts are emptied as they are taken, so the
        keys are held about once, not twice, at the peak."""
        parts = bulk.parts
        if len(self):
            return sum(
                self.update(
                    part[at : at + KEY_BYTES].hex() for at in range(0, len(part), KEY_BYTES)
                )
                for part in _taken(parts)
            )
        heads, tails, bits = self._heads, self._tails, self._filter
        shift = 8 * HEAD_BYTES - 4 * FILTER_DIGITS
        for part in _taken(parts):
            data = bytes(part)
            del part[:]
            keys = sorted({data[at : at + KEY_BYTES] for at in range(0, len(data), KEY_BYTES)})
            new = array("Q", b"".join([key[:HEAD_BYTES] for key in keys]))
            if sys.byteorder == "little":  # the keys' bytes are big-endian: order as integers
                new.byteswap()
            heads.extend(new)
            tails += b"".join([key[HEAD_BYTES:] for key in keys])
            for head in new:
                prefix = head >> shift
                bits[prefix >> 3] |= 1 << (prefix & 7)
        return len(heads)

    def compact(self) -> None:
        """Merge the delta into the sorted buffers, in place: they grow by the delta, then
        from the end backwards each run of old entries moves up past the keys that go before
        it. No second copy of the buffers (at ten million that would be another 200 MB)."""
        if not self._delta:
            return
        keys = sorted(bytes.fromhex(hex20) for hex20 in self._delta)
        points = []  # where each key goes among the old entries, in order
        lo = 0
        for key in keys:
            lo = self._insertion_point(key, lo=lo)
            points.append(lo)
        heads, tails = self._heads, self._tails
        end = len(heads)
        heads.frombytes(bytes(HEAD_BYTES * len(keys)))
        tails += bytes(TAIL_BYTES * len(keys))
        for j in range(len(keys) - 1, -1, -1):
            at, key = points[j], keys[j]
            # Old entries [at, end) have j + 1 keys before them once merged: the keys 0..j.
            if at < end:
                heads[at + j + 1 : end + j + 1] = heads[at:end]
                tails[(at + j + 1) * TAIL_BYTES : (end + j + 1) * TAIL_BYTES] = tails[
                    at * TAIL_BYTES : end * TAIL_BYTES
                ]
            heads[at + j] = int.from_bytes(key[:HEAD_BYTES], "big")
            tails[(at + j) * TAIL_BYTES : (at + j + 1) * TAIL_BYTES] = key[HEAD_BYTES:]
            end = at
        self._delta = {}

    def _may_hold(self, hex20: object) -> bool:
        """False when `hex20` is certainly not a member (its bit is clear, or it is no hex)."""
        try:
            prefix = int(hex20[:FILTER_DIGITS], 16)  # type: ignore[index]
        except (TypeError, ValueError):
            return False
        return bool(self._filter[prefix >> 3] & (1 << (prefix & 7)))

    def _sorted_index(self, key: bytes) -> int:
        """The position of `key` in the sorted buffers, or -1."""
        heads, tails = self._heads, self._tails
        head = int.from_bytes(key[:HEAD_BYTES], "big")
        tail = key[HEAD_BYTES:]
        i = bisect_left(heads, head)
        # Addresses sharing the 8-byte head sit together, ordered by tail: compare each.
        while i < len(heads) and heads[i] == head:
            if tails[i * TAIL_BYTES : (i + 1) * TAIL_BYTES] == tail:
                return i
            i += 1
        return -1

    def _insertion_point(self, key: bytes, *, lo: int) -> int:
        """Where `key` goes in the sorted buffers, searching from `lo` (keys come in order)."""
        heads, tails = self._heads, self._tails
        head = int.from_bytes(key[:HEAD_BYTES], "big")
        tail = key[HEAD_BYTES:]
        i = bisect_left(heads, head, lo)
        while (
            i < len(heads)
            and heads[i] == head
            and tails[i * TAIL_BYTES : (i + 1) * TAIL_BYTES] < tail
        ):
            i += 1
        return i


def _taken(parts: list[bytearray]) -> Iterator[bytearray]:
    """Each part in order, let go of by the list as it is handed out."""
    for at, part in enumerate(parts):
        parts[at] = bytearray()
        yield part
