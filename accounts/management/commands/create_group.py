from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Member
from accounts.services import group_create
from exchange.commands import emit, operator_actor, validation_message


class Command(BaseCommand):
    help = "Create a sharing group."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--members", default="", help="comma-separated member slugs")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        slugs = [s for s in opts["members"].split(",") if s]
        members = list(Member.objects.filter(slug__in=slugs))
        missing = sorted(set(slugs) - {m.slug for m in members})
        if missing:
            raise CommandError(f"Unknown members: {', '.join(missing)}")
        try:
            group = group_create(
                slug=opts["slug"],
                name=opts["name"] or opts["slug"],
                members=members,
                actor=operator_actor("create_group"),
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        emit(
            self,
            {"slug": group.slug, "members": slugs},
            as_json=opts["json"],
            text=f"Created group {group.slug} with {', '.join(slugs) or 'no members'}",
        )
