"""Retention: archived events verify offline, and the chain left behind verifies from the
archive's boundary."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from client.auditverify import verify_export
from exchange.audit.models import AuditArchive, AuditCheckpoint, AuditEvent
from exchange.audit.verify import verify_chain
from tests.audit.tampering import delete, make_events

pytestmark = pytest.mark.django_db


def _cutoff_at(seq: int):
    return AuditEvent.objects.get(seq=seq).at


def test_archive_then_verify_both_halves(tmp_path, capsys):
    make_events(12)
    cutoff = _cutoff_at(8)
    expected = AuditEvent.objects.filter(at__lt=cutoff).count()
    call_command("audit_archive", "--before", cutoff.isoformat(), "--out-dir", str(tmp_path))
    archive = AuditArchive.objects.get()
    assert (archive.first_seq, archive.count) == (1, expected)
    path = tmp_path / archive.file_name
    key = path.with_name(path.name + ".pub")
    result = verify_export(path, public_key=[key])
    assert result.ok, result.summary()
    assert (result.first_seq, result.last_seq) == (1, archive.last_seq)
    assert result.checkpoints >= 1  # a checkpoint at the boundary is signed
    assert AuditCheckpoint.objects.filter(seq=archive.last_seq, hash=archive.last_hash).exists()
    remaining = AuditEvent.objects.order_by("seq").first()
    assert remaining.seq == archive.last_seq + 1 and remaining.prev_hash == archive.last_hash
    db = verify_chain()
    assert db.ok, db.summary()
    assert any("archived" in note for note in db.notes)
    assert AuditEvent.objects.filter(action="audit.archive").count() == 1
    # A second archive starts at the boundary, and still verifies offline on its own.
    make_events(3)
    cutoff = AuditEvent.objects.order_by("-seq").first().at
    call_command("audit_archive", "--before", cutoff.isoformat(), "--out-dir", str(tmp_path))
    second = AuditArchive.objects.order_by("-last_seq").first()
    assert second.first_seq == archive.last_seq + 1
    path = tmp_path / second.file_name
    result = verify_export(path, public_key=[path.with_name(path.name + ".pub")])
    assert result.ok, result.summary()
    assert any(f"starts at #{second.first_seq}" in note for note in result.notes)
    assert verify_chain().ok
    call_command("audit_verify")


def test_deleting_at_the_boundary_is_still_caught(tmp_path):
    make_events(10)
    call_command("audit_archive", "--before", _cutoff_at(5).isoformat(), "--out-dir", str(tmp_path))
    boundary = AuditArchive.objects.get().last_seq
    delete(boundary + 1)
    result = verify_chain()
    assert (result.ok, result.first_bad_seq, result.problem) == (False, boundary + 1, "missing")


def test_dry_run_and_nothing_to_do(tmp_path, capsys):
    make_events(3)
    call_command("audit_archive", "--dry-run", "--before", _cutoff_at(3).isoformat())
    assert "would archive 2 events" in capsys.readouterr().out
    assert AuditEvent.objects.count() == 3
    call_command("audit_archive", "--out-dir", str(tmp_path))  # default retention: 730 days
    assert "nothing older" in capsys.readouterr().out


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL trigger")
def test_the_archive_door_closes_after_the_archive(tmp_path):
    make_events(6)
    call_command("audit_archive", "--before", _cutoff_at(4).isoformat(), "--out-dir", str(tmp_path))
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent WHERE seq = 5")
