"""Who may do what in the admin: exchange admins manage everything but the audit log, auditors
read audit events, members and signals and export, member users get nothing."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Member
from exchange.audit.models import AuditEvent

ALL_MODELS = [
    "accounts_member",
    "accounts_memberattestation",
    "accounts_user",
    "accounts_apitoken",
    "accounts_sharinggroup",
    "signals_category",
    "signals_indicator",
    "signals_signal",
    "signals_feedback",
    "delivery_subscription",
    "delivery_delivery",
    "delivery_outboxentry",
    "audit_auditevent",
]
AUDITOR_MAY_VIEW = {
    "accounts_member",
    "accounts_memberattestation",
    "signals_category",
    "signals_signal",
    "audit_auditevent",
}


def _changelist(name: str) -> str:
    return reverse(f"admin:{name}_changelist")


@pytest.mark.django_db
@pytest.mark.parametrize("name", ALL_MODELS)
def test_exchange_admin_sees_every_model(staff_client, exchange_admin, name):
    response = staff_client(exchange_admin).get(_changelist(name))
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("name", ALL_MODELS)
def test_auditor_sees_only_audit_members_and_signals(staff_client, auditor_user, name):
    response = staff_client(auditor_user).get(_changelist(name))
    assert response.status_code == (200 if name in AUDITOR_MAY_VIEW else 403)


@pytest.mark.django_db
def test_auditor_cannot_change_a_member(staff_client, auditor_user, member_a):
    client = staff_client(auditor_user)
    url = reverse("admin:accounts_member_change", args=[member_a.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # view-only page
    response = client.post(url, {"name": "Renamed", "kind": "platform", "attribution": "named"})
    assert response.status_code == 403
    assert Member.objects.get(pk=member_a.pk).name != "Renamed"
    assert client.get(reverse("admin:accounts_member_add")).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["exchange_admin", "auditor_user"])
def test_nobody_can_add_change_or_delete_an_audit_event(staff_client, request, persona, member_a):
    client = staff_client(request.getfixturevalue(persona))
    event = AuditEvent.objects.order_by("seq").first()
    assert event is not None
    before = (AuditEvent.objects.count(), event.hash)
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    change = reverse("admin:audit_auditevent_change", args=[event.pk])
    page = client.get(change)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(change, {"action": "x"}).status_code == 403
    delete = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    listing = client.post(
        _changelist("audit_auditevent"),
        {"action": "delete_selected", "_selected_action": [event.pk]},
    )
    assert listing.status_code in (200, 302)
    event.refresh_from_db()
    assert (AuditEvent.objects.count(), event.hash) == before


@pytest.mark.django_db
def test_a_member_user_is_refused_even_if_marked_staff(member_user):
    client = Client()
    response = client.post(
        reverse("admin:login"),
        {"username": member_user.username, "password": "correct horse battery"},
    )
    assert response.status_code == 200  # the login form again, with an error
    assert b"errornote" in response.content
    client.force_login(member_user)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 302 and reverse("admin:login") in index["Location"]
    assert client.get(_changelist("accounts_member")).status_code == 302


@pytest.mark.django_db
def test_only_auditors_may_export(staff_client, exchange_admin, auditor_user, member_a):
    url = _changelist("audit_auditevent")
    admin_page = staff_client(exchange_admin).get(url)
    auditor_page = staff_client(auditor_user).get(url)
    assert b'value="export_csv"' not in admin_page.content
    assert b'value="export_csv"' in auditor_page.content


@pytest.mark.django_db
def test_auditor_gets_no_state_changing_actions(staff_client, auditor_user, member_a):
    page = staff_client(auditor_user).get(_changelist("accounts_member"))
    assert b'value="suspend"' not in page.content
    response = staff_client(auditor_user).post(
        _changelist("accounts_member"),
        {"action": "suspend", "_selected_action": [member_a.pk], "reason": "x"},
    )
    member_a.refresh_from_db()
    assert member_a.status == "active"
    assert response.status_code in (200, 302)
