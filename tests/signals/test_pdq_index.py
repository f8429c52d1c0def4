"""The PDQ index returns exactly what a brute-force scan returns, whatever path it takes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from signals.matching.pdq import PdqIndex, pdq_bytes_to_hex, pdq_hex_to_bytes

EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def brute_force(
    stored: dict[int, np.ndarray], queries: np.ndarray, radius: int
) -> list[list[tuple[int, int]]]:
    """The reference: unpack every bit and count differences."""
    out: list[list[tuple[int, int]]] = []
    ids = sorted(stored)
    table = np.array([stored[i] for i in ids], dtype=np.uint8).reshape(-1, 32)
    table_bits = np.unpackbits(table, axis=1)
    for q in queries:
        d = (table_bits != np.unpackbits(q)).sum(axis=1)
        hits = sorted((int(d[k]), ids[k]) for k in np.flatnonzero(d <= radius))
        out.append([(i, dist) for dist, i in hits])
    return out


def flip_bits(rng: np.random.Generator, h: np.ndarray, distance: int) -> np.ndarray:
    bits = np.unpackbits(h)
    bits[rng.choice(256, size=distance, replace=False)] ^= 1
    return np.packbits(bits)


def flip_spread(rng: np.random.Generator, h: np.ndarray, distance: int) -> np.ndarray:
    """Flip ``distance`` bits spread as evenly as possible over the 16 16-bit chunks: the
    worst case for multi-index hashing, where no chunk is left with fewer flips than needed."""
    bits = np.unpackbits(h)
    chunks = rng.permutation(16)
    for k in range(distance):
        chunk = chunks[k % 16]
        offset = (k // 16 + int(rng.integers(0, 16))) % 16
        while bits[chunk * 16 + offset] != np.unpackbits(h)[chunk * 16 + offset]:
            offset = (offset + 1) % 16
        bits[chunk * 16 + offset] ^= 1
    return np.packbits(bits)


def make_index(path: str, ids: np.ndarray, hashes: np.ndarray) -> PdqIndex:
    """An index holding ``hashes`` and forced down one search path: 'delta' (scan of recent
    additions), 'probe' (multi-index hashing, never falling back), 'scan' (main segment
    scanned), or 'auto' (the cost-based choice)."""
    index = PdqIndex()
    index.add(ids, hashes)
    if path != "delta":
        index.compact()
    if path == "probe":
        index.BRUTE_FRACTION = 0
    if path == "scan":
        index.BRUTE_FRACTION = 10**9
    return index


PATHS = ["delta", "probe", "scan", "auto"]


@st.composite
def corpus(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """Stored hashes (random, plus clusters sharing chunks), and queries at chosen distances."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(0, 300))
    stored = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    if n >= 20 and draw(st.booleans()):
        # A crowded region: many hashes equal in most chunks, like near-blank images.
        base = stored[0].copy()
        for k in range(1, 20):
            stored[k] = flip_bits(rng, base, int(rng.integers(0, 53)))
    radius = draw(st.integers(0, 52))
    queries = []
    for _ in range(draw(st.integers(1, 12))):
        if n and draw(st.booleans()):
            near = stored[int(rng.integers(0, n))]
            flip = flip_spread if draw(st.booleans()) else flip_bits
            # Often right at the radius, where a pigeonhole mistake would show.
            low = draw(st.sampled_from([0, max(0, radius - 2)]))
            queries.append(flip(rng, near, draw(st.integers(low, min(52, radius + 2)))))
        else:
            queries.append(rng.integers(0, 256, size=32, dtype=np.uint8))
    return stored, np.array(queries, dtype=np.uint8), radius


@pytest.mark.parametrize("path", PATHS)
@EXAMPLES
@given(data=corpus())
def test_search_equals_brute_force(path: str, data: tuple[np.ndarray, np.ndarray, int]) -> None:
    stored, queries, radius = data
    ids = np.arange(1000, 1000 + len(stored), dtype=np.int64)
    index = make_index(path, ids, stored)
    expected = brute_force(dict(zip(ids.tolist(), stored, strict=True)), queries, radius)
    assert index.search(queries, radius) == expected


