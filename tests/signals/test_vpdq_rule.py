"""The vPDQ rule over the exact frame index answers exactly what the ``threatexchange``
library's brute-force vPDQ matcher answers, video by video, percentages included."""

from __future__ import annotations

import sys
import types

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from signals.matching.frames import video_matches
from signals.matching.pdq import PdqIndex
from signals.types.vpdq import match_frames

KEY_BITS = 20


def _brute_matcher():
    """threatexchange's reference matcher. Its package imports ``vpdq`` (for hashing files,
    unused here); a stub stands in when that package is not installed."""
    stub = None
    try:
        import vpdq  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        stub = types.ModuleType("vpdq")
        stub.VpdqFeature = object  # type: ignore[attr-defined]
        sys.modules["vpdq"] = stub
    try:
        from threatexchange.extensions.vpdq.vpdq_brute_matcher import match_VPDQ_hash_brute
        from threatexchange.extensions.vpdq.vpdq_util import VpdqCompactFeature
    finally:
        if stub is not None and sys.modules.get("vpdq") is stub:
            del sys.modules["vpdq"]  # the client must not take the stub for the real package
    return match_VPDQ_hash_brute, VpdqCompactFeature


def noisy(rng: np.random.Generator, hex_: str, bits: int) -> str:
    flips = 0
    for position in rng.choice(256, size=bits, replace=False):
        flips |= 1 << int(position)
    return f"{int(hex_, 16) ^ flips:064x}"


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    videos=st.integers(1, 6),
    frames=st.integers(1, 8),
    query_pct=st.sampled_from([0.0, 50.0, 80.0, 100.0]),
    index_pct=st.sampled_from([0.0, 30.0, 100.0]),
)
def test_rule_matches_threatexchange_brute_force(seed, videos, frames, query_pct, index_pct):
    brute, Feature = _brute_matcher()
    rng = np.random.default_rng(seed)

    def random_hex() -> str:
        return rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex()

    stored = []
    for _ in range(videos):
        video = [(random_hex(), int(rng.choice([20, 60, 100]))) for _ in range(frames)]
        if rng.random() < 0.3 and video:
            video.append(video[0])  # a repeated frame counts once
        stored.append(video)
    source = stored[int(rng.integers(0, videos))]
    query = [(noisy(rng, h, int(rng.integers(0, 40))), q) for h, q in source]
    query += [(random_hex(), 90) for _ in range(int(rng.integers(0, 3)))]
    floor = 50

    index = PdqIndex()
    counts = {}
    for v, video in enumerate(stored):
        unique = match_frames([(n, q, h, 0.0) for n, (h, q) in enumerate(video)], floor)
        counts[v] = len(unique)
        if unique:
            index.add(
                [(v << KEY_BITS) | n for n in range(len(unique))],
                np.frombuffer(b"".join(bytes.fromhex(h) for h in unique), np.uint8).reshape(-1, 32),
            )
    q_unique = match_frames([(n, q, h, 0.0) for n, (h, q) in enumerate(query)], floor)
    ours = []
    if q_unique:
        found = index.search(
            np.frombuffer(b"".join(bytes.fromhex(h) for h in q_unique), np.uint8).reshape(-1, 32),
            31,
        )
        ours = video_matches(
            found,
            counts.__getitem__,
            key_bits=KEY_BITS,
            query_percent=query_pct,
            index_percent=index_pct,
        )

    expected = []
    q_features = [Feature(h, q, float(i)) for i, (h, q) in enumerate(query)]
    for v, video in enumerate(stored):
        if not counts[v] or not q_unique:
            continue  # the library refuses to index or query an empty video
        result = brute(
            q_features, [Feature(h, q, float(i)) for i, (h, q) in enumerate(video)], floor, 31
        )
        if result.query_match_percent and (
            result.query_match_percent >= query_pct and result.compared_match_percent >= index_pct
        ):
            expected.append(
                (v, round(result.query_match_percent, 2), round(result.compared_match_percent, 2))
            )
    assert ours == expected
