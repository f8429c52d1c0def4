"""Monotonic sequences that follow commit order.

The feed sequence must never let a reader skip a row: if transaction T1 took seq 10 and T2 took
11 but T2 committed first, a reader at 11 would never see 10. Allocating from a locked row
serialises the allocating transactions, so seq order is commit order.
"""

from __future__ import annotations

from django.db import transaction

from exchange.models import Counter

FEED = "feed"


def allocate(name: str, count: int = 1) -> int:
    """Reserve ``count`` consecutive numbers and return the first. Call inside the
    transaction that uses them; the counter row stays locked until it commits."""
    if count < 1:
        raise ValueError("count must be positive")
    with transaction.atomic():
        row = Counter.objects.select_for_update().filter(name=name).first()
        if row is None:
            Counter.objects.get_or_create(name=name)
            row = Counter.objects.select_for_update().get(name=name)
        start = row.value + 1
        Counter.objects.filter(name=name).update(value=row.value + count)
    return start


def current(name: str) -> int:
    return Counter.objects.filter(name=name).values_list("value", flat=True).first() or 0