@pytest.mark.parametrize("path", ["probe", "auto"])
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_near_duplicates_at_every_distance_are_found(path: str, seed: int) -> None:
    """Copies planted at every distance 0..52, with the flipped bits placed at random or
    spread evenly over the chunks, are returned iff their distance is within the radius."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, size=(2000, 32), dtype=np.uint8)
    original = rng.integers(0, 256, size=32, dtype=np.uint8)
    planted = np.array(
        [flip_bits(rng, original, d) for d in range(53)]
        + [flip_spread(rng, original, d) for d in range(53)],
        dtype=np.uint8,
    )
    ids = np.concatenate([np.arange(2000), np.arange(10_000, 10_106)])
    index = make_index(path, ids, np.concatenate([background, planted]))
    stored = dict(zip(ids.tolist(), np.concatenate([background, planted]), strict=True))
    [everything] = brute_force(stored, original[None, :], 256)
    for radius in range(53):
        [found] = index.search(original[None, :], radius)
        planted_found = {(i - 10_000, d) for i, d in found if i >= 10_000}
        expected = {(d, d) for d in range(radius + 1)} | {(53 + d, d) for d in range(radius + 1)}
        assert planted_found == expected, radius
        assert found == [(i, d) for i, d in everything if d <= radius]


class IndexMachine(RuleBasedStateMachine):
    """Adds, replacements, removals and merges in any order keep the index equal to a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.index = PdqIndex()
        self.index.MIN_DELTA = 16
        self.index.MERGE_FRACTION = 4
        self.model: dict[int, np.ndarray] = {}
        self.ever: list[np.ndarray] = []
        self.rng = np.random.default_rng(0)

    @rule(ids=st.lists(st.integers(0, 60), min_size=1, max_size=25))
    def add(self, ids: list[int]) -> None:
        hashes = self.rng.integers(0, 256, size=(len(ids), 32), dtype=np.uint8)
        if self.model and len(ids) > 1:
            # Some near copies of what is already stored.
            anchor = self.model[next(iter(self.model))]
            hashes[0] = flip_bits(self.rng, anchor, int(self.rng.integers(0, 40)))
        self.index.add(np.array(ids, dtype=np.int64), hashes)
        for i, h in zip(ids, hashes, strict=True):
            self.model[i] = h
            self.ever.append(h)

    @rule(ids=st.lists(st.integers(0, 70), max_size=10))
    def remove(self, ids: list[int]) -> None:
        self.index.remove(ids)
        for i in ids:
            self.model.pop(i, None)

    @rule()
    def compact(self) -> None:
        self.index.compact()

    @rule(radius=st.integers(0, 52), fraction=st.sampled_from([0, 24, 10**9]))
    def search(self, radius: int, fraction: int) -> None:
        self.index.BRUTE_FRACTION = fraction
        queries = [self.rng.integers(0, 256, size=32, dtype=np.uint8)]
        # Near what is stored now and near what was removed or replaced.
        for k in self.rng.permutation(len(self.ever))[:8]:
            h = self.ever[k]
            queries.append(flip_spread(self.rng, h, int(self.rng.integers(0, radius + 1))))
        q = np.array(queries, dtype=np.uint8)
        if self.model:
            assert self.index.search(q, radius) == brute_force(self.model, q, radius)
        else:
            assert self.index.search(q, radius) == [[] for _ in queries]

    @invariant()
    def size(self) -> None:
        assert len(self.index) == len(self.model)


TestIndexMachine = IndexMachine.TestCase
TestIndexMachine.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)


def test_re_adding_an_id_replaces_its_hash() -> None:
    a = np.zeros((1, 32), dtype=np.uint8)
    b = np.full((1, 32), 255, dtype=np.uint8)
    index = make_index("probe", np.array([7]), a)
    index.add(np.array([7]), b)
    assert len(index) == 1
    assert index.search(a, 31) == [[]]
    assert index.search(b, 0) == [[(7, 0)]]


def test_within_one_call_the_last_hash_of_an_id_wins() -> None:
    index = PdqIndex()
    hashes = np.stack([np.zeros(32, np.uint8), np.full(32, 255, np.uint8)])
    index.add(np.array([3, 3]), hashes)
    assert len(index) == 1
    assert index.search(hashes, 0) == [[], [(3, 0)]]


def test_distance_256_is_not_mistaken_for_zero() -> None:
    for path in PATHS:
        index = make_index(path, np.array([1]), np.full((1, 32), 255, dtype=np.uint8))
        query = np.zeros((1, 32), dtype=np.uint8)
        assert index.search(query, 52) == [[]], path
        assert index.search(query, 256) == [[(1, 256)]], path


def test_it_rejects_bad_shapes_and_radii() -> None:
    index = PdqIndex()
    with pytest.raises(ValueError):
        index.add(np.array([1]), np.zeros((1, 31), dtype=np.uint8))
    with pytest.raises(ValueError):
        index.add(np.array([1, 2]), np.zeros((1, 32), dtype=np.uint8))
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 32), dtype=np.uint8), -1)
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 32), dtype=np.uint8), 257)


def test_memory_is_reported_per_hash() -> None:
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 256, size=(50_000, 32), dtype=np.uint8)
    index = make_index("auto", np.arange(50_000), hashes)
    # Hashes, ids and 16 chunk tables of row numbers; the fixed part is the offsets table.
    per_hash = (index.memory_bytes() - 16 * 65536 * 8) / 50_000
    assert per_hash <= 150


@given(raw=st.binary(min_size=32, max_size=32))
def test_hex_round_trips(raw: bytes) -> None:
    hex_ = pdq_bytes_to_hex(raw)
    assert hex_ == hex_.lower() and len(hex_) == 64
    assert pdq_hex_to_bytes(hex_) == raw
    assert pdq_hex_to_bytes(hex_.upper()) == raw


@pytest.mark.parametrize("bad", ["", "ab", "g" * 64, "0" * 63, "0" * 65])
def test_bad_hex_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        pdq_hex_to_bytes(bad)
