"""How the audit log is stored: a feed page's long list of disclosed ids is compressed with
LZ4 where PostgreSQL has it, and reads back exactly."""

from __future__ import annotations

import pytest
from django.db import connection

from exchange import audit
from exchange.audit.models import AuditEvent
from tests.conftest import SYSTEM

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="column compression"),
]


def _has_lz4() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        return bool(cursor.fetchone()[0])


def test_a_feed_pages_disclosures_are_stored_with_lz4_and_read_back_exactly():
    if not _has_lz4():
        pytest.skip("this PostgreSQL was built without LZ4")
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
