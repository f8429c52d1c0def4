from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Member
from accounts.services import token_issue
from exchange.commands import emit, operator_actor, validation_message


class Command(BaseCommand):
    help = "Issue an API token for a member. The token is printed once and never stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("member")
        parser.add_argument("--scopes", required=True, help="comma-separated scopes")
        parser.add_argument("--purposes", default="detection,investigation")
        parser.add_argument("--expires-days", type=int, default=None)
        parser.add_argument("--name", default="")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        member = Member.objects.filter(slug=opts["member"]).first()
        if member is None:
            raise CommandError(f"No member {opts['member']!r}.")
        try:
            issued = token_issue(
                member=member,
                scopes=[s for s in opts["scopes"].split(",") if s],
                purposes=[p for p in opts["purposes"].split(",") if p],
                expires_days=opts["expires_days"],
                name=opts["name"],
                actor=operator_actor("issue_token"),
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        payload = {
            "token": issued.plaintext,
            "prefix": issued.token.prefix,
            "expires_at": issued.token.expires_at.isoformat(),
        }
        emit(
            self,
            payload,
            as_json=opts["json"],
            text=f"{issued.plaintext}\n(prefix {issued.token.prefix}, expires {payload['expires_at']}; shown once)",
        )
