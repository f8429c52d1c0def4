"""The HTML report as a reader sees it: opened in headless Chromium, offline, with its charts."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from exchange.reports.period import current_quarter
from tests.browser import chromium

pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.timeout(180)]


def test_the_html_report_renders_its_charts_in_chromium(
    scenario: dict[str, Any], tmp_path: Any
) -> None:
    path = tmp_path / "report.html"
    call_command(
        "transparency_report", "--period", current_quarter(), "--out", str(path), stderr=StringIO()
    )
    requested: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 900, "height": 1200})
        page.on("request", lambda r: requested.append(r.url))
        page.goto(path.as_uri())
        assert page.title().startswith("Beacon transparency report")
        charts = page.locator("svg.chart")
        assert charts.count() == 4
        labels = [charts.nth(i).get_attribute("aria-label") for i in range(4)]
        assert labels == [
            "Signals shared per week, by category",
            "Signals matched per week",
            "Signals actioned, by category",
            "Webhook deliveries per week",
        ]
        for i in range(4):
            box = charts.nth(i).bounding_box()
            assert box is not None and box["width"] > 600 and box["height"] > 50
        # Bars are drawn with a visible size: 7 grooming signals this week, 5 actioned.
        for chart in (0, 1, 2):
            bars = charts.nth(chart).locator("rect.bar")
            assert bars.count() >= 1
            box = bars.first.bounding_box()
            assert box is not None and box["width"] > 1 and box["height"] > 1
        assert "Grooming" in (charts.nth(0).text_content() or "")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert requested == [path.as_uri()]  # nothing fetched beyond the file itself
    assert (tmp_path / "report.png").stat().st_size > 10_000
