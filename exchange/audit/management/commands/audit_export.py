"""Export the audit log (or a period of it) to a file that verifies offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from exchange import audit
from exchange.audit import Actor, AuditAction
from exchange.audit.export import FORMATS, ExportQuery, stream_export
from exchange.audit.management.commands.audit_verify import parse_since


class Command(BaseCommand):
    help = (
        "Stream audit events to a file (CSV, JSONL or JSON) with their signed checkpoints and "
        "a signed seal; verify it with `beacon audit verify FILE --public-key KEY.pem`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="ISO 8601 date or time (inclusive).")
        parser.add_argument("--until", help="ISO 8601 date or time (exclusive).")
        parser.add_argument("--member", help="Only events by or about this member.")
        parser.add_argument("--action", help="Only this action code.")
        parser.add_argument("--format", dest="fmt", choices=sorted(FORMATS), default="jsonl")
        parser.add_argument("--out", required=True, help="The file to write.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **opts: Any) -> None:
        since, until = parse_since(opts.get("since")), parse_since(opts.get("until"))
        if isinstance(since, int) or isinstance(until, int):
            raise CommandError("--since and --until take dates or times")
        query = ExportQuery(
            since=since, until=until, member=opts.get("member"), action=opts.get("action")
        )
        fmt = opts["fmt"]
        out = Path(opts["out"])
        with transaction.atomic():
            audit.record(
                actor=Actor.system("audit_export"),
                action=AuditAction.AUDIT_EXPORT,
                params=query.filters(),
                target=f"file:{out.name}",
                details={"format": fmt, "scope": query.scope},
            )
        total = query.queryset().count()
        console = Console(stderr=True)
        progress = Progress(
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=opts.get("no_progress", False),
        )
        written = 0
        with progress, out.open("w", encoding="utf-8", newline="") as handle:
            task = progress.add_task("events", total=total)

            def advance(_row: dict[str, Any]) -> None:
                nonlocal written
                written += 1
                if written % 500 == 0:
                    progress.update(task, completed=written)

            for chunk in stream_export(query, fmt, on_event=advance):
                handle.write(chunk)
            progress.update(task, completed=written)
        self.stdout.write(f"{written} events → {out} ({fmt}, sealed)")
