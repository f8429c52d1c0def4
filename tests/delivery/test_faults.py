"""Fault tests with real processes: Celery workers and beat on the test database, a real local
HTTP receiver, signatures verified with the standardwebhooks library.

Each test commits its data (transactional database), so the workers see it.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import pytest
from django.db import connection
from standardwebhooks import Webhook

from accounts.services import group_remove_member, member_suspend
from exchange.delivery.models import Delivery, DeliveryStatus, OutboxEntry
from signals.models import Signal
from signals.services import signal_retract
from tests.conftest import SYSTEM, make_member
from tests.delivery.conftest import submit, subscribe
from tests.delivery.receiver import Receiver, Reply
from tests.delivery.stack import Stack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def all_delivered() -> bool:
    return (
        not OutboxEntry.objects.filter(processed_at__isnull=True).exists()
        and Delivery.objects.exists()
        and not Delivery.objects.filter(status=DeliveryStatus.PENDING).exists()
    )


def verified_events(receiver: Receiver, secret: str, path: str) -> list[tuple[str, dict]]:
    """(webhook-id, event) of every 2xx-answered request to ``path``, signature verified."""
    out = []
    for r in receiver.accepted():
        if r.headers.get("x-request-path") != path:
            continue
        Webhook(secret).verify(r.body, r.headers)
        out.extend((r.webhook_id, e) for e in r.events())
    return out


@pytest.fixture
def receiver_paths() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def assert_exactly_once_per_webhook_id(events: list[tuple[str, dict]], expected_ids: set[int]):
    """Every expected signal arrived; any event seen twice came with the same webhook-id."""
    ids_per_event: dict[tuple[int, str, int], set[str]] = defaultdict(set)
    for webhook_id, event in events:
        ids_per_event[(event["signal"]["id"], event["op"], event["seq"])].add(webhook_id)
    assert {key[0] for key in ids_per_event if key[1] == "upsert"} == expected_ids
    duplicated = {k: v for k, v in ids_per_event.items() if len(v) > 1}
    assert not duplicated, f"events delivered under several webhook-ids: {duplicated}"


def test_a_receiver_down_for_n_attempts_then_up_gets_every_event_once_per_webhook_id(
    stack, receiver_paths, member_a, member_b, outsider
):
    receiver = receiver_paths
    receiver.script = [Reply(503)] * 3 + [Reply(200, delay=0)] + [Reply(500)] * 2
    sub_b = subscribe(member_b, receiver.url + "/b")
    sub_o = subscribe(outsider, receiver.url + "/o")
    stack.worker()
    stack.beat()
    ids = submit(member_a, *[f"down-{i}" for i in range(2500)])
    ids += submit(member_a, *[f"down-more-{i}" for i in range(10)])
    wait_until(all_delivered, what="every delivery to succeed")
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}
    assert Delivery.objects.filter(attempts__gt=1).exists()
    for secret, path in ((sub_b.secret, "/hooks/b"), (sub_o.secret, "/hooks/o")):
        events = verified_events(receiver, secret, path)
        assert_exactly_once_per_webhook_id(events, set(ids))
    # Every retried webhook-id carried the same body every time.
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for r in receiver.received:
        bodies[r.webhook_id].add(r.body)
    assert all(len(b) == 1 for b in bodies.values())


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="needs the Redis broker of the production stack"
)
def test_signals_submitted_while_redis_is_down_are_delivered_once_it_is_back(
    stack, receiver_paths, member_a, member_b, api_for
):
    assert connection.vendor == "postgresql"
    receiver = receiver_paths
    sub = subscribe(member_b, receiver.url + "/b")
    stack.worker()
    stack.beat()
    first = submit(member_a, "before-outage")
    wait_until(lambda: len(receiver.accepted()) >= 1, what="the first delivery")
    assert stack.redis is not None
    stack.redis.stop()
    during = submit(member_a, *[f"outage-{i}" for i in range(50)])
    client = api_for(member_a)
    answer = client.post(
        "/api/v1/signals",
        {
            "items": [
                {
                    "type": "sha256",
                    "value": f"{i:064x}",
                    "category": "csea.sextortion",
                    "audience": "all",
                }
                for i in range(20)
            ]
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="outage-upload",
    )
    assert answer.status_code == 201, answer.content
    during += [s["id"] for s in answer.json()["signals"]]
    assert OutboxEntry.objects.filter(processed_at__isnull=True).count() >= 2
    time.sleep(2)
    stack.redis.start()
    wait_until(all_delivered, timeout=120, what="deliveries after Redis came back")
    events = verified_events(receiver, sub.secret, "/hooks/b")
    assert_exactly_once_per_webhook_id(events, set(first) | set(during))
    assert "Connected to redis" in stack.log("worker")


def test_a_worker_killed_mid_delivery_loses_nothing(stack, receiver_paths, member_a, member_b):
    receiver = receiver_paths
    receiver.script = [Reply(200, delay=8)]
    sub = subscribe(member_b, receiver.url + "/b")
    stack.worker("doomed", concurrency=1, supervised=False)
    stack.beat()
    ids = submit(member_a, *[f"killed-{i}" for i in range(30)])
    wait_until(lambda: len(receiver.received) >= 1, what="the first attempt to start")
    stack.kill("doomed")
    first_id = receiver.received[0].webhook_id
    assert Delivery.objects.get().status == DeliveryStatus.PENDING
    stack.worker("rescuer", concurrency=1)
    wait_until(all_delivered, what="the delivery to be rescued")
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.webhook_id == first_id
    events = verified_events(receiver, sub.secret, "/hooks/b")
    assert_exactly_once_per_webhook_id(events, set(ids))


def test_suspension_group_removal_and_retraction_reach_exactly_the_right_members(
    stack, receiver_paths, member_a, member_b
):
    from accounts.services import group_create

    receiver = receiver_paths
    leaver = make_member("leaver")
    suspended = make_member("suspendee")
    group = group_create(
        slug="fault-pilot",
        name="Fault pilot",
        members=[member_a, member_b, leaver, suspended],
        actor=SYSTEM,
    )
    subs = {
        "b": subscribe(member_b, receiver.url + "/b"),
        "leaver": subscribe(leaver, receiver.url + "/leaver"),
        "suspended": subscribe(suspended, receiver.url + "/suspended"),
    }
    stack.worker()
    stack.beat()
    [shared] = submit(member_a, "group-signal", audience="group:fault-pilot")
    wait_until(all_delivered, what="the first signal to reach everyone")
    for name, sub in subs.items():
        assert [e["op"] for _, e in verified_events(receiver, sub.secret, f"/hooks/{name}")] == [
            "upsert"
        ], name
    group_remove_member(group=group, member=leaver, actor=SYSTEM)
    member_suspend(member=suspended, actor=SYSTEM, reason="fault test")
    [later] = submit(member_a, "after-changes", audience="group:fault-pilot")
    signal_retract(signal=Signal.objects.get(pk=shared), reason="appeal upheld", actor=SYSTEM)
    wait_until(all_delivered, what="the changes to fan out")

    def ops(name: str) -> list[tuple[str, int]]:
        return [
            (e["op"], e["signal"]["id"])
            for _, e in verified_events(receiver, subs[name].secret, f"/hooks/{name}")
        ]

    wait_until(lambda: ("delete", shared) in ops("b"), what="the tombstone for B")
    assert set(ops("b")) == {("upsert", shared), ("upsert", later), ("delete", shared)}
    assert ("delete", shared) in ops("leaver")
    assert ("upsert", later) not in ops("leaver")
    assert ops("suspended") == [("upsert", shared)]


def test_410_disables_and_rotation_sends_two_signatures_through_the_worker(
    stack, receiver_paths, member_a, member_b, outsider
):
    from exchange.delivery.models import Subscription, SubscriptionStatus
    from exchange.delivery.services import subscription_rotate_secret

    receiver = receiver_paths

    def respond(headers, body):
        return Reply(410) if headers["x-request-path"] == "/hooks/gone" else Reply(200)

    receiver.respond = respond
    gone = subscribe(outsider, receiver.url + "/gone")
    old = subscribe(member_b, receiver.url + "/b")
    new = subscription_rotate_secret(
        member=member_b, subscription_id=old.subscription.pk, actor=SYSTEM
    )
    stack.worker()
    ids = submit(member_a, "rotated-1", "rotated-2")
    wait_until(all_delivered, what="deliveries")
    [to_b] = [r for r in receiver.accepted() if r.headers["x-request-path"] == "/hooks/b"]
    assert len(to_b.headers["webhook-signature"].split(" ")) == 2
    Webhook(old.secret).verify(to_b.body, to_b.headers)
    Webhook(new.secret).verify(to_b.body, to_b.headers)
    assert sorted(e["signal"]["id"] for e in json.loads(to_b.body)["data"]["events"]) == ids
    assert Subscription.objects.get(pk=gone.subscription.pk).status == SubscriptionStatus.DISABLED
    submit(member_a, "after-410")
    wait_until(all_delivered, what="the next batch")
    assert len([r for r in receiver.received if r.headers["x-request-path"] == "/hooks/gone"]) == 1
