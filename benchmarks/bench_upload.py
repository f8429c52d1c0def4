"""Bulk upload speed on PostgreSQL: ``import_signals`` and the API in 10,000-item requests,
each as signals/s and as a ratio against a raw psycopg ``COPY`` of the same rows measured in the
same run.

The baseline writes what the import writes: inside the timed part it ``COPY``s one indicator
row per signal (same type, a 64-hex value, a ``created_at``) into a table shaped like
``signals_indicator`` and one signal row per item into a table shaped like ``signals_signal``,
both created with ``LIKE … INCLUDING ALL`` so they carry the same indexes and constraints.
The signal rows point at the indicator ids the first ``COPY`` generated. Only creating the
two empty tables happens outside the timing.

    python -m benchmarks.bench_upload --size 50000
    python -m benchmarks.bench_upload --size full   # 1M signals
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from io import StringIO
from pathlib import Path

from benchmarks.common import Server, parse_args, setup_django, timed, write_results


def main() -> None:
    args = parse_args(__doc__ or "", default_size=1_000_000)
    setup_django("beacon_bench_upload")
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Scope
    from accounts.services import token_issue
    from exchange.audit import Actor
    from tests.conftest import make_member

    n = args.rows
    actor = Actor.system("bench")
    importer = make_member("bench-import")
    api_member = make_member("bench-api")
    token = token_issue(member=api_member, scopes=[Scope.SIGNALS_WRITE], actor=actor).plaintext
    items = [
        {
            "type": "sha256",
            "value": hashlib.sha256(f"import-{i}".encode()).hexdigest(),
            "category": "csea.csam",
            "confidence": 80,
            "tags": ["bench"],
        }
        for i in range(n)
    ]

    # Baseline: COPY the same indicator rows and the same signal rows into tables shaped like
    # signals_indicator and signals_signal (indexes included), both inside the timed part.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_indicator (LIKE signals_indicator INCLUDING ALL)")
        cursor.execute("CREATE TABLE bench_signal (LIKE signals_signal INCLUDING ALL)")
        cursor.execute("SELECT id FROM signals_category WHERE code = 'csea.csam'")
        category_id = cursor.fetchone()[0]
        cursor.execute("SELECT pg_get_serial_sequence('bench_indicator', 'id')")
        indicator_sequence = cursor.fetchone()[0]

    def raw_copy() -> None:
        now = "2026-01-01T00:00:00Z"
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s)", [indicator_sequence])
            first_indicator = cursor.fetchone()[0] + 1
            with cursor.copy("COPY bench_indicator (type, value, created_at) FROM STDIN") as copy:
                for item in items:
                    copy.write_row(("sha256", item["value"], now))
            with cursor.copy(
                "COPY bench_signal (indicator_id, owner_id, category_id, tags, confidence, severity, audience, audience_kind, audience_members, tlp, status, external_id, lang, seq, created_at, updated_at, retract_reason) FROM STDIN"
            ) as copy:
                for i in range(n):
                    copy.write_row(
                        (
                            first_indicator + i,
                            importer.pk,
                            category_id,
                            '["bench"]',
                            80,
                            "medium",
                            "all",
                            "all",
                            "",
                            "amber",
                            "active",
                            "",
                            "",
                            i + 1,
                            now,
                            now,
                            "",
                        )
                    )

    copy_seconds, _ = timed(raw_copy)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "signals.ndjson"
        path.write_text("".join(json.dumps(item) + "\n" for item in items))
        out = StringIO()
        import_seconds, _ = timed(
            lambda: call_command(
                "import_signals", str(path), "--member", importer.slug, "--json", stdout=out
            )
        )
        summary = json.loads(out.getvalue())

    client = Server()
    api_items = [
        {**item, "value": hashlib.sha256(f"api-{i}".encode()).hexdigest()}
        for i, item in enumerate(items)
    ]
    chunk = 10_000

    def api_upload() -> int:
        created = 0
        for start in range(0, n, chunk):
            response = client.post(
                "/api/v1/signals",
                {"items": api_items[start : start + chunk]},
                HTTP_AUTHORIZATION=f"Bearer {token}",
                HTTP_IDEMPOTENCY_KEY=f"bench-{start}",
            )
            assert response.status_code == 201, response.content[:300]
            created += json.loads(response.content)["created"]
        return created

    api_seconds, api_created = timed(api_upload)
    copy_rate, import_rate, api_rate = n / copy_seconds, n / import_seconds, n / api_seconds
    write_results(
        "upload",
        {
            "rows": n,
            "raw_copy": {"seconds": round(copy_seconds, 3), "rows_per_s": round(copy_rate)},
            "import_signals": {
                "seconds": round(import_seconds, 3),
                "signals_per_s": round(import_rate),
                "created": summary["created"],
                "ratio_vs_raw_copy": round(import_rate / copy_rate, 3),
                "target_ratio": 0.5,
            },
            "api_10k_requests": {
                "seconds": round(api_seconds, 3),
                "signals_per_s": round(api_rate),
                "created": api_created,
                "ratio_vs_raw_copy": round(api_rate / copy_rate, 3),
                "target_signals_per_s": 20_000,
            },
        },
    )


if __name__ == "__main__":
    main()
