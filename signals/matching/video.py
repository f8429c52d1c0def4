"""vPDQ items of a match request: the published vPDQ rule over the live frame index.

A query video's unique frames at or above the quality floor are searched in the exact PDQ
index of every stored video's frames (``signals.matching.live.vpdq``). For each stored video
that any frame hits, ``query_match_percent`` is the share of the query's frames with a stored
frame within the distance, and ``index_match_percent`` the share of the stored video's frames
with a query frame within it; the video matches when both reach the item's thresholds (80 and
0 by default, as in the ``threatexchange`` library). Decision 0201.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

from signals.matching import live
from signals.matching.frames import video_matches
from signals.types.vpdq import match_frames


def vpdq_matches(
    items: Sequence[tuple[int, Any, Any, Mapping[str, Any]]],
) -> list[tuple[int, int, dict[str, float]]]:
    """``(item index, indicator id, {"query_match_percent", "index_match_percent"})`` for
    every stored video matching each item by the vPDQ rule."""
    out: list[tuple[int, int, dict[str, float]]] = []
    index = live.vpdq()
    floor = settings.BEACON_PDQ_QUALITY_FLOOR
    for item_index, _type, canonical, options in items:
        hashes = match_frames(canonical.extra["frames"], floor)
        if not hashes:
            continue
        found = index.search([bytes.fromhex(h) for h in hashes], options["max_distance"])
        for indicator_id, query_pct, index_pct in video_matches(
            found,
            index.rows_of,
            key_bits=live.FRAME_BITS,
            query_percent=options["query_match_percent"],
            index_percent=options["index_match_percent"],
        ):
            out.append(
                (
                    item_index,
                    indicator_id,
                    {"query_match_percent": query_pct, "index_match_percent": index_pct},
                )
            )
    return out
