from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Attestation, MemberKind
from accounts.services import member_create
from exchange.commands import emit, operator_actor, validation_message


class Command(BaseCommand):
    help = "Create a member organisation."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--kind", default=MemberKind.PLATFORM, choices=MemberKind.values)
        parser.add_argument("--attest", default="", help="comma-separated attestations, or 'all'")
        parser.add_argument("--activate", action="store_true")
        parser.add_argument("--anonymous", action="store_true", help="share without attribution")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        attest = (
            Attestation.values
            if opts["attest"] == "all"
            else [a for a in opts["attest"].split(",") if a]
        )
        try:
            member = member_create(
                slug=opts["slug"],
                name=opts["name"],
                kind=opts["kind"],
                attestations=attest,
                activate=opts["activate"],
                attribution="anonymous" if opts["anonymous"] else "named",
                actor=operator_actor("create_member"),
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        emit(
            self,
            {"slug": member.slug, "status": member.status, "kind": member.kind},
            as_json=opts["json"],
            text=f"Created {member.slug} ({member.status})",
        )
