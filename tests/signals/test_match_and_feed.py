from __future__ import annotations

import pytest

from accounts.services import group_remove_member, member_activate, member_suspend
from signals.models import Disclosure
from tests.conftest import SYSTEM, assert_problem
from tests.signals.conftest import digest, item

pytestmark = pytest.mark.django_db


def match(client, items, purpose="detection"):
    response = client.post("/api/v1/match", {"purpose": purpose, "items": items}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def replay(client, purpose="detection", cursor=None, limit=1000):
    """Apply the feed from ``cursor`` to a local copy, like a member's consumer would."""
    held: dict[int, dict] = {}
    while True:
        url = f"/api/v1/feed?purpose={purpose}&limit={limit}" + (
            f"&cursor={cursor}" if cursor else ""
        )
        body = client.get(url).json()
        for event in body["events"]:
            if event["op"] == "upsert":
                held[event["signal"]["id"]] = event["signal"]
            else:
                held.pop(event["signal"]["id"], None)
        cursor = body["next_cursor"]
        if not body["more"]:
            return held, cursor


def test_match_answers_each_item_with_provenance(upload, api_for, member_a, member_b):
    upload(member_a, [item("sha256", digest("img"), confidence=77, severity="high", tlp="red")])
    results = match(
        api_for(member_b),
        [{"type": "sha256", "value": digest("img")}, {"type": "sha256", "value": digest("other")}],
    )
    assert [r["index"] for r in results] == [0, 1]
    (hit,) = results[0]["matches"]
    (signal,) = hit["signals"]
    assert (
        signal["owner"],
        signal["confidence"],
        signal["severity"],
        signal["tlp"],
        signal["category"],
    ) == ("acme", 77, "high", "red", "csea.csam")
    assert "created_at" in signal and signal["feedback"] == {}
    assert results[1]["matches"] == []


def test_anonymous_owners_are_not_named(upload, api_for, member_a, member_b):
    member_a.attribution = "anonymous"
    member_a.save()
    upload(member_a, [item()])
    (hit,) = match(api_for(member_b), [{"type": "sha256", "value": item()["value"]}])[0]["matches"]
    assert hit["signals"][0]["owner"] == "anonymous"


def test_match_records_disclosure_and_audit(upload, api_for, member_a, member_b):
    from exchange.audit.models import AuditEvent

    sid = upload(member_a, [item()]).json()["signals"][0]["id"]
    api_for(member_b).post(
        "/api/v1/match",
        {"purpose": "investigation", "items": [{"type": "sha256", "value": item()["value"]}]},
        format="json",
        HTTP_X_REQUEST_ID="match-audit-1",
    )
    event = AuditEvent.objects.get(request_id="match-audit-1")
    assert (event.action, event.purpose, event.result_count) == ("signal.match", "investigation", 1)
    assert event.disclosed == {"globex": [sid]} and event.owners == ["acme"]
    assert Disclosure.objects.filter(member=member_b, signal_id=sid, channel="match").exists()


def test_match_validates_every_item(api_for, member_b):
    body = assert_problem(
        api_for(member_b).post(
            "/api/v1/match",
            {
                "purpose": "detection",
                "items": [
                    {"type": "sha256", "value": "zz"},
                    {"type": "pdq", "value": "ab" * 32, "max_distance": 53},
                    {"type": "md5", "value": "0" * 32, "max_distance": 3},
                ],
            },
            format="json",
        ),
        422,
    )
    assert {(e["index"], e["field"]) for e in body["errors"]} == {
        (0, "value"),
        (1, "max_distance"),
        (2, "max_distance"),
    }


def test_match_needs_a_known_purpose_the_token_allows(api_for, member_b):
    assert_problem(api_for(member_b).post("/api/v1/match", {"items": [item()]}, format="json"), 422)
    assert_problem(
        api_for(member_b).post(
            "/api/v1/match", {"purpose": "curiosity", "items": [item()]}, format="json"
        ),
        422,
    )
    limited = api_for(member_b, purposes=["detection"])
    assert_problem(
        limited.post(
            "/api/v1/match", {"purpose": "investigation", "items": [item()]}, format="json"
        ),
        403,
    )


def test_pdq_matches_within_the_distance_with_their_distance(upload, api_for, member_a, member_b):
    stored = "0" * 64
    near = "f" * 7 + "0" * 57  # 28 bits away
    far = "f" * 9 + "0" * 55  # 36 bits away
    upload(member_a, [item("pdq", stored, quality=80)])
    client = api_for(member_b)
    (hit,) = match(client, [{"type": "pdq", "value": near}])[0]["matches"]
    assert hit["distance"] == 28
    assert match(client, [{"type": "pdq", "value": far}])[0]["matches"] == []
    assert (
        match(client, [{"type": "pdq", "value": far, "max_distance": 36}])[0]["matches"][0][
            "distance"
        ]
        == 36
    )


def test_text_match_finds_keywords_with_spans_in_the_original_text(
    upload, api_for, member_a, member_b
):
    upload(
        member_a,
        [
            item("keyword", "Send me a pic first", "csea.grooming", lang="en"),
            item("keyword", "wire the money", "csea.sextortion"),
        ],
    )
    text = "Hi!  SEND   me a ＰＩＣ first, then wire the money."
    response = api_for(member_b).post(
        "/api/v1/match/text", {"purpose": "detection", "text": text, "lang": "en"}, format="json"
    )
    found = {m["keyword"]: text[m["start"] : m["end"]] for m in response.json()["matches"]}
    assert found == {
        "send me a pic first": "SEND   me a ＰＩＣ first",
        "wire the money": "wire the money",
    }


def test_text_match_respects_word_boundaries_and_language(upload, api_for, member_a, member_b):
    upload(member_a, [item("keyword", "pic", "csea.grooming", lang="en")])
    client = api_for(member_b)
    assert (
        client.post(
            "/api/v1/match/text", {"purpose": "detection", "text": "nice picture"}, format="json"
        ).json()["matches"]
        == []
    )
    assert (
        client.post(
            "/api/v1/match/text",
            {"purpose": "detection", "text": "a pic", "lang": "de"},
            format="json",
        ).json()["matches"]
        == []
    )
    assert (
        len(
            client.post(
                "/api/v1/match/text", {"purpose": "detection", "text": "a pic"}, format="json"
            ).json()["matches"]
        )
        == 1
    )


def test_get_patch_and_delete_are_owner_scoped(upload, api_for, member_a, member_b, outsider):
    sid = upload(member_a, [item()]).json()["signals"][0]["id"]
    owner, other, stranger = api_for(member_a), api_for(member_b), api_for(outsider)
    assert other.get(f"/api/v1/signals/{sid}").status_code == 200
    assert_problem(other.patch(f"/api/v1/signals/{sid}", {"confidence": 1}, format="json"), 404)
    assert_problem(other.delete(f"/api/v1/signals/{sid}", {"reason": "x"}, format="json"), 404)
    assert_problem(owner.get("/api/v1/signals/999999"), 404)
    patched = owner.patch(
        f"/api/v1/signals/{sid}", {"audience": "members:globex", "confidence": 10}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["confidence"] == 10
    assert_problem(stranger.get(f"/api/v1/signals/{sid}"), 404)
    assert_problem(owner.patch(f"/api/v1/signals/{sid}", {"value": "x"}, format="json"), 422)
    assert_problem(owner.delete(f"/api/v1/signals/{sid}"), 422)
    gone = owner.delete(f"/api/v1/signals/{sid}", {"reason": "user appeal upheld"}, format="json")
    assert gone.status_code == 200 and gone.json()["status"] == "retracted"
    assert_problem(other.get(f"/api/v1/signals/{sid}"), 404)
    assert owner.get(f"/api/v1/signals/{sid}").json()["status"] == "retracted"


def test_list_shows_only_own_signals_with_cursor_pages(upload, api_for, member_a, member_b):
    upload(member_a, [item(value=digest(str(i))) for i in range(5)])
    upload(member_b, [item(value=digest("b"))])
    client = api_for(member_a)
    page = client.get("/api/v1/signals?limit=2").json()
    seen = [s["id"] for s in page["signals"]]
    while page["next_cursor"]:
        page = client.get(f"/api/v1/signals?limit=2&cursor={page['next_cursor']}").json()
        seen += [s["id"] for s in page["signals"]]
    assert len(seen) == len(set(seen)) == 5
    assert_problem(client.get("/api/v1/signals?cursor=tampered"), 400)
    assert client.get("/api/v1/signals?type=md5").json()["signals"] == []


def test_feed_replays_then_follows_changes_with_tombstones(
    upload, api_for, member_a, member_b, pilot
):
    owner, follower = api_for(member_a), api_for(member_b)
    ids = [
        s["id"]
        for s in upload(
            member_a, [item(value=digest(str(i)), audience="group:pilot") for i in range(5)]
        ).json()["signals"]
    ]
    held, cursor = replay(follower, limit=2)
    assert set(held) == set(ids)
    owner.delete(f"/api/v1/signals/{ids[0]}", {"reason": "appeal"}, format="json")
    owner.patch(f"/api/v1/signals/{ids[1]}", {"confidence": 99}, format="json")
    held2, cursor = replay(follower, cursor=cursor)
    assert held2[ids[1]]["confidence"] == 99
    held.update(held2)
    body = follower.get(f"/api/v1/feed?purpose=detection&cursor={cursor}").json()
    assert body["events"] == []
    # Losing group membership turns into tombstones for everything the group shared.
    group_remove_member(group=pilot, member=member_b, actor=SYSTEM)
    events = follower.get(f"/api/v1/feed?purpose=detection&cursor={cursor}").json()["events"]
    assert {e["op"] for e in events} == {"delete"} and {e["signal"]["id"] for e in events} == set(
        ids[1:]
    )


def test_losing_a_category_turns_into_tombstones(upload, api_for, member_a, member_b):
    from accounts.services import member_set_categories

    kept = upload(member_a, [item(value=digest("kept"), category="csea.csam")]).json()["signals"][
        0
    ]["id"]
    lost = upload(member_a, [item(value=digest("lost"), category="tfgbv.ncii")]).json()["signals"][
        0
    ]["id"]
    held, cursor = replay(api_for(member_b))
    assert set(held) == {kept, lost}
    member_set_categories(member=member_b, categories=["csea.csam"], actor=SYSTEM)
    events = (
        api_for(member_b).get(f"/api/v1/feed?purpose=detection&cursor={cursor}").json()["events"]
    )
    assert [(e["op"], e["signal"]["id"]) for e in events] == [("delete", lost)]


def test_feed_deletes_reach_only_members_that_received_the_signal(
    upload, api_for, member_a, member_b, outsider
):
    sid = upload(member_a, [item(audience="members:globex")]).json()["signals"][0]["id"]
    _, b_cursor = replay(api_for(member_b))
    _, o_cursor = replay(api_for(outsider))
    api_for(member_a).delete(f"/api/v1/signals/{sid}", {"reason": "appeal"}, format="json")
    b_events = (
        api_for(member_b).get(f"/api/v1/feed?purpose=detection&cursor={b_cursor}").json()["events"]
    )
    o_events = (
        api_for(outsider).get(f"/api/v1/feed?purpose=detection&cursor={o_cursor}").json()["events"]
    )
    assert [(e["op"], e["signal"]["id"]) for e in b_events] == [("delete", sid)]
    assert o_events == []


def test_a_feed_page_records_what_it_disclosed_with_its_audit_event(
    upload, api_for, member_a, member_b
):
    from exchange.audit.models import AuditEvent

    theirs = [
        s["id"]
        for s in upload(member_a, [item(value=digest(str(i))) for i in range(3)]).json()["signals"]
    ]
    own = upload(member_b, [item(value=digest("mine"))]).json()["signals"][0]["id"]
    for request_id in ("feed-audit-1", "feed-audit-2"):
        body = (
            api_for(member_b)
            .get("/api/v1/feed?purpose=detection", HTTP_X_REQUEST_ID=request_id)
            .json()
        )
        assert {e["signal"]["id"] for e in body["events"]} == {*theirs, own}
        event = AuditEvent.objects.get(request_id=request_id)
        assert (event.action, event.result_count) == ("signal.feed", 4)
        assert event.disclosed == {"globex": sorted(theirs)} and event.owners == ["acme"]
    # Reading the same page again discloses nothing new: one row per signal, first channel kept.
    assert sorted(
        Disclosure.objects.filter(member=member_b).values_list("signal_id", "channel")
    ) == [(sid, "feed") for sid in sorted(theirs)]


def test_a_member_the_policy_stops_receiving_gets_tombstones_for_what_it_was_given(
    upload, api_for, member_a, member_b
):
    from exchange.api import decode_cursor
    from signals.services import signal_feed

    sid = upload(member_a, [item()]).json()["signals"][0]["id"]
    _, cursor = replay(api_for(member_b))
    api_for(member_a).patch(f"/api/v1/signals/{sid}", {"confidence": 99}, format="json")
    member_suspend(member=member_b, actor=SYSTEM, reason="test")
    page = signal_feed(
        member=member_b,
        purpose="detection",
        cursor=decode_cursor(cursor, salt="signals.feed"),
        limit=10,
        actor=SYSTEM,
    )
    assert [(e["op"], e["signal"]["id"]) for e in page.events] == [("delete", sid)]


def test_feed_cursors_are_signed_and_bound_to_the_member(upload, api_for, member_a, member_b):
    upload(member_a, [item()])
    _, cursor = replay(api_for(member_b))
    assert_problem(
        api_for(member_b).get(f"/api/v1/feed?purpose=detection&cursor={cursor[:-2]}xx"), 400
    )
    assert_problem(api_for(member_a).get(f"/api/v1/feed?purpose=detection&cursor={cursor}"), 400)
    assert_problem(api_for(member_b).get("/api/v1/feed?purpose=detection&limit=10001"), 422)


def test_suspension_stops_reads_on_the_next_request(upload, api_for, member_a, member_b):
    upload(member_a, [item()])
    client = api_for(member_b)
    assert match(client, [{"type": "sha256", "value": item()["value"]}])[0]["matches"]
    member_suspend(member=member_b, actor=SYSTEM)
    assert_problem(
        client.post("/api/v1/match", {"purpose": "detection", "items": [item()]}, format="json"),
        401,
    )
    member_activate(member=member_b, actor=SYSTEM)
    assert match(client, [{"type": "sha256", "value": item()["value"]}])[0]["matches"]
