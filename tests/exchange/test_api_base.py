from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from exchange.api import ExchangeApi
from exchange.audit.models import AuditEvent
from tests.conftest import assert_problem

pytestmark = pytest.mark.django_db


def _api_views(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _api_views(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            if route.startswith("api/"):
                yield route, entry.callback


def test_every_api_view_derives_from_exchange_api():
    from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

    views = list(_api_views())
    assert views, "the URL walk found no API views"
    documentation = (SpectacularAPIView, SpectacularRedocView)
    for route, callback in views:
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        assert view_class is not None, route
        if issubclass(view_class, documentation):
            continue
        assert issubclass(view_class, ExchangeApi), (
            f"{route} ({view_class.__name__}) does not derive from ExchangeApi"
        )


def test_unknown_api_path_is_problem_json(client):
    body = assert_problem(client.get("/api/v1/no-such-thing"), 404)
    assert "/api/v1/no-such-thing" in body["detail"]


def test_wrong_method_is_problem_json(api_for, member_a):
    assert_problem(api_for(member_a).delete("/api/v1/me"), 405)


def test_oversized_body_is_413(api_for, member_a, settings):
    settings.BEACON_MAX_BODY_BYTES = 100
    body = assert_problem(
        api_for(member_a).post("/api/v1/me", data="x" * 200, content_type="application/json"), 413
    )
    assert "100" in body["detail"]


@pytest.mark.urls("tests.exchange.boom_urls")
def test_unexpected_errors_are_problem_json_without_internals(api_for, member_a):
    client = api_for(member_a)
    client.raise_request_exception = False
    body = assert_problem(client.get("/api/v1/test/boom"), 500)
    assert "secret internal detail" not in json.dumps(body)


@pytest.mark.urls("tests.exchange.boom_urls")
def test_unsupported_media_type_is_415(api_for, member_a):
    assert_problem(
        api_for(member_a).post("/api/v1/test/boom", data="a=b", content_type="text/csv"), 415
    )


@pytest.mark.urls("tests.exchange.boom_urls")
def test_malformed_json_is_400(api_for, member_a):
    body = assert_problem(
        api_for(member_a).post(
            "/api/v1/test/boom", data="{not json", content_type="application/json"
        ),
        400,
    )
    assert body["type"].endswith("malformed-body")


def test_request_id_is_echoed_or_generated(api_for, member_a):
    client = api_for(member_a)
    assert (
        client.get("/api/v1/me", HTTP_X_REQUEST_ID="req-12345678").headers["X-Request-ID"]
        == "req-12345678"
    )
    generated = client.get("/api/v1/me", HTTP_X_REQUEST_ID="bad id!").headers["X-Request-ID"]
    assert generated and generated != "bad id!"


def test_throttling_answers_429_with_retry_after(api_for, member_a, settings):
    from django.core.cache import cache

    cache.clear()
    settings.BEACON_THROTTLE_RATE = "3/min"
    with override_settings(BEACON_THROTTLE_RATE="3/min"):
        client = api_for(member_a)
        statuses = [client.get("/api/v1/me").status_code for _ in range(4)]
        assert statuses[:3] == [200, 200, 200]
        response = client.get("/api/v1/me")
        body = assert_problem(response, 429)
        assert int(response["Retry-After"]) >= 1
        assert body["type"].endswith("rate-limited")
    cache.clear()


@pytest.mark.skipif(
    not settings.REDIS_URL,
    reason="the embedded back end keeps DRF's throttle; the PostgreSQL + Redis pass runs this",
)
def test_a_quota_holds_when_requests_arrive_together(member_a, issue_token):
    """Twenty requests at once against a quota of eight: exactly eight are let through, and the
    ninth is told to wait about as long as the window is."""
    from concurrent.futures import ThreadPoolExecutor

    from rest_framework.test import APIRequestFactory

    from accounts.models import ApiToken
    from exchange.api import TokenRateThrottle

    raw = issue_token(member_a)
    token = ApiToken.objects.get(prefix=raw[:12])
    request = APIRequestFactory().get("/api/v1/me")
    request.auth = token
    with override_settings(BEACON_THROTTLE_RATE="8/hour"):
        with ThreadPoolExecutor(max_workers=20) as pool:
            allowed = list(
                pool.map(lambda _: TokenRateThrottle().allow_request(request, None), range(20))
            )
        assert allowed.count(True) == 8
        throttle = TokenRateThrottle()
        assert not throttle.allow_request(request, None)
        assert 3590 <= throttle.wait() <= 3600


def test_every_request_leaves_an_audit_event_refused_ones_too(api_for, member_a, client):
    before = AuditEvent.objects.count()
    api_for(member_a).get("/api/v1/me", HTTP_X_REQUEST_ID="audit-probe-1")
    client.get(
        "/api/v1/me", HTTP_AUTHORIZATION="Bearer bcn_" + "a" * 46, HTTP_X_REQUEST_ID="audit-probe-2"
    )
    ok = AuditEvent.objects.get(request_id="audit-probe-1")
    refused = AuditEvent.objects.get(request_id="audit-probe-2")
    assert ok.action == "member.read" and ok.actor_member == "acme"
    assert refused.action == "api.refused" and refused.details["status"] == 401
    assert AuditEvent.objects.count() >= before + 2


def test_health_is_ok_and_unaudited(client):
    before = AuditEvent.objects.count()
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert AuditEvent.objects.count() == before


def test_health_reports_a_dead_database_as_503(tmp_path):
    script = (
        "import django, json, os;"
        "os.environ['DJANGO_SETTINGS_MODULE']='exchange.settings';"
        "django.setup();"
        "from django.test import Client;"
        "r=Client().get('/api/v1/health');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "BEACON_TESTING": "1",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere",
        "BEACON_VAR_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 503
    assert result["body"]["database"].startswith("down")
    assert result["body"]["status"] == "unavailable"


def test_an_answer_is_freed_when_the_server_lets_it_go(api_for, issue_token, member_a, member_b):
    """DRF's view keeps its response and the response's renderer context keeps the view. The
    base view breaks that cycle, so a large answer (a feed page, a match) is freed as soon as
    the server drops the response, not left for the cyclic collector to find in bulk."""
    import gc
    import weakref

    from benchmarks.common import Server
    from signals.bulk import gc_paused
    from tests.signals.conftest import item

    shared = api_for(member_a).post(
        "/api/v1/signals", {"items": [item()]}, format="json", HTTP_IDEMPOTENCY_KEY="freed"
    )
    assert shared.status_code == 201, shared.content
    token = issue_token(member_b)
    server = Server()  # serves a request as a WSGI server does, without the test client's extras
    gc.collect()
    with gc_paused():
        response = server.get(
            "/api/v1/feed", {"purpose": "detection"}, HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        assert [e["op"] for e in json.loads(response.content)["events"]] == ["upsert"]
        answer = weakref.ref(response)
        del response
        assert answer() is None
