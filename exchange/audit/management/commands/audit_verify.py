"""Verify the audit chain; exit 1 naming the first bad seq and what is wrong."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import make_aware

from exchange import audit
from exchange.audit import Actor, AuditAction
from exchange.audit.verify import verify_chain


def parse_since(value: str | None) -> int | datetime | None:
    """A seq (``1200``) or an ISO 8601 date or time (``2026-07-01``, ``2026-07-01T12:00Z``)."""
    if not value:
        return None
    if value.isdigit():
        return int(value)
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since {value!r} is neither a seq nor an ISO 8601 date/time")
        parsed = datetime(day.year, day.month, day.day)
    return parsed if parsed.tzinfo else make_aware(parsed)


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain, checkpoint signatures and chain head. Exits 1 "
        "naming the first bad seq and the problem (changed, missing, inserted, reordered, "
        "bad signature)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="Start at this seq or ISO 8601 date/time.")

    def handle(self, *args: Any, **opts: Any) -> None:
        result = verify_chain(parse_since(opts.get("since")))
        with transaction.atomic():
            audit.record(
                actor=Actor.system("audit_verify"),
                action=AuditAction.AUDIT_VERIFY,
                result_count=result.count,
                details={
                    "ok": result.ok,
                    "first_bad_seq": result.first_bad_seq,
                    "problem": result.problem,
                },
            )
        for note in result.notes:
            self.stderr.write(f"note: {note}")
        if not result.ok:
            raise CommandError(result.summary(), returncode=1)
        self.stdout.write(result.summary())
