"""vPDQ video matching: Beacon's frame index + rule against the `threatexchange` library.

Both answer the same queries over the same stored videos in one run:

- ``beacon``: every stored video's unique frames in one ``PdqIndex`` (keys ``video << 20 | n``)
  and the rule of ``signals.matching.frames.video_matches`` — what ``POST /match`` runs;
- ``threatexchange``: the library's ``VPDQIndex`` (faiss ``IndexBinaryFlat`` over the unique
  frames, then its own percentage bookkeeping), queried through its public ``query``.

Stored videos have ``--frames`` random frame hashes each (one per second). A query is a stored
video played twice with 0..20 bits of noise per frame (``2 * --frames`` frames; 600 at the
full size), or an unrelated video. Both must return the same videos with the same percentages.

    python -m benchmarks.bench_vpdq --size full    # 10,000 videos x 300 frames (3M frames)
    python -m benchmarks.bench_vpdq --size small   # 1,000 videos x 300 frames

The ``threatexchange`` vPDQ extension imports the ``vpdq`` package at module load although
matching does not use it; when ``vpdq`` is not installed, a stub module stands in (hashing is
never called here). Writes ``benchmarks/results/vpdq.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import SIZES  # noqa: E402
from signals.matching.frames import video_matches  # noqa: E402
from signals.matching.pdq import PdqIndex  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "vpdq.json"
KEY_BITS = 20


def _threatexchange_vpdq() -> Any:
    try:
        import vpdq  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        stub = types.ModuleType("vpdq")
        stub.VpdqFeature = object  # type: ignore[attr-defined]
        sys.modules["vpdq"] = stub
    from threatexchange.extensions.vpdq import vpdq_index

    return vpdq_index


def noisy(rng: np.random.Generator, frames: np.ndarray, max_bits: int) -> np.ndarray:
    bits = np.unpackbits(frames, axis=1)
    for row in bits:
        row[rng.choice(256, size=int(rng.integers(0, max_bits + 1)), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def compact(frames: np.ndarray) -> str:
    return json.dumps([f"{h.tobytes().hex()},100,{i:.3f}" for i, h in enumerate(frames)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default=os.environ.get("BEACON_BENCH_SIZE", "full"))
    parser.add_argument("--frames", type=int, default=300, help="frames per stored video")
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    videos = int(args.size) if str(args.size).isdigit() else max(20, int(10_000 * SIZES[args.size]))
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    stored = rng.integers(0, 256, size=(videos, args.frames, 32), dtype=np.uint8)
    queries = []
    for k in range(args.queries):
        if k % 2 == 0:
            v = int(rng.integers(0, videos))
            q = np.concatenate([noisy(rng, stored[v], 20), noisy(rng, stored[v], 20)])
        else:
            q = rng.integers(0, 256, size=(2 * args.frames, 32), dtype=np.uint8)
        queries.append(q)
    print(f"{videos:,} videos x {args.frames} frames, {len(queries)} queries", flush=True)

    # -- Beacon -----------------------------------------------------------------------------
    start = time.perf_counter()
    index = PdqIndex()
    keys = (np.arange(videos, dtype=np.int64)[:, None] << KEY_BITS) + np.arange(args.frames)
    index.add(keys.reshape(-1), stored.reshape(-1, 32))
    index.compact()
    beacon_build = time.perf_counter() - start

    def beacon_query(q: np.ndarray) -> list[tuple[int, float, float]]:
        unique = np.unique(q, axis=0)
        found = index.search(unique, 31)
        return video_matches(
            found,
            lambda v: args.frames,
            key_bits=KEY_BITS,
            query_percent=80.0,
            index_percent=0.0,
        )

    beacon_times, beacon_answers = [], []
    for q in queries:
        t0 = time.perf_counter()
        beacon_answers.append(beacon_query(q))
        beacon_times.append(time.perf_counter() - t0)

    # -- threatexchange ---------------------------------------------------------------------
    vpdq_index = _threatexchange_vpdq()
    start = time.perf_counter()
    tx = vpdq_index.VPDQIndex()
    for v in range(videos):
        tx.add(compact(stored[v]), v)
    tx_build = time.perf_counter() - start
    tx_times, tx_answers = [], []
    for q in queries:
        text = compact(q)
        t0 = time.perf_counter()
        matches = tx.query(text)
        tx_times.append(time.perf_counter() - t0)
        tx_answers.append(
            sorted(
                (
                    int(m.metadata),
                    round(m.similarity_info.query_match_percent, 2),
                    round(m.similarity_info.compared_match_percent, 2),
                )
                for m in matches
            )
        )

    same = [sorted(a) == b for a, b in zip(beacon_answers, tx_answers, strict=True)]
    beacon_ms = statistics.median(beacon_times) * 1e3
    tx_ms = statistics.median(tx_times) * 1e3
    results: dict[str, Any] = {
        "benchmark": "vpdq",
        "videos": videos,
        "frames_per_video": args.frames,
        "stored_frames": videos * args.frames,
        "query_frames": 2 * args.frames,
        "queries": len(queries),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "beacon": {
            "build_s": round(beacon_build, 3),
            "ms_per_query_median": round(beacon_ms, 2),
            "memory_bytes": index.memory_bytes(),
        },
        "threatexchange": {
            "build_s": round(tx_build, 3),
            "ms_per_query_median": round(tx_ms, 2),
        },
        "same_answers": all(same),
        "matches_found": sum(len(a) for a in beacon_answers),
        "beacon_vs_threatexchange_speedup": round(tx_ms / beacon_ms, 2),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(results, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(same) else 1


if __name__ == "__main__":
    sys.exit(main())
