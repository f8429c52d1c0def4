from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ApiToken
from accounts.services import token_revoke
from exchange.commands import emit, operator_actor


class Command(BaseCommand):
    help = "Revoke an API token by its prefix (bcn_xxxxxxxx)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        token = ApiToken.objects.select_related("member").filter(prefix=opts["prefix"]).first()
        if token is None:
            raise CommandError(f"No token with prefix {opts['prefix']!r}.")
        token_revoke(token=token, actor=operator_actor("revoke_token"))
        emit(
            self,
            {"prefix": token.prefix, "revoked_at": token.revoked_at},
            as_json=opts["json"],
            text=f"Revoked {token.prefix}",
        )
