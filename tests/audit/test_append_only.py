"""The audit log has no update or delete path, and on PostgreSQL the database refuses them."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from exchange import audit
from exchange.audit.models import AppendOnlyError, AuditEvent
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigger is installed on PostgreSQL only"
)


def _some_events(n: int = 3) -> list[AuditEvent]:
    return [audit.record(actor=SYSTEM, action="api.request", target=f"t{i}") for i in range(n)]


def test_model_refuses_update_and_delete():
    event = _some_events(1)[0]
    event.action = "api.refused"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_update([event], ["action"])
    with pytest.raises(AppendOnlyError):
        AuditEvent(seq=999, at=event.at, prev_hash="0", hash="0").save()
    assert AuditEvent.objects.get(pk=event.pk).action == "api.request"


@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'forged' WHERE seq = %s",
        "DELETE FROM audit_auditevent WHERE seq = %s",
    ],
)
def test_trigger_refuses_update_and_delete(sql):
    event = _some_events(2)[1]
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.seq])
    assert AuditEvent.objects.get(seq=event.seq).action == "api.request"


@postgres_only
def test_trigger_refuses_truncate():
    _some_events(2)
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            # The test runner's flush door is shut for this transaction, as in production.
            cursor.execute("SET LOCAL beacon.audit_flush = 'off'")
            cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() >= 2


@postgres_only
def test_trigger_refuses_delete_even_with_the_flush_door_open():
    event = _some_events(1)[0]
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL beacon.audit_flush = 'on'")
            cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [event.seq])


@postgres_only
def test_trigger_is_installed_by_the_migration():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_auditevent'::regclass "
            "AND NOT tgisinternal ORDER BY tgname"
        )
        names = [row[0] for row in cursor.fetchall()]
    assert names == ["audit_auditevent_append_only", "audit_auditevent_no_truncate"]
