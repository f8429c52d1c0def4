"""How the audit log is stored: a feed page's long list of disclosed ids is compressed with
LZ4 where PostgreSQL has it, and reads back exactly."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

from exchange import audit
from exchange.audit.models import AuditEvent
from tests.conftest import SYSTEM

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="column compression is PostgreSQL's; the PostgreSQL + Redis pass runs it",
    ),
]
# The migration's own test of whether this PostgreSQL has LZ4.
_has_lz4 = importlib.import_module("exchange.audit.migrations.0006_lean_writes")._has_lz4


def test_a_feed_pages_disclosures_are_stored_with_lz4_and_read_back_exactly():
    with connection.cursor() as cursor:
        if not _has_lz4(cursor):
            pytest.skip("this PostgreSQL was built without LZ4, so the migration keeps pglz")
    ids = list(range(1, 20_001, 2))
    event = audit.record(
        actor=SYSTEM, action="signal.feed", result_count=len(ids), disclosed={"globex": ids}
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(disclosed) FROM audit_auditevent WHERE seq = %s",
            [event.seq],
        )
        assert cursor.fetchone()[0] == "lz4"
    assert AuditEvent.objects.get(seq=event.seq).disclosed == {"globex": ids}
