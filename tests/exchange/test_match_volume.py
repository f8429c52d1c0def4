"""Bulk match is a membership-inference oracle: it has a quota of its own, apart from writes
and from the general one, and a jump in a member's match volume raises an alert (an audit
event and a log line), once per member and hour."""

from __future__ import annotations

import hashlib
import logging
import time

import pytest
from django.core.cache import cache

from exchange.audit import Actor
from exchange.audit.models import AuditEvent
from exchange.match_volume import ALERT_ACTION, match_volume_observe

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_counters(settings):
    cache.clear()
    settings.BEACON_MATCH_ALERT_MIN_VALUES = 5
    settings.BEACON_MATCH_ALERT_FACTOR = 10
    yield
    cache.clear()


def _items(n: int, salt: str) -> list[dict[str, str]]:
    return [
        {"type": "sha256", "value": hashlib.sha256(f"{salt}{i}".encode()).hexdigest()}
        for i in range(n)
    ]


def _match(client, n: int, salt: str):
    response = client.post(
        "/api/v1/match", {"purpose": "detection", "items": _items(n, salt)}, format="json"
    )
    assert response.status_code == 200, response.content
    return response


def test_a_jump_in_match_volume_is_audited_and_logged_once_per_hour(api_for, member_a, caplog):
    client = api_for(member_a)
    _match(client, 3, "a")
    assert not AuditEvent.objects.filter(action=ALERT_ACTION).exists()
    with caplog.at_level(logging.WARNING, logger="beacon.security"):
        _match(client, 3, "b")
        _match(client, 3, "c")
    alerts = list(AuditEvent.objects.filter(action=ALERT_ACTION))
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.target == f"member:{member_a.slug}"
    assert alert.details["values_this_hour"] == 6
    assert alert.details["token"].startswith("token:bcn_")
    assert [r for r in caplog.records if "match volume alert" in r.getMessage()]
    assert member_a.slug in caplog.text


def test_members_are_counted_apart(api_for, member_a, member_b):
    _match(api_for(member_a), 4, "a")
    _match(api_for(member_b), 4, "b")
    assert not AuditEvent.objects.filter(action=ALERT_ACTION).exists()


def test_the_threshold_follows_the_members_usual_volume(member_a):
    actor = Actor.system("tests")
    now = time.time()
    hour = 3600
    # A steady 100 values an hour over the last day...
    for back in range(1, 25):
        match_volume_observe(member=member_a, values=100, actor=actor, now=now - back * hour)
    # ...makes 900 this hour ordinary, and 1,001 (over ten times the average) a jump.
    assert not match_volume_observe(member=member_a, values=900, actor=actor, now=now)
    assert match_volume_observe(member=member_a, values=101, actor=actor, now=now)
    assert not match_volume_observe(member=member_a, values=1, actor=actor, now=now)


def test_writes_and_matches_have_quotas_of_their_own(api_for, member_a, settings):
    settings.BEACON_WRITE_THROTTLE_RATE = "2/min"
    settings.BEACON_MATCH_THROTTLE_RATE = "1/min"
    client = api_for(member_a)
    for _ in range(2):
        response = client.post(
            "/api/v1/subscriptions", {"url": "https://hooks.example.org/x"}, format="json"
        )
        assert response.status_code != 429
    refused = client.post(
        "/api/v1/subscriptions", {"url": "https://hooks.example.org/y"}, format="json"
    )
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    # Reads are not writes: the member may still read, and match once.
    assert client.get("/api/v1/me").status_code == 200
    _match(client, 1, "q")
    assert (
        client.post(
            "/api/v1/match", {"purpose": "detection", "items": _items(1, "r")}, format="json"
        ).status_code
        == 429
    )
