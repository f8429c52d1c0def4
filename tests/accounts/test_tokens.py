from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken, hash_token, well_formed_token
from accounts.services import member_activate, member_suspend, token_issue, token_revoke
from exchange.audit.models import AuditEvent
from tests.conftest import SYSTEM, assert_problem

pytestmark = pytest.mark.django_db


def test_it_stores_only_the_hash_and_a_prefix(member_a):
    issued = token_issue(member=member_a, scopes=["signals:read"], actor=SYSTEM)
    row = ApiToken.objects.get(pk=issued.token.pk)
    assert issued.plaintext.startswith("bcn_") and well_formed_token(issued.plaintext)
    assert row.secret_hash == hash_token(issued.plaintext)
    assert issued.plaintext not in str(ApiToken.objects.filter(pk=row.pk).values().get())
    assert issued.plaintext.startswith(row.prefix)
    assert AuditEvent.objects.filter(action="token.issue", target=f"token:{row.prefix}").exists()


def test_a_valid_token_reaches_me(api_for, member_a):
    response = api_for(member_a, scopes=["signals:read"], purposes=["detection"]).get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["member"]["slug"] == "acme"
    assert response.json()["token"]["scopes"] == ["signals:read"]
    assert response["X-Request-ID"]


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Basic abc", "Bearer not-a-token", "Bearer bcn_" + "x" * 46, "Token bcn_abc"],
)
def test_it_refuses_missing_or_malformed_credentials(client, db, header):
    kwargs = {"HTTP_AUTHORIZATION": header} if header else {}
    body = assert_problem(client.get("/api/v1/me", **kwargs), 401)
    assert body["type"].endswith("unauthenticated")


def test_it_refuses_an_unknown_but_well_formed_token(client, member_a, issue_token):
    raw = issue_token(member_a)
    ApiToken.objects.all().delete()
    assert_problem(client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}"), 401)


def test_it_refuses_a_revoked_token(client, member_a):
    issued = token_issue(member=member_a, scopes=["signals:read"], actor=SYSTEM)
    token_revoke(token=issued.token, actor=SYSTEM)
    body = assert_problem(
        client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}"), 401
    )
    assert "revoked" in body["detail"]
    assert AuditEvent.objects.filter(action="token.revoke").exists()


def test_it_refuses_an_expired_token(client, member_a):
    issued = token_issue(
        member=member_a,
        scopes=["signals:read"],
        actor=SYSTEM,
        expires_at=timezone.now() + timedelta(seconds=1),
    )
    ApiToken.objects.filter(pk=issued.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    body = assert_problem(
        client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}"), 401
    )
    assert "expired" in body["detail"]


def test_suspension_takes_effect_on_the_next_request(client, member_a):
    issued = token_issue(member=member_a, scopes=["signals:read"], actor=SYSTEM)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.plaintext}"}
    assert client.get("/api/v1/me", **auth).status_code == 200
    member_suspend(member=member_a, actor=SYSTEM)
    body = assert_problem(client.get("/api/v1/me", **auth), 401)
    assert "suspended" in body["detail"]
    member_activate(member=member_a, actor=SYSTEM)
    assert client.get("/api/v1/me", **auth).status_code == 200


def test_default_expiry_is_ninety_days(member_a):
    issued = token_issue(member=member_a, scopes=["signals:read"], actor=SYSTEM)
    days = (issued.token.expires_at - timezone.now()).days
    assert 89 <= days <= 90


def test_it_rejects_unknown_scopes_and_purposes(member_a):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        token_issue(member=member_a, scopes=["signals:everything"], actor=SYSTEM)
    with pytest.raises(ValidationError):
        token_issue(member=member_a, scopes=["signals:read"], purposes=["marketing"], actor=SYSTEM)
