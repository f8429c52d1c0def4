"""Helpers shared by management commands."""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from exchange.audit import Actor


def operator_actor(command: str) -> Actor:
    """Operators act through manage.py; the audit log names the OS user and the command."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        user = "unknown"
    return Actor(label=f"operator:{user}", extra={"command": command})


def emit(command: BaseCommand, payload: dict[str, Any], *, as_json: bool, text: str) -> None:
    command.stdout.write(json.dumps(payload, default=str) if as_json else text)


def validation_message(exc: ValidationError) -> str:
    """A one-line message for a service's ValidationError, for CommandError."""
    return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
