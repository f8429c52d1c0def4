"""The access matrix: persona × audience × category × purpose over match, text match, get and feed."""

from __future__ import annotations

import itertools

import pytest

from accounts.models import MemberKind
from accounts.services import group_create, member_suspend
from tests.conftest import ALL_PURPOSES, ALL_SCOPES, SYSTEM, make_member
from tests.signals.conftest import digest

pytestmark = pytest.mark.django_db

AUDIENCES = ["all", "group:pilot", "members:globex", "members:initech"]
CATEGORIES = ["csea.csam", "tfgbv.ncii"]
VIEWERS = ["acme", "globex", "initech", "partial", "gov", "umbrella"]


def expected_visible(viewer: str, audience: str, category: str) -> bool:
    """The reference model of the policy rules, written independently of exchange.policy."""
    if viewer == "acme":
        return True  # the owner always sees its own
    if viewer in {"umbrella", "gov"}:
        return False  # suspended (rule 1); barred kind (rule 6)
    in_audience = (
        audience == "all"
        or (audience == "group:pilot" and viewer in {"acme", "globex"})
        or audience == f"members:{viewer}"
    )
    receives = not (
        category == "tfgbv.ncii" and viewer == "partial"
    )  # ncii needs user_appeals (rule 4)
    return in_audience and receives


@pytest.fixture
def world(db, issue_token):
    acme, globex = make_member("acme"), make_member("globex")
    make_member("initech")
    make_member("partial", attest=["agreement", "human_review"])
    make_member("gov", kind=MemberKind.GOVERNMENT)
    umbrella = make_member("umbrella")
    group_create(slug="pilot", name="Pilot", members=[acme, globex], actor=SYSTEM)
    from accounts.models import Member

    tokens = {
        m.slug: issue_token(m, scopes=ALL_SCOPES, purposes=ALL_PURPOSES)
        for m in Member.objects.all()
    }
    member_suspend(member=umbrella, actor=SYSTEM)
    return tokens


def _client(client, token):
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


@pytest.mark.parametrize(("audience", "category"), list(itertools.product(AUDIENCES, CATEGORIES)))
def test_every_persona_sees_exactly_what_the_rules_allow(world, client, audience, category):
    owner = _client(client, world["acme"])
    value = digest(f"{audience}/{category}")
    keyword = f"phrase {audience} {category}".replace(":", " ").replace(".", " ")
    up = owner.post(
        "/api/v1/signals",
        {
            "items": [
                {"type": "sha256", "value": value, "category": category, "audience": audience},
                {"type": "keyword", "value": keyword, "category": category, "audience": audience},
            ]
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"{audience}/{category}",
    )
    assert up.status_code == 201, up.content
    signal_id = up.json()["signals"][0]["id"]

    for viewer, purpose in itertools.product(VIEWERS, ALL_PURPOSES):
        api = _client(client, world[viewer])
        visible = expected_visible(viewer, audience, category)
        case = f"{viewer}/{purpose}/{audience}/{category}"
        match = api.post(
            "/api/v1/match",
            {"purpose": purpose, "items": [{"type": "sha256", "value": value}]},
            format="json",
        )
        text = api.post(
            "/api/v1/match/text",
            {"purpose": purpose, "text": f"they said: {keyword}!"},
            format="json",
        )
        get = api.get(f"/api/v1/signals/{signal_id}?purpose={purpose}")
        feed = api.get(f"/api/v1/feed?purpose={purpose}&limit=1000")
        if viewer == "umbrella":
            assert {match.status_code, text.status_code, get.status_code, feed.status_code} == {
                401
            }, case
            continue
        assert get.status_code == (200 if visible else 404), case
        if purpose == "research":
            # Rule 5: aggregates only, never values or ids.
            assert match.json() == {"aggregate": match.json()["aggregate"]}, case
            assert match.json()["aggregate"]["signals_matched"] == (1 if visible else 0), case
            assert text.json()["aggregate"]["signals_matched"] == (1 if visible else 0), case
            assert feed.status_code == 403, case
            if visible:
                assert get.json()["value"] is None, case
            continue
        ids = [s["id"] for m in match.json()["results"][0]["matches"] for s in m["signals"]]
        assert ids == ([signal_id] if visible else []), case
        text_ids = {s["id"] for m in text.json()["matches"] for s in m["signals"]}
        assert (len(text_ids) == 1) == visible, case
        assert feed.status_code == 200, case
        feed_ids = {e["signal"]["id"] for e in feed.json()["events"] if e["op"] == "upsert"}
        assert (signal_id in feed_ids) == visible, case
        if visible:
            assert get.json()["value"] == value, case
