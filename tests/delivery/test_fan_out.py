"""Fan-out and delivery run in-process against a real local receiver: who gets what, tombstones,
retries, dead letters, 410, redirects, disclosures and the audit trail."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import group_remove_member, member_suspend
from exchange.audit.models import AuditEvent
from exchange.delivery import services
from exchange.delivery.models import (
    Delivery,
    DeliveryStatus,
    OutboxEntry,
    Payload,
    SubscriptionStatus,
)
from exchange.delivery.services import dumps
from signals.models import Disclosure, Signal
from signals.services import signal_feed, signal_retract
from tests.conftest import SYSTEM
from tests.delivery.conftest import digest, make_due, run_pipeline, submit, subscribe
from tests.delivery.receiver import Reply

pytestmark = pytest.mark.django_db


def _signal_ids(events):
    return sorted(e["signal"]["id"] for _, e in events)


def test_a_group_signal_reaches_the_group_member_only(
    member_a, member_b, outsider, pilot, receiver
):
    sub_b = subscribe(member_b, receiver.url)
    sub_out = subscribe(outsider, receiver.url + "/outsider")
    ids = submit(member_a, "a@example.com", "b@example.com", audience="group:pilot")
    run_pipeline()
    events = receiver.accepted_events(secret=sub_b.secret)
    assert _signal_ids(events) == sorted(ids)
    assert all(e["op"] == "upsert" for _, e in events)
    assert not Delivery.objects.filter(subscription=sub_out.subscription).exists()
    # Every request was signed for member B's subscription and nobody else's.
    assert {r.headers.get("webhook-id") for r in receiver.received} == set(
        Delivery.objects.values_list("webhook_id", flat=True)
    )


def test_webhook_events_equal_feed_events(member_a, member_b, pilot, receiver):
    subscribe(member_b, receiver.url)
    submit(member_a, "x@example.com", audience="group:pilot")
    run_pipeline()
    [(_, webhook_event)] = receiver.accepted_events()
    page = signal_feed(member=member_b, purpose="detection", cursor=None, limit=10, actor=SYSTEM)
    feed_event = json.loads(dumps(page.events[0]))
    assert webhook_event == feed_event


def test_every_kind_of_signal_reads_alike_by_webhook_feed_and_get(member_a, member_b, receiver):
    from client.hashing import vpdq_text
    from signals.feedback import feedback_create
    from signals.services import signal_get, signal_submit
    from tests.signals.test_vpdq import random_frames

    member_a.attribution = "anonymous"
    member_a.save()
    frames = vpdq_text(random_frames(5, 3))
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=120000)
    items = [
        {
            "type": "sha256",
            "value": digest("tagged"),
            "category": "csea.sextortion",
            "tags": ["financial", "wave-2"],
            "confidence": 80,
            "severity": "high",
            "tlp": "amber+strict",
            "expires_at": expires.isoformat(),
            "external_id": "case-7",
        },
        {"type": "email", "value": digest("someone@example.com"), "category": "csea.csam"},
        {
            "type": "keyword",
            "value": "send me a pic first",
            "lang": "en",
            "category": "csea.grooming",
        },
        {"type": "pdq", "value": "ab" * 32, "quality": 92, "category": "csea.csam"},
        {
            "hashes": {"video_md5": "ab" * 16, "vpdq": frames, "pdq": "cd" * 32},
            "category": "csea.csam",
            "quality": 80,
        },
    ]
    ids = [s["id"] for s in signal_submit(member=member_a, items=items, actor=SYSTEM).signals]
    feedback_create(
        member=member_b,
        signal_id=ids[0],
        purpose="detection",
        body={"reaction": "seen"},
        actor=SYSTEM,
    )
    subscribe(member_b, receiver.url)
    run_pipeline()
    webhook = {e["seq"]: e for _, e in receiver.accepted_events()}
    page = signal_feed(member=member_b, purpose="detection", cursor=None, limit=100, actor=SYSTEM)
    feed = {e["seq"]: json.loads(dumps(e)) for e in page.events}
    assert webhook == feed and len(feed) == 7
    by_type = {e["signal"]["type"]: e["signal"] for e in feed.values()}
    assert by_type["sha256"]["tags"] == ["financial", "wave-2"]
    assert by_type["sha256"]["feedback"] == {"seen": 1}
    assert by_type["sha256"]["expires_at"] == expires.isoformat().replace("+00:00", "Z")
    assert by_type["email"]["value"] is None and by_type["keyword"]["lang"] == "en"
    assert by_type["vpdq"]["frames"] == frames and by_type["video_md5"]["bundle_id"]
    assert {s["owner"] for s in by_type.values()} == {"anonymous"}
    assert not any("external_id" in s for s in by_type.values())
    for event in feed.values():
        body = signal_get(
            member=member_b, purpose="detection", signal_id=event["signal"]["id"], actor=SYSTEM
        )
        assert json.loads(dumps(body)) == event["signal"]
    # A retraction reaches both as the same tombstone.
    receiver.received.clear()
    signal_retract(signal=Signal.objects.get(pk=ids[0]), reason="appeal", actor=SYSTEM)
    run_pipeline()
    [(_, tombstone)] = receiver.accepted_events()
    later = signal_feed(
        member=member_b, purpose="detection", cursor=page.next_cursor, limit=100, actor=SYSTEM
    )
    assert [json.loads(dumps(e)) for e in later.events] == [tombstone]
    assert tombstone["op"] == "delete" and tombstone["signal"]["id"] == ids[0]


def test_filters_pick_types_categories_and_events(member_a, member_b, receiver):
    wanted = subscribe(member_b, receiver.url, categories=["csea.grooming"])
    nothing = subscribe(member_b, receiver.url + "/none", events=["feedback.created"])
    submit(member_a, "one", category="csea.grooming")
    submit(member_a, "two", category="csea.sextortion")
    run_pipeline()
    assert not Delivery.objects.filter(subscription=nothing.subscription).exists()
    events = receiver.accepted_events(secret=wanted.secret)
    assert [e["signal"]["category"] for _, e in events] == ["csea.grooming"]


def test_a_batch_is_split_into_posts_of_at_most_the_batch_size(
    member_a, member_b, receiver, settings
):
    settings.BEACON_WEBHOOK_BATCH_EVENTS = 3
    subscribe(member_b, receiver.url)
    subscribe(member_b, receiver.url + "/second")
    ids = submit(member_a, *[f"v{i}" for i in range(7)])
    run_pipeline()
    sizes = sorted(len(r.events()) for r in receiver.accepted())
    assert sizes == [1, 1, 3, 3, 3, 3]
    # Two subscriptions with the same events share the stored bodies.
    assert Payload.objects.count() == 3
    per_sub = {}
    for r in receiver.accepted():
        per_sub.setdefault(r.headers["webhook-id"], r.events())
    assert sorted(e["signal"]["id"] for evs in per_sub.values() for e in evs) == sorted(ids * 2)
    seqs = [e["seq"] for r in receiver.accepted() for e in r.events()]
    assert all(isinstance(s, int) for s in seqs)


def test_a_retraction_reaches_exactly_the_members_that_received_it(
    member_a, member_b, outsider, receiver
):
    sub_b = subscribe(member_b, receiver.url + "/b")
    sub_out = subscribe(outsider, receiver.url + "/out")
    [sid] = submit(member_a, "shared", audience="members:globex")
    run_pipeline()
    signal = Signal.objects.get(pk=sid)
    signal_retract(signal=signal, reason="user appeal upheld", actor=SYSTEM)
    run_pipeline()
    b = [e for _, e in receiver.accepted_events(secret=sub_b.secret)]
    assert [(e["op"], e["signal"]["id"]) for e in b] == [("upsert", sid), ("delete", sid)]
    assert b[1]["signal"] == {
        "id": sid,
        "type": "sha256",
        "indicator_id": signal.indicator_id,
        "status": "deleted",
    }
    assert b[1]["seq"] > b[0]["seq"]
    assert not Delivery.objects.filter(subscription=sub_out.subscription).exists()


def test_a_member_removed_from_a_group_gets_tombstones_and_nothing_more(
    member_a, member_b, pilot, receiver
):
    sub_b = subscribe(member_b, receiver.url)
    [sid] = submit(member_a, "group-only", audience="group:pilot")
    run_pipeline()
    group_remove_member(group=pilot, member=member_b, actor=SYSTEM)
    run_pipeline()
    events = [e for _, e in receiver.accepted_events(secret=sub_b.secret)]
    assert [(e["op"], e["signal"]["id"]) for e in events] == [("upsert", sid), ("delete", sid)]
    submit(member_a, "after-removal", audience="group:pilot")
    run_pipeline()
    assert len(receiver.accepted_events()) == 2


def test_a_suspended_member_receives_nothing_more(member_a, member_b, receiver):
    subscribe(member_b, receiver.url)
    submit(member_a, "before")
    # A delivery created before the suspension is not sent after it.
    services.fan_out_pending()
    member_suspend(member=member_b, actor=SYSTEM, reason="test")
    submit(member_a, "after")
    run_pipeline()
    assert receiver.received == []
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.CANCELLED}


def test_a_signal_that_leaves_the_audience_before_sending_is_not_sent(
    member_a, member_b, pilot, receiver
):
    subscribe(member_b, receiver.url)
    gone, stays = submit(member_a, "leaves", "stays", audience="group:pilot")
    services.fan_out_pending()
    OutboxEntry.objects.all().delete()
    signal_retract(signal=Signal.objects.get(pk=gone), reason="mistake", actor=SYSTEM)
    for delivery_id in Delivery.objects.due().values_list("pk", flat=True):
        services.delivery_attempt(delivery_id=delivery_id)
    run_pipeline()
    sent = [(e["op"], e["signal"]["id"]) for _, e in receiver.accepted_events()]
    assert ("upsert", gone) not in sent and ("upsert", stays) in sent
    assert ("delete", gone) not in sent  # it never reached the member, so no tombstone either
    assert Delivery.objects.filter(superseded_by__isnull=False).exists()


def test_a_successful_delivery_records_disclosures_and_an_audit_event(member_a, member_b, receiver):
    subscribe(member_b, receiver.url)
    ids = submit(member_a, "d1", "d2")
    run_pipeline()
    assert set(
        Disclosure.objects.filter(member=member_b, channel="webhook").values_list(
            "signal_id", flat=True
        )
    ) == set(ids)
    event = AuditEvent.objects.get(action="delivery.sent")
    assert event.disclosed == {"globex": sorted(ids)}
    assert event.owners == ["acme"]
    delivery = Delivery.objects.get()
    assert event.details["webhook_id"] == delivery.webhook_id


def test_a_receiver_down_for_n_attempts_gets_everything_once_per_webhook_id(
    member_a, member_b, receiver
):
    sub = subscribe(member_b, receiver.url)
    receiver.script = [Reply(503), Reply(500), Reply(502)]
    ids = submit(member_a, "r1", "r2", "r3")
    for _ in range(4):
        run_pipeline()
        make_due()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 4
    assert len({r.webhook_id for r in receiver.received}) == 1
    assert _signal_ids(receiver.accepted_events(secret=sub.secret)) == sorted(ids)


def test_retry_after_is_honoured(member_a, member_b, receiver):
    subscribe(member_b, receiver.url)
    receiver.script = [Reply(429, {"Retry-After": "120"})]
    submit(member_a, "slow down")
    before = timezone.now()
    run_pipeline()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.next_attempt_at >= before + timedelta(seconds=119)
    assert delivery.last_status_code == 429


def test_the_schedule_ends_in_a_dead_letter_and_a_failing_subscription(
    member_a, member_b, receiver, settings
):
    settings.BEACON_WEBHOOK_RETRY_SCHEDULE = [0, 1, 1]
    sub = subscribe(member_b, receiver.url)
    receiver.default = Reply(500)
    submit(member_a, "never")
    for _ in range(4):
        run_pipeline()
        make_due()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DEAD and delivery.attempts == 3
    sub.subscription.refresh_from_db()
    assert sub.subscription.status == SubscriptionStatus.FAILING
    assert AuditEvent.objects.filter(action="delivery.failed").exists()
    receiver.default = Reply(200)
    services.delivery_redeliver(delivery=delivery, actor=SYSTEM)
    run_pipeline()
    delivery.refresh_from_db()
    sub.subscription.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert sub.subscription.status == SubscriptionStatus.ACTIVE


def test_410_disables_the_subscription(member_a, member_b, receiver):
    sub = subscribe(member_b, receiver.url)
    receiver.default = Reply(410)
    submit(member_a, "gone")
    run_pipeline()
    sub.subscription.refresh_from_db()
    assert sub.subscription.status == SubscriptionStatus.DISABLED
    submit(member_a, "later")
    run_pipeline()
    assert len(receiver.received) == 1
    assert Delivery.objects.filter(status=DeliveryStatus.DEAD).count() == 1


def test_redirects_are_not_followed(member_a, member_b, receiver):
    subscribe(member_b, receiver.url)
    receiver.script = [Reply(302, {"Location": "http://127.0.0.1:1/elsewhere"})]
    submit(member_a, "redirected")
    run_pipeline()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert "redirects are not followed" in delivery.last_error
    assert len(receiver.received) == 1


def test_a_slow_receiver_times_out(member_a, member_b, receiver, settings):
    settings.BEACON_WEBHOOK_TIMEOUT_SECONDS = 0.5
    subscribe(member_b, receiver.url)
    receiver.script = [Reply(200, delay=2)]
    submit(member_a, "slow")
    run_pipeline()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert "timed out" in delivery.last_error


def test_fan_out_is_idempotent(member_a, member_b, receiver):
    subscribe(member_b, receiver.url)
    submit(member_a, "once")
    services.fan_out_pending()
    services.fan_out_pending()
    assert Delivery.objects.count() == 1
    [delivery_id] = Delivery.objects.values_list("pk", flat=True)
    services.delivery_attempt(delivery_id=delivery_id)
    assert services.delivery_attempt(delivery_id=delivery_id).status == "skipped"
    assert len(receiver.received) == 1


def test_the_sweeper_requeues_lost_work(member_a, member_b, receiver, settings):
    settings.BEACON_OUTBOX_GRACE_SECONDS = 0
    settings.BEACON_DELIVERY_REQUEUE_SECONDS = 0
    subscribe(member_b, receiver.url)
    submit(member_a, "lost")
    result = services.sweep()
    assert result.outbox_pending
    services.fan_out_pending()
    result = services.sweep()
    assert result.deliveries_requeued == 1
    in_flight = Delivery.objects.get()
    Delivery.objects.filter(pk=in_flight.pk).update(
        lease_until=timezone.now() + timedelta(seconds=60)
    )
    assert services.sweep().deliveries_requeued == 0


def test_feedback_reaches_the_owner_only(member_a, member_b, outsider, receiver):
    from signals.feedback import feedback_create

    owner_sub = subscribe(member_a, receiver.url + "/owner")
    subscribe(member_b, receiver.url + "/b", events=["feedback.created"])
    [sid] = submit(member_a, "reacted-to")
    run_pipeline()
    feedback_create(
        member=member_b,
        signal_id=sid,
        purpose="detection",
        body={"reaction": "actioned"},
        actor=SYSTEM,
    )
    run_pipeline()
    owner_events = [e for r in receiver.accepted() if r.path == "/hooks/owner" for e in r.events()]
    assert [e["op"] for e in owner_events] == ["feedback"]
    assert owner_events[0]["signal"]["id"] == sid
    assert owner_events[0]["feedback"]["reaction"] == "actioned"
    assert isinstance(owner_events[0]["seq"], int)
    receiver.accepted_events(secret=owner_sub.secret)
    assert not [
        r for r in receiver.received if r.path == "/hooks/b" and "feedback" in r.body.decode()
    ]
