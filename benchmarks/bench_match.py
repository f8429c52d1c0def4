"""Exact matching on PostgreSQL against a large store of mixed exact types, through the API with
audit, in 1,000-value requests: values/s and latency percentiles, against a raw SQL ``= ANY``
lookup of the same values in the same run, and the same requests with the audit write off.
Also the feed: events/s when paging through every signal, as the time from request to
rendered answer (the client's parsing of each page is timed and reported beside it).

    python -m benchmarks.bench_match --size full   # 1M signals
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Server, median, parse_args, percentile, setup_django, write_results

TYPES = ["sha256", "md5", "email"]


def _value(type_: str, i: int) -> str:
    digest = hashlib.sha256(f"{type_}-{i}".encode()).hexdigest()
    return digest[:32] if type_ == "md5" else digest


def main() -> None:
    args = parse_args(__doc__ or "", default_size=1_000_000)
    setup_django()
    from django.db import connection

    from accounts.models import Scope
    from accounts.services import token_issue
    from exchange.audit import Actor
    from exchange.audit import log as audit_log
    from signals import peppers
    from signals.bulk import gc_paused
    from tests.conftest import make_member

    n = args.rows
    actor = Actor.system("bench")
    owner, reader = make_member("bench-owner"), make_member("bench-reader")
    token = token_issue(
        member=reader, scopes=[Scope.SIGNALS_READ], purposes=["detection"], actor=actor
    ).plaintext
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.ndjson"
        with path.open("w") as out:
            for i in range(n):
                type_ = TYPES[i % len(TYPES)]
                out.write(
                    json.dumps({"type": type_, "value": _value(type_, i), "category": "csea.csam"})
                    + "\n"
                )
        # In its own process, as an operator runs it: this process then holds what a web
        # process holds, not the import's heap.
        subprocess.run(
            [sys.executable, "manage.py", "import_signals", str(path), "--member", owner.slug],
            cwd=Path(__file__).resolve().parent.parent,
            check=True,
            capture_output=True,
        )
    with connection.cursor() as cursor:
        # Measure the store at rest, as an exchange holds it, rather than while the server is
        # still vacuuming and writing back the bulk load.
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")

    rng = random.Random(7)
    requests = max(5, min(60, n // 1000))
    batches = []
    for _ in range(requests):
        items = []
        for _ in range(1000):
            i = rng.randrange(n * 2)  # about half the values are in the store
            type_ = TYPES[i % len(TYPES)]
            items.append({"type": type_, "value": _value(type_, i)})
        batches.append(items)
    client = Server()

    def post(items: list[dict[str, str]]) -> float:
        start = time.perf_counter()
        response = client.post(
            "/api/v1/match",
            {"purpose": "detection", "items": items},
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, response.content[:300]
        return elapsed

    def run_api() -> list[float]:
        return [post(items) for items in batches]

    import exchange.audit as audit_pkg

    original_record = audit_log.record

    def audit_write(on: bool) -> None:
        replacement = original_record if on else (lambda **kwargs: None)
        audit_log.record = replacement  # type: ignore[assignment]
        audit_pkg.record = replacement  # type: ignore[attr-defined]

    def run_interleaved() -> tuple[list[float], list[float]]:
        """Each batch with and without the audit write, alternating which goes first, so
        both see the same caches, load and data: the ratio is the audit's cost."""
        on: list[float] = []
        off: list[float] = []
        try:
            for i, items in enumerate(batches):
                for audited in (True, False) if i % 2 == 0 else (False, True):
                    audit_write(audited)
                    (on if audited else off).append(post(items))
        finally:
            audit_write(True)
        return on, off

    def run_raw() -> list[float]:
        latencies = []
        for items in batches:
            start = time.perf_counter()
            with connection.cursor() as cursor:
                for type_ in TYPES:
                    values = [it["value"] for it in items if it["type"] == type_]
                    if type_ == "email":
                        values = [
                            peppers.pepper(v, version)
                            for v in values
                            for version in peppers.peppers()
                        ]
                    cursor.execute(
                        "SELECT s.id FROM signals_indicator i JOIN signals_signal s ON s.indicator_id = i.id WHERE i.type = %s AND i.value = ANY(%s)",
                        [type_, values],
                    )
                    cursor.fetchall()
            latencies.append(time.perf_counter() - start)
        return latencies

    from django.conf import settings

    settings.BEACON_MATCH_THROTTLE_RATE = settings.BEACON_THROTTLE_RATE = "1000000/min"
    run_api()  # warm caches
    raw = run_raw()
    with_audit, without_audit = run_interleaved()

    feed_token = token_issue(
        member=reader, scopes=[Scope.SIGNALS_READ], purposes=["detection"], actor=actor
    ).plaintext
    # The exchange's paging rate is request to rendered answer; parsing the answer is the
    # client's work, on the client's machine, and is reported beside it. Here the client shares
    # the exchange's process, so it parses with the collector paused and lets each page go
    # before asking for the next. Otherwise the collections its parsing starts would do part of
    # the exchange's own collecting outside the timed request, and its pages would lengthen
    # the collections inside it; with a remote client, neither happens.
    feed_events, cursor, serve_seconds, parse_seconds = 0, None, 0.0, 0.0
    more = True
    while more:
        url = "/api/v1/feed?purpose=detection&limit=10000" + (f"&cursor={cursor}" if cursor else "")
        start = time.perf_counter()
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {feed_token}")
        parsed_at = time.perf_counter()
        with gc_paused():
            body = json.loads(response.content)
        serve_seconds += parsed_at - start
        parse_seconds += time.perf_counter() - parsed_at
        feed_events += len(body["events"])
        cursor, more = body["next_cursor"], body["more"]
        del body, response

    def summary(latencies: list[float]) -> dict[str, float]:
        total = sum(latencies)
        return {
            "values_per_s": round(1000 * len(latencies) / total),
            "p50_ms": round(1000 * median(latencies), 1),
            "p99_ms": round(1000 * percentile(latencies, 99), 1),
        }

    api, no_audit, raw_sql = summary(with_audit), summary(without_audit), summary(raw)
    write_results(
        "match",
        {
            "signals": n,
            "requests": requests,
            "values_per_request": 1000,
            "api_with_audit": {
                **api,
                "ratio_vs_raw_sql": round(api["values_per_s"] / raw_sql["values_per_s"], 3),
                "target_values_per_s": 50_000,
                "target_p99_ms": 150,
            },
            "api_without_audit": no_audit,
            # Same batches, interleaved with and without the audit write; target ≤ 0.15.
            "audit_overhead": round(no_audit["values_per_s"] / api["values_per_s"] - 1, 3),
            "audit_overhead_p50": round(median(with_audit) / median(without_audit) - 1, 3),
            "audit_overhead_target": 0.15,
            "raw_sql_any": raw_sql,
            "feed": {
                "events": feed_events,
                "seconds": round(serve_seconds, 3),
                "events_per_s": round(feed_events / serve_seconds),
                "client_parse_seconds": round(parse_seconds, 3),
                "events_per_s_with_client_parse": round(
                    feed_events / (serve_seconds + parse_seconds)
                ),
                "target_events_per_s": 50_000,
            },
        },
    )


if __name__ == "__main__":
    main()
