"""Run every benchmark against PostgreSQL + Redis, then render ``benchmarks/README.md``.

    make bench                                   # the sizes below, under 20 minutes on 2 cores
    python -m benchmarks.run_all --size tiny     # every script at its smallest (CI)
    python -m benchmarks.run_all --only pdq,match

Each ``benchmarks/bench_*.py`` runs in a process of its own (each makes its own database and,
for fan-out, its own redis-server), one after another so they do not compete for the cores.
Results land in ``benchmarks/results/<name>.json`` (``--results`` elsewhere), the wall time of
each script in ``run_all.json``, and the table and chart in the README. A failing script is
reported and the others still run; the exit status says whether all passed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.render import render

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "benchmarks" / "results"

# Sizes for ``make bench`` (10 to 15 minutes in all on 2 cores, most of it upload and matching at
# 1M and fan-out at 100k, the sizes the targets in DESIGN.md §12 name), and for ``--size tiny``.
PLAN: dict[str, dict[str, str]] = {
    "upload": {"bench": "full", "tiny": "tiny"},
    "match": {"bench": "full", "tiny": "tiny"},
    "pdq": {"bench": "full", "tiny": "tiny"},
    "vpdq": {"bench": "full", "tiny": "tiny"},
    "fanout": {"bench": "full", "tiny": "tiny"},
    "taxii": {"bench": "small", "tiny": "tiny"},
    "audit": {"bench": "full", "tiny": "tiny"},
}
# Scripts that take the output file as an option rather than writing to the results folder.
OUTPUT_OPTION = {"pdq", "vpdq"}


def discover() -> list[str]:
    """Every ``benchmarks/bench_*.py``, so a new benchmark is never left out of the run."""
    return sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))


def command(name: str, size: str, results: Path) -> list[str]:
    cmd = [sys.executable, "-m", f"benchmarks.bench_{name}", "--size", size]
    if name in OUTPUT_OPTION:
        cmd += ["--output", str(results / f"{name}.json")]
    return cmd


def run(
    *, size: str, only: list[str] | None, results: Path, readme: Path, timeout: float
) -> dict[str, dict[str, object]]:
    results.mkdir(parents=True, exist_ok=True)
    (results / "logs").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "BEACON_BENCH_RESULTS": str(results),
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/beacon"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("BEACON_TESTING", None)
    names = [n for n in discover() if not only or n in only]
    summary: dict[str, dict[str, object]] = {}
    for name in names:
        chosen = PLAN.get(name, {}).get(size, size if size != "bench" else "small")
        cmd = command(name, chosen, results)
        print(f"=== {name} (size {chosen}): {' '.join(cmd[1:])}", flush=True)
        started = time.monotonic()
        with open(results / "logs" / f"{name}.log", "w") as log:
            try:
                code = subprocess.call(
                    cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
                )
            except subprocess.TimeoutExpired:
                code = -1
        seconds = round(time.monotonic() - started, 1)
        summary[name] = {"size": chosen, "seconds": seconds, "returncode": code}
        print(f"    {'ok' if code == 0 else f'FAILED ({code})'} in {seconds} s", flush=True)
    previous = {}
    run_file = results / "run_all.json"
    if run_file.exists() and only:
        previous = json.loads(run_file.read_text()).get("scripts", {})
    run_file.write_text(
        json.dumps(
            {
                "size": size,
                "scripts": {**previous, **summary},
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
        + "\n"
    )
    render(results=results, readme=readme)
    print(f"wrote {readme}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else "")
    parser.add_argument("--size", default="bench", help="bench (make bench), tiny, small, full")
    parser.add_argument("--only", default="", help="comma-separated names, e.g. pdq,match")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--readme", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=3600, help="per script, seconds")
    args = parser.parse_args(argv)
    readme = args.readme or (
        ROOT / "benchmarks" / "README.md"
        if args.results == DEFAULT_RESULTS
        else args.results / "README.md"
    )
    summary = run(
        size=args.size,
        only=[n for n in args.only.split(",") if n] or None,
        results=args.results,
        readme=readme,
        timeout=args.timeout,
    )
    return 0 if all(s["returncode"] == 0 for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
