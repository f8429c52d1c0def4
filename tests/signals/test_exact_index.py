"""Exact types are matched through the per-process candidate index: a value committed in any
process matches on the very next request here, a key collision never matches a value that was
not asked, and the answers are those of a direct database lookup."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals.matching import exact
from signals.models import Indicator
from tests.signals.conftest import digest, item
from tests.signals.test_pdq_live import _other_process

pytestmark = pytest.mark.django_db
_examples = itertools.count()


def match(client, items):
    response = client.post("/api/v1/match", {"purpose": "detection", "items": items}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_a_key_collision_never_matches_a_value_that_was_not_asked(
    upload, api_for, member_a, member_b
):
    stored, asked = digest("shared"), digest("never shared")
    assert upload(member_a, [item("sha256", stored)]).status_code == 201
    client = api_for(member_b)
    assert len(match(client, [{"type": "sha256", "value": stored}])[0]["matches"]) == 1
    # Make the asked value's key point at the stored indicator, as a collision would.
    index = exact.index()
    stored_id = Indicator.objects.get(type="sha256", value=stored).pk
    index._recent.setdefault(exact.key("sha256", asked), set()).add(stored_id)
    assert stored_id in index.candidates([("sha256", asked)])
    assert match(client, [{"type": "sha256", "value": asked}])[0]["matches"] == []


def test_the_index_is_rebuilt_when_the_sequence_goes_back(upload, api_for, member_a, member_b):
    client = api_for(member_b)
    value = digest("kept")
    assert upload(member_a, [item("sha256", value)]).status_code == 201
    assert len(match(client, [{"type": "sha256", "value": value}])[0]["matches"]) == 1
    exact.index()._seq = 10**9  # as after restoring an older database
    assert len(match(client, [{"type": "sha256", "value": value}])[0]["matches"]) == 1
    assert exact.index().stats()["seq"] < 10**9


def test_recent_additions_are_merged_into_the_arrays(
    monkeypatch, upload, api_for, member_a, member_b
):
    monkeypatch.setattr(exact, "MERGE_AT", 3)
    client = api_for(member_b)
    match(client, [{"type": "sha256", "value": digest("warm")}])  # the index exists, empty
    values = [digest(f"merged-{i}") for i in range(5)]
    assert upload(member_a, [item("sha256", v) for v in values]).status_code == 201
    results = match(client, [{"type": "sha256", "value": v} for v in values])
    assert all(len(r["matches"]) == 1 for r in results)
    assert exact.index()._recent == {}
    assert exact.index().stats()["indicators"] == 5


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stored=st.sets(st.integers(0, 40), max_size=15),
    asked=st.lists(st.integers(0, 60), min_size=1, max_size=20),
)
def test_answers_equal_a_direct_lookup(upload, api_for, member_a, member_b, stored, asked):
    """Whatever is stored and asked, each item matches exactly the stored values equal to it."""
    types = ("sha256", "md5", "email")
    example = next(_examples)  # examples share the test's database: each its own values

    def value(n: int) -> tuple[str, str]:
        type_ = types[n % 3]
        raw = hashlib.sha256(f"{example}-{n}".encode()).hexdigest()
        return type_, raw[:32] if type_ == "md5" else raw

    mine = [value(n) for n in sorted(stored)]
    if mine:
        response = upload(member_a, [item(t, v) for t, v in mine])
        assert response.status_code in (200, 201), response.content
    results = match(api_for(member_b), [dict(zip(("type", "value"), value(n))) for n in asked])
    for n, result in zip(asked, results, strict=True):
        assert bool(result["matches"]) == (value(n) in set(mine))


@pytest.mark.django_db(transaction=True)
def test_a_value_committed_in_another_process_matches_on_the_next_request(
    api_for, member_a, member_b
):
    client = api_for(member_b)
    value = "c3" * 32
    assert match(client, [{"type": "sha256", "value": value}])[0]["matches"] == []
    _other_process("submit-sha256", value)
    assert len(match(client, [{"type": "sha256", "value": value}])[0]["matches"]) == 1
    _other_process("retract", value)
    assert match(client, [{"type": "sha256", "value": value}])[0]["matches"] == []
