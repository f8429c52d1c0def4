"""PDQ items of a match request: which stored PDQ indicators lie within each item's distance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from signals.models import Indicator


def hamming_matches(
    items: Sequence[tuple[int, Any, Any, dict[str, Any]]],
) -> list[tuple[int, int, int]]:
    """``(item index, indicator id, distance)`` for every stored PDQ hash within each item's
    ``max_distance``. Exact: a brute-force scan over every stored PDQ indicator."""
    if not items:
        return []
    rows = list(Indicator.objects.filter(type="pdq").values_list("pk", "value"))
    if not rows:
        return []
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    stored = np.frombuffer(b"".join(bytes.fromhex(r[1]) for r in rows), dtype=np.uint8).reshape(
        -1, 32
    )
    stored_bits = np.unpackbits(stored, axis=1)
    out: list[tuple[int, int, int]] = []
    for index, _type, canonical, options in items:
        query = np.unpackbits(np.frombuffer(bytes.fromhex(canonical.value), dtype=np.uint8))
        distances = np.count_nonzero(stored_bits != query, axis=1)
        for pos in np.flatnonzero(distances <= options["max_distance"]):
            out.append((index, int(ids[pos]), int(distances[pos])))
    return out
