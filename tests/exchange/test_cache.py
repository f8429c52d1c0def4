"""The shared cache on Redis: one client per pool, shared by every call and thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.core.cache import cache

pytestmark = pytest.mark.skipif(
    "redis" not in settings.CACHES["default"]["BACKEND"].lower(),
    reason="Redis is the shared cache only in the suite's PostgreSQL + Redis pass, which runs this",
)


def test_calls_share_one_client_and_counters_stay_exact():
    cache.delete("test:shared-counter")
    cache.add("test:shared-counter", 0, 60)
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]

    def bump(_: int) -> None:
        for _ in range(50):
            cache.incr("test:shared-counter")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(bump, range(4)))
    assert cache.get("test:shared-counter") == 200
    assert cache._cache.get_client(write=True) is client  # type: ignore[attr-defined]
    cache.delete("test:shared-counter")
