"""Raw-SQL tampering with the audit table, as an attacker with database access would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

from client.auditchain import event_hash
from exchange import audit
from exchange.audit.models import AuditEvent, format_at
from tests.conftest import SYSTEM

TABLE = "audit_auditevent"


def make_events(n: int) -> list[AuditEvent]:
    return [
        audit.record(actor=SYSTEM, action="api.request", target=f"t{i}", result_count=i)
        for i in range(n)
    ]


@contextmanager
def tampering() -> Iterator[Any]:
    """A cursor with the append-only trigger disabled (PostgreSQL) for the test's transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
        try:
            yield cursor
        finally:
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")


def change(seq: int, **values: Any) -> None:
    sets = ", ".join(f"{name} = %s" for name in values)
    with tampering() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET {sets} WHERE seq = %s", [*values.values(), seq])


def delete(seq: int) -> None:
    with tampering() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = %s", [seq])


def move(seq: int, to: int) -> None:
    with tampering() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET seq = %s WHERE seq = %s", [to, seq])


def swap(a: int, b: int) -> None:
    move(a, -1)
    move(b, a)
    move(-1, b)


def insert_after(seq: int) -> None:
    """Renumber every later event and slip a forged, correctly hashed event in after ``seq``."""
    later = list(
        AuditEvent.objects.filter(seq__gt=seq).order_by("-seq").values_list("seq", flat=True)
    )
    for s in later:
        move(s, s + 1)
    prev = AuditEvent.objects.get(seq=seq)
    forged = {
        "seq": seq + 1,
        "at": format_at(prev.at),
        "actor_member": "",
        "actor": "system:forger",
        "action": "api.request",
        "purpose": "",
        "request_id": "",
        "client_ip": "",
        "params_digest": "",
        "result_count": 0,
        "disclosed": {},
        "owners": [],
        "target": "forged",
        "details": {},
    }
    digest = event_hash(prev.hash, forged)
    with tampering() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (seq, at, actor_member, actor, action, purpose, request_id, "
            "client_ip, params_digest, result_count, disclosed, owners, target, details, "
            "prev_hash, hash) VALUES (%s, %s, '', 'system:forger', 'api.request', '', '', '', "
            "'', 0, '{}', '[]', 'forged', '{}', %s, %s)",
            [seq + 1, prev.at, prev.hash, digest],
        )
