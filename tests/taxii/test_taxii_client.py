"""The reference TAXII client (``taxii2client.v21``) against a running exchange: discovery,
collections, paging with ``as_pages``, ``added_after``, and the same signals as the REST feed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import requests
import stix2
from taxii2client.v21 import Server, as_pages

from exchange.audit.models import AuditEvent
from signals import services as signal_services
from signals import stix
from signals.taxii.services import ALL_COLLECTION_ID
from tests.conftest import SYSTEM
from tests.taxii.conftest import World, build_world, digest, signal_ids, submit

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


class Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


@pytest.fixture
def live_world(live_server: Any, issue_token: Any) -> World:
    return build_world(issue_token, more=25)


def server_for(live_server: Any, world: World, slug: str, *, basic: bool = True) -> Server:
    url = f"{live_server.url}/taxii2/"
    if basic:
        return Server(url, user=slug, password=world.tokens[slug])
    return Server(url, auth=Bearer(world.tokens[slug]))


def collection_named(server: Server, alias: str) -> Any:
    (api_root,) = server.api_roots
    return next(c for c in api_root.collections if c.alias == alias)


def read_all(collection: Any, per_request: int, **filters: Any) -> tuple[list[dict], list[dict]]:
    envelopes = list(as_pages(collection.get_objects, per_request=per_request, **filters))
    return [o for e in envelopes for o in e.get("objects", [])], envelopes


def feed_signal_ids(live_server: Any, token: str) -> set[int]:
    """Replay ``GET /api/v1/feed?purpose=detection`` from the start, as a member's client does."""
    seen: set[int] = set()
    params: dict[str, Any] = {"purpose": "detection", "limit": 7}
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        while True:
            body = http.get(
                "/api/v1/feed", params=params, headers={"Authorization": f"Bearer {token}"}
            ).json()
            for event in body["events"]:
                if event["op"] == "upsert":
                    seen.add(event["signal"]["id"])
                else:
                    seen.discard(event["signal"]["id"])
            if not body["more"]:
                return seen
            params = {"purpose": "detection", "limit": 7, "cursor": body["next_cursor"]}


def test_the_client_discovers_the_server_and_lists_collections(live_server, live_world):
    server = server_for(live_server, live_world, "acme")
    assert server.title == "Beacon"
    (api_root,) = server.api_roots
    assert api_root.versions == ["application/taxii+json;version=2.1"]
    assert [c.alias for c in api_root.collections] == ["all", "group-pilot"]
    outsider = server_for(live_server, live_world, "initech", basic=False)
    assert [c.alias for c in outsider.api_roots[0].collections] == ["all"]


def test_the_client_pages_objects_and_every_object_is_valid_stix(live_server, live_world):
    collection = collection_named(server_for(live_server, live_world, "globex"), "all")
    assert collection.id == ALL_COLLECTION_ID and collection.can_read and not collection.can_write
    objects, envelopes = read_all(collection, per_request=5)
    assert len(envelopes) > 3
    assert all(len(e.get("objects", [])) <= 5 for e in envelopes)
    assert len({o["id"] for o in objects}) == len(objects)
    assert signal_ids(objects) == live_world.expected("globex") | {
        pk for name, pk in live_world.ids.items() if name.startswith("a_bulk_")
    }
    bundle = stix2.parse(
        {
            "type": "bundle",
            "id": "bundle--4a3c1d0e-2b8f-4c61-9a57-0d7e6b1f2c33",
            "objects": objects,
        },
        allow_custom=False,
    )
    referenced = {o.id for o in bundle.objects}
    for obj in bundle.objects:
        if obj.type == "indicator":
            assert obj.created_by_ref in referenced
            assert all(ref in referenced for ref in obj.object_marking_refs)


def test_added_after_brings_only_what_changed(live_server, live_world):
    collection = collection_named(server_for(live_server, live_world, "globex"), "all")
    first = collection.get_objects()
    response = requests.get(
        collection.objects_url,
        auth=("globex", live_world.tokens["globex"]),
        headers={"Accept": "application/taxii+json;version=2.1"},
        timeout=30,
    )
    last = response.headers["X-TAXII-Date-Added-Last"]
    assert response.headers["Content-Type"] == "application/taxii+json;version=2.1"
    assert "objects" not in collection.get_objects(added_after=last)
    (new,) = submit(
        live_world.acme, [{"type": "sha256", "value": digest("later"), "category": "csea.csam"}]
    )
    retracted = live_world.ids["a_md5_all"]
    signal_services.signal_retract_own(
        member=live_world.acme, signal_id=retracted, reason="appeal upheld", actor=SYSTEM
    )
    objects, _ = read_all(collection, per_request=1, added_after=last)
    assert signal_ids(objects) == {new}
    assert signal_ids(objects, revoked=True) == {retracted}
    assert len(first["objects"]) > len(objects)


def test_get_object_versions_and_manifest_through_the_client(live_server, live_world):
    collection = collection_named(server_for(live_server, live_world, "globex"), "group-pilot")
    oid = stix.indicator_id(live_world.ids["a_sha1_group"])
    (obj,) = collection.get_object(oid)["objects"]
    assert collection.object_versions(oid)["versions"] == [obj["modified"]]
    manifest = [
        r["id"] for e in as_pages(collection.get_manifest, per_request=2) for r in e["objects"]
    ]
    assert oid in manifest and stix.indicator_id(live_world.ids["a_md5_all"]) not in manifest


@pytest.mark.parametrize("slug", ["acme", "globex", "initech"])
def test_taxii_gives_each_member_the_same_signals_as_the_feed(live_server, live_world, slug):
    """Done when: taxii2-client reads the same set of signals through TAXII as the REST feed
    gives the same member."""
    collection = collection_named(server_for(live_server, live_world, slug), "all")
    objects, _ = read_all(collection, per_request=4)
    taxii = signal_ids(objects)
    feed = feed_signal_ids(live_server, live_world.tokens[slug])
    assert taxii == feed
    assert taxii  # never vacuous
    # The same holds after changes: a retraction, an audience the member is not in, a new one.
    signal_services.signal_retract_own(
        member=live_world.acme,
        signal_id=live_world.ids["a_sha256_all"],
        reason="appeal upheld",
        actor=SYSTEM,
    )
    submit(
        live_world.acme,
        [
            {
                "type": "sha256",
                "value": digest("to-globex"),
                "category": "csea.csam",
                "audience": "members:globex",
            },
            {"type": "sha256", "value": digest("to-all"), "category": "csea.csam"},
        ],
    )
    objects, _ = read_all(collection, per_request=4)
    assert signal_ids(objects) == feed_signal_ids(live_server, live_world.tokens[slug])


def test_every_client_read_leaves_a_taxii_audit_event(live_server, live_world, monkeypatch):
    before = AuditEvent.objects.filter(action="taxii.read", actor_member="initech").count()
    requests_made: list[str] = []
    send = requests.Session.send

    def counting_send(session: Any, request: Any, **kwargs: Any) -> Any:
        requests_made.append(request.url)
        return send(session, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", counting_send)
    server = server_for(live_server, live_world, "initech")
    collection = collection_named(server, "all")
    _, envelopes = read_all(collection, per_request=4)
    after = AuditEvent.objects.filter(action="taxii.read", actor_member="initech")
    assert after.count() - before == len(requests_made) > len(envelopes)
    pages = after.filter(target__startswith="taxii:collection:")
    assert pages.count() == len(envelopes)
    assert all(e.purpose == "detection" for e in pages)
