"""Concurrent writers on PostgreSQL: the chain stays linear and verifies."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection, connections, transaction

from exchange import audit
from exchange.audit.models import AuditEvent
from exchange.audit.verify import verify_chain
from tests.conftest import SYSTEM

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"
    ),
]


def test_parallel_requests_keep_the_chain(live_server, issue_token, member_a, member_b):
    tokens = [issue_token(member_a), issue_token(member_b), issue_token(member_a)]
    before = AuditEvent.objects.count()
    per_thread = 15

    def hammer(token: str) -> list[int]:
        statuses = []
        with httpx.Client(
            base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            for i in range(per_thread):
                if i % 3 == 2:
                    response = client.post(
                        "/api/v1/match",
                        json={
                            "purpose": "detection",
                            "items": [{"type": "sha256", "value": "0" * 64}],
                        },
                    )
                else:
                    response = client.get("/api/v1/me")
                statuses.append(response.status_code)
        return statuses

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        results = list(pool.map(hammer, tokens))
    assert all(s < 500 for statuses in results for s in statuses), results
    assert AuditEvent.objects.count() - before >= len(tokens) * per_thread
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    result = verify_chain()
    assert result.ok, result.summary()


def test_parallel_connections_recording_directly():
    barrier = threading.Barrier(4)

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(25):
                with transaction.atomic():
                    audit.record(actor=SYSTEM, action="api.request", target=f"w{n}-{i}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert AuditEvent.objects.filter(target__startswith="w").count() == 100
    result = verify_chain()
    assert result.ok, result.summary()
