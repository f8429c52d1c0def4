"""Per-process live Hamming indexes, kept fresh from the feed sequence.

Each web process holds one ``PdqIndex`` per perceptual-hash family (PDQ images; vPDQ video
frames) and refreshes it incrementally: at most every ``BEACON_INDEX_REFRESH_SECONDS`` it reads
the signals of that family whose feed ``seq`` is above the last one it saw, adds the indicators
that still have an active signal and removes those that no longer have one. Feed numbers are
allocated under a row lock and committed in order (decision 0002), so reading ``seq > last``
never skips a change; a signal committed in any process is searchable in every process after
the next refresh, and a retracted or expired one stops being a candidate at the same time.

The index only proposes candidates (indicator ids and exact distances). Which signals a member
may see is decided afterwards by ``Signal.objects.visible_to`` and ``live()``, exactly as for
the exact types, so a signal that expires between two refreshes is never disclosed either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Max

from signals.matching.pdq import PdqIndex
from signals.models import Signal, SignalStatus

#: Rows of ``(key, 32-byte hash)`` for the indicators given, and the key's indicator.
Loader = Callable[[Sequence[tuple[int, str]]], Iterable[tuple[int, bytes]]]


def _pdq_rows(indicators: Sequence[tuple[int, str]]) -> Iterable[tuple[int, bytes]]:
    for ind_id, value in indicators:
        yield ind_id, bytes.fromhex(value)


#: Low bits of a vPDQ frame key that number the unique frames of one video.
FRAME_BITS = 20


def _vpdq_rows(indicators: Sequence[tuple[int, str]]) -> Iterable[tuple[int, bytes]]:
    """Each video's unique frame hashes at or above the quality floor, keyed
    ``indicator id << FRAME_BITS | n``."""
    from signals.models import IndicatorFrames
    from signals.types.vpdq import frames_from_text, match_frames

    ids = [ind_id for ind_id, _ in indicators]
    floor = settings.BEACON_PDQ_QUALITY_FLOOR
    for start in range(0, len(ids), 1000):
        for ind_id, text in IndicatorFrames.objects.filter(
            indicator_id__in=ids[start : start + 1000]
        ).values_list("indicator_id", "text"):
            for n, hex_ in enumerate(match_frames(frames_from_text(text), floor)):
                yield (ind_id << FRAME_BITS) | n, bytes.fromhex(hex_)


class LiveHashIndex:
    """An exact Hamming index of the live indicators of some types, fresh from the feed.

    ``loader`` turns ``(indicator id, stored value)`` pairs into the ``(key, hash)`` rows to
    index; ``key_bits`` low bits of a key number the rows of one indicator (0 for one hash per
    indicator), so ``key >> key_bits`` is always the indicator id.
    """

    def __init__(self, types: tuple[str, ...], loader: Loader = _pdq_rows, key_bits: int = 0):
        self.types = types
        self.loader = loader
        self.key_bits = key_bits
        self._lock = threading.Lock()
        self._index: PdqIndex | None = None
        # Indicator id -> how many rows it has (keyed indexes only): its keys are
        # ``id << key_bits | n`` for n below that count.
        self._counts: dict[int, int] = {}
        self._seq = 0
        self._checked = 0.0

    # -- freshness --------------------------------------------------------------------------

    def refresh(self, force: bool = False) -> PdqIndex:
        """The index, brought up to date with the feed if the refresh interval has passed."""
        now = time.monotonic()
        index = self._index
        if (
            index is not None
            and not force
            and now - self._checked < settings.BEACON_INDEX_REFRESH_SECONDS
        ):
            return index
        with self._lock:
            top = Signal.objects.aggregate(top=Max("seq"))["top"] or 0
            if self._index is None or top < self._seq:
                # First use, or the sequence went back (a restored database, a test rollback).
                self._rebuild(top)
            elif top > self._seq:
                self._apply(top)
            self._checked = time.monotonic()
            assert self._index is not None
            return self._index

    def _live_indicators(self, ids: Iterable[int] | None) -> list[tuple[int, str]]:
        qs = Signal.objects.filter(status=SignalStatus.ACTIVE, indicator__type__in=self.types)
        if ids is not None:
            qs = qs.filter(indicator_id__in=list(ids))
        return list(qs.values_list("indicator_id", "indicator__value").distinct())

    def _rows(self, indicators: Sequence[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray]:
        keys: list[int] = []
        hashes: list[bytes] = []
        for key, hash_ in self.loader(indicators):
            keys.append(key)
            hashes.append(hash_)
        ids = np.asarray(keys, dtype=np.int64)
        words = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 32)
        return ids, words

    def _remember(self, ids: np.ndarray) -> None:
        if not self.key_bits:
            return
        owners, counts = np.unique(ids >> self.key_bits, return_counts=True)
        for owner, count in zip(owners.tolist(), counts.tolist(), strict=True):
            self._counts[owner] = self._counts.get(owner, 0) + count

    def _rebuild(self, top: int) -> None:
        index = PdqIndex()
        self._counts = {}
        ids, words = self._rows(self._live_indicators(None))
        index.add(ids, words)
        self._remember(ids)
        self._index, self._seq = index, top

    def _apply(self, top: int) -> None:
        assert self._index is not None
        touched = set(
            Signal.objects.filter(
                seq__gt=self._seq, seq__lte=top, indicator__type__in=self.types
            ).values_list("indicator_id", flat=True)
        )
        if touched:
            live = self._live_indicators(touched)
            stale: list[int] = []
            for ind_id in touched:
                if not self.key_bits:
                    stale.append(ind_id)
                    continue
                base = ind_id << self.key_bits
                stale.extend(range(base, base + self._counts.pop(ind_id, 0)))
            self._index.remove(stale)
            if live:
                ids, words = self._rows(live)
                self._index.add(ids, words)
                self._remember(ids)
        self._seq = top

    def reset(self) -> None:
        with self._lock:
            self._index, self._counts, self._seq, self._checked = None, {}, 0, 0.0

    # -- reads ------------------------------------------------------------------------------

    def search(self, hashes: Sequence[bytes], max_distance: int) -> list[list[tuple[int, int]]]:
        """For each 32-byte hash, ``(key, distance)`` of every live stored hash within
        ``max_distance``, nearest first. Exact."""
        if not hashes:
            return []
        index = self.refresh()
        queries = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 32)
        with self._lock:
            return index.search(queries, max_distance)

    def rows_of(self, indicator_id: int) -> int:
        """How many hashes an indicator has in the index (frames of a video)."""
        return self._counts.get(indicator_id, 0)

    def stats(self) -> dict[str, Any]:
        index = self._index
        return {
            "hashes": len(index) if index is not None else 0,
            "memory_bytes": index.memory_bytes() if index is not None else 0,
            "seq": self._seq,
        }


_pdq = LiveHashIndex(("pdq",))
_vpdq = LiveHashIndex(("vpdq",), _vpdq_rows, FRAME_BITS)


def pdq() -> LiveHashIndex:
    """This process's live index of PDQ image hashes (keys are indicator ids)."""
    return _pdq


def vpdq() -> LiveHashIndex:
    """This process's live index of vPDQ video frames (keys: indicator id << FRAME_BITS | n)."""
    return _vpdq


def reset() -> None:
    """Forget every live index (tests, and after restoring a database)."""
    _pdq.reset()
    _vpdq.reset()
