"""The transparency report as a standalone HTML page: inline CSS and SVG, readable offline."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from exchange.reports import charts

REACTION_LABELS = {
    "seen": "Seen",
    "actioned": "Actioned",
    "not_actioned": "Reviewed, not actioned",
    "false_positive": "False positive",
    "disputed": "Disputed",
    "helpful": "Helpful",
}


def render_html(figures: dict[str, Any]) -> str:
    from signals.models import ActionTaken, Category

    k = figures["small_count_threshold"]
    withheld = f"< {k}"
    names = dict(Category.objects.values_list("code", "name"))
    action_names = dict(ActionTaken.choices)
    signals, matches, feedback = figures["signals"], figures["matches"], figures["feedback"]
    deliveries = figures["deliveries"]
    weeks = [w["week"][5:] for w in signals["weekly"]]
    categories = list(signals["by_category"])
    context = {
        "f": figures,
        "withheld": withheld,
        "rows": {
            "by_category": _rows(signals["by_category"], names),
            "by_type": _rows(signals["by_type"]),
            "by_reaction": _rows(feedback["by_reaction"], REACTION_LABELS),
            "by_action": _rows(feedback["by_action"], action_names),
            "by_reason": _rows(figures["retractions"]["by_reason"]),
        },
        "percent": {
            key: _percent(value)
            for key, value in (
                ("false_positive_rate", feedback["false_positive_rate"]),
                ("dispute_rate", feedback["dispute_rate"]),
                ("success_rate", deliveries["success_rate"]),
            )
        },
        "charts": {
            "signals_weekly": charts.stacked_bars(
                "Signals shared per week, by category",
                weeks,
                {
                    names.get(c, c): [w["by_category"].get(c) for w in signals["weekly"]]
                    for c in categories
                },
            ),
            "matches_weekly": charts.stacked_bars(
                "Signals matched per week",
                weeks,
                {"signals matched": [w["signals_matched"] for w in matches["weekly"]]},
                height=220,
            ),
            "actions_by_category": charts.horizontal_bars(
                "Signals actioned, by category",
                [(names.get(c, c), v) for c, v in feedback["actioned_by_category"].items()],
                color=charts.PALETTE[2],
                withheld_label=withheld,
            ),
            "delivery_health": charts.stacked_bars(
                "Webhook deliveries per week",
                weeks,
                {
                    "delivered": [w["delivered"] for w in deliveries["weekly"]],
                    "failed after every retry": [w["failed"] for w in deliveries["weekly"]],
                },
                colors={"delivered": charts.PALETTE[2], "failed after every retry": "#D55E00"},
                height=240,
            ),
        },
    }
    return render_to_string("reports/transparency.html", context)


def _rows(counts: dict[str, int | None], labels: dict[str, str] | None = None) -> list[Any]:
    return [((labels or {}).get(key, key), value) for key, value in counts.items()]


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:.1f}%"
