"""Two uploads with the same Idempotency-Key at the same moment write once."""

from __future__ import annotations

import threading

import httpx
import pytest

from signals.models import Signal
from tests.signals.conftest import digest, item

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_requests_with_one_key_write_once(live_server, member_a, issue_token):
    token = issue_token(member_a)
    items = [item(value=digest(f"concurrent-{i}")) for i in range(2000)]
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(base_url=live_server.url, timeout=120) as http:
            barrier.wait()
            answers.append(
                http.post(
                    "/api/v1/signals",
                    json={"items": items},
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "race-1"},
                )
            )

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([201, 201], [201, 409]), statuses
    created = [a.json() for a in answers if a.status_code == 201]
    assert all(body == created[0] for body in created)
    assert created[0]["created"] == 2000
    assert Signal.objects.count() == 2000
