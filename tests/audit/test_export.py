"""Streamed exports: formats, scopes, the seal, and the offline verifier (library and CLI)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.http import StreamingHttpResponse

from client.auditverify import read_export, verify_export
from exchange.audit.checkpoints import checkpoint_due
from exchange.audit.models import AuditEvent
from tests.audit.tampering import make_events
from tests.conftest import assert_problem

pytestmark = pytest.mark.django_db


def _body(response) -> bytes:
    assert response.status_code == 200, response.content[:300]
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


@pytest.fixture
def logged(settings, api_for, member_a, member_b):
    settings.BEACON_AUDIT_CHECKPOINT_EVERY = 3
    for _ in range(3):
        make_events(3)
        api_for(member_a).get("/api/v1/me")
        api_for(member_b).get("/api/v1/me")
        checkpoint_due()


@pytest.fixture
def key_file(tmp_path, api_for, auditor) -> Path:
    pem = api_for(auditor, scopes=["audit:read"]).get("/api/v1/audit/public-key").json()
    path = tmp_path / "exchange.pem"
    path.write_text(pem["public_key"])
    return path


def _export(api, tmp_path, fmt="jsonl", **params) -> Path:
    response = api.get("/api/v1/audit/events", {"format": fmt, **params})
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(_body(response))
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_full_export_round_trips(fmt, logged, api_for, auditor, key_file, tmp_path):
    api = api_for(auditor, scopes=["audit:read"])
    path = _export(api, tmp_path, fmt)
    result = verify_export(path, public_key=[key_file])
    assert result.ok, result.summary()
    kinds = [kind for kind, _ in read_export(path)]
    assert kinds[-1] == "seal" and "checkpoint" in kinds
    events = [r for k, r in read_export(path) if k == "event"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert result.checkpoints >= 3
    # The export itself is audited, naming its format and scope.
    export = AuditEvent.objects.filter(action="audit.export").last()
    assert export.details == {"format": fmt, "scope": "all"}
    assert export.actor_member == auditor.slug


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _event_lines(path: Path) -> list[int]:
    return [i for i, line in enumerate(_lines(path)) if '"type":"event"' in line]


def test_tampered_jsonl_exports_are_located(logged, api_for, auditor, key_file, tmp_path):
    path = _export(api_for(auditor, scopes=["audit:read"]), tmp_path)
    original = _lines(path)
    idx = _event_lines(path)
    row = json.loads(original[idx[4]])

    def check(lines: list[str], seq: int | None, problem: str) -> None:
        path.write_text("".join(lines))
        result = verify_export(path, public_key=[key_file])
        assert (result.ok, result.first_bad_seq, result.problem) == (False, seq, problem), (
            result.summary()
        )

    changed = dict(row, actor_member="someone-else")
    check(
        [*original[: idx[4]], json.dumps(changed) + "\n", *original[idx[4] + 1 :]],
        row["seq"],
        "changed",
    )
    check([*original[: idx[4]], *original[idx[4] + 1 :]], row["seq"], "missing")
    swapped = list(original)
    swapped[idx[4]], swapped[idx[5]] = swapped[idx[5]], swapped[idx[4]]
    check(swapped, row["seq"] + 1, "reordered")
    last_seq = json.loads(original[idx[-1]])["seq"]
    check(original[:-1], last_seq + 1, "missing")  # no seal: cut short
    seal = json.loads(original[-1])
    seal["count"] += 1
    check([*original[:-1], json.dumps(seal) + "\n"], None, "bad signature")
    truncated = [line for i, line in enumerate(original) if i != idx[-1]]
    check(truncated, last_seq, "missing")


def test_wrong_key_is_a_bad_signature(logged, api_for, auditor, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    path = _export(api_for(auditor, scopes=["audit:read"]), tmp_path, "csv")
    result = verify_export(path, public_key=[other])
    assert not result.ok and result.problem == "bad signature"


def test_tampered_csv_is_located(logged, api_for, auditor, key_file, tmp_path):
    path = _export(api_for(auditor, scopes=["audit:read"]), tmp_path, "csv")
    rows = list(csv.reader(io.StringIO(path.read_text())))
    header = rows[0]
    target = next(r for r in rows[1:] if r[0] == "event" and r[header.index("seq")] == "5")
    target[header.index("result_count")] = "7"
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    path.write_text(out.getvalue())
    result = verify_export(path, public_key=[key_file])
    assert (result.first_bad_seq, result.problem) == (5, "changed")


def test_filters_since_until_action(logged, api_for, auditor, key_file, tmp_path):
    api = api_for(auditor, scopes=["audit:read"])
    events = list(AuditEvent.objects.order_by("seq"))
    since, until = events[3].at, events[9].at
    path = _export(api, tmp_path, since=since.isoformat(), until=until.isoformat())
    got = [r for k, r in read_export(path) if k == "event"]
    assert got and all(since.isoformat() <= r["at"].replace("Z", "+00:00") for r in got)
    assert verify_export(path, public_key=[key_file]).ok
    path = _export(api, tmp_path, action="api.request")
    got = [r for k, r in read_export(path) if k == "event"]
    assert got and {r["action"] for r in got} == {"api.request"}
    result = verify_export(path, public_key=[key_file])
    assert result.ok, result.summary()
    assert_problem(api.get("/api/v1/audit/events", {"format": "xml"}), 422)
    assert_problem(api.get("/api/v1/audit/events", {"since": "last tuesday"}), 422)


def test_export_needs_audit_read(api_for, member_a):
    assert_problem(api_for(member_a, scopes=["signals:read"]).get("/api/v1/audit/events"), 403)
    assert_problem(api_for().get("/api/v1/audit/events"), 401)


def test_events_are_read_in_bounded_pages(django_assert_num_queries):
    from exchange.audit.export import ExportQuery, iter_events

    make_events(10)
    # 3 pages of 4 (4 + 4 + 2 rows) and the empty page that ends the stream: never all at once.
    with django_assert_num_queries(4):
        seqs = [row["seq"] for row in iter_events(ExportQuery(), chunk_size=4)]
    assert seqs == sorted(seqs) and len(seqs) == AuditEvent.objects.count()
