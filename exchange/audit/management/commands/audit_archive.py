"""Archive audit events older than the retention period to a verified file, then remove them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.audit.archive import ArchiveError, archive_before, retention_cutoff
from exchange.audit.management.commands.audit_verify import parse_since


class Command(BaseCommand):
    help = (
        "Write audit events older than BEACON_AUDIT_RETENTION_DAYS (or --before) to a sealed "
        "JSONL archive in --out-dir, verify it, then remove them from the table. The chain "
        "left behind verifies from the archive's boundary."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out-dir",
            default=str(Path(settings.VAR_DIR) / "audit-archive"),
            help="Directory for the archive file (and its .pub key).",
        )
        parser.add_argument("--before", help="ISO 8601 cutoff instead of the retention setting.")
        parser.add_argument("--dry-run", action="store_true", help="Only say what would go.")

    def handle(self, *args: Any, **opts: Any) -> None:
        before = parse_since(opts.get("before"))
        if isinstance(before, int):
            raise CommandError("--before takes a date or time")
        cutoff = before or retention_cutoff()
        try:
            result = archive_before(cutoff, Path(opts["out_dir"]), dry_run=opts["dry_run"])
        except ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        if not result.count:
            self.stdout.write(f"nothing older than {cutoff.isoformat()}")
        elif result.path is None:
            self.stdout.write(
                f"would archive {result.count} events #{result.first_seq}–#{result.last_seq}"
            )
        else:
            self.stdout.write(
                f"archived {result.count} events #{result.first_seq}–#{result.last_seq} "
                f"→ {result.path}"
            )
