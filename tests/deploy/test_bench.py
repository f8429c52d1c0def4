"""``make bench`` works: every benchmark runs at its tiniest size against PostgreSQL + Redis and
the README table and chart are rendered. No timing is asserted (speed is the benchmarks' job)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.render import Row, chart, readme_text, rows_for
from benchmarks.run_all import discover

ROOT = Path(__file__).resolve().parents[2]


def test_every_bench_script_is_in_the_plan():
    from benchmarks.run_all import PLAN

    assert set(discover()) == set(PLAN)


def test_the_renderer_turns_results_into_a_table_and_a_chart():
    rows = rows_for(
        "fanout",
        {"signals": 10, "subscriptions": 2, "events_per_second": 6000, "ratio_to_baseline": 0.5},
    )
    assert rows[0].figure == 6000 and rows[0].met is True and rows[0].ratio == 0.5
    text = readme_text(
        rows, {"scripts": {"fanout": {"size": "tiny", "seconds": 3, "returncode": 0}}}, "c.svg"
    )
    assert (
        "| fanout | fan-out, 10 signals × 2 subscriptions | 6,000 | events/s | ≥ 5,000/s | yes | 0.5× |"
        in text
    )
    svg = chart(rows + [Row("x", "y", 1.0, "", ratio=20.0, ratio_of="z")])
    assert svg.startswith("<svg") and "20× vs z" in svg and "0.5× vs" in svg


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").split(":")[0] not in {"postgres", "postgresql"},
    reason="the benchmarks run on PostgreSQL + Redis",
)
def test_run_all_runs_every_benchmark_at_a_tiny_size(tmp_path):
    results = tmp_path / "results"
    committed = ROOT / "benchmarks" / "results"
    before = {p: p.stat().st_mtime_ns for p in committed.rglob("*") if p.is_file()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["BEACON_VAR_DIR"] = str(tmp_path / "var")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run_all", "--size", "tiny", "--results", str(results)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    logs = {p.name: p.read_text()[-2000:] for p in (results / "logs").glob("*.log")}
    assert done.returncode == 0, (done.stdout, logs)
    summary = json.loads((results / "run_all.json").read_text())
    assert set(summary["scripts"]) == set(discover())
    for name in discover():
        assert (results / f"{name}.json").exists(), name
    readme = (results / "README.md").read_text()
    assert "| benchmark | measure | figure |" in readme
    assert "chart.svg" in readme and (results / "chart.svg").read_text().startswith("<svg")
    # The committed results (and the logs of any earlier `make bench`) are left alone.
    assert {p: p.stat().st_mtime_ns for p in committed.rglob("*") if p.is_file()} == before
