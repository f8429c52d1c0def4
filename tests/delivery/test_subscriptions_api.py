"""The subscriptions API: scopes, foreign ids, secrets shown once, URL checks, audit."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from exchange.audit.models import AuditEvent
from exchange.delivery.models import Delivery, Subscription, SubscriptionStatus
from tests.conftest import assert_problem

pytestmark = pytest.mark.django_db


def _create(client, url, **body):
    return client.post("/api/v1/subscriptions", {"url": url, **body}, format="json")


def test_it_creates_a_subscription_and_shows_the_secret_once(api_for, member_b, receiver):
    client = api_for(member_b)
    response = _create(client, receiver.url, types=["sha256"], events=["signal.upserted"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["types"] == ["sha256"] and body["events"] == ["signal.upserted"]
    stored = Subscription.objects.get(pk=body["id"])
    assert body["secret"] not in stored.secret_encrypted
    listed = client.get("/api/v1/subscriptions").json()["subscriptions"]
    assert [s["id"] for s in listed] == [body["id"]] and "secret" not in listed[0]
    one = client.get(f"/api/v1/subscriptions/{body['id']}").json()
    assert "secret" not in one and one["url"] == receiver.url
    assert AuditEvent.objects.filter(action="subscription.create").exists()


def test_it_rejects_unknown_filters_with_422(api_for, member_b, receiver):
    body = assert_problem(
        _create(
            api_for(member_b),
            receiver.url,
            types=["nope"],
            categories=["no.such"],
            events=["signal.exploded"],
        ),
        422,
    )
    assert {e["field"] for e in body["errors"]} == {"types", "categories", "events"}


def test_it_rejects_unsafe_urls_with_a_clear_422(api_for, member_b, settings):
    settings.BEACON_ALLOW_PRIVATE_WEBHOOKS = False
    client = api_for(member_b)
    for url in (
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
        "ftp://example.com/",
        "https://user:pw@93.184.216.34/",
    ):
        body = assert_problem(_create(client, url), 422)
        assert body["errors"][0]["field"] == "url", url
        assert "may not receive webhooks" in body["errors"][0]["detail"], url
    assert not Subscription.objects.exists()


def test_it_needs_the_subscriptions_scope(api_for, member_b, receiver):
    client = api_for(member_b, scopes=["signals:read"])
    assert_problem(_create(client, receiver.url), 403)
    assert_problem(client.get("/api/v1/subscriptions"), 403)


def test_it_answers_401_without_a_token(api_for):
    assert_problem(api_for().get("/api/v1/subscriptions"), 401)


def test_foreign_ids_answer_404_everywhere(api_for, member_a, member_b, receiver):
    mine = _create(api_for(member_a), receiver.url).json()
    other = api_for(member_b)
    sid = mine["id"]
    assert_problem(other.get(f"/api/v1/subscriptions/{sid}"), 404)
    assert_problem(other.delete(f"/api/v1/subscriptions/{sid}"), 404)
    assert_problem(other.post(f"/api/v1/subscriptions/{sid}/rotate-secret"), 404)
    assert_problem(other.post(f"/api/v1/subscriptions/{sid}/test"), 404)
    assert_problem(other.get(f"/api/v1/subscriptions/{sid}/deliveries"), 404)
    assert_problem(other.post(f"/api/v1/subscriptions/{sid}/resume"), 404)
    ping = api_for(member_a).post(f"/api/v1/subscriptions/{sid}/test").json()
    assert_problem(other.post(f"/api/v1/deliveries/{ping['id']}/redeliver"), 404)
    assert AuditEvent.objects.filter(action="api.refused").count() >= 7


def test_the_test_endpoint_sends_a_signed_ping(api_for, member_b, receiver):
    client = api_for(member_b)
    created = _create(client, receiver.url).json()
    answer = client.post(f"/api/v1/subscriptions/{created['id']}/test")
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "succeeded"
    [ping] = receiver.received
    payload = Webhook(created["secret"]).verify(ping.body, ping.headers)
    assert payload["type"] == "ping"
    assert payload["data"]["subscription_id"] == created["id"]
    assert ping.webhook_id == answer.json()["webhook_id"]


def test_a_failed_ping_is_reported_not_retried(api_for, member_b, receiver):
    from tests.delivery.receiver import Reply

    receiver.default = Reply(500)
    client = api_for(member_b)
    created = _create(client, receiver.url).json()
    answer = client.post(f"/api/v1/subscriptions/{created['id']}/test").json()
    assert answer["status"] == "dead" and answer["last_status_code"] == 500
    assert Subscription.objects.get(pk=created["id"]).status == SubscriptionStatus.ACTIVE


def test_rotation_returns_a_new_secret_and_keeps_the_old_one_for_a_day(api_for, member_b, receiver):
    client = api_for(member_b)
    created = _create(client, receiver.url).json()
    rotated = client.post(f"/api/v1/subscriptions/{created['id']}/rotate-secret").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"]
    client.post(f"/api/v1/subscriptions/{created['id']}/test")
    [ping] = receiver.received
    assert len(ping.headers["webhook-signature"].split(" ")) == 2
    Webhook(created["secret"]).verify(ping.body, ping.headers)
    Webhook(rotated["secret"]).verify(ping.body, ping.headers)


def test_delete_stops_the_subscription_and_hides_it(api_for, member_b, receiver):
    client = api_for(member_b)
    created = _create(client, receiver.url).json()
    assert client.delete(f"/api/v1/subscriptions/{created['id']}").status_code == 204
    assert_problem(client.get(f"/api/v1/subscriptions/{created['id']}"), 404)
    assert client.get("/api/v1/subscriptions").json()["subscriptions"] == []
    assert Subscription.objects.get(pk=created["id"]).status == SubscriptionStatus.DELETED


def test_deliveries_list_and_redeliver(api_for, member_b, receiver):
    client = api_for(member_b)
    created = _create(client, receiver.url).json()
    ping = client.post(f"/api/v1/subscriptions/{created['id']}/test").json()
    page = client.get(f"/api/v1/subscriptions/{created['id']}/deliveries").json()
    assert [d["id"] for d in page["deliveries"]] == [ping["id"]]
    assert page["deliveries"][0]["attempts"] == 1
    again = client.post(f"/api/v1/deliveries/{ping['id']}/redeliver")
    assert again.status_code == 202, again.content
    assert again.json()["status"] == "pending"
    assert_problem(client.post(f"/api/v1/deliveries/{ping['id']}/redeliver"), 409)
    from exchange.delivery import services

    services.delivery_attempt(delivery_id=ping["id"])
    assert Delivery.objects.get(pk=ping["id"]).status == "succeeded"
    assert [r.webhook_id for r in receiver.received] == [ping["webhook_id"]] * 2
    assert AuditEvent.objects.filter(action="delivery.redeliver").exists()


def test_the_deliveries_cursor_pages_and_rejects_tampering(api_for, member_b, receiver):
    client = api_for(member_b)
    created = _create(client, receiver.url).json()
    for _ in range(3):
        client.post(f"/api/v1/subscriptions/{created['id']}/test")
    url = f"/api/v1/subscriptions/{created['id']}/deliveries"
    first = client.get(url, {"limit": 2}).json()
    assert len(first["deliveries"]) == 2 and first["next_cursor"]
    rest = client.get(url, {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert len(rest["deliveries"]) == 1 and rest["next_cursor"] is None
    assert_problem(client.get(url, {"cursor": first["next_cursor"] + "x"}), 400)
