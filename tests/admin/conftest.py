"""Staff personas for the admin: ``exchange_admin`` (from tests/conftest.py), ``auditor_user``
and ``member_user``, and ``staff_client`` which logs a user in the way the admin requires."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import Member, Role, User

PASSWORD = "correct horse battery"


@pytest.fixture
def auditor_user(auditor: Member) -> User:
    return User.objects.create_user(
        username="olivia", password=PASSWORD, role=Role.AUDITOR, is_staff=True, member=auditor
    )


@pytest.fixture
def member_user(member_a: Member) -> User:
    # Marked staff by mistake: the role must still keep it out of the admin.
    return User.objects.create_user(
        username="mallory",
        password=PASSWORD,
        role=Role.MEMBER_ADMIN,
        is_staff=True,
        member=member_a,
    )


@pytest.fixture
def staff_client(db: Any) -> Callable[[User], Client]:
    def _client(user: User) -> Client:
        from tests.admin.otp import login_verified

        client = Client()
        login_verified(client, user)
        return client

    return _client
