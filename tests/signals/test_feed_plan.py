"""The feed's "given before" test stays a probe per row on PostgreSQL: a hashed subplan would
read every disclosure the member ever had on each page that holds a row it may not see."""

from __future__ import annotations

import pytest
from django.db import connection

from signals.models import Disclosure, Signal
from tests.signals.conftest import item

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="reads PostgreSQL's query plan; SQLite never hashes the subquery",
    ),
]


def test_given_before_is_probed_per_row_never_hashed(upload, member_a, member_b):
    upload(member_a, [item("sha256", f"{i:064x}") for i in range(30)])
    Disclosure.objects.bulk_create(
        [Disclosure(member=member_b, signal=s, channel="feed") for s in Signal.objects.all()]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE signals_disclosure")
    sql, params = (
        Signal.objects.visible_or_given(member_b, "detection")
        .order_by("seq")[:10000]
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "SubPlan" in plan and "hashed SubPlan" not in plan, plan
    assert "signals_disclosure" in plan and "Join" not in plan.split("SubPlan")[0], plan
