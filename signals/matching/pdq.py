"""An exact PDQ index: every stored hash within a Hamming distance, never an approximation.

Structure (chosen by measurement, see ``docs/decisions/0200-pdq-index.md``):

- a *main segment*, immutable, indexed by multi-index hashing (MIH): the 256 bits are cut into
  16 chunks of 16 bits, and for each chunk a counting-sorted table maps each of the 65,536
  chunk values to the rows holding it. By the pigeonhole principle, a hash within distance
  ``r`` of a query differs from it in at most ``r // 16`` bits in at least one chunk, so probing
  every chunk value within ``r // 16`` bits of the query's chunk yields a candidate set that
  contains every true match. Each candidate is then re-checked exactly with a popcount over
  four 64-bit words, so nothing beyond the radius is returned either;
- a small *delta* of recent additions, searched by brute force, merged into a new main segment
  when it grows past a fraction of the main one;
- tombstones for removed rows of the main segment, dropped at the next merge.

When the candidate set a query would produce is a large fraction of the index (large radius,
or a crowded region of hash space such as near-blank images), that query is answered by a
brute-force scan instead, which is exact too. So every answer is exact for any radius 0..256.

The index is not thread-safe: callers that share one across threads serialise access.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable
from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt

__all__ = [
    "HASH_BYTES",
    "MAX_DISTANCE",
    "PdqIndex",
    "pdq_bytes_to_hex",
    "pdq_hex_to_bytes",
]

HASH_BITS = 256
HASH_BYTES = 32
HEX_LENGTH = 64
MAX_DISTANCE = HASH_BITS
_WORDS = 4  # 64-bit words per hash
_CHUNKS = 16  # 16-bit chunks per hash
_CHUNK_VALUES = 1 << 16

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]
Matches = list[tuple[int, int]]


def pdq_hex_to_bytes(hex_: str) -> bytes:
    """The 32 bytes of a PDQ hash written as 64 hex digits (either case); ValueError otherwise."""
    if len(hex_) != HEX_LENGTH:
        raise ValueError(f"a PDQ hash is {HEX_LENGTH} hex digits, not {len(hex_)}")
    try:
        return binascii.unhexlify(hex_)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a PDQ hash is written in hex digits only") from exc


def pdq_bytes_to_hex(b: bytes) -> str:
    """The canonical (lowercase) hex form of a 32-byte PDQ hash."""
    if len(b) != HASH_BYTES:
        raise ValueError(f"a PDQ hash is {HASH_BYTES} bytes, not {len(b)}")
    return b.hex()


def _flip_masks(max_flips: int) -> npt.NDArray[np.uint16]:
    """Every 16-bit mask with at most ``max_flips`` bits set (1, 17, 137, 697, ... masks)."""
    values = np.arange(_CHUNK_VALUES, dtype=np.uint32)
    weights = np.bitwise_count(values)
    return values[weights <= max_flips].astype(np.uint16)


_MASKS = {f: _flip_masks(f).astype(np.int64) for f in range(4)}


def _as_words(hashes: npt.ArrayLike) -> U64:
    """``(n, 32)`` uint8 hashes as a contiguous ``(n, 4)`` uint64 array (same bytes)."""
    arr = np.ascontiguousarray(hashes, dtype=np.uint8)
    if arr.ndim != 2 or arr.shape[1] != HASH_BYTES:
        raise ValueError(f"hashes must have shape (n, {HASH_BYTES}), not {arr.shape}")
    return arr.view(np.uint64).reshape(-1, _WORDS)


@dataclass(eq=False)
class _Segment:
    """An immutable MIH segment. Rows are sorted by id, so ids are found by bisection."""

    ids: I64  # (n,), strictly increasing
    words: U64  # (n, 4)
    alive: npt.NDArray[np.bool_]  # (n,)
    offsets: I64  # (16 * 65536 + 1,): chunk j, value v -> positions[offsets[j*65536+v] : ...+1]
    positions: I32  # (16 * n,): row numbers, grouped by (chunk, value)
    dead: int = 0

    @classmethod
    def build(cls, ids: I64, words: U64) -> _Segment:
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            words = np.take(words, order, axis=0)
        ids = np.ascontiguousarray(ids)
        words = np.ascontiguousarray(words)
        n = len(ids)
        chunks = words.view(np.uint16).reshape(n, _CHUNKS)
        positions = np.empty(_CHUNKS * n, dtype=np.int32)
        counts = np.empty(_CHUNKS * _CHUNK_VALUES, dtype=np.int64)
        for j in range(_CHUNKS):
            column = np.ascontiguousarray(chunks[:, j])
            # numpy sorts 16-bit integers with a radix sort when asked for a stable sort.
            positions[j * n : (j + 1) * n] = np.argsort(column, kind="stable")
            counts[j * _CHUNK_VALUES : (j + 1) * _CHUNK_VALUES] = np.bincount(
                column, minlength=_CHUNK_VALUES
            )
        offsets = np.zeros(_CHUNKS * _CHUNK_VALUES + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(
            ids=ids,
            words=words,
            alive=np.ones(n, dtype=np.bool_),
            offsets=offsets,
            positions=positions,
        )

    def __len__(self) -> int:
        return len(self.ids) - self.dead

    def rows_of(self, ids: I64) -> I64:
        """Rows holding ``ids`` (alive ones only); ids not in the segment are skipped."""
        if len(self.ids) == 0 or len(ids) == 0:
            return np.empty(0, dtype=np.int64)
        at = np.searchsorted(self.ids, ids)
        at = np.minimum(at, len(self.ids) - 1)
        found = (self.ids[at] == ids) & self.alive[at]
        return at[found].astype(np.int64)

    def finish(self, q: I64, rows: I64, d: npt.NDArray[np.int32]) -> Found:
        """Drop removed rows and turn row numbers into ids."""
        keep = self.alive[rows]
        return q[keep], self.ids[rows[keep]], d[keep]

    def kill(self, rows: I64) -> None:
        rows = np.unique(rows)
        self.alive[rows] = False
        self.dead += len(rows)

    def nbytes(self) -> int:
        return (
            self.ids.nbytes
            + self.words.nbytes
            + self.alive.nbytes
            + self.offsets.nbytes
            + self.positions.nbytes
        )


class _Delta:
    """Recent additions, searched by brute force; a growable array plus an id -> row map."""

    def __init__(self) -> None:
        self.ids: I64 = np.empty(0, dtype=np.int64)
        self.words: U64 = np.empty((0, _WORDS), dtype=np.uint64)
        self.size = 0
        self.row_of: dict[int, int] = {}

    def __len__(self) -> int:
        return self.size

    def _reserve(self, extra: int) -> None:
        need = self.size + extra
        if need <= len(self.ids):
            return
        capacity = max(need, 2 * len(self.ids), 1024)
        ids = np.empty(capacity, dtype=np.int64)
        words = np.empty((capacity, _WORDS), dtype=np.uint64)
        ids[: self.size] = self.ids[: self.size]
        words[: self.size] = self.words[: self.size]
        self.ids, self.words = ids, words

    def append(self, ids: I64, words: U64) -> None:
        self._reserve(len(ids))
        start = self.size
        self.ids[start : start + len(ids)] = ids
        self.words[start : start + len(ids)] = words
        for offset, id_ in enumerate(ids.tolist()):
            self.row_of[id_] = start + offset
        self.size += len(ids)

    def discard(self, ids: Iterable[int]) -> None:
        for id_ in ids:
            row = self.row_of.pop(id_, None)
            if row is None:
                continue
            last = self.size - 1
            if row != last:
                moved = int(self.ids[last])
                self.ids[row] = self.ids[last]
                self.words[row] = self.words[last]
                self.row_of[moved] = row
            self.size -= 1

    def live(self) -> tuple[I64, U64]:
        return self.ids[: self.size], self.words[: self.size]

    def nbytes(self) -> int:
        # A dict entry with its two boxed ints costs roughly 100 bytes on CPython.
        return self.ids.nbytes + self.words.nbytes + 100 * len(self.row_of)


class PdqIndex:
    """An exact Hamming-radius index of 256-bit PDQ hashes keyed by int64 ids.

    ``search`` returns, per query, ``(id, distance)`` for every stored hash within
    ``max_distance``, sorted by distance then id. Re-adding an id replaces its hash.
    """

    #: A delta this small is always cheap to scan; beyond it, merge once it reaches
    #: ``1 / MERGE_FRACTION`` of the main segment.
    MIN_DELTA = 4096
    MERGE_FRACTION = 64
    #: Scan the whole main segment instead of probing when the probes would yield more than
    #: ``1 / BRUTE_FRACTION`` of its rows as candidates: a random gather costs several times
    #: a sequential scan per row (measured; see the decision record).
    BRUTE_FRACTION = 24
    #: Queries answered together, bounding the temporary candidate arrays (~32 B each).
    BATCH = 32

    def __init__(self) -> None:
        self._main: _Segment | None = None
        self._delta = _Delta()

    # -- size -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return (len(self._main) if self._main is not None else 0) + len(self._delta)

    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays and maps (what one process pays per index)."""
        main = self._main.nbytes() if self._main is not None else 0
        return main + self._delta.nbytes() + sum(m.nbytes for m in _MASKS.values())

    def fixed_bytes(self) -> int:
        """The part of ``memory_bytes`` that does not grow with the number of hashes."""
        offsets = self._main.offsets.nbytes if self._main is not None else 0
        return offsets + sum(m.nbytes for m in _MASKS.values())

    # -- writes -----------------------------------------------------------------------------

    def add(self, ids: npt.ArrayLike, hashes: npt.ArrayLike) -> None:
        """Store ``hashes[i]`` under ``ids[i]``, replacing any hash already stored for that id."""
        ids_arr = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        words = _as_words(hashes)
        if len(ids_arr) != len(words):
            raise ValueError("ids and hashes differ in length")
        if len(ids_arr) == 0:
            return
        # Within one call the last occurrence of an id wins.
        _, last_first = np.unique(ids_arr[::-1], return_index=True)
        keep = np.sort(len(ids_arr) - 1 - last_first)
        ids_arr, words = ids_arr[keep], words[keep]
        if len(self):
            self.remove(ids_arr.tolist())
        if len(ids_arr) >= self._delta_limit():
            # A bulk load goes straight into a new main segment.
            self.compact(ids_arr, words)
            return
        self._delta.append(ids_arr, words)
        if len(self._delta) >= self._delta_limit():
            self.compact()

    def remove(self, ids: Iterable[int]) -> None:
        """Forget these ids; unknown ids are ignored."""
        id_list = [int(i) for i in ids]
        if not id_list:
            return
        self._delta.discard(id_list)
        if self._main is not None:
            rows = self._main.rows_of(np.asarray(id_list, dtype=np.int64))
            if len(rows):
                self._main.kill(rows)

    def _delta_limit(self) -> int:
        main_size = len(self._main.ids) if self._main is not None else 0
        return max(self.MIN_DELTA, main_size // self.MERGE_FRACTION)

    def compact(self, extra_ids: I64 | None = None, extra_words: U64 | None = None) -> None:
        """Fold the delta, the tombstones (and ``extra`` rows) into a fresh main segment."""
        parts_ids: list[I64] = []
        parts_words: list[U64] = []
        if self._main is not None:
            if self._main.dead:
                parts_ids.append(self._main.ids[self._main.alive])
                parts_words.append(self._main.words[self._main.alive])
            else:
                parts_ids.append(self._main.ids)
                parts_words.append(self._main.words)
        delta_ids, delta_words = self._delta.live()
        parts_ids.append(delta_ids)
        parts_words.append(delta_words)
        if extra_ids is not None and extra_words is not None:
            parts_ids.append(extra_ids)
            parts_words.append(extra_words)
        ids = np.concatenate(parts_ids)
        words = np.concatenate(parts_words)
        self._main = None  # let the old tables go before the new ones are built
        self._main = _Segment.build(ids, words) if len(ids) else None
        self._delta = _Delta()

    # -- reads ------------------------------------------------------------------------------

    def search(self, queries: npt.ArrayLike, max_distance: int) -> list[Matches]:
        """For each query, ``(id, distance)`` of every stored hash within ``max_distance``."""
        if not 0 <= max_distance <= MAX_DISTANCE:
            raise ValueError(f"max_distance must be within 0..{MAX_DISTANCE}")
        qwords = _as_words(queries)
        results: list[Matches] = [[] for _ in range(len(qwords))]
        for start in range(0, len(qwords), self.BATCH):
            batch = qwords[start : start + self.BATCH]
            qs, ids, ds = _concat(
                [self._search_main(batch, max_distance), self._search_delta(batch, max_distance)]
            )
            if not len(qs):
                continue
            order = np.lexsort((ids, ds, qs))
            for q, id_, d in zip(
                qs[order].tolist(), ids[order].tolist(), ds[order].tolist(), strict=True
            ):
                results[start + q].append((id_, d))
        return results

    def _search_delta(self, batch: U64, radius: int) -> Found:
        ids, words = self._delta.live()
        q, rows, d = _scan(words, batch, radius)
        return q, ids[rows], d

    def _search_main(self, batch: U64, radius: int) -> Found:
        seg = self._main
        if seg is None or len(seg) == 0:
            return _EMPTY
        n = len(seg.ids)
        flips = radius // _CHUNKS
        if flips not in _MASKS:
            return seg.finish(*_scan(seg.words, batch, radius))
        masks = _MASKS[flips]
        nq = len(batch)
        # Table keys, (nq, 16 * m): chunk j's part of the offsets table, then the probed value.
        qchunks = batch.view(np.uint16).reshape(nq, _CHUNKS).astype(np.int64)
        keys = ((qchunks[:, :, None] ^ masks[None, None, :]) + _CHUNK_BASE).reshape(nq, -1)
        starts = np.take(seg.offsets, keys)
        lengths = np.take(seg.offsets, keys + 1) - starts
        per_query = lengths.sum(axis=1)
        brute = per_query * self.BRUTE_FRACTION > n
        parts: list[Found] = []
        if brute.any():
            which = np.flatnonzero(brute)
            q, rows, d = _scan(seg.words, batch[which], radius)
            parts.append(seg.finish(which[q], rows, d))
        probe = np.flatnonzero(~brute)
        if len(probe):
            parts.append(seg.finish(*_probe(seg, batch, probe, starts, lengths, radius)))
        return _concat(parts)


Found = tuple[I64, I64, npt.NDArray[np.int32]]
_EMPTY: Found = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))
_CHUNK_BASE = (np.arange(_CHUNKS, dtype=np.int64) * _CHUNK_VALUES)[None, :, None]


