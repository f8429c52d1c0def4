"""The TAXII 2.1 endpoints as the specification describes them: media types, errors,
pagination, filters, per-member collections, revocations and the audit of every request."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import stix2
from rest_framework.test import APIClient

from exchange.audit.models import AuditEvent
from signals import services as signal_services
from signals import stix
from signals.models import Disclosure, Signal
from signals.taxii.api import TAXII_MEDIA_TYPE
from signals.taxii.services import ALL_COLLECTION_ID, group_collection_id
from tests.conftest import SYSTEM
from tests.taxii.conftest import ROOT, World, signal_ids, taxii_get

pytestmark = pytest.mark.django_db

ALL = f"collections/{ALL_COLLECTION_ID}/"
PILOT = f"collections/{group_collection_id('pilot')}/"


def assert_taxii_error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == TAXII_MEDIA_TYPE
    body = response.json()
    assert body["title"] and body["description"]
    assert body["http_status"] == str(status)
    assert body["error_id"] == response["X-Request-ID"]
    return body


def all_objects(client: APIClient, path: str = ALL + "objects/", **params) -> list[dict]:
    """Follow ``next`` until ``more`` is false."""
    out: list[dict] = []
    query = dict(params)
    while True:
        response = taxii_get(client, path, data=query)
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        out.extend(body.get("objects", []))
        if not body["more"]:
            assert "next" not in body
            return out
        query = {**params, "next": body["next"]}


# -- discovery, API root, collections -------------------------------------------------------
def test_discovery_names_the_one_api_root(world: World):
    response = taxii_get(world.client("acme"), "/taxii2/")
    assert response.status_code == 200
    assert response["Content-Type"] == TAXII_MEDIA_TYPE
    body = response.json()
    assert body["api_roots"] == ["http://testserver/taxii2/beacon/"]
    assert body["default"] == body["api_roots"][0]


def test_api_root_advertises_taxii_2_1(world: World):
    body = taxii_get(world.client("acme"), ROOT).json()
    assert body["versions"] == [TAXII_MEDIA_TYPE]
    assert isinstance(body["max_content_length"], int)


def test_collections_are_per_member_views(world: World):
    for slug, expected in (("acme", ["all", "group-pilot"]), ("initech", ["all"])):
        body = taxii_get(world.client(slug), "collections/").json()
        assert [c["alias"] for c in body["collections"]] == expected
        for c in body["collections"]:
            assert c["can_read"] is True and c["can_write"] is False
            assert c["media_types"] == ["application/stix+json;version=2.1"]


def test_an_outsider_cannot_open_a_group_collection(world: World):
    client = world.client("initech")
    assert_taxii_error(taxii_get(client, PILOT), 404)
    assert_taxii_error(taxii_get(client, PILOT + "objects/"), 404)
    assert_taxii_error(taxii_get(client, PILOT + "manifest/"), 404)


# -- media types and errors -----------------------------------------------------------------
@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/stix+json;version=2.1",
        "application/taxii+json;version=2.0",
        "text/html",
        "application/taxii+json;version=2.1;q=0",
    ],
)
def test_an_unacceptable_accept_is_406(world: World, accept: str):
    response = taxii_get(world.client("acme"), ALL + "objects/", HTTP_ACCEPT=accept)
    assert_taxii_error(response, 406)


@pytest.mark.parametrize(
    "accept",
    [
        "application/taxii+json;version=2.1",
        "application/taxii+json",
        "application/taxii+json; version=2.1",
        "text/html, application/taxii+json;version=2.1;q=0.5",
        "*/*",
    ],
)
def test_taxii_accept_headers_are_served(world: World, accept: str):
    response = taxii_get(world.client("acme"), ALL + "objects/", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"] == TAXII_MEDIA_TYPE


def test_a_wrong_content_type_is_415(world: World):
    client = world.client("acme")
    response = client.post(
        ROOT + ALL + "objects/",
        data=b'{"objects": []}',
        content_type="application/json",
        HTTP_ACCEPT=TAXII_MEDIA_TYPE,
    )
    assert_taxii_error(response, 415)
    response = client.post(
        ROOT + ALL + "objects/",
        data=b"hello",
        content_type="text/plain",
        HTTP_ACCEPT=TAXII_MEDIA_TYPE,
    )
    assert_taxii_error(response, 415)


def test_an_oversized_body_is_a_taxii_413(world: World, settings):
    settings.BEACON_MAX_BODY_BYTES = 10
    response = world.client("acme").post(
        ROOT + ALL + "objects/",
        data=b'{"objects": ["' + b"x" * 64 + b'"]}',
        content_type=TAXII_MEDIA_TYPE,
        HTTP_ACCEPT=TAXII_MEDIA_TYPE,
    )
    assert_taxii_error(response, 413)


def test_writes_are_refused_because_collections_are_read_only(world: World):
    client = world.client("acme")
    response = client.post(
        ROOT + ALL + "objects/",
        data=b'{"objects": []}',
        content_type=TAXII_MEDIA_TYPE,
        HTTP_ACCEPT=TAXII_MEDIA_TYPE,
    )
    assert_taxii_error(response, 403)
    oid = stix.indicator_id(world.ids["a_md5_all"])
    response = client.delete(ROOT + ALL + f"objects/{oid}/", HTTP_ACCEPT=TAXII_MEDIA_TYPE)
    assert_taxii_error(response, 403)
    assert Signal.objects.filter(pk=world.ids["a_md5_all"], status="active").exists()


def test_unauthenticated_requests_are_401_taxii_errors_with_a_challenge(world: World):
    response = taxii_get(APIClient(), "/taxii2/")
    assert_taxii_error(response, 401)
    assert "Basic" in response["WWW-Authenticate"] and "Bearer" in response["WWW-Authenticate"]
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"x:bcn_nope").decode())
    assert_taxii_error(taxii_get(bad, "collections/"), 401)


def test_http_basic_with_the_token_as_password_works(world: World):
    client = APIClient()
    secret = base64.b64encode(f"acme:{world.tokens['acme']}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {secret}")
    response = taxii_get(client, ALL + "objects/")
    assert response.status_code == 200
    assert signal_ids(response.json()["objects"]) == world.expected("acme")


def test_a_token_without_read_scope_or_detection_purpose_is_403(world: World, issue_token):
    for kwargs in ({"scopes": ["signals:write"]}, {"purposes": ["research"]}):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(world.acme, **kwargs)}")
        assert_taxii_error(taxii_get(client, "collections/"), 403)


def test_unknown_paths_and_statuses_are_taxii_404s(world: World):
    client = world.client("acme")
    assert_taxii_error(taxii_get(client, "/taxii2/other-root/"), 404)
    assert_taxii_error(taxii_get(client, "collections/not-a-collection/"), 404)
    assert_taxii_error(taxii_get(client, "status/2d086da7-4bdc-4f91-900e-d77486753710/"), 404)


def test_bad_parameters_are_400(world: World):
    client = world.client("acme")
    for params in (
        {"limit": "0"},
        {"limit": "many"},
        {"added_after": "yesterday"},
        {"match[version]": "newest"},
        {"next": "forged"},
    ):
        assert_taxii_error(taxii_get(client, ALL + "objects/", data=params), 400)


# -- what a member sees ---------------------------------------------------------------------
@pytest.mark.parametrize("slug", ["acme", "globex", "initech"])
def test_each_member_sees_exactly_its_view(world: World, slug: str):
    objects = all_objects(world.client(slug))
    assert signal_ids(objects) == world.expected(slug)
    for obj in objects:
        stix2.parse(obj, allow_custom=False)


def test_an_outsider_never_sees_a_signal_outside_its_audience(world: World):
    objects = all_objects(world.client("initech"))
    seen = signal_ids(objects, revoked=None)
    for signal in Signal.objects.filter(pk__in=seen):
        assert signal.owner_id == world.initech.pk or signal.audience == "all", signal.audience
    hidden = {world.ids["a_sha1_group"], world.ids["a_sha256_members"], world.ids["b_md5_group"]}
    assert not seen & hidden
    rendered = str(objects)
    assert Signal.objects.get(pk=world.ids["a_sha1_group"]).indicator.value not in rendered


def test_group_collections_hold_only_that_groups_signals(world: World):
    objects = all_objects(world.client("globex"), PILOT + "objects/")
    assert signal_ids(objects) == {world.ids["a_sha1_group"], world.ids["b_md5_group"]}


def test_peppered_identifiers_never_leave_the_exchange(world: World):
    email = Signal.objects.select_related("indicator").get(pk=world.ids["a_email_all"])
    objects = all_objects(world.client("globex"))
    assert email.indicator.value not in str(objects)
    (indicator,) = [
        o
        for o in objects
        if o["type"] == "indicator" and o["extensions"][stix.EXTENSION_ID]["signal_id"] == email.pk
    ]
    assert indicator["pattern"] == (
        f"[x-beacon-identifier:kind = 'email' AND x-beacon-identifier:indicator_id = {email.indicator_id}]"
    )


def test_indicators_carry_patterns_markings_owner_and_validity(world: World):
    objects = {o["id"]: o for o in all_objects(world.client("globex"))}
    ind = objects[stix.indicator_id(world.ids["a_sha256_all"])]
    sha = Signal.objects.select_related("indicator").get(pk=world.ids["a_sha256_all"])
    assert ind["pattern"] == f"[file:hashes.'SHA-256' = '{sha.indicator.value}']"
    assert ind["object_marking_refs"] == [stix.TLP_MARKINGS["green"][1]]
    assert ind["labels"][0] == "csea.csam" and ind["confidence"] == 50
    assert ind["created_by_ref"] == stix.member_identity_id("acme")
    assert ind["created_by_ref"] in objects and ind["object_marking_refs"][0] in objects
    assert stix.EXTENSION_ID in objects
    url = objects[stix.indicator_id(world.ids["a_url_all"])]
    assert url["pattern"].startswith("[url:value = 'https://example.org/it\\'s")
    assert "valid_until" not in ind  # csea.csam has no default lifetime
    assert url["valid_until"] > url["valid_from"]  # csea.grooming lapses after two years
    keyword = objects[stix.indicator_id(world.ids["a_keyword_all"])]
    assert keyword["pattern"] == "[x-beacon-keyword:value = 'send me a pic first']"
    assert keyword["extensions"][stix.EXTENSION_ID]["lang"] == "en"
    pdq = objects[stix.indicator_id(world.ids["a_pdq_all"])]
    assert pdq["pattern"] == f"[file:hashes.PDQ = '{'f0' * 32}']"
    assert pdq["extensions"][stix.EXTENSION_ID]["quality"] == 90
    # The anonymous owner is named to itself, and never to others.
    md5_id = stix.indicator_id(world.ids["b_md5_group"])
    assert objects[md5_id]["created_by_ref"] == stix.member_identity_id("globex")
    acme_view = {o["id"]: o for o in all_objects(world.client("acme"))}
    assert acme_view[md5_id]["created_by_ref"] == stix.ANONYMOUS_IDENTITY_ID
    assert stix.ANONYMOUS_IDENTITY_ID in acme_view
    assert stix.member_identity_id("globex") not in str(acme_view)
    assert "globex" not in str(acme_view[md5_id])


def test_expiry_becomes_valid_until(world: World):
    from datetime import datetime

    expiry = datetime(2030, 1, 1, tzinfo=stix.UTC)
    Signal.objects.filter(pk=world.ids["a_md5_all"]).update(expires_at=expiry)
    objects = {o["id"]: o for o in all_objects(world.client("globex"))}
    assert objects[stix.indicator_id(world.ids["a_md5_all"])]["valid_until"] == (
        "2030-01-01T00:00:00.000000Z"
    )


def test_retraction_reaches_members_given_the_signal_as_a_revoked_version(world: World):
    client = world.client("globex")
    first = taxii_get(client, ALL + "objects/")
    target = world.ids["a_sha256_all"]
    before = {o["id"]: o for o in first.json()["objects"]}[stix.indicator_id(target)]
    last_added = first["X-TAXII-Date-Added-Last"]
    signal_services.signal_retract_own(
        member=world.acme, signal_id=target, reason="appeal upheld", actor=SYSTEM
    )
    news = taxii_get(client, ALL + "objects/", data={"added_after": last_added}).json()["objects"]
    assert signal_ids(news, revoked=True) == {target}
    revoked = [o for o in news if o["type"] == "indicator"][0]
    assert revoked["id"] == before["id"] and revoked["modified"] > before["modified"]
    assert revoked["pattern"] == before["pattern"]
    assert "labels" not in revoked and "confidence" not in revoked
    stix2.parse(revoked, allow_custom=False)
    # A member that was never given it learns nothing of it.
    assert target not in signal_ids(all_objects(world.client("initech")), revoked=None)


def test_owners_see_their_own_retracted_and_expired_signals_revoked(world: World):
    objects = all_objects(world.client("acme"))
    assert signal_ids(objects, revoked=True) == {
        world.ids["a_sha256_retracted"],
        world.ids["a_sha256_expired"],
    }


# -- pagination and filters -----------------------------------------------------------------
def test_pages_follow_next_with_date_added_headers(world: World):
    client = world.client("globex")
    everything = all_objects(client)
    seen: list[dict] = []
    query: dict = {"limit": 3}
    while True:
        response = taxii_get(client, ALL + "objects/", data=query)
        body = response.json()
        assert len(body.get("objects", [])) <= 3
        if body.get("objects"):
            assert response["X-TAXII-Date-Added-First"] <= response["X-TAXII-Date-Added-Last"]
        seen.extend(body.get("objects", []))
        if not body["more"]:
            break
        query = {"limit": 3, "next": body["next"]}
    assert [o["id"] for o in seen] == [o["id"] for o in everything]
    assert len({o["id"] for o in seen}) == len(seen)


def test_next_belongs_to_its_member_and_collection(world: World):
    body = taxii_get(world.client("globex"), ALL + "objects/", data={"limit": 1}).json()
    stolen = taxii_get(world.client("acme"), ALL + "objects/", data={"next": body["next"]})
    assert_taxii_error(stolen, 400)
    other = taxii_get(world.client("globex"), PILOT + "objects/", data={"next": body["next"]})
    assert_taxii_error(other, 400)


def test_match_type_id_and_version_filter(world: World):
    client = world.client("globex")
    body = taxii_get(client, ALL + "objects/", data={"match[type]": "marking-definition"}).json()
    assert {o["id"] for o in body["objects"]} == {m for _, m in stix.TLP_MARKINGS.values()}
    wanted = [stix.indicator_id(world.ids["a_md5_all"]), stix.EXTENSION_ID]
    body = taxii_get(client, ALL + "objects/", data={"match[id]": ",".join(wanted)}).json()
    assert sorted(o["id"] for o in body["objects"]) == sorted(wanted)
    version = [o for o in body["objects"] if o["type"] == "indicator"][0]["modified"]
    for versions, count in (("last", 1), ("first", 1), ("all", 1), (version, 1)):
        body = taxii_get(
            client, ALL + "objects/", data={"match[id]": wanted[0], "match[version]": versions}
        ).json()
        assert len(body.get("objects", [])) == count
    body = taxii_get(
        client,
        ALL + "objects/",
        data={"match[id]": wanted[0], "match[version]": "2001-01-01T00:00:00Z"},
    ).json()
    assert "objects" not in body
    body = taxii_get(client, ALL + "objects/", data={"match[spec_version]": "2.0"}).json()
    assert "objects" not in body


def test_added_after_returns_only_later_additions(world: World):
    client = world.client("globex")
    response = taxii_get(client, ALL + "objects/")
    last = response["X-TAXII-Date-Added-Last"]
    assert "objects" not in taxii_get(client, ALL + "objects/", data={"added_after": last}).json()
    from tests.taxii.conftest import digest, submit

    (new,) = submit(
        world.acme, [{"type": "sha256", "value": digest("new"), "category": "csea.csam"}]
    )
    response = taxii_get(client, ALL + "objects/", data={"added_after": last})
    assert signal_ids(response.json()["objects"]) == {new}
    assert response["X-TAXII-Date-Added-First"] > last


def test_get_an_object_its_versions_and_the_manifest(world: World):
    client = world.client("globex")
    oid = stix.indicator_id(world.ids["a_url_all"])
    body = taxii_get(client, ALL + f"objects/{oid}/").json()
    assert [o["id"] for o in body["objects"]] == [oid]
    versions = taxii_get(client, ALL + f"objects/{oid}/versions/").json()
    assert versions == {"more": False, "versions": [body["objects"][0]["modified"]]}
    manifest = taxii_get(client, ALL + "manifest/", data={"match[id]": oid}).json()
    (record,) = manifest["objects"]
    assert record["id"] == oid and record["version"] == body["objects"][0]["modified"]
    assert record["media_type"] == "application/stix+json;version=2.1"
    hidden = stix.indicator_id(world.ids["a_sha1_group"])
    outsider = world.client("initech")
    assert_taxii_error(taxii_get(outsider, ALL + f"objects/{hidden}/"), 404)
    assert_taxii_error(taxii_get(outsider, ALL + f"objects/{hidden}/versions/"), 404)


# -- audit ----------------------------------------------------------------------------------
def test_every_taxii_request_is_audited_refused_ones_too(world: World):
    client = world.client("globex")
    paths = ["/taxii2/", ROOT, "collections/", ALL, ALL + "objects/", ALL + "manifest/"]
    for n, path in enumerate(paths):
        taxii_get(client, path, HTTP_X_REQUEST_ID=f"taxii-audit-{n}")
        event = AuditEvent.objects.get(request_id=f"taxii-audit-{n}")
        assert event.action == "taxii.read" and event.actor_member == "globex"
    taxii_get(
        client, ALL + "objects/", HTTP_ACCEPT="application/json", HTTP_X_REQUEST_ID="refused-406"
    )
    taxii_get(APIClient(), ALL + "objects/", HTTP_X_REQUEST_ID="refused-401")
    taxii_get(world.client("initech"), PILOT + "objects/", HTTP_X_REQUEST_ID="refused-404")
    for request_id, status in (("refused-406", 406), ("refused-401", 401), ("refused-404", 404)):
        event = AuditEvent.objects.get(request_id=request_id)
        assert event.action == "api.refused" and event.details["status"] == status


def test_objects_reads_name_every_disclosed_signal_and_record_disclosures(world: World):
    client = world.client("initech")
    taxii_get(client, ALL + "objects/", HTTP_X_REQUEST_ID="taxii-disclose")
    event = AuditEvent.objects.get(request_id="taxii-disclose")
    others = world.expected("initech") - {world.ids["c_sha256_all"]}
    assert set(event.disclosed["initech"]) == others
    assert event.owners == ["acme"] and event.purpose == "detection"
    assert (
        set(
            Disclosure.objects.filter(member=world.initech, channel="taxii").values_list(
                "signal_id", flat=True
            )
        )
        == others
    )


def test_a_page_is_never_larger_than_the_server_maximum(world: World, settings):
    settings.BEACON_TAXII_PAGE_SIZE = 2
    body = taxii_get(world.client("acme"), ALL + "objects/", data={"limit": 50}).json()
    assert len(body["objects"]) == 2 and body["more"] is True


def test_revoked_versions_are_stamped_after_the_last_change(world: World):
    signal = Signal.objects.get(pk=world.ids["a_sha256_retracted"])
    assert stix.revoked_version(signal) - stix.live_version(signal) == timedelta(milliseconds=1)
