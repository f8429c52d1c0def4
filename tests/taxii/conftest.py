"""A small exchange for the TAXII tests: three members, one sharing group, signals of every
kind of audience and type, one retracted and one expired."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Member
from accounts.services import group_create
from exchange.audit import Actor
from signals import services
from signals.models import Signal
from signals.taxii.api import TAXII_MEDIA_TYPE
from tests.conftest import SYSTEM, ensure_taxonomy, make_member

ROOT = "/taxii2/beacon/"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def submit(member: Member, items: list[dict[str, Any]]) -> list[int]:
    result = services.signal_submit(
        member=member, items=items, actor=Actor.system(f"tests:{member.slug}")
    )
    return [s["id"] for s in result.signals]


@dataclass
class World:
    acme: Member
    globex: Member
    initech: Member
    tokens: dict[str, str]
    ids: dict[str, int] = field(default_factory=dict)

    def member(self, slug: str) -> Member:
        return {"acme": self.acme, "globex": self.globex, "initech": self.initech}[slug]

    def client(self, slug: str) -> APIClient:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {self.tokens[slug]}")
        return api

    def expected(self, slug: str) -> set[int]:
        """The reference model: which live signals each member may see (written out by hand,
        independently of exchange.policy)."""
        ids = self.ids
        common = {ids["a_sha256_all"], ids["a_url_all"], ids["a_keyword_all"], ids["a_pdq_all"]}
        common |= {ids["a_email_all"], ids["a_md5_all"], ids["c_sha256_all"]}
        return {
            "acme": common | {ids["a_sha1_group"], ids["a_sha256_members"], ids["b_md5_group"]},
            "globex": common | {ids["a_sha1_group"], ids["a_sha256_members"], ids["b_md5_group"]},
            "initech": common,
        }[slug]


def build_world(issue_token: Any, *, more: int = 0) -> World:
    ensure_taxonomy()
    acme = make_member("acme")
    globex = make_member("globex")
    initech = make_member("initech")
    Member.objects.filter(pk=globex.pk).update(attribution="anonymous")
    globex.refresh_from_db()
    group_create(slug="pilot", name="Pilot", members=[acme, globex], actor=SYSTEM)
    tokens = {m.slug: issue_token(m) for m in (acme, globex, initech)}
    world = World(acme=acme, globex=globex, initech=initech, tokens=tokens)
    names = [
        "a_sha256_all",
        "a_url_all",
        "a_keyword_all",
        "a_pdq_all",
        "a_email_all",
        "a_md5_all",
        "a_sha1_group",
        "a_sha256_members",
        "a_sha256_retracted",
        "a_sha256_expired",
    ]
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    a_ids = submit(
        acme,
        [
            {"type": "sha256", "value": digest("a1"), "category": "csea.csam", "tlp": "green"},
            {
                "type": "url",
                "value": "https://Example.org/it's?q=1#frag",
                "category": "csea.grooming",
                "tags": ["lure"],
            },
            {
                "type": "keyword",
                "value": "send me a pic first",
                "lang": "en",
                "category": "csea.grooming",
            },
            {"type": "pdq", "value": "f0" * 32, "quality": 90, "category": "csea.csam"},
            {
                "type": "email",
                "value": digest("someone@example.com"),
                "category": "csea.sextortion",
            },
            {"type": "md5", "value": hashlib.md5(b"a").hexdigest(), "category": "csea.csam"},
            {
                "type": "sha1",
                "value": hashlib.sha1(b"a").hexdigest(),
                "category": "csea.csam",
                "audience": "group:pilot",
                "tlp": "amber+strict",
            },
            {
                "type": "sha256",
                "value": digest("a-members"),
                "category": "csea.csam",
                "audience": "members:globex",
                "tlp": "red",
            },
            {"type": "sha256", "value": digest("a-retracted"), "category": "csea.csam"},
            {
                "type": "sha256",
                "value": digest("a-expired"),
                "category": "csea.csam",
                "expires_at": expires,
            },
        ],
    )
    world.ids.update(zip(names, a_ids, strict=True))
    services.signal_retract_own(
        member=acme, signal_id=world.ids["a_sha256_retracted"], reason="test", actor=SYSTEM
    )
    Signal.objects.filter(pk=world.ids["a_sha256_expired"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    (world.ids["b_md5_group"],) = submit(
        globex,
        [
            {
                "type": "md5",
                "value": hashlib.md5(b"b").hexdigest(),
                "category": "csea.csam",
                "audience": "group:pilot",
            }
        ],
    )
    (world.ids["c_sha256_all"],) = submit(
        initech, [{"type": "sha256", "value": digest("c1"), "category": "csea.csam"}]
    )
    if more:
        extra = submit(
            acme,
            [
                {"type": "sha256", "value": digest(f"bulk-{i}"), "category": "csea.csam"}
                for i in range(more)
            ],
        )
        world.ids.update({f"a_bulk_{i}": pk for i, pk in enumerate(extra)})
    return world


@pytest.fixture
def world(db: Any, issue_token: Any) -> World:
    return build_world(issue_token)


def taxii_get(client: APIClient, path: str, **extra: Any) -> Any:
    extra.setdefault("HTTP_ACCEPT", TAXII_MEDIA_TYPE)
    return client.get(path if path.startswith("/") else ROOT + path, **extra)


def signal_ids(objects: list[dict[str, Any]], *, revoked: bool | None = False) -> set[int]:
    """The Beacon signal ids of the indicators among ``objects``."""
    from signals import stix

    out = set()
    for obj in objects:
        if obj["type"] != "indicator":
            continue
        if revoked is not None and bool(obj.get("revoked")) != revoked:
            continue
        out.add(obj["extensions"][stix.EXTENSION_ID]["signal_id"])
    return out
