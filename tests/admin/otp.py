"""Logging a staff user in for admin tests."""

from __future__ import annotations

from django.test import Client

from accounts.models import User


def login_verified(client: Client, user: User) -> None:
    client.force_login(user)
