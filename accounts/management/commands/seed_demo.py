from __future__ import annotations

import json
import os
import secrets
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from rich.console import Console
from rich.progress import Progress

from accounts.authentication import BearerTokenAuthentication
from accounts.models import Attestation, Member, MemberKind, Role, Scope, SharingGroup, User
from accounts.services import group_add_member, group_create, member_create, token_issue
from exchange.commands import operator_actor
from signals.demo import clock_at, history_start, seed_history

DEMO_MEMBERS = [
    ("demo-a", "Demo Platform A"),
    ("demo-b", "Demo Platform B"),
    ("demo-c", "Demo Platform C"),
]
EXCHANGE_ORG = ("beacon-exchange", "Beacon Exchange (operator)")
MEMBER_SCOPES = [
    Scope.SIGNALS_WRITE,
    Scope.SIGNALS_READ,
    Scope.FEEDBACK_WRITE,
    Scope.SUBSCRIPTIONS_MANAGE,
    Scope.AUDIT_READ,
]


class Command(BaseCommand):
    help = "Seed demo members, a sharing group, staff users and one token per member. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--history-weeks",
            type=int,
            default=12,
            help="On a fresh database, play this many weeks of demo activity (0 for none).",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        creds_path = Path(settings.VAR_DIR) / "demo-credentials.json"
        creds: dict[str, Any] = json.loads(creds_path.read_text()) if creds_path.exists() else {}
        actor = operator_actor("seed_demo")
        weeks = opts["history_weeks"] if not Member.objects.exists() else 0
        with ExitStack() as stack:
            clock = stack.enter_context(clock_at(history_start(weeks))) if weeks else None
            _members(actor)
            if clock is not None:
                self._history(clock, weeks)
        with transaction.atomic():
            tokens = creds.setdefault("tokens", {})
            for slug in [m[0] for m in DEMO_MEMBERS] + [EXCHANGE_ORG[0]]:
                if not _still_valid(tokens.get(slug)):
                    scopes = [Scope.AUDIT_READ] if slug == EXCHANGE_ORG[0] else MEMBER_SCOPES
                    issued = token_issue(
                        member=Member.objects.get(slug=slug),
                        scopes=scopes,
                        purposes=["detection", "investigation", "research"],
                        name="demo",
                        actor=actor,
                    )
                    tokens[slug] = issued.plaintext

            users = creds.setdefault("users", {})
            for username, role, member_slug in (
                ("admin", Role.EXCHANGE_ADMIN, None),
                ("auditor", Role.AUDITOR, EXCHANGE_ORG[0]),
            ):
                password = (
                    users.get(username)
                    or os.environ.get(f"BEACON_DEMO_{username.upper()}_PASSWORD")
                    or secrets.token_urlsafe(12)
                )
                user = User.objects.filter(username=username).first() or User(username=username)
                user.role = role
                user.is_staff = True
                user.is_superuser = role == Role.EXCHANGE_ADMIN
                user.member = Member.objects.get(slug=member_slug) if member_slug else None
                user.set_password(password)
                user.save()
                users[username] = password
                _demo_totp(creds.setdefault("totp", {}), user)
            _demo_subscription(creds, actor)
        creds_path.write_text(json.dumps(creds, indent=2))
        creds_path.chmod(0o600)
        if opts["json"]:
            self.stdout.write(json.dumps(creds))
            return
        self.stdout.write(
            "Demo data ready (embedded back end). Credentials, also in var/demo-credentials.json:"
        )
        for username, password in users.items():
            self.stdout.write(f"  admin login  {username:<8} {password}")
        for username, device in creds.get("totp", {}).items():
            self.stdout.write(
                f"  admin TOTP   {username:<8} secret {device['secret']}  "
                f"(add to an authenticator app: {device['otpauth_url']}; "
                f"or `DEBUG=1 .venv/bin/python manage.py demo_totp {username}`)"
            )
        for slug, token in tokens.items():
            self.stdout.write(f"  token        {slug:<16} {token}")

    def _history(self, clock: Any, weeks: int) -> None:
        members = list(Member.objects.filter(slug__in=[m[0] for m in DEMO_MEMBERS]))
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(f"demo activity, {weeks} weeks", total=weeks * 7)
            counts = seed_history(
                members,
                weeks=weeks,
                clock=clock,
                progress=lambda done, total: bar.update(task, completed=done),
            )
        self.stderr.write(
            "Demo activity: {signals} signals, {matches} match requests, {feedback} reactions, "
            "{retractions} retractions.".format(**counts)
        )


@transaction.atomic
def _members(actor: Any) -> None:
    for slug, name in DEMO_MEMBERS:
        if not Member.objects.filter(slug=slug).exists():
            member_create(
                slug=slug,
                name=name,
                kind=MemberKind.PLATFORM,
                attestations=Attestation.values,
                activate=True,
                actor=actor,
            )
    if not Member.objects.filter(slug=EXCHANGE_ORG[0]).exists():
        member_create(
            slug=EXCHANGE_ORG[0],
            name=EXCHANGE_ORG[1],
            kind=MemberKind.EXCHANGE,
            attestations=Attestation.values,
            activate=True,
            actor=actor,
        )
    group = SharingGroup.objects.filter(slug="demo-pilot").first() or group_create(
        slug="demo-pilot", name="Demo pilot (A and B)", actor=actor
    )
    for slug in ("demo-a", "demo-b"):
        member = Member.objects.get(slug=slug)
        if not group.members.filter(pk=member.pk).exists():
            group_add_member(group=group, member=member, actor=actor)


def _demo_totp(known: dict[str, Any], user: User) -> None:
    """A confirmed TOTP device for a demo staff user, kept across runs, so the demo logins work
    at once; its secret is printed with the passwords."""
    from base64 import b32encode

    from django_otp.plugins.otp_totp.models import TOTPDevice

    username = user.get_username()
    existing = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if existing is not None and known.get(username, {}).get("key") == existing.key:
        return
    TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name="demo", confirmed=True)
    known[username] = {
        "key": device.key,
        "secret": b32encode(device.bin_key).decode(),
        "otpauth_url": device.config_url,
    }


def _still_valid(raw: str | None) -> bool:
    if not raw:
        return False
    try:
        BearerTokenAuthentication().authenticate_token(raw)
    except Exception:  # noqa: BLE001 - any refusal means re-issue
        return False
    return True


DEMO_RECEIVER = "http://127.0.0.1:8001"


def _demo_subscription(creds: dict[str, Any], actor: Any) -> None:
    """demo-b subscribes to the local demo receiver (``manage.py demo_receiver``), whose
    secret is kept in the credentials file so the receiver can verify signatures."""
    from exchange.delivery import services as delivery
    from exchange.delivery.models import Subscription

    hooks = creds.setdefault("webhooks", {})
    member = Member.objects.get(slug="demo-b")
    path = "/webhooks/demo-b"
    url = DEMO_RECEIVER + path
    known = hooks.get("demo-b") or {}
    existing = Subscription.objects.visible().filter(member=member, url=url).first()
    if existing is not None and known.get("id") == existing.pk and known.get("secret"):
        return
    if existing is None:
        try:
            created = delivery.subscription_create(member=member, url=url, actor=actor)
        except delivery.InvalidRequest:
            return  # local receivers are refused unless BEACON_ALLOW_PRIVATE_WEBHOOKS is on
    else:
        created = delivery.subscription_rotate_secret(
            member=member, subscription_id=existing.pk, actor=actor
        )
    hooks["demo-b"] = {
        "id": created.subscription.pk,
        "url": url,
        "path": path,
        "secret": created.secret,
    }
