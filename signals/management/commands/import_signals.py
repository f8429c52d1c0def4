from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from accounts.models import Member
from exchange.commands import operator_actor
from signals.importer import import_stream


class Command(BaseCommand):
    help = "Import signals for a member from NDJSON (one upload item per line). Resumable."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="an NDJSON file, or - for standard input")
        parser.add_argument("--member", required=True)
        parser.add_argument("--batch-size", type=int, default=10_000)
        parser.add_argument(
            "--rejects",
            default=None,
            help="where rejected lines are described (default FILE.rejects.ndjson)",
        )
        parser.add_argument(
            "--restart", action="store_true", help="ignore the saved position and start from line 1"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        member = Member.objects.filter(slug=opts["member"]).first()
        if member is None:
            raise CommandError(f"No member {opts['member']!r}.")
        from_stdin = opts["file"] == "-"
        path = None if from_stdin else Path(opts["file"])
        if path is not None and not path.is_file():
            raise CommandError(f"No file {path}.")
        state_path = None if path is None else path.with_name(path.name + ".import-state.json")
        if state_path is not None and opts["restart"] and state_path.exists():
            state_path.unlink()
        rejects_path = (
            Path(opts["rejects"])
            if opts["rejects"]
            else (
                Path("import.rejects.ndjson")
                if path is None
                else path.with_name(path.name + ".rejects.ndjson")
            )
        )
        stream = sys.stdin if path is None else path.open(encoding="utf-8")
        total_lines = None if path is None else sum(1 for _ in path.open("rb"))
        with (
            rejects_path.open("a", encoding="utf-8") as rejects,
            Progress(
                TextColumn("importing"),
                BarColumn(),
                TextColumn("{task.completed:,}/{task.total:,} lines"),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                disable=opts["json"] or not sys.stderr.isatty(),
                console=None,
            ) as bar,
        ):
            task = bar.add_task("import", total=total_lines)
            try:
                stats = import_stream(
                    member=member,
                    stream=stream,
                    actor=operator_actor("import_signals"),
                    rejects=rejects,
                    batch_size=opts["batch_size"],
                    state_path=state_path,
                    progress=lambda n: bar.advance(task, n),
                )
            finally:
                if path is not None:
                    stream.close()
        summary = stats.as_dict() | {"rejects_file": str(rejects_path) if stats.rejected else None}
        if opts["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                f"{stats.lines:,} lines: {stats.created:,} created, {stats.updated:,} updated, {stats.rejected:,} rejected"
                + (f" (see {rejects_path})" if stats.rejected else "")
                + (f"; resumed after line {stats.resumed_from:,}" if stats.resumed_from else "")
            )
