"""The dashboard's charts and the audit chain's verify button."""

from __future__ import annotations

import pytest
from django.urls import reverse

from exchange.audit.models import AuditEvent
from signals.services import signal_submit
from tests.audit import tampering
from tests.conftest import SYSTEM


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["exchange_admin", "auditor_user"])
def test_staff_see_the_dashboard_charts(staff_client, request, persona, member_a):
    signal_submit(
        member=member_a,
        items=[{"type": "sha256", "value": f"{i:064x}", "category": "csea.csam"} for i in range(3)],
        actor=SYSTEM,
    )
    page = staff_client(request.getfixturevalue(persona)).get(reverse("admin:dashboard"))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<svg") >= 5
    assert "Signals shared per day, by category" in html
    assert "csea.csam" in html
    assert "Delivery backlog now" in html
    assert 'id="dashboard-totals"' in html and "<td>3</td>" in html


@pytest.mark.django_db
def test_the_dashboard_is_linked_from_home_and_closed_to_others(
    staff_client, exchange_admin, member_user
):
    home = staff_client(exchange_admin).get(reverse("admin:index"))
    assert reverse("admin:dashboard").encode() in home.content
    other = staff_client(member_user).get(reverse("admin:dashboard"))
    assert other.status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["exchange_admin", "auditor_user"])
def test_verify_chain_shows_the_result_and_is_audited(staff_client, request, persona, member_a):
    client = staff_client(request.getfixturevalue(persona))
    listing = client.get(reverse("admin:audit_auditevent_changelist"))
    assert reverse("admin:audit_auditevent_verify").encode() in listing.content
    page = client.get(reverse("admin:audit_auditevent_verify"))
    assert page.status_code == 200 and b"verify-result" not in page.content
    before = AuditEvent.objects.count()
    result = client.post(reverse("admin:audit_auditevent_verify"))
    assert result.status_code == 200
    assert b"OK: " in result.content and b"chain intact" in result.content
    (event,) = AuditEvent.objects.filter(action="audit.verify")
    assert event.details["ok"] is True and event.result_count == before


@pytest.mark.django_db
def test_verify_chain_names_the_first_changed_event(staff_client, auditor_user, member_a):
    victim = AuditEvent.objects.order_by("seq")[1]
    tampering.change(victim.seq, target="member:forged")
    result = staff_client(auditor_user).post(reverse("admin:audit_auditevent_verify"))
    assert f"FAILED at #{victim.seq}".encode() in result.content
