"""Every change form of the admin saves through a service and leaves an audit event naming the
administrator: members, attestations, groups, users and passwords, categories, TOTP resets."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Member, MemberAttestation, SharingGroup, User
from accounts.services import member_create
from exchange.audit.models import AuditEvent
from signals.models import Category
from tests.admin.otp import device_for
from tests.conftest import SYSTEM


def _actions(actor: str = "user:alice") -> list[tuple[str, str]]:
    return list(AuditEvent.objects.filter(actor=actor).values_list("action", "target"))


def _inline_management(prefix: str = "attestations", total: int = 0) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(total),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


@pytest.mark.django_db
def test_member_change_form_edits_attests_and_sets_categories(staff_client, exchange_admin):
    member = member_create(slug="fresh", name="Fresh", kind="platform", actor=SYSTEM)
    response = staff_client(exchange_admin).post(
        reverse("admin:accounts_member_change", args=[member.pk]),
        {
            "name": "Fresh Platform",
            "kind": "financial",
            "attribution": "anonymous",
            "categories": "csea.csam, csea.grooming",
            "add_attestations": ["agreement"],
            **_inline_management(),
        },
    )
    assert response.status_code == 302, response.content[:3000]
    member = Member.objects.get(pk=member.pk)
    assert (member.name, member.kind, member.attribution) == (
        "Fresh Platform",
        "financial",
        "anonymous",
    )
    assert member.receive_categories == ["csea.csam", "csea.grooming"]
    assert member.has_signed_agreement()
    actions = [a for a, _ in _actions()]
    assert actions.count("member.update") == 2 and "member.attest" in actions


@pytest.mark.django_db
def test_attestation_add_goes_through_the_service(staff_client, exchange_admin):
    member = member_create(slug="fresh", name="Fresh", kind="platform", actor=SYSTEM)
    response = staff_client(exchange_admin).post(
        reverse("admin:accounts_memberattestation_add"),
        {"member": member.pk, "kind": "human_review"},
    )
    assert response.status_code == 302
    row = MemberAttestation.objects.get(member=member)
    assert row.attested_by == "user:alice"
    assert ("member.attest", "member:fresh") in _actions()


@pytest.mark.django_db
def test_group_add_and_membership_changes_are_audited_per_member(
    staff_client, exchange_admin, member_a, member_b, outsider
):
    client = staff_client(exchange_admin)
    response = client.post(
        reverse("admin:accounts_sharinggroup_add"),
        {
            "slug": "nordic",
            "name": "Nordic",
            "description": "pilot",
            "member_set": [member_a.pk, member_b.pk],
        },
    )
    assert response.status_code == 302, response.content[:3000]
    group = SharingGroup.objects.get(slug="nordic")
    assert set(group.members.values_list("slug", flat=True)) == {"acme", "globex"}
    assert group.description == "pilot"
    response = client.post(
        reverse("admin:accounts_sharinggroup_change", args=[group.pk]),
        {"name": "Nordic", "description": "pilot", "member_set": [member_b.pk, outsider.pk]},
    )
    assert response.status_code == 302
    assert set(group.members.values_list("slug", flat=True)) == {"globex", "initech"}
    actions = [a for a, _ in _actions()]
    assert actions.count("group.add_member") == 3
    assert actions.count("group.remove_member") == 1
    assert "group.create" in actions


@pytest.mark.django_db
def test_user_add_and_password_changes_are_audited_without_the_password(
    staff_client, exchange_admin
):
    client = staff_client(exchange_admin)
    response = client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "olga",
            "usable_password": "true",
            "password1": "a long passphrase 42",
            "password2": "a long passphrase 42",
            "role": "auditor",
            "is_staff": "on",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    user = User.objects.get(username="olga")
    assert user.role == "auditor" and user.is_staff
    response = client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {
            "password1": "another passphrase 43",
            "password2": "another passphrase 43",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    user.refresh_from_db()
    assert user.check_password("another passphrase 43")
    events = AuditEvent.objects.filter(actor="user:alice", target="user:olga")
    operations = [e.details["operation"] for e in events]
    assert operations == ["user.create", "user.update"]
    assert events.last().details["fields"] == ["password"]
    for event in events:
        assert "passphrase" not in str(event.chained_body())


@pytest.mark.django_db
def test_own_password_change_is_audited(staff_client, exchange_admin):
    response = staff_client(exchange_admin).post(
        reverse("admin:password_change"),
        {
            "old_password": "correct horse battery",
            "new_password1": "a new long passphrase",
            "new_password2": "a new long passphrase",
        },
    )
    assert response.status_code == 302
    (event,) = AuditEvent.objects.filter(actor="user:alice", action="admin.action")
    assert event.details["operation"] == "user.password_change"


@pytest.mark.django_db
def test_category_change_is_audited(staff_client, exchange_admin):
    category = Category.objects.get(code="csea.grooming")
    response = staff_client(exchange_admin).post(
        reverse("admin:signals_category_change", args=[category.pk]),
        {
            "code": category.code,
            "name": "Grooming (online)",
            "description": category.description,
            "references": "[]",
            "required_attestations": '["agreement"]',
            "default_ttl_days": "365",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    category.refresh_from_db()
    assert category.name == "Grooming (online)" and category.default_ttl_days == 365
    assert ("category.change", "category:csea.grooming") in _actions()


@pytest.mark.django_db
def test_a_lost_authenticator_is_reset_and_audited(staff_client, exchange_admin, auditor_user):
    device = device_for(auditor_user)
    response = staff_client(exchange_admin).post(
        reverse("admin:otp_totp_totpdevice_changelist"),
        {"action": "reset", "_selected_action": [device.pk]},
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=auditor_user).exists()
    assert ("admin.action", "user:olivia") in _actions()


@pytest.mark.django_db
def test_no_secret_of_a_device_is_shown(staff_client, exchange_admin, auditor_user):
    device = device_for(auditor_user)
    client = staff_client(exchange_admin)
    listing = client.get(reverse("admin:otp_totp_totpdevice_changelist"))
    detail = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]))
    assert detail.status_code == 200
    assert device.key.encode() not in listing.content + detail.content


@pytest.mark.django_db
def test_requiring_more_attestations_re_announces_the_category_signals(
    staff_client, exchange_admin, member_a
):
    from signals.models import Signal
    from signals.services import signal_submit

    signal_submit(
        member=member_a,
        items=[{"type": "sha256", "value": "ef" * 32, "category": "csea.grooming"}],
        actor=SYSTEM,
    )
    before = Signal.objects.get().seq
    category = Category.objects.get(code="csea.grooming")
    response = staff_client(exchange_admin).post(
        reverse("admin:signals_category_change", args=[category.pk]),
        {
            "code": category.code,
            "name": category.name,
            "description": category.description,
            "references": "[]",
            "required_attestations": '["agreement", "human_review", "user_appeals"]',
            "default_ttl_days": "",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    assert Signal.objects.get().seq > before
