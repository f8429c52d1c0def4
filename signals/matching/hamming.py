"""PDQ items of a match request: which live PDQ indicators lie within each item's distance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from signals.matching import live


def hamming_matches(
    items: Sequence[tuple[int, Any, Any, Mapping[str, Any]]],
) -> list[tuple[int, int, int]]:
    """``(item index, indicator id, distance)`` for every live PDQ indicator within each item's
    ``max_distance``. Exact: the per-process PDQ index (``signals.matching.live``) proposes
    every stored hash within the distance and nothing beyond it; who may see which signal is
    decided afterwards by the access policy."""
    by_distance: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for index, _type, canonical, options in items:
        by_distance[options["max_distance"]].append((index, bytes.fromhex(canonical.value)))
    out: list[tuple[int, int, int]] = []
    for distance, group in sorted(by_distance.items()):
        found = live.pdq().search([h for _, h in group], distance)
        for (index, _), matches in zip(group, found, strict=True):
            out.extend((index, ind_id, d) for ind_id, d in matches)
    return out
