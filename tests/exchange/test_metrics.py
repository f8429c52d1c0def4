"""``/metrics``: Prometheus text for the scraper's token or a verified staff session, 404 to
anyone else; request counts and latency by endpoint, match values, outbox backlog, delivery
outcomes and the audit chain head."""

from __future__ import annotations

import hashlib
import re

import pytest

from exchange import metrics
from exchange.audit.models import ChainHead

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"
_SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$'
)


@pytest.fixture(autouse=True)
def _metrics(settings):
    settings.BEACON_METRICS_TOKEN = TOKEN
    metrics.reset()
    yield
    metrics.reset()


def _scrape(client, token: str | None = TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get("/metrics", **headers)


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        assert _SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def test_metrics_answer_404_without_the_scraper_token(client, exchange_admin):
    assert _scrape(client, token=None).status_code == 404
    assert _scrape(client, token="wrong").status_code == 404
    # A staff session that has not passed the second factor is refused too.
    client.force_login(exchange_admin)
    assert _scrape(client, token=None).status_code == 404


def test_metrics_are_prometheus_text_with_the_exchange_figures(client, api_for, member_a):
    api = api_for(member_a)
    assert api.get("/api/v1/me").status_code == 200
    assert api.get("/api/v1/signals/999999").status_code == 404
    values = [
        {"type": "sha256", "value": hashlib.sha256(str(i).encode()).hexdigest()} for i in range(7)
    ]
    assert (
        api.post(
            "/api/v1/match", {"purpose": "detection", "items": values}, format="json"
        ).status_code
        == 200
    )
    response = _scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.content.decode())
    assert samples['beacon_http_requests_total{endpoint="me",method="GET",status="200"}'] == 1
    # Routes, not raw paths: object ids never become label values.
    assert (
        samples['beacon_http_requests_total{endpoint="signal-detail",method="GET",status="404"}']
        == 1
    )
    assert samples['beacon_http_request_duration_seconds_count{endpoint="match"}'] == 1
    assert samples['beacon_http_request_duration_seconds_bucket{endpoint="match",le="+Inf"}'] == 1
    assert samples["beacon_match_values_total"] == 7
    assert samples["beacon_match_requests_total"] == 1
    assert samples["beacon_outbox_backlog"] >= 0
    for status in ("pending", "succeeded", "dead", "cancelled"):
        assert f'beacon_deliveries{{status="{status}"}}' in samples
    assert samples["beacon_audit_chain_head_seq"] == ChainHead.objects.get(pk=1).seq > 0


def test_histogram_buckets_are_cumulative(client, api_for, member_a):
    api = api_for(member_a)
    for _ in range(3):
        api.get("/api/v1/me")
    samples = _samples(_scrape(client).content.decode())
    buckets = [
        v
        for k, v in samples.items()
        if k.startswith('beacon_http_request_duration_seconds_bucket{endpoint="me"')
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 3


def test_uploads_show_in_the_outbox_backlog(client, api_for, member_a):
    response = api_for(member_a).post(
        "/api/v1/signals",
        {
            "items": [
                {
                    "type": "sha256",
                    "value": hashlib.sha256(b"x").hexdigest(),
                    "category": "csea.sextortion",
                }
            ]
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="metrics-upload-1",
    )
    assert response.status_code == 201, response.content
    samples = _samples(_scrape(client).content.decode())
    assert samples["beacon_outbox_backlog"] >= 1


def test_delivery_attempts_are_counted_by_outcome(client, member_a, member_b):
    from exchange.delivery import sender, services
    from exchange.delivery.models import Delivery
    from exchange.delivery.tasks import deliver
    from tests.delivery.conftest import submit, subscribe
    from tests.delivery.receiver import Receiver

    receiver = Receiver().start()
    sender.reset_pool()
    try:
        subscribe(member_b, receiver.url)
        submit(member_a, "metrics-delivery")
        services.fan_out_pending(budget_seconds=30)
        for delivery_id in Delivery.objects.values_list("pk", flat=True):
            deliver(delivery_id)
            deliver(delivery_id)  # already done: skipped
    finally:
        receiver.stop()
        sender.reset_pool()
    samples = _samples(_scrape(client).content.decode())
    assert samples['beacon_delivery_attempts_total{outcome="succeeded"}'] >= 1
    assert samples['beacon_delivery_attempts_total{outcome="skipped"}'] >= 1
