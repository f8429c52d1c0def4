"""The admin dashboard: the exchange's last 30 days as charts, from the same figures and SVG
charts as the transparency report (``exchange.reports``), unwithheld because only staff see it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from exchange.reports import charts, figures


def dashboard_context(days: int = 30) -> dict[str, Any]:
    data = figures.dashboard(days=days)
    labels = [d[5:] for d in data["days"]]  # MM-DD
    shared_total = sum(sum(v) for v in data["shared"].values())
    delivered, failed = sum(data["delivered"]), sum(data["failed"])
    attempts = delivered + failed
    backlog = data["backlog"]
    return {
        "days": days,
        "totals": {
            "shared": shared_total,
            "matched": sum(data["matched"]),
            "feedback": sum(data["reactions"].values()),
            "delivered": delivered,
            "failed": failed,
            "success_rate": f"{100 * delivered / attempts:.1f} %" if attempts else "—",
            **backlog,
        },
        "charts": [
            charts.stacked_bars(
                f"Signals shared per day, by category (last {days} days)",
                labels,
                data["shared"] or {"no signals": [0] * len(labels)},
            ),
            charts.stacked_bars("Match requests per day", labels, {"matches": data["matched"]}),
            charts.horizontal_bars(
                "Feedback reported, by reaction", sorted(data["reactions"].items())
            ),
            charts.stacked_bars(
                "Webhook deliveries per day",
                labels,
                {"delivered": data["delivered"], "failed": data["failed"]},
                colors={"delivered": "#009E73", "failed": "#D55E00"},
            ),
            charts.horizontal_bars(
                "Delivery backlog now",
                [
                    ("outbox entries waiting", backlog["outbox"]),
                    ("deliveries pending", backlog["deliveries_pending"]),
                    ("deliveries dead-lettered", backlog["deliveries_dead"]),
                ],
                color="#E69F00",
            ),
        ],
    }


def dashboard_view(site: Any, request: HttpRequest) -> HttpResponse:
    context = {
        **site.each_context(request),
        "title": "Dashboard",
        **dashboard_context(),
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
