"""Server-side SVG charts: self-contained markup that reads offline, prints, and needs no script.

Withheld cells (``None``) are drawn as nothing and never guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

# Okabe–Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"


def _nice_max(value: float) -> int:
    if value <= 0:
        return 1
    step = 1
    while step * 10 <= value:
        step *= 10
    for mult in (1, 2, 5, 10):
        if value <= step * mult:
            return step * mult
    return step * 10


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[int | None]],
    *,
    width: int = 760,
    height: int = 280,
    colors: Mapping[str, str] | None = None,
) -> SafeString:
    """Vertical bars, one per label, stacked by series, with a legend and a y axis."""
    left, right, top, bottom = 48, 12, 36, 46
    legend_rows = (len(series) + 3) // 4
    plot_w, plot_h = width - left - right, height - top - bottom - 18 * legend_rows
    totals = [sum(v[i] or 0 for v in series.values()) for i in range(len(labels))]
    ymax = _nice_max(max(totals, default=0))
    names = list(series)
    color = {n: (colors or {}).get(n) or PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    slot = plot_w / max(len(labels), 1)
    bar_w = max(slot * 0.7, 1)
    parts = [_open(width, height, title), _title(title)]
    for tick in range(5):
        value = ymax * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#555">{value:g}</text>'
        )
    every = max(1, -(-len(labels) // 13))  # at most 13 axis labels
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        for name in names:
            value = series[name][i] or 0
            if value <= 0:
                continue
            h = plot_h * value / ymax
            y -= h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{color[name]}"><title>{escape(label)} · {escape(name)}: {value}'
                f"</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                f'font-size="10" fill="#555">{escape(label)}</text>'
            )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="#888"/>'
    )
    parts.extend(_legend(names, color, left, top + plot_h + 30, plot_w))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text node above is escaped


def horizontal_bars(
    title: str,
    items: Sequence[tuple[str, int | None]],
    *,
    width: int = 760,
    color: str = PALETTE[0],
    withheld_label: str = "withheld",
) -> SafeString:
    """One labelled bar per item; a withheld item shows its label and ``withheld_label``."""
    left, right, top, row = 230, 60, 36, 24
    height = top + row * max(len(items), 1) + 12
    plot_w = width - left - right
    xmax = _nice_max(max((v or 0 for _, v in items), default=0))
    parts = [_open(width, height, title), _title(title)]
    if not items:
        parts.append(
            f'<text x="{left}" y="{top + 16}" font-size="12" fill="#555">nothing to show</text>'
        )
    for i, (label, value) in enumerate(items):
        y = top + i * row
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="12" '
            f'fill="#222">{escape(label)}</text>'
        )
        if value is None:
            parts.append(
                f'<text x="{left}" y="{y + 15}" font-size="12" fill="#777">'
                f"{escape(withheld_label)}</text>"
            )
            continue
        w = plot_w * value / xmax
        parts.append(
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
            f'fill="{color}"><title>{escape(label)}: {value}</title></rect>'
            f'<text x="{left + w + 6:.1f}" y="{y + 15}" font-size="12" fill="#222">{value}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text node above is escaped


def _open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="{FONT}">'
    )


def _title(title: str) -> str:
    return (
        f'<title>{escape(title)}</title><text x="8" y="20" font-size="14" font-weight="600" '
        f'fill="#111">{escape(title)}</text>'
    )


def _legend(names: list[str], color: Mapping[str, str], x0: int, y0: int, width: int) -> list[str]:
    parts = []
    col_w = width / 4
    for i, name in enumerate(names):
        x = x0 + (i % 4) * col_w
        y = y0 + (i // 4) * 18
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 9}" width="10" height="10" fill="{color[name]}"/>'
            f'<text x="{x + 14:.1f}" y="{y}" font-size="11" fill="#333">{escape(name)}</text>'
        )
    return parts
