"""Personas and API helpers shared by every test.

- ``member_a``: an uploader; ``member_b``: in the same sharing group (``pilot``) as A;
- ``outsider``: an active member outside that group; ``suspended``: a suspended member;
- ``auditor``: the exchange's own organisation (kind ``exchange``) with an ``audit:read`` token;
- ``exchange_admin``: a staff user who runs the exchange.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db.backends.signals import connection_created
from rest_framework.test import APIClient

from accounts.models import Attestation, Member, MemberKind, Role, Scope, SharingGroup, User
from accounts.services import group_create, member_create, member_suspend, token_issue
from exchange.audit import Actor


def _allow_test_flush(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Transactional tests empty the database with TRUNCATE, which the audit table's
    append-only trigger refuses unless this session setting is on (tests only)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET beacon.audit_flush = 'on'")


connection_created.connect(_allow_test_flush, dispatch_uid="beacon-test-audit-flush")

ALL_SCOPES = [s.value for s in Scope]
ALL_PURPOSES = ["detection", "investigation", "research"]
SYSTEM = Actor.system("tests")


def make_member(
    slug: str,
    *,
    kind: str = MemberKind.PLATFORM,
    attest: list[str] | None = None,
    activate: bool = True,
) -> Member:
    return member_create(
        slug=slug,
        name=slug.replace("-", " ").title(),
        kind=kind,
        attestations=Attestation.values if attest is None else attest,
        activate=activate,
        actor=SYSTEM,
    )


@pytest.fixture
def member_a(db: Any) -> Member:
    return make_member("acme")


@pytest.fixture
def member_b(db: Any) -> Member:
    return make_member("globex")


@pytest.fixture
def outsider(db: Any) -> Member:
    return make_member("initech")


@pytest.fixture
def suspended(db: Any) -> Member:
    member = make_member("umbrella")
    member_suspend(member=member, actor=SYSTEM, reason="test")
    return member


@pytest.fixture
def auditor(db: Any) -> Member:
    return make_member("beacon-exchange", kind=MemberKind.EXCHANGE)


@pytest.fixture
def pilot(member_a: Member, member_b: Member) -> SharingGroup:
    return group_create(slug="pilot", name="Pilot", members=[member_a, member_b], actor=SYSTEM)


@pytest.fixture
def exchange_admin(db: Any) -> User:
    return User.objects.create_user(
        username="alice",
        password="correct horse battery",
        role=Role.EXCHANGE_ADMIN,
        is_staff=True,
        is_superuser=True,
    )


@pytest.fixture
def issue_token(db: Any) -> Callable[..., str]:
    def _issue(
        member: Member,
        scopes: list[str] | None = None,
        purposes: list[str] | None = None,
        **kwargs: Any,
    ) -> str:
        return token_issue(
            member=member,
            scopes=scopes or ALL_SCOPES,
            purposes=purposes or ALL_PURPOSES,
            actor=SYSTEM,
            **kwargs,
        ).plaintext

    return _issue


@pytest.fixture
def api_for(issue_token: Callable[..., str]) -> Callable[..., APIClient]:
    """An API client authenticated as a member: ``api_for(member_a, scopes=[...])``."""

    def _client(member: Member | None = None, **kwargs: Any) -> APIClient:
        client = APIClient()
        if member is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(member, **kwargs)}")
        return client

    return _client


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with the contract's fields."""
    assert response.status_code == status, (
        response.status_code,
        getattr(response, "content", b"")[:500],
    )
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    for field in ("type", "title", "status", "detail", "request_id"):
        assert field in body, field
    assert body["status"] == status
    assert response["X-Request-ID"] == body["request_id"]
    return body


@pytest.fixture(autouse=True)
def _fresh_process_indexes():
    """Per-process match indexes key their freshness on committed feed sequences; test
    rollbacks reuse those numbers, so each test starts with empty indexes."""
    from signals.matching import exact, keywords, live

    exact.reset()
    keywords.reset()
    live.reset()
    yield


def ensure_taxonomy() -> None:
    """Transactional tests (the live server's) start from a flushed database, without the
    taxonomy its data migration seeds: seed it again the same way."""
    import importlib

    from django.apps import apps

    from signals.models import Category

    if not Category.objects.exists():
        importlib.import_module("signals.migrations.0002_seed_taxonomy").seed(apps, None)


@pytest.fixture(autouse=True)
def _taxonomy_for_transactional_tests(request):
    markers = list(request.node.iter_markers("django_db"))
    if {"transactional_db", "live_server"} & set(request.fixturenames) or any(
        m.kwargs.get("transaction") for m in markers
    ):
        request.getfixturevalue("transactional_db")
        ensure_taxonomy()
    yield
