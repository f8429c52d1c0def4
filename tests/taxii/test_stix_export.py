"""``GET /api/v1/signals/export?format=stix``: a streamed STIX 2.1 bundle of what the caller
may see, audited as ``signal.export``."""

from __future__ import annotations

import json

import pytest
import stix2

from exchange.audit.models import AuditEvent
from signals import stix
from signals.models import Disclosure, Signal
from tests.conftest import assert_problem
from tests.taxii.conftest import World, signal_ids

pytestmark = pytest.mark.django_db


def export(world: World, slug: str, **params: str) -> tuple[object, dict]:
    response = world.client(slug).get("/api/v1/signals/export", {"format": "stix", **params})
    assert response.status_code == 200, response.content[:300]
    assert response.streaming
    assert response["Content-Type"] == "application/stix+json;version=2.1"
    assert "attachment" in response["Content-Disposition"]
    return response, json.loads(b"".join(response.streaming_content))


@pytest.mark.parametrize("slug", ["acme", "globex", "initech"])
def test_the_export_is_a_valid_bundle_of_what_the_member_may_see(world: World, slug: str):
    _, bundle = export(world, slug)
    parsed = stix2.parse(bundle, allow_custom=False)
    assert parsed.type == "bundle"
    assert signal_ids(bundle["objects"]) == world.expected(slug)
    assert not signal_ids(bundle["objects"], revoked=True)
    ids = {o["id"] for o in bundle["objects"]}
    assert len(ids) == len(bundle["objects"])
    for obj in bundle["objects"]:
        if obj["type"] == "indicator":
            assert obj["created_by_ref"] in ids and obj["object_marking_refs"][0] in ids


def test_the_export_never_holds_peppered_values_or_hidden_signals(world: World):
    _, bundle = export(world, "initech")
    text = json.dumps(bundle)
    for name in ("a_email_all", "a_sha1_group", "a_sha256_members", "b_md5_group"):
        value = Signal.objects.select_related("indicator").get(pk=world.ids[name]).indicator.value
        assert value not in text, name
    assert stix.member_identity_id("globex") not in text


def test_ids_are_deterministic_across_exports_and_taxii(world: World):
    _, first = export(world, "globex")
    _, second = export(world, "globex")
    assert [o["id"] for o in first["objects"]] == [o["id"] for o in second["objects"]]
    assert first["id"] != second["id"]  # each bundle is its own document
    assert stix.indicator_id(world.ids["a_md5_all"]) in {o["id"] for o in first["objects"]}


def test_the_export_is_audited_with_every_signal_disclosed(world: World):
    export(world, "initech", purpose="detection")
    event = AuditEvent.objects.filter(action="signal.export").latest("seq")
    others = world.expected("initech") - {world.ids["c_sha256_all"]}
    assert event.actor_member == "initech" and event.purpose == "detection"
    assert set(event.disclosed["initech"]) == others and event.owners == ["acme"]
    assert event.result_count == len(world.expected("initech"))
    assert (
        set(
            Disclosure.objects.filter(member=world.initech, channel="export").values_list(
                "signal_id", flat=True
            )
        )
        == others
    )


def test_other_formats_and_the_research_purpose_are_refused(world: World):
    client = world.client("acme")
    assert_problem(client.get("/api/v1/signals/export", {"format": "csv"}), 422)
    assert_problem(
        client.get("/api/v1/signals/export", {"format": "stix", "purpose": "research"}), 403
    )


def test_the_export_needs_the_read_scope(world: World, api_for):
    client = api_for(world.acme, scopes=["signals:write"])
    assert_problem(client.get("/api/v1/signals/export", {"format": "stix"}), 403)
    assert AuditEvent.objects.filter(action="api.refused", actor_member="acme").exists()
