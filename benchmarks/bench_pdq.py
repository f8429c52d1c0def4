"""PDQ matching: Beacon's exact index against brute force and the `threatexchange` library.

All three answer the same queries over the same hashes in one run:

- ``beacon``: ``signals.matching.pdq.PdqIndex`` (multi-index hashing + exact re-check);
- ``numpy_brute``: a plain numpy scan (XOR, popcount), the ground truth for recall;
- ``threatexchange``: the library's ``PDQIndex`` (faiss ``IndexBinaryMultiHash``), queried one
  hash at a time through its public ``query``; its batched figure uses the faiss index
  underneath it (``search_with_distance_in_result``), which is how one would batch it.

The stored set is random hashes plus planted clusters: near-duplicates of a few originals at
every distance up to the radius, with flipped bits either random or spread evenly across the
16-bit chunks (the worst case for multi-index hashing). Queries are copies of stored hashes
(planted originals and random rows) with 0..radius bits flipped, plus unrelated hashes.

    python -m benchmarks.bench_pdq --size full     # 1M hashes: the figures in docs/decisions/0200
    python -m benchmarks.bench_pdq --size tiny     # CI-sized (2,000 hashes)

Writes ``benchmarks/results/pdq.json``. Timings are medians of repeated runs where cheap.
faiss is limited to ``--threads`` OpenMP threads (default 1) for every contender, so the
figures are per core.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import SIZES  # noqa: E402
from signals.matching.pdq import PdqIndex  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "pdq.json"


def rss_bytes() -> int:
    """Resident set size now (not the peak), from /proc."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def flip_random(rng: np.random.Generator, h: np.ndarray, d: int) -> np.ndarray:
    bits = np.unpackbits(h)
    bits[rng.choice(256, size=d, replace=False)] ^= 1
    return np.packbits(bits)