def _concat(parts: list[Found]) -> Found:
    if not parts:
        return _EMPTY
    if len(parts) == 1:
        return parts[0]
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def _probe(seg: _Segment, batch: U64, probe: I64, starts: I64, lengths: I64, radius: int) -> Found:
    """Candidates from the probed table ranges, re-checked exactly: (query, row, distance)."""
    s = starts[probe].reshape(-1)
    ln = lengths[probe].reshape(-1)
    nonempty = np.flatnonzero(ln)
    s, ln = s[nonempty], ln[nonempty]
    total = int(ln.sum())
    if not total:
        return _EMPTY
    # Expand the ranges [s, s + ln) into one flat array of table positions.
    ends = np.cumsum(ln)
    flat = np.arange(total, dtype=np.int64) + np.repeat(s - (ends - ln), ln)
    rows = np.take(seg.positions, flat)
    stored = np.take(seg.words, rows, axis=0)
    if len(probe) == 1:
        qrow = np.zeros(total, dtype=np.int64)
        stored ^= batch[probe[0]]
    else:
        # Candidates come out grouped by query, so each query's words repeat in one run.
        per_query = lengths[probe].sum(axis=1)
        qrow = np.repeat(np.arange(len(probe), dtype=np.int64), per_query)
        stored ^= np.repeat(batch[probe], per_query, axis=0)
    # Set bits per row: the four per-word counts (at most 64 each) are the bytes of one
    # uint32, and multiplying by 0x01010101 adds them into the top byte with no carry from
    # below. The sum is exact while it is under 256, which always holds here: a candidate
    # shares one chunk with the query to within 3 bits, so at least 13 bits agree.
    packed = np.bitwise_count(stored).view(np.uint32).reshape(-1) * np.uint32(0x01010101)
    hit = np.flatnonzero(packed < np.uint32((radius + 1) << 24))
    rows, qrow = rows[hit], qrow[hit]
    dist = (packed[hit] >> np.uint32(24)).astype(np.int32)
    # A true match usually shares several chunks with the query: keep it once.
    _, first = np.unique(qrow * len(seg.ids) + rows, return_index=True)
    return probe[qrow[first]], rows[first].astype(np.int64), dist[first]


