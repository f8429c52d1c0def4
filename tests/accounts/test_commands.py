from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import ApiToken, Member, SharingGroup
from exchange.audit.models import AuditEvent
from exchange.reports.figures import transparency
from exchange.reports.period import Period
from signals.models import Feedback, Signal

pytestmark = pytest.mark.django_db


def run(*args: str) -> dict:
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_operator_commands_script_a_member_from_scratch(client):
    assert (
        run(
            "create_member",
            "nordic",
            "--name",
            "Nordic Platform",
            "--kind",
            "platform",
            "--attest",
            "all",
            "--activate",
        )["status"]
        == "active"
    )
    run("create_member", "fjord", "--name", "Fjord", "--attest", "all", "--activate")
    issued = run(
        "issue_token",
        "nordic",
        "--scopes",
        "signals:read,signals:write",
        "--purposes",
        "detection",
        "--expires-days",
        "7",
    )
    assert issued["token"].startswith("bcn_") and issued["prefix"] == issued["token"][:12]
    assert (
        client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {issued['token']}").status_code == 200
    )
    assert run("create_group", "nordics", "--members", "nordic,fjord")["members"] == [
        "nordic",
        "fjord",
    ]
    assert set(SharingGroup.objects.get(slug="nordics").members.values_list("slug", flat=True)) == {
        "nordic",
        "fjord",
    }
    run("revoke_token", issued["prefix"])
    assert ApiToken.objects.get(prefix=issued["prefix"]).revoked_at is not None
    assert (
        client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {issued['token']}").status_code == 401
    )
    assert run("suspend_member", "fjord")["status"] == "suspended"


def test_commands_fail_clearly_on_bad_input():
    with pytest.raises(CommandError, match="No member"):
        call_command("issue_token", "ghost", "--scopes", "signals:read")
    call_command("create_member", "solo", "--name", "Solo", stdout=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_member", "solo", "--name", "Solo", stdout=StringIO())
    with pytest.raises(CommandError, match="scopes"):
        call_command("issue_token", "solo", "--scopes", "root", stdout=StringIO())
    assert Member.objects.get(slug="solo").status == "pending"


def test_seed_demo_is_idempotent(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = run("seed_demo", "--history-weeks", "2")
    events = AuditEvent.objects.count()
    second = run("seed_demo", "--history-weeks", "2")
    assert first["tokens"] == second["tokens"]
    # The demo history is played once, on the fresh database only.
    assert AuditEvent.objects.count() == events
    assert set(Member.objects.values_list("slug", flat=True)) >= {"demo-a", "demo-b", "demo-c"}
    assert set(
        SharingGroup.objects.get(slug="demo-pilot").members.values_list("slug", flat=True)
    ) == {"demo-a", "demo-b"}


def test_seed_demo_plays_a_history_the_report_counts(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    start = timezone.now()
    run("seed_demo", "--history-weeks", "3")
    times = list(AuditEvent.objects.order_by("seq").values_list("at", flat=True))
    assert times == sorted(times)  # the log's clock only moves forward
    assert times[0] < start - timedelta(days=20)
    period = Period("history", start - timedelta(weeks=4), timezone.now())
    figures = transparency(period, k=1)
    assert figures["members"]["sharing"] == 3
    assert figures["signals"]["shared"] == Signal.objects.count()
    assert figures["matches"]["signals_matched"] > 0
    assert figures["feedback"]["reactions"] == Feedback.objects.count()
    busy_weeks = [w for w in figures["signals"]["weekly"] if any(w["by_category"].values())]
    assert len(busy_weeks) >= 3
