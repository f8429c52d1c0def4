"""The vPDQ rule over frame-search results, without Django (the benchmarks use it directly).

``found[q]`` lists ``(key, distance)`` of every stored frame within the distance of the
query's ``q``-th unique frame; a key is ``video id << key_bits | n``. A stored video matches
when the share of query frames with a hit in it reaches ``query_percent`` and the share of its
own frames hit by a query frame reaches ``index_percent`` (decision 0201).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence


def video_matches(
    found: Sequence[Sequence[tuple[int, int]]],
    frames_of: Callable[[int], int],
    *,
    key_bits: int,
    query_percent: float,
    index_percent: float,
) -> list[tuple[int, float, float]]:
    """``(video id, query match %, index match %)`` of every matching video, by video id."""
    if not found:
        return []
    query_hit: dict[int, set[int]] = defaultdict(set)
    stored_hit: dict[int, set[int]] = defaultdict(set)
    for q, matches in enumerate(found):
        for key, _distance in matches:
            video = key >> key_bits
            query_hit[video].add(q)
            stored_hit[video].add(key)
    out = []
    for video in sorted(query_hit):
        stored = frames_of(video) or len(stored_hit[video])
        q_pct = 100.0 * len(query_hit[video]) / len(found)
        i_pct = 100.0 * len(stored_hit[video]) / stored
        if q_pct >= query_percent and i_pct >= index_percent:
            out.append((video, round(q_pct, 2), round(i_pct, 2)))
    return out