def _scan(words: U64, batch: U64, radius: int) -> Found:
    """Exhaustive exact scan (faiss's Hamming range search): (query, row, distance)."""
    n, nq = len(words), len(batch)
    if n == 0 or nq == 0:
        return _EMPTY
    result = faiss.RangeSearchResult(nq)
    # One OpenMP thread: a web process serves many requests at once, and OpenMP's spinning
    # workers slow every query down several times when the cores are busy (measured).
    # The setting belongs to the calling thread, and is restored for other faiss users.
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        # faiss keeps distances strictly below the radius it is given. (The SWIG function is
        # missing from faiss's type information.)
        faiss.hamming_range_search(  # type: ignore[attr-defined]
            faiss.swig_ptr(np.ascontiguousarray(batch).view(np.uint8)),
            faiss.swig_ptr(np.ascontiguousarray(words).view(np.uint8)),
            nq,
            n,
            radius + 1,
            HASH_BYTES,
            result,
        )
    finally:
        faiss.omp_set_num_threads(previous)
    lims = faiss.rev_swig_ptr(result.lims, nq + 1).astype(np.int64)
    found = int(lims[-1])
    rows = faiss.rev_swig_ptr(result.labels, found).astype(np.int64)
    dist = faiss.rev_swig_ptr(result.distances, found).astype(np.int32)
    q = np.repeat(np.arange(nq, dtype=np.int64), np.diff(lims))
    return q, rows, dist
