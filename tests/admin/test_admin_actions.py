"""Admin writes and actions go through the services and are audited with the administrator
as the actor; secrets are shown once; pasted identifiers are hashed, never kept."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken, Member, MemberStatus
from exchange.audit.models import AuditEvent
from exchange.delivery.models import Subscription, SubscriptionStatus
from signals.models import Signal, SignalStatus
from signals.services import signal_submit
from tests.conftest import SYSTEM


def _events(action: str, actor: str = "user:alice") -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, actor=actor))


@pytest.mark.django_db
def test_admin_creates_and_admits_a_member_through_the_service(staff_client, exchange_admin):
    client = staff_client(exchange_admin)
    response = client.post(
        reverse("admin:accounts_member_add"),
        {
            "slug": "newco",
            "name": "NewCo",
            "kind": "platform",
            "attribution": "named",
            "attestations": ["agreement", "human_review"],
            "activate": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    member = Member.objects.get(slug="newco")
    assert member.status == MemberStatus.ACTIVE
    assert _events("member.create") and _events("member.activate")
    assert len(_events("member.attest")) == 2


@pytest.mark.django_db
def test_admin_cannot_admit_without_the_agreement(staff_client, exchange_admin):
    response = staff_client(exchange_admin).post(
        reverse("admin:accounts_member_add"),
        {
            "slug": "noagree",
            "name": "No",
            "kind": "platform",
            "attribution": "named",
            "activate": "on",
        },
    )
    assert response.status_code == 200
    assert not Member.objects.filter(slug="noagree").exists()


@pytest.mark.django_db
def test_suspension_refuses_the_next_api_request_and_reactivation_restores_it(
    staff_client, exchange_admin, member_a, issue_token
):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(member_a)}")
    assert api.get("/api/v1/me").status_code == 200
    client = staff_client(exchange_admin)
    url = reverse("admin:accounts_member_changelist")
    client.post(url, {"action": "suspend", "_selected_action": [member_a.pk], "reason": "abuse"})
    assert Member.objects.get(pk=member_a.pk).status == MemberStatus.SUSPENDED
    assert api.get("/api/v1/me").status_code == 401
    (event,) = _events("member.suspend")
    assert event.details["reason"] == "abuse"
    client.post(url, {"action": "reactivate", "_selected_action": [member_a.pk]})
    assert api.get("/api/v1/me").status_code == 200
    assert _events("member.activate")


@pytest.mark.django_db
def test_token_issue_shows_the_secret_once_and_revoke_refuses_it(
    staff_client, exchange_admin, member_a
):
    client = staff_client(exchange_admin)
    response = client.post(
        reverse("admin:accounts_apitoken_add"),
        {
            "member": member_a.pk,
            "name": "ops",
            "scopes_choice": ["signals:read"],
            "purposes_choice": ["detection"],
            "expires_days": 30,
        },
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    plaintext = re.search(rb"bcn_[A-Za-z0-9]{46}", response.content).group().decode()
    token = ApiToken.objects.get(prefix=plaintext[:12])
    assert token.created_by == "user:alice" and token.scopes == ["signals:read"]
    (event,) = _events("token.issue")
    assert plaintext not in str(event.details)
    listing = client.get(reverse("admin:accounts_apitoken_changelist"))
    detail = client.get(reverse("admin:accounts_apitoken_change", args=[token.pk]))
    assert plaintext.encode() not in listing.content + detail.content
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api.get("/api/v1/me").status_code == 200
    client.post(
        reverse("admin:accounts_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert api.get("/api/v1/me").status_code == 401
    assert _events("token.revoke")


@pytest.mark.django_db
def test_search_by_a_pasted_raw_email_finds_the_signal_and_keeps_nothing_of_it(
    staff_client, exchange_admin, member_a
):
    raw = "Jane.Saoirse@gmail.com"
    digest = "92ee26057ed9dea2535d6c8b141d48373932476599196e00352254896db5888f"
    signal_submit(
        member=member_a,
        items=[{"type": "email", "value": digest, "category": "csea.grooming"}],
        actor=SYSTEM,
    )
    signal = Signal.objects.get()
    client = staff_client(exchange_admin)
    search = reverse("admin:signals_signal_search")
    response = client.post(search, {"type": "email", "value": raw})
    assert response.status_code == 302
    assert raw not in response["Location"] and digest not in response["Location"]
    listing = client.get(response["Location"])
    assert listing.status_code == 200
    assert f'href="/admin/signals/signal/{signal.pk}/change/' in listing.content.decode()
    assert raw.encode() not in listing.content
    assert digest.encode() not in listing.content
    (event,) = _events("admin.action")
    assert event.details == {"operation": "indicator.search", "type": "email"}
    assert event.result_count == 1
    stored = str(event.chained_body())
    assert raw not in stored and digest not in stored
    assert hashlib.sha256(raw.encode()).hexdigest() not in stored
    miss = client.post(search, {"type": "email", "value": "other@example.com"})
    assert miss.status_code == 302
    assert (
        f"/admin/signals/signal/{signal.pk}/" not in client.get(miss["Location"]).content.decode()
    )
    bad = client.post(search, {"type": "phone", "value": "not a phone", "region": "GB"})
    assert bad.status_code == 200 and b"not a phone" not in bad.content


@pytest.mark.django_db
def test_retract_needs_a_reason_and_is_audited(staff_client, exchange_admin, member_a):
    signal_submit(
        member=member_a,
        items=[{"type": "sha256", "value": "ab" * 32, "category": "csea.csam"}],
        actor=SYSTEM,
    )
    signal = Signal.objects.get()
    client = staff_client(exchange_admin)
    url = reverse("admin:signals_signal_changelist")
    client.post(url, {"action": "retract", "_selected_action": [signal.pk], "reason": ""})
    assert Signal.objects.get().status == SignalStatus.ACTIVE
    client.post(
        url, {"action": "retract", "_selected_action": [signal.pk], "reason": "appeal upheld"}
    )
    signal.refresh_from_db()
    assert signal.status == SignalStatus.RETRACTED and signal.retract_reason == "appeal upheld"
    (event,) = _events("signal.retract")
    assert event.details["by"] == "exchange"


@pytest.mark.django_db
def test_pause_and_resume_a_subscription(staff_client, exchange_admin, member_a):
    from exchange.delivery.services import subscription_create

    sub = subscription_create(
        member=member_a, url="https://127.0.0.1:9/hook", actor=SYSTEM
    ).subscription
    client = staff_client(exchange_admin)
    url = reverse("admin:delivery_subscription_changelist")
    client.post(url, {"action": "pause", "_selected_action": [sub.pk], "reason": "noisy"})
    assert Subscription.objects.get(pk=sub.pk).status == SubscriptionStatus.DISABLED
    client.post(url, {"action": "resume", "_selected_action": [sub.pk]})
    assert Subscription.objects.get(pk=sub.pk).status == SubscriptionStatus.ACTIVE
    assert _events("subscription.pause") and _events("subscription.resume")


@pytest.mark.django_db
def test_auditor_exports_a_sealed_csv_that_verifies_offline(
    staff_client, auditor_user, member_a, tmp_path
):
    from client.auditverify import verify_export
    from exchange.audit import signing

    client = staff_client(auditor_user)
    seqs = list(AuditEvent.objects.values_list("pk", flat=True))
    response = client.post(
        reverse("admin:audit_auditevent_changelist"),
        {"action": "export_csv", "_selected_action": seqs},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content)
    lines = body.decode().strip().splitlines()
    assert lines[0].startswith("record,seq,at,actor_member,actor,action")
    assert sum(1 for line in lines if line.startswith("event,")) == len(seqs)
    export = tmp_path / "export.csv"
    export.write_bytes(body)
    key = tmp_path / "key.pem"
    key.write_text(signing.public_key_pem())
    result = verify_export(export, public_key=[key])
    assert result.ok, result.summary()
    (event,) = AuditEvent.objects.filter(action="audit.export")
    assert event.actor == "user:olivia" and event.result_count == len(seqs)


@pytest.mark.django_db
def test_an_export_that_is_not_a_range_is_refused(staff_client, auditor_user, member_a, member_b):
    client = staff_client(auditor_user)
    seqs = list(AuditEvent.objects.order_by("seq").values_list("pk", flat=True))
    response = client.post(
        reverse("admin:audit_auditevent_changelist"),
        {"action": "export_csv", "_selected_action": [seqs[0], seqs[-1]]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"covers every event" in response.content
    assert not AuditEvent.objects.filter(action="audit.export").exists()


@pytest.mark.django_db
def test_list_pages_show_hashes_not_values(staff_client, exchange_admin, member_a):
    signal_submit(
        member=member_a,
        items=[
            {
                "type": "keyword",
                "value": "send me a pic first",
                "lang": "en",
                "category": "csea.grooming",
            }
        ],
        actor=SYSTEM,
    )
    client = staff_client(exchange_admin)
    for name in ("signals_signal", "signals_indicator"):
        page = client.get(reverse(f"admin:{name}_changelist"))
        assert b"send me a pic first" not in page.content