def flip_spread(rng: np.random.Generator, h: np.ndarray, d: int) -> np.ndarray:
    bits = np.unpackbits(h)
    chunk_order = rng.permutation(16)
    offsets = [rng.permutation(16) for _ in range(16)]
    for k in range(d):
        chunk = chunk_order[k % 16]
        bits[chunk * 16 + offsets[chunk][k // 16]] ^= 1
    return np.packbits(bits)


def make_data(
    size: int, planted_originals: int, n_queries: int, radius: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    per_original = 2 * radius
    random_rows = max(0, size - planted_originals * (1 + per_original))
    stored = [rng.integers(0, 256, size=(random_rows, 32), dtype=np.uint8)]
    originals = rng.integers(0, 256, size=(planted_originals, 32), dtype=np.uint8)
    planted = []
    for o in originals:
        planted.append(o)
        for d in range(1, radius + 1):
            planted.append(flip_random(rng, o, d))
            planted.append(flip_spread(rng, o, d))
    if planted:
        stored.append(np.array(planted, dtype=np.uint8))
    hashes = np.concatenate(stored)
    hashes = hashes[rng.permutation(len(hashes))]
    queries = []
    for k in range(n_queries):
        kind = k % 4
        if kind == 0 and planted_originals:
            base = originals[int(rng.integers(0, planted_originals))]
        elif kind == 3:
            queries.append(rng.integers(0, 256, size=32, dtype=np.uint8))
            continue
        else:
            base = hashes[int(rng.integers(0, len(hashes)))]
        flip = flip_spread if k % 2 else flip_random
        queries.append(flip(rng, base, int(rng.integers(0, radius + 1))))
    return hashes, np.array(queries, dtype=np.uint8)


class NumpyBrute:
    """Brute force in numpy: one column of 64-bit words at a time, XOR and popcount."""

    def __init__(self, hashes: np.ndarray) -> None:
        words = np.ascontiguousarray(hashes).view(np.uint64).reshape(-1, 4)
        self.columns = [np.ascontiguousarray(words[:, k]) for k in range(4)]

    def search_one(self, query: np.ndarray, radius: int) -> list[tuple[int, int]]:
        q = np.ascontiguousarray(query).view(np.uint64)
        d = np.bitwise_count(self.columns[0] ^ q[0]).astype(np.uint16)
        for k in range(1, 4):
            d += np.bitwise_count(self.columns[k] ^ q[k])
        rows = np.flatnonzero(d <= radius)
        return sorted(zip(rows.tolist(), d[rows].tolist(), strict=True), key=lambda t: (t[1], t[0]))

    def search(self, queries: np.ndarray, radius: int) -> list[list[tuple[int, int]]]:
        return [self.search_one(q, radius) for q in queries]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def per_query_ms(fn: Callable[[np.ndarray], Any], queries: np.ndarray) -> float:
    """Median latency of answering one query at a time."""
    samples = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def recall(got: list[set[tuple[int, int]]], truth: list[set[tuple[int, int]]]) -> dict[str, Any]:
    expected = sum(len(t) for t in truth)
    found = sum(len(g & t) for g, t in zip(got, truth, strict=True))
    extra = sum(len(g - t) for g, t in zip(got, truth, strict=True))
    return {
        "expected_pairs": expected,
        "found_pairs": found,
        "wrong_pairs": extra,
        "recall": found / expected if expected else 1.0,
        "exact": found == expected and extra == 0,
    }


def run_beacon(
    hashes: np.ndarray, queries: np.ndarray, single: np.ndarray, radius: int
) -> tuple[dict[str, Any], list[set[tuple[int, int]]]]:
    gc.collect()
    before = rss_bytes()
    index = PdqIndex()
    ids = np.arange(len(hashes), dtype=np.int64)
    _, build_s = timed(lambda: (index.add(ids, hashes), index.compact()))
    rss = rss_bytes() - before
    memory, fixed = index.memory_bytes(), index.fixed_bytes()
    index.search(queries[:8], radius)  # warm
    single_ms = per_query_ms(lambda q: index.search(q[None, :], radius), single)
    batched, batch_s = timed(lambda: index.search(queries, radius))
    found = [set(r) for r in batched]
    # Freshness inside one process: a new hash is searchable as soon as add() returns, and
    # the delta is folded into the main segment now and then.
    rng = np.random.default_rng(99)
    new = rng.integers(0, 256, size=(1000, 32), dtype=np.uint8)
    new_ids = np.arange(len(hashes), len(hashes) + 1000, dtype=np.int64)
    add_one = []
    for k in range(100):
        _, s = timed(lambda k=k: index.add(new_ids[k : k + 1], new[k : k + 1]))
        add_one.append(s)
    _, add_batch_s = timed(lambda: index.add(new_ids[100:], new[100:]))
    [after] = index.search(new[500:501], 0)
    # One live refresh as a web process applies it (signals/matching/live.py): the ids the
    # feed touched since the last refresh are removed, the still-live ones added back, and
    # the next search sees them. The database read that precedes it is measured in
    # bench_match; here, the index's part of the latency.
    refresh = []
    for k in range(20):
        touched = new_ids[k * 50 : (k + 1) * 50]
        start = time.perf_counter()
        index.remove(touched.tolist())
        index.add(touched[::2], new[k * 50 : (k + 1) * 50 : 2])
        index.search(new[k * 50 : k * 50 + 1], radius)
        refresh.append(time.perf_counter() - start)
    _, compact_s = timed(index.compact)
    wide = {}
    for r in (radius, 40, 52):
        sub = queries[:200]
        _, s = timed(lambda r=r, sub=sub: index.search(sub, r))
        wide[str(r)] = round(len(sub) / s, 1)
    figures = {
        "build_s": round(build_s, 3),
        "memory_bytes": memory,
        # A fixed part (the 16 x 65,536 offsets table) plus a part per hash.
        "memory_fixed_bytes": fixed,
        "memory_bytes_per_hash": round((memory - fixed) / len(hashes), 1),
        "memory_mb_per_million": round((fixed + (memory - fixed) / len(hashes) * 1e6) / 2**20, 1),
        "rss_growth_bytes": rss,
        "ms_per_query_single": round(single_ms, 4),
        "queries_per_s_batched": round(len(queries) / batch_s, 1),
        "queries_per_s_batched_by_radius": wide,
        "add_one_ms_median": round(statistics.median(add_one) * 1e3, 4),
        "add_900_ms": round(add_batch_s * 1e3, 2),
        "new_hash_found_immediately": after == [(int(new_ids[500]), 0)],
        "compact_s": round(compact_s, 3),
        "refresh_50_changes_then_search_ms_median": round(statistics.median(refresh) * 1e3, 3),
    }
    return figures, found


def run_brute(
    hashes: np.ndarray, queries: np.ndarray, single: np.ndarray, radius: int
) -> tuple[dict[str, Any], list[set[tuple[int, int]]]]:
    gc.collect()
    before = rss_bytes()
    brute, build_s = timed(lambda: NumpyBrute(hashes))
    rss = rss_bytes() - before
    single_ms = per_query_ms(lambda q: brute.search_one(q, radius), single)
    truth, batch_s = timed(lambda: brute.search(queries, radius))
    figures = {
        "build_s": round(build_s, 3),
        "rss_growth_bytes": rss,
        "ms_per_query_single": round(single_ms, 4),
        "queries_per_s_batched": round(len(queries) / batch_s, 1),
    }
    return figures, [set(t) for t in truth]


def run_threatexchange(
    hashes: np.ndarray, queries: np.ndarray, single: np.ndarray, radius: int
) -> tuple[dict[str, Any], list[set[tuple[int, int]]]]:
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex

    if radius != PDQIndex.get_match_threshold():
        raise SystemExit(f"threatexchange's PDQIndex matches at {PDQIndex.get_match_threshold()}")
    hex_hashes = [h.tobytes().hex() for h in hashes]
    gc.collect()
    before = rss_bytes()
    index, build_s = timed(lambda: PDQIndex(zip(hex_hashes, range(len(hex_hashes)), strict=True)))
    rss = rss_bytes() - before
    hex_queries = [q.tobytes().hex() for q in queries]
    hex_single = [q.tobytes().hex() for q in single]
    index.query(hex_queries[0])  # warm

    samples = []
    for hq in hex_single:
        start = time.perf_counter()
        index.query(hq)
        samples.append(time.perf_counter() - start)
    single_ms = statistics.median(samples) * 1e3

    def batched() -> dict[str, Any]:
        return dict(index.index.search_with_distance_in_result(hex_queries, radius))

    by_hash, batch_s = timed(batched)
    # Its answers, by query, through the public single-query call (for recall).
    found = [
        {(int(m.metadata), int(m.similarity_info.distance)) for m in index.query(hq)}
        for hq in hex_queries
    ]
    figures = {
        "build_s": round(build_s, 3),
        "rss_growth_bytes": rss,
        "ms_per_query_single": round(single_ms, 4),
        "queries_per_s_batched": round(len(queries) / batch_s, 1),
        "batched_answers": sum(len(v) for v in by_hash.values()),
    }
    return figures, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--size",
        default=os.environ.get("BEACON_BENCH_SIZE", "full"),
        help="tiny, small, full (1M hashes), or a number of hashes",
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--single", type=int, default=200, help="queries timed one at a time")
    parser.add_argument("--originals", type=int, default=50, help="planted near-duplicate sets")
    parser.add_argument("--radius", type=int, default=31)
    parser.add_argument("--threads", type=int, default=1, help="faiss OpenMP threads")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--no-threatexchange", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.size = (
        int(args.size) if str(args.size).isdigit() else max(1000, int(1_000_000 * SIZES[args.size]))
    )
    if args.size < 20_000:
        args.queries = min(args.queries, 200)
        args.single = min(args.single, 50)

    import faiss

    faiss.omp_set_num_threads(args.threads)
    originals = min(args.originals, max(1, args.size // (20 * args.radius)))
    hashes, queries = make_data(args.size, originals, args.queries, args.radius, args.seed)
    single = queries[: args.single]
    load_before = os.getloadavg()

    results: dict[str, Any] = {
        "benchmark": "pdq",
        "size": len(hashes),
        "planted_near_duplicates": originals * (1 + 2 * args.radius),
        "queries": len(queries),
        "radius": args.radius,
        "faiss_threads": args.threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
    }
    print(f"{len(hashes):,} hashes, {len(queries):,} queries, radius {args.radius}", flush=True)

    brute, truth = run_brute(hashes, queries, single[: min(len(single), 30)], args.radius)
    results["numpy_brute"] = brute
    print("numpy brute  ", brute, flush=True)

    beacon, found = run_beacon(hashes, queries, single, args.radius)
    beacon.update(recall(found, truth))
    results["beacon"] = beacon
    print("beacon       ", beacon, flush=True)

    if not args.no_threatexchange:
        import threatexchange

        tx, tx_found = run_threatexchange(hashes, queries, single, args.radius)
        tx.update(recall(tx_found, truth))
        tx["version"] = getattr(threatexchange, "__version__", None) or _version("threatexchange")
        results["threatexchange"] = tx
        print("threatexchange", tx, flush=True)

    ratios: dict[str, float] = {
        "beacon_vs_brute_single_speedup": round(
            brute["ms_per_query_single"] / beacon["ms_per_query_single"], 2
        ),
        "beacon_vs_brute_batched_speedup": round(
            beacon["queries_per_s_batched"] / brute["queries_per_s_batched"], 2
        ),
    }
    if "threatexchange" in results:
        tx = results["threatexchange"]
        ratios["beacon_vs_threatexchange_single_speedup"] = round(
            tx["ms_per_query_single"] / beacon["ms_per_query_single"], 2
        )
        ratios["beacon_vs_threatexchange_batched_speedup"] = round(
            beacon["queries_per_s_batched"] / tx["queries_per_s_batched"], 2
        )
        ratios["beacon_vs_threatexchange_build_speedup"] = round(
            tx["build_s"] / beacon["build_s"], 2
        )
    results["ratios"] = ratios
    results["targets"] = {
        "recall_1": beacon["exact"],
        "faster_than_threatexchange_single": ratios.get(
            "beacon_vs_threatexchange_single_speedup", 0
        )
        > 1,
        "batched_2000_qps": beacon["queries_per_s_batched"] >= 2000,
        "memory_150mb_per_million": beacon["memory_mb_per_million"] <= 150,
    }
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    print("ratios       ", ratios)
    print("targets      ", results["targets"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
