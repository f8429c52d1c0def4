"""manage.py audit_export, and the beacon CLI's audit export/verify against a live server."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from typer.testing import CliRunner

from client.auditverify import read_export, verify_export
from client.cli import app
from exchange.audit import signing
from exchange.audit.checkpoints import checkpoint_due
from exchange.audit.models import AuditEvent
from tests.audit.tampering import make_events


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_audit_export_command_writes_a_verifiable_file(fmt, tmp_path, settings):
    settings.BEACON_AUDIT_CHECKPOINT_EVERY = 5
    make_events(12)
    checkpoint_due()
    since = AuditEvent.objects.get(seq=3).at
    until = AuditEvent.objects.get(seq=10).at
    key = tmp_path / "key.pem"
    key.write_text(signing.public_key_pem())
    out = tmp_path / f"q.{fmt}"
    call_command(
        "audit_export",
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
        "--format",
        fmt,
        "--out",
        str(out),
        "--no-progress",
    )
    seqs = [r["seq"] for k, r in read_export(out) if k == "event"]
    assert seqs == list(range(3, 10))
    result = verify_export(out, public_key=[key])
    assert result.ok, result.summary()
    export = AuditEvent.objects.filter(action="audit.export").get()
    assert export.details == {"format": fmt, "scope": "all"}


@pytest.mark.django_db(transaction=True)
def test_beacon_cli_exports_and_verifies(live_server, issue_token, auditor, tmp_path, settings):
    settings.BEACON_AUDIT_CHECKPOINT_EVERY = 3
    make_events(7)
    checkpoint_due()
    token = issue_token(auditor, scopes=["audit:read"])
    runner = CliRunner()

    def beacon(*args: str):
        return runner.invoke(app, ["--url", live_server.url, "--token", token, *args])

    out = tmp_path / "audit.csv"
    exported = beacon("audit", "export", "--out", str(out), "--format", "csv")
    assert exported.exit_code == 0, exported.output
    key = tmp_path / "audit.csv.pub"
    assert key.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    verified = beacon("audit", "verify", str(out), "--public-key", str(key), "--json")
    assert verified.exit_code == 0, verified.output
    assert '"ok": true' in verified.output
    # Tamper with the file: the CLI exits 3 and names the seq.
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[3][:2] == ["event", "3"]
    rows[3][rows[0].index("target")] = "forged"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    out.write_text(buffer.getvalue())
    failed = beacon("audit", "verify", str(out), "--public-key", str(key))
    assert failed.exit_code == 3
    assert "changed" in failed.output and "#3" in failed.output
