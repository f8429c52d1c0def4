"""The transparency report: figures counted from the audit log and feedback, against a scenario
whose counts are known; small-count withholding; the API, the command and the HTML."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from hypothesis import given
from hypothesis import strategies as st

from exchange.audit import AuditAction
from exchange.audit.models import AuditEvent
from exchange.reports.figures import transparency, withhold_all
from exchange.reports.period import current_quarter, parse_period
from tests.conftest import assert_problem

pytestmark = pytest.mark.django_db

THIS_QUARTER = current_quarter()


def test_figures_count_the_scenario(scenario: dict[str, Any], member_a: Any) -> None:
    f = transparency(parse_period(THIS_QUARTER), k=1)
    members = f["members"]
    assert (members["participating"], members["sharing"], members["receiving"]) == (3, 1, 2)
    assert members["reporting_feedback"] == 1
    assert member_a.name in members["named"]
    assert f["signals"]["shared"] == 9
    assert f["signals"]["by_category"] == {"csea.grooming": 7, "csea.sextortion": 2}
    assert f["signals"]["by_type"] == {"sha256": 9}
    assert sum(sum(v or 0 for v in w["by_category"].values()) for w in f["signals"]["weekly"]) == 9
    m = f["matches"]
    assert m["requests"] == 4
    assert m["by_purpose"]["detection"] == {
        "requests": 3,
        "items_checked": 13,
        "items_matched": 12,
        "signals_matched": 12,
    }
    assert m["by_purpose"]["research"]["requests"] == 1
    assert m["by_purpose"]["research"]["items_matched"] == 1
    fb = f["feedback"]
    assert fb["reactions"] == 6
    assert fb["by_reaction"] == {"actioned": 5, "false_positive": 1}
    assert fb["by_action"] == {"account_terminated": 5}
    assert fb["actioned_by_category"] == {"csea.grooming": 5}
    assert fb["signals_reviewed"] == 6
    assert fb["false_positive_rate"] == round(1 / 6, 4)
    assert fb["dispute_rate"] == 0.0
    r = f["retractions"]
    assert (r["total"], r["by_owner"], r["by_exchange"]) == (1, 1, 0)
    assert r["by_reason"] == {"successful user appeal": 1}
    assert r["by_category"] == {"csea.sextortion": 1}


def test_small_counts_are_withheld(scenario: dict[str, Any]) -> None:
    f = transparency(parse_period(THIS_QUARTER), k=5)
    assert f["small_count_threshold"] == 5
    assert f["signals"]["shared"] == 9  # totals are published as counted
    assert f["signals"]["by_category"] == {"csea.grooming": 7, "csea.sextortion": None}
    assert f["feedback"]["by_reaction"] == {"actioned": 5, "false_positive": None}
    assert f["matches"]["by_purpose"]["research"]["requests"] is None
    # One appeal is a rare, free-text reason: it joins "other reasons" and is withheld.
    assert f["retractions"]["by_reason"] == {"other reasons": None}
    # A rate over 6 reviewed signals is published; over fewer than k it is not.
    assert f["feedback"]["false_positive_rate"] is not None
    assert transparency(parse_period(THIS_QUARTER), k=7)["feedback"]["false_positive_rate"] is None


def test_other_periods_do_not_count_this_one(scenario: dict[str, Any]) -> None:
    f = transparency(parse_period("2020-Q1"), k=1)
    assert f["signals"]["shared"] == 0
    assert f["matches"]["requests"] == 0
    assert f["members"]["participating"] == 0
    assert len(f["signals"]["weekly"]) in (13, 14)


def test_api_needs_audit_read_is_audited_and_validates_the_period(
    scenario: dict[str, Any], api_for: Any, member_b: Any
) -> None:
    refused = api_for(member_b, scopes=["signals:read"]).get(
        "/api/v1/reports/transparency", {"period": THIS_QUARTER}
    )
    assert_problem(refused, 403)
    client = api_for(member_b, scopes=["audit:read"])
    bad = client.get("/api/v1/reports/transparency", {"period": "2026-Q5"})
    body = assert_problem(bad, 422)
    assert "2026-Q3" in json.dumps(body)
    ok = client.get("/api/v1/reports/transparency", {"period": THIS_QUARTER})
    assert ok.status_code == 200
    assert ok.json()["signals"]["shared"] == 9
    event = AuditEvent.objects.filter(action=AuditAction.REPORT_READ).last()
    assert event is not None
    assert event.actor_member == member_b.slug
    assert event.target == f"report:transparency:{THIS_QUARTER}"


def test_command_writes_json_and_html_with_charts(scenario: dict[str, Any], tmp_path: Any) -> None:
    out = StringIO()
    call_command("transparency_report", "--period", THIS_QUARTER, "--format", "json", stdout=out)
    assert json.loads(out.getvalue())["signals"]["shared"] == 9
    path = tmp_path / "report.html"
    call_command(
        "transparency_report", "--period", THIS_QUARTER, "--out", str(path), stderr=StringIO()
    )
    html = path.read_text("utf-8")
    assert html.count("<svg") == 4
    assert 'class="bar"' in html
    assert "Grooming" in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch
    assert AuditEvent.objects.filter(
        action=AuditAction.REPORT_READ, actor__startswith="operator:"
    ).exists()


def test_command_refuses_a_bad_period() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="quarter"):
        call_command("transparency_report", "--period", "last year")


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers(0, 50)), st.integers(1, 10))
def test_withholding_hides_exactly_the_small_nonzero_counts(counts: dict[str, int], k: int) -> None:
    shown = withhold_all(counts, k)
    assert shown.keys() == counts.keys()
    for key, value in counts.items():
        assert shown[key] == (None if 0 < value < k else value)


@given(st.integers(2000, 2100), st.integers(1, 4))
def test_quarters_tile_the_year(year: int, quarter: int) -> None:
    period = parse_period(f"{year}-Q{quarter}")
    assert period.start == datetime(year, 3 * quarter - 2, 1, tzinfo=UTC)
    following = (
        parse_period(f"{year + 1}-Q1") if quarter == 4 else parse_period(f"{year}-Q{quarter + 1}")
    )
    assert period.end == following.start
    months = [parse_period(f"{year}-{m:02d}") for m in range(3 * quarter - 2, 3 * quarter + 1)]
    assert months[0].start == period.start and months[-1].end == period.end
