from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Member
from accounts.services import member_suspend
from exchange.commands import emit, operator_actor


class Command(BaseCommand):
    help = "Suspend a member; its tokens stop working on the next request."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--reason", default="")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        member = Member.objects.filter(slug=opts["slug"]).first()
        if member is None:
            raise CommandError(f"No member {opts['slug']!r}.")
        member_suspend(member=member, reason=opts["reason"], actor=operator_actor("suspend_member"))
        emit(
            self,
            {"slug": member.slug, "status": member.status},
            as_json=opts["json"],
            text=f"Suspended {member.slug}",
        )
