"""Render ``benchmarks/README.md`` (a table of figures and ratios) and ``results/chart.svg``
from the JSON results of the last run.

    python -m benchmarks.render      # re-render from benchmarks/results/*.json
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    benchmark: str
    measure: str
    figure: float | None
    unit: str
    target: str = ""
    ratio: float | None = None
    ratio_of: str = ""
    met: bool | None = None


def get(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _at_least(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


def rows_for(name: str, data: dict[str, Any]) -> list[Row]:
    """The figures each benchmark reports, with its target (DESIGN.md §12) and ratio."""
    if name == "upload":
        imp = _num(get(data, "import_signals.signals_per_s"))
        imp_ratio = _num(get(data, "import_signals.ratio_vs_raw_copy"))
        api = _num(get(data, "api_10k_requests.signals_per_s"))
        return [
            Row(
                name,
                f"import_signals, {get(data, 'rows')} rows",
                imp,
                "signals/s",
                "≥ 0.5 × COPY",
                imp_ratio,
                "raw COPY",
                None if imp_ratio is None else imp_ratio >= 0.5,
            ),
            Row(
                name,
                "API bulk upload, 10k-item requests",
                api,
                "signals/s",
                "≥ 20,000/s",
                _num(get(data, "api_10k_requests.ratio_vs_raw_copy")),
                "raw COPY",
                _at_least(api, 20_000),
            ),
        ]
    if name == "match":
        values = _num(get(data, "api_with_audit.values_per_s"))
        p99 = _num(get(data, "api_with_audit.p99_ms"))
        feed = _num(get(data, "feed.events_per_s"))
        return [
            Row(
                name,
                f"exact match via API, {get(data, 'signals')} signals",
                values,
                "values/s",
                "≥ 50,000/s",
                _num(get(data, "api_with_audit.ratio_vs_raw_sql")),
                "raw SQL = ANY",
                _at_least(values, 50_000),
            ),
            Row(
                name,
                "exact match p99 (1,000-value request)",
                p99,
                "ms",
                "< 150 ms",
                None,
                "",
                None if p99 is None else p99 < 150,
            ),
            Row(
                name,
                "feed replay",
                feed,
                "events/s",
                "≥ 50,000/s",
                None,
                "",
                _at_least(feed, 50_000),
            ),
        ]
    if name == "pdq":
        qps = _num(get(data, "beacon.queries_per_s_batched"))
        single = _num(get(data, "beacon.ms_per_query_single"))
        return [
            Row(
                name,
                f"PDQ r=31 batched, {get(data, 'size')} hashes",
                qps,
                "queries/s",
                "≥ 2,000/s",
                _num(get(data, "ratios.beacon_vs_threatexchange_batched_speedup")),
                "threatexchange",
                _at_least(qps, 2_000),
            ),
            Row(
                name,
                "PDQ r=31 one query",
                single,
                "ms",
                "faster than threatexchange",
                _num(get(data, "ratios.beacon_vs_threatexchange_single_speedup")),
                "threatexchange",
                None
                if _num(get(data, "ratios.beacon_vs_threatexchange_single_speedup")) is None
                else _num(get(data, "ratios.beacon_vs_threatexchange_single_speedup")) > 1,
            ),  # type: ignore[operator]
            Row(
                name,
                "PDQ recall vs brute force",
                _num(get(data, "beacon.recall")),
                "",
                "1.0",
                None,
                "",
                _num(get(data, "beacon.recall")) == 1.0,
            ),
            Row(
                name,
                "PDQ index memory",
                _num(get(data, "beacon.memory_mb_per_million")),
                "MB per 1M hashes",
                "",
                None,
                "",
            ),
        ]
    if name == "vpdq":
        return [
            Row(
                name,
                f"vPDQ video match, {get(data, 'videos')} videos",
                _num(get(data, "beacon.ms_per_query_median")),
                "ms/query",
                "same answers as threatexchange",
                _num(get(data, "beacon_vs_threatexchange_speedup")),
                "threatexchange",
                get(data, "same_answers") if isinstance(get(data, "same_answers"), bool) else None,
            ),
        ]
    if name == "fanout":
        eps = _num(get(data, "events_per_second"))
        return [
            Row(
                name,
                f"fan-out, {get(data, 'signals')} signals × {get(data, 'subscriptions')} subscriptions",
                eps,
                "events/s",
                "≥ 5,000/s",
                _num(get(data, "ratio_to_baseline")),
                "receiver fed directly",
                _at_least(eps, 5_000),
            ),
            Row(
                name,
                "first event delivered, from the start of the upload",
                _num(get(data, "first_event_seconds")),
                "s",
                "",
                None,
                "",
            ),
        ]
    if name == "taxii":
        return [
            Row(
                name,
                f"TAXII collection read, {get(data, 'size')} signals",
                _num(get(data, "results.taxii.signals_per_s")),
                "signals/s",
                "",
                _num(get(data, "ratio_to_feed.taxii")),
                "REST feed",
            ),
            Row(
                name,
                "STIX export",
                _num(get(data, "results.export.signals_per_s")),
                "signals/s",
                "",
                _num(get(data, "ratio_to_feed.export")),
                "REST feed",
            ),
        ]
    if name == "audit":
        return [
            Row(
                name,
                "audit record() through the chain head",
                _num(get(data, "record.events_per_s")),
                "events/s",
                "",
                None,
                "",
            ),
            Row(
                name,
                f"audit export JSONL, {get(data, 'events')} events",
                _num(get(data, "export_jsonl.rows_per_s")),
                "rows/s",
                "",
                None,
                "",
            ),
            Row(
                name,
                "audit verify in the database",
                _num(get(data, "verify_chain_rows_per_s")),
                "rows/s",
                "",
                None,
                "",
            ),
            Row(
                name,
                "audit verify offline (JSONL export)",
                _num(get(data, "export_jsonl.offline_verify_rows_per_s")),
                "rows/s",
                "",
                None,
                "",
            ),
            Row(
                name,
                "audit export peak Python memory",
                _num(get(data, "export_peak_python_mib")),
                "MiB",
                "streamed, flat",
                None,
                "",
            ),
        ]
    return []


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def collect(results: Path) -> list[Row]:
    rows: list[Row] = []
    for name in ("upload", "match", "pdq", "vpdq", "fanout", "taxii", "audit"):
        path = results / f"{name}.json"
        if path.exists():
            rows += rows_for(name, json.loads(path.read_text()))
    return rows


def chart(rows: list[Row]) -> str:
    """Horizontal bars of each ratio on a log scale (1 = as fast as the baseline)."""
    bars = [r for r in rows if r.ratio is not None and r.ratio > 0]
    width, left, bar_h, gap, top = 760, 300, 18, 8, 30
    height = top + len(bars) * (bar_h + gap) + 40
    lo, hi = -2.0, 2.0  # 0.01× … 100×

    def x(ratio: float) -> float:
        clamped = min(max(math.log10(ratio), lo), hi)
        return left + (clamped - lo) / (hi - lo) * (width - left - 20)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<text x="{left}" y="18" font-weight="bold">Ratio to the baseline measured in the same run (log scale)</text>',
    ]
    for tick in (0.01, 0.1, 1, 10, 100):
        tx = x(tick)
        out.append(
            f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{height - 30}" '
            f'stroke="{"#333" if tick == 1 else "#ddd"}"/>'
        )
        out.append(f'<text x="{tx:.1f}" y="{height - 14}" text-anchor="middle">{tick:g}×</text>')
    for i, r in enumerate(bars):
        y = top + i * (bar_h + gap)
        assert r.ratio is not None
        x0, x1 = x(1), x(r.ratio)
        colour = "#2e7d32" if r.ratio >= 1 else "#c62828"
        out.append(
            f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{escape(r.benchmark)}: '
            f"{escape(r.measure[:34])}</text>"
        )
        out.append(
            f'<rect x="{min(x0, x1):.1f}" y="{y}" width="{max(abs(x1 - x0), 1):.1f}" '
            f'height="{bar_h}" fill="{colour}"/>'
        )
        out.append(
            f'<text x="{max(x0, x1) + 4:.1f}" y="{y + 13}">{_fmt(r.ratio)}× vs {escape(r.ratio_of)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def readme_text(rows: list[Row], run_info: dict[str, Any], chart_path: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Figures from the last `make bench` (PostgreSQL + Redis, the development machine's 2 cores),",
        "in production-like settings: DEBUG off, as `benchmarks.common.production_like` sets them,",
        "and API requests served through Django's handler as a WSGI server serves them",
        "(`benchmarks.common.Server`).",
        "Each benchmark measures a baseline in the same run — a raw `COPY`, a raw SQL lookup, brute",
        "force or the `threatexchange` library, a receiver fed directly — so the ratios compare",
        "across machines where the absolute figures do not. Targets are DESIGN.md §12. Rendered by",
        "`benchmarks/render.py` from `benchmarks/results/*.json`; do not edit by hand.",
        "",
        "    make bench                                      # all of them, < 20 minutes on 2 cores",
        "    .venv/bin/python -m benchmarks.run_all --only pdq  # one of them",
        "",
        "| benchmark | measure | figure | unit | target | met | ratio | against |",
        "|---|---|---:|---|---|---|---:|---|",
    ]
    for r in rows:
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        ratio = f"{_fmt(r.ratio)}×" if r.ratio is not None else ""
        lines.append(
            f"| {r.benchmark} | {r.measure} | {_fmt(r.figure)} | {r.unit} | {r.target} | {met} | {ratio} | {r.ratio_of} |"
        )
    scripts = run_info.get("scripts", {})
    if scripts:
        lines += [
            "",
            "## The last run",
            "",
            "| script | size | seconds | status |",
            "|---|---|---:|---|",
        ]
        for name, s in sorted(scripts.items()):
            status = "ok" if s.get("returncode") == 0 else f"failed ({s.get('returncode')})"
            lines.append(f"| bench_{name} | {s.get('size')} | {s.get('seconds')} | {status} |")
        total = sum(float(s.get("seconds") or 0) for s in scripts.values())
        lines += ["", f"Total wall time: {total / 60:.1f} min, at {run_info.get('at', '?')}."]
    lines += ["", f"![Ratios to the baselines]({chart_path})", ""]
    return "\n".join(lines)


def render(*, results: Path, readme: Path) -> None:
    rows = collect(results)
    svg = results / "chart.svg"
    svg.write_text(chart(rows))
    run_file = results / "run_all.json"
    run_info = json.loads(run_file.read_text()) if run_file.exists() else {}
    try:
        chart_path = svg.relative_to(readme.parent).as_posix()
    except ValueError:
        chart_path = svg.as_posix()
    readme.write_text(readme_text(rows, run_info, chart_path))


if __name__ == "__main__":
    render(results=ROOT / "benchmarks" / "results", readme=ROOT / "benchmarks" / "README.md")
    sys.exit(0)
