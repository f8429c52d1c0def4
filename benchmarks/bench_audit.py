"""The audit log on PostgreSQL: ``record()`` events/s through the locked chain head, streamed
export rows/s (JSONL and CSV) with the peak Python memory of an export, and verification
rows/s in the database (``verify_chain``) and offline (``client.auditverify``).

    python -m benchmarks.bench_audit --size small   # 2,000 events; full is 20,000
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

from benchmarks.common import parse_args, setup_django, write_results


def main() -> None:
    args = parse_args(__doc__ or "", default_size=20_000)
    setup_django("beacon_bench_audit")
    from django.db import transaction
    from django.utils import timezone

    from client.auditchain import event_hash
    from client.auditverify import verify_export
    from exchange import audit
    from exchange.audit import Actor, signing
    from exchange.audit.checkpoints import checkpoint_due
    from exchange.audit.export import ExportQuery, stream_export
    from exchange.audit.models import AuditEvent, ChainHead, format_at
    from exchange.audit.verify import verify_chain

    n = args.rows
    actor = Actor(label="token:bcn_bench0000", request_id="r" * 32, client_ip="192.0.2.1")
    recorded = min(2000, n)
    start = time.perf_counter()
    for i in range(recorded):
        with transaction.atomic():
            audit.record(
                actor=actor,
                action="signal.match",
                purpose="detection",
                params={"i": i},
                result_count=3,
                disclosed={"bench-reader": [i, i + 1, i + 2]},
                owners=["bench-owner"],
            )
    record_seconds = time.perf_counter() - start

    # The rest of the log is written in bulk, correctly chained, to keep the run short.
    head = ChainHead.objects.get(pk=1)
    prev, seq, rows = head.hash, head.seq, []
    now = timezone.now()
    for i in range(n - recorded):
        seq += 1
        event = AuditEvent(
            seq=seq,
            at=now,
            actor_member="bench-reader",
            actor=actor.label,
            action="signal.match",
            purpose="detection",
            request_id=actor.request_id,
            client_ip=actor.client_ip,
            params_digest="0" * 64,
            result_count=3,
            disclosed={"bench-reader": [i, i + 1, i + 2]},
            owners=["bench-owner"],
            prev_hash=prev,
        )
        body = event.chained_body()
        body["at"] = format_at(now)
        event.hash = prev = event_hash(prev, body)
        rows.append(event)
        if len(rows) == 5000:
            AuditEvent.objects.bulk_create(rows)
            rows = []
    AuditEvent.objects.bulk_create(rows)
    ChainHead.objects.filter(pk=1).update(seq=seq, hash=prev)
    checkpoint_due(force=True)

    results: dict[str, object] = {
        "events": n,
        "record": {
            "events": recorded,
            "events_per_s": round(recorded / record_seconds),
            "ms_per_event": round(1000 * record_seconds / recorded, 3),
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key.pem"
        key.write_text(signing.public_key_pem())
        for fmt in ("jsonl", "csv"):
            path = Path(tmp) / f"export.{fmt}"
            start = time.perf_counter()
            with path.open("w") as out:
                for chunk in stream_export(ExportQuery(), fmt):
                    out.write(chunk)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            offline = verify_export(path, public_key=[key])
            verify_seconds = time.perf_counter() - start
            assert offline.ok, offline.summary()
            results[f"export_{fmt}"] = {
                "rows_per_s": round(n / seconds),
                "bytes": path.stat().st_size,
                "offline_verify_rows_per_s": round(n / verify_seconds),
            }
        tracemalloc.start()
        for _chunk in stream_export(ExportQuery(), "jsonl"):
            pass
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results["export_peak_python_mib"] = round(peak / 2**20, 2)
    start = time.perf_counter()
    db = verify_chain()
    seconds = time.perf_counter() - start
    assert db.ok, db.summary()
    results["verify_chain_rows_per_s"] = round(n / seconds)
    write_results("audit", results)


if __name__ == "__main__":
    main()
