"""Deployment checks of Beacon's own settings, run by ``manage.py check --deploy``.

Django's deploy checks cover cookies, HSTS and the secret key; these cover what only Beacon
knows: the identifier pepper and the audit signing key must come from the environment, the
production back ends must be in use, and the SSRF guard must be on.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def beacon_deploy_checks(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    problems: list[Warning] = []
    if not settings.BEACON_IDENTIFIER_PEPPERS or "dev-only" in settings.BEACON_IDENTIFIER_PEPPERS:
        problems.append(
            Warning(
                "BEACON_IDENTIFIER_PEPPERS is not set: stored identifiers would be unpeppered "
                "or use the development pepper.",
                hint="Set BEACON_IDENTIFIER_PEPPERS (or BEACON_IDENTIFIER_PEPPERS_FILE) to v1:<secret>.",
                id="beacon.W001",
            )
        )
    if not settings.BEACON_AUDIT_SIGNING_KEY:
        problems.append(
            Warning(
                "BEACON_AUDIT_SIGNING_KEY is not set: audit checkpoints cannot be signed.",
                hint="Set BEACON_AUDIT_SIGNING_KEY_FILE to a PEM Ed25519 private key.",
                id="beacon.W002",
            )
        )
    if not settings.USING_POSTGRES or not settings.REDIS_URL:
        problems.append(
            Warning(
                "The embedded back end (SQLite, filesystem broker) is in use.",
                hint="Set DATABASE_URL (PostgreSQL) and REDIS_URL for production.",
                id="beacon.W003",
            )
        )
    if settings.BEACON_ALLOW_PRIVATE_WEBHOOKS:
        problems.append(
            Warning(
                "BEACON_ALLOW_PRIVATE_WEBHOOKS is on: webhooks may reach private addresses.",
                hint="Unset it in production (docs/decisions/0503-ssrf-guard.md).",
                id="beacon.W004",
            )
        )
    if settings.BEACON_WEBHOOK_SECRET_KEY == "":
        problems.append(
            Warning(
                "BEACON_WEBHOOK_SECRET_KEY is not set: stored webhook secrets are encrypted "
                "with a key derived from SECRET_KEY, so rotating SECRET_KEY breaks them.",
                hint="Set BEACON_WEBHOOK_SECRET_KEY (or _FILE).",
                id="beacon.W005",
            )
        )
    if not settings.BEACON_METRICS_TOKEN:
        problems.append(
            Warning(
                "BEACON_METRICS_TOKEN is not set: /metrics answers staff sessions only.",
                hint="Set BEACON_METRICS_TOKEN (or _FILE) for the Prometheus scraper.",
                id="beacon.W006",
            )
        )
    return problems
