from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.oath import TOTP


class Command(BaseCommand):
    help = (
        "Print the current admin sign-in code of a demo staff user seeded by seed_demo "
        "(for the embedded demo, when no authenticator app is at hand)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", choices=["admin", "auditor"])

    def handle(self, *args: Any, **opts: Any) -> None:
        path = Path(settings.VAR_DIR) / "demo-credentials.json"
        known = json.loads(path.read_text()).get("totp", {}) if path.exists() else {}
        device = known.get(opts["username"])
        if not device:
            raise CommandError("No demo TOTP device; run `manage.py seed_demo` first.")
        self.stdout.write(f"{TOTP(bytes.fromhex(device['key'])).token():06d}")
