from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from exchange.audit.models import AuditEvent
from exchange.delivery.models import OutboxEntry
from signals.models import Indicator, Signal
from tests.signals.conftest import digest, item

pytestmark = pytest.mark.django_db


def write(path, lines):
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    )


def run(path, member="acme", *extra):
    out = StringIO()
    call_command("import_signals", str(path), "--member", member, "--json", *extra, stdout=out)
    return json.loads(out.getvalue())


def test_it_imports_upserts_and_reports_bad_lines_by_number(tmp_path, member_a, pilot):
    path = tmp_path / "backfill.ndjson"
    lines = [item(value=digest(str(i)), audience="group:pilot") for i in range(25)]
    lines[3] = item("email", "raw@example.com")
    lines.insert(10, "{not json")
    lines.append(item("keyword", "send me a pic first", "csea.grooming"))
    write(path, lines)
    summary = run(path, "acme", "--batch-size", "7")
    assert (summary["created"], summary["updated"], summary["rejected"]) == (25, 0, 2)
    rejects = [
        json.loads(line)
        for line in (tmp_path / "backfill.ndjson.rejects.ndjson").read_text().splitlines()
    ]
    assert [r["line"] for r in rejects] == [4, 11]
    assert rejects[0]["errors"][0]["field"] == "value"
    assert Signal.objects.filter(owner=member_a).count() == 25
    assert Signal.objects.filter(audience_kind="group").count() == 24
    assert AuditEvent.objects.filter(action="signal.import").count() == summary["batches"]
    assert sum(e.seq_to - e.seq_from + 1 for e in OutboxEntry.objects.all()) == 25


def test_reimporting_updates_instead_of_duplicating(tmp_path, member_a):
    path = tmp_path / "a.ndjson"
    write(path, [item(value=digest(str(i)), confidence=10) for i in range(5)])
    run(path)
    write(path, [item(value=digest(str(i)), confidence=90) for i in range(5)])
    summary = run(path, "acme", "--restart")
    assert (summary["created"], summary["updated"]) == (0, 5)
    assert set(Signal.objects.values_list("confidence", flat=True)) == {90}
    assert Indicator.objects.count() == 5


def test_an_interrupted_import_resumes_after_the_last_committed_batch(tmp_path, member_a):
    path = tmp_path / "big.ndjson"
    write(path, [item(value=digest(str(i))) for i in range(30)])
    (tmp_path / "big.ndjson.import-state.json").write_text(json.dumps({"line": 20}))
    summary = run(path, "acme", "--batch-size", "10")
    assert summary["resumed_from"] == 20 and summary["created"] == 10
    assert run(path, "acme")["lines"] == 0


def test_it_refuses_unknown_members_and_missing_files(tmp_path, member_a):
    with pytest.raises(CommandError, match="No member"):
        run(tmp_path / "x", "ghost")
    with pytest.raises(CommandError, match="No file"):
        run(tmp_path / "missing.ndjson")


def test_imported_signals_match_like_uploaded_ones(tmp_path, member_a, member_b, api_for):
    path = tmp_path / "ids.ndjson"
    write(path, [item("email", digest("x@example.com"), "csea.sextortion")])
    run(path)
    response = api_for(member_b).post(
        "/api/v1/match",
        {"purpose": "detection", "items": [{"type": "email", "value": digest("x@example.com")}]},
        format="json",
    )
    assert response.json()["results"][0]["matches"][0]["signals"][0]["owner"] == "acme"
