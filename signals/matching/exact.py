"""Per-process candidate index for the exact types, kept in step with the feed sequence.

A match request of a thousand values would otherwise probe the ``(type, value)`` index of a
table of millions of indicators a thousand times, half of them for values nobody shared. Each
web process instead holds a compact map from a 64-bit key of every stored ``(type, value)`` to
its indicator id: sorted NumPy arrays (16 bytes an indicator) plus a small dict of recent
additions, merged into the array as it grows. A lookup costs microseconds and answers misses
without touching the database.

The index only proposes candidates. The database then reads the signals of the candidate
indicators through ``Signal.objects.visible_to`` and compares each indicator's stored type and
value with the values asked, so a key collision can never match a value that was not asked,
and who may see what is decided by the access policy alone.

Freshness: before each lookup the index reads the highest committed feed ``seq`` and adds the
indicators of signals above the last one it saw. Feed numbers are committed in order
(decision 0002), so every indicator committed before a request is a candidate in that request,
in every process. Indicators are never deleted; an indicator whose signals were all retracted
stays a candidate and simply finds no live signal.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from django.db.models import Max

from signals.models import Indicator, Signal

#: Types whose values are not matched by equality (they have their own indexes).
UNINDEXED = ("pdq", "vpdq")
#: Recent additions held in the dict before they are merged into the sorted arrays.
MERGE_AT = 50_000


def key(type_name: str, value: str) -> int:
    """The 64-bit key of a stored ``(type, value)``: Python's own hash, salted per process,
    which is all a per-process index needs (and an attacker cannot aim collisions at it)."""
    return hash((type_name, value))


class LiveExactIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys = np.empty(0, dtype=np.int64)
        self._ids = np.empty(0, dtype=np.int64)
        self._recent: dict[int, set[int]] = {}
        self._seq: int | None = None

    # -- freshness --------------------------------------------------------------------------

    def refresh(self) -> None:
        top = Signal.objects.aggregate(top=Max("seq"))["top"] or 0
        with self._lock:
            if self._seq is None or top < self._seq:
                # First use, or the sequence went back (a restored database, a test rollback).
                self._rebuild(top)
            elif top > self._seq:
                self._add(
                    Signal.objects.filter(seq__gt=self._seq, seq__lte=top)
                    .exclude(indicator__type__in=UNINDEXED)
                    .values_list("indicator_id", "indicator__type", "indicator__value")
                )
                self._seq = top

    def _rebuild(self, top: int) -> None:
        self._keys = np.empty(0, dtype=np.int64)
        self._ids = np.empty(0, dtype=np.int64)
        self._recent = {}
        rows = (
            Indicator.objects.exclude(type__in=UNINDEXED)
            .values_list("id", "type", "value")
            .iterator(chunk_size=20_000)
        )
        self._add(rows)
        self._merge()
        self._seq = top

    def _add(self, rows: Iterable[tuple[int, str, str]]) -> None:
        recent = self._recent
        for ind_id, type_name, value in rows:
            recent.setdefault(key(type_name, value), set()).add(ind_id)
        if len(recent) >= MERGE_AT:
            self._merge()

    def _merge(self) -> None:
        pairs = [(k, i) for k, ids in self._recent.items() for i in ids]
        if not pairs:
            return
        keys = np.concatenate([self._keys, np.fromiter((k for k, _ in pairs), np.int64)])
        ids = np.concatenate([self._ids, np.fromiter((i for _, i in pairs), np.int64)])
        order = np.argsort(keys, kind="stable")
        self._keys, self._ids, self._recent = keys[order], ids[order], {}

    def reset(self) -> None:
        with self._lock:
            self._keys = np.empty(0, dtype=np.int64)
            self._ids = np.empty(0, dtype=np.int64)
            self._recent, self._seq = {}, None

    # -- reads ------------------------------------------------------------------------------

    def candidates(self, pairs: Sequence[tuple[str, str]]) -> set[int]:
        """The indicator ids that may hold any of these ``(type, stored value)`` pairs: every
        one that does, and rarely (a key collision) one that does not."""
        if not pairs:
            return set()
        self.refresh()
        # hash(pair) is key(*pair): a pair is the tuple key() hashes.
        wanted = np.fromiter(map(hash, pairs), np.int64, count=len(pairs))
        with self._lock:
            keys, ids, recent = self._keys, self._ids, self._recent
            lo = np.searchsorted(keys, wanted, side="left")
            hi = np.searchsorted(keys, wanted, side="right")
            found: set[int] = set()
            for start, stop in zip(lo[hi > lo].tolist(), hi[hi > lo].tolist(), strict=True):
                found.update(ids[start:stop].tolist())
            if recent:
                for k in wanted.tolist():
                    found.update(recent.get(k, ()))
        return found

    def stats(self) -> dict[str, Any]:
        return {
            "indicators": len(self._ids) + sum(len(v) for v in self._recent.values()),
            "memory_bytes": self._keys.nbytes + self._ids.nbytes,
            "seq": self._seq or 0,
        }


_exact = LiveExactIndex()


def index() -> LiveExactIndex:
    """This process's candidate index of the exact types."""
    return _exact


def reset() -> None:
    _exact.reset()
