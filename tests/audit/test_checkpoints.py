"""Signed checkpoints: made every N events or M minutes, served by the API, verifiable."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.utils import timezone

from client.auditchain import checkpoint_message, key_id
from exchange import audit
from exchange.audit import signing
from exchange.audit.checkpoints import checkpoint_due
from exchange.audit.models import AuditCheckpoint, ChainHead
from exchange.audit.tasks import checkpoint as checkpoint_task
from tests.conftest import SYSTEM, assert_problem

pytestmark = pytest.mark.django_db


def _events(n: int) -> None:
    for i in range(n):
        audit.record(actor=SYSTEM, action="api.request", target=f"t{i}")


def _verify(row: dict, public_pem: str) -> None:
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    key.verify(
        base64.b64decode(row["signature"]), checkpoint_message(row["seq"], row["hash"], row["at"])
    )


def test_checkpoint_every_n_events(settings):
    settings.BEACON_AUDIT_CHECKPOINT_EVERY = 5
    settings.BEACON_AUDIT_CHECKPOINT_MINUTES = 60
    _events(2)
    first = checkpoint_due()  # the first checkpoint is always due
    assert first is not None
    _events(3)
    assert checkpoint_due() is None  # 3 < 5 events and not yet 60 minutes
    _events(2)
    second = checkpoint_task()
    head = ChainHead.objects.get(pk=1)
    assert second == head.seq
    assert AuditCheckpoint.objects.get(seq=second).hash == head.hash
    assert checkpoint_due() is None  # nothing new


def test_checkpoint_after_m_minutes(settings):
    settings.BEACON_AUDIT_CHECKPOINT_EVERY = 1000
    settings.BEACON_AUDIT_CHECKPOINT_MINUTES = 10
    _events(1)
    made = checkpoint_due()
    assert made is not None
    _events(1)
    assert checkpoint_due() is None
    AuditCheckpoint.objects.filter(pk=made.pk).update(at=timezone.now() - timedelta(minutes=11))
    assert checkpoint_due() is not None


def test_no_checkpoint_of_an_empty_chain():
    assert checkpoint_due(force=True) is None


def test_checkpoints_api_paginates_and_verifies(api_for, auditor, settings):
    settings.BEACON_AUDIT_CHECKPOINT_EVERY = 1
    made = []
    for _ in range(3):
        _events(1)
        made.append(checkpoint_due().seq)
    api = api_for(auditor, scopes=["audit:read"])
    key = api.get("/api/v1/audit/public-key").json()
    assert key["algorithm"] == "Ed25519"
    assert key["key_id"] == signing.key_id()
    page = api.get("/api/v1/audit/checkpoints", {"limit": 2}).json()
    assert [c["seq"] for c in page["checkpoints"]] == made[:2]
    rest = api.get("/api/v1/audit/checkpoints", {"cursor": page["next_cursor"]}).json()
    assert [c["seq"] for c in rest["checkpoints"]] == made[2:]
    assert rest["next_cursor"] is None
    since = api.get("/api/v1/audit/checkpoints", {"since_seq": made[0]}).json()
    assert [c["seq"] for c in since["checkpoints"]] == made[1:]
    for row in page["checkpoints"] + rest["checkpoints"]:
        assert row["key_id"] == key["key_id"]
        _verify(row, key["public_key"])


def test_checkpoints_need_audit_read(api_for, member_a):
    assert_problem(api_for(member_a, scopes=["signals:read"]).get("/api/v1/audit/checkpoints"), 403)
    assert_problem(api_for().get("/api/v1/audit/public-key"), 401)


def test_configured_key_is_used(settings):
    private = Ed25519PrivateKey.generate()
    settings.BEACON_AUDIT_SIGNING_KEY = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert signing.key_id() == key_id(raw)
    _events(1)
    row = checkpoint_due().as_dict()
    assert row["key_id"] == key_id(raw)
    _verify(row, signing.public_key_pem())


def test_production_refuses_to_sign_without_a_key(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.BEACON_AUDIT_SIGNING_KEY = ""
    settings.DEBUG = False
    settings.TESTING = False
    with pytest.raises(ImproperlyConfigured):
        signing.sign(b"x")


def test_rotated_keys_still_verify_old_checkpoints(settings, api_for, auditor):
    from exchange.audit.verify import verify_chain

    def pem(private: Ed25519PrivateKey) -> str:
        return private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    settings.BEACON_AUDIT_SIGNING_KEY = pem(old)
    _events(2)
    checkpoint_due(force=True)
    old_public = signing.public_key_pem()
    old_id = signing.key_id()
    settings.BEACON_AUDIT_SIGNING_KEY = pem(new)
    _events(2)
    checkpoint_due(force=True)
    assert verify_chain().problem == "bad signature"  # the old key is unknown
    settings.BEACON_AUDIT_PREVIOUS_PUBLIC_KEYS = old_public
    result = verify_chain()
    assert result.ok and result.checkpoints == 2, result.summary()
    body = api_for(auditor).get("/api/v1/audit/public-key").json()
    assert body["key_id"] == signing.key_id() != old_id
    assert body["previous"] == [{"key_id": old_id, "public_key": old_public}]
