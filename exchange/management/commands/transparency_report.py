"""``manage.py transparency_report --period 2026-Q3 --format html|json [--out FILE]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.commands import operator_actor
from exchange.reports.period import PERIOD_HELP, current_quarter, parse_period
from exchange.reports.render import render_html
from exchange.reports.services import transparency_report


class Command(BaseCommand):
    help = "Produce the transparency report for a period, counted from the audit log and feedback."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--period", default=None, help=f"{PERIOD_HELP}; the current quarter by default"
        )
        parser.add_argument("--format", choices=("html", "json"), default="html")
        parser.add_argument("--out", type=Path, help="Write to this file instead of stdout.")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            period = parse_period(opts["period"] or current_quarter())
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        figures = transparency_report(period=period, actor=operator_actor("transparency_report"))
        text = (
            render_html(figures)
            if opts["format"] == "html"
            else json.dumps(figures, indent=2, ensure_ascii=False)
        )
        out: Path | None = opts["out"]
        if out is None:
            self.stdout.write(text)
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, "utf-8")
        self.stderr.write(f"transparency report {period.label} ({opts['format']}) → {out}")
