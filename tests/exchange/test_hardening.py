"""Production hardening: the deploy checks, security headers and the SQL statement bound."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import assert_problem

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "ALLOWED_HOSTS": "beacon.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://beacon.example.org",
    "DATABASE_URL": "postgres://beacon@db.invalid:5432/beacon",
    "REDIS_URL": "redis://redis.invalid:6379/0",
    "BEACON_IDENTIFIER_PEPPERS": "v1:" + secrets.token_hex(32),
    "BEACON_AUDIT_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\nunused by the checks\n-----END PRIVATE KEY-----",
    "BEACON_WEBHOOK_SECRET_KEY": secrets.token_hex(32),
    "BEACON_METRICS_TOKEN": secrets.token_urlsafe(32),
}

# Runs under production settings: the deploy checks, then one HTTPS request for its headers.
PROBE = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
import django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("check", deploy=True, fail_level="WARNING")
from django.conf import settings
response = Client(SERVER_NAME="beacon.example.org").get("/api/v1/docs", secure=True)
print("HEADERS " + json.dumps({"status": response.status_code, **dict(response.headers)}))
insecure = Client(SERVER_NAME="beacon.example.org").get("/api/v1/docs")
print("REDIRECT " + json.dumps({"status": insecure.status_code, "location": insecure.get("Location", "")}))
"""


def _production(**overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BEACON_", "DATABASE_", "REDIS_", "PYTEST_")) and k != "DEBUG"
    }
    env.update(PRODUCTION_ENV)
    env["BEACON_VAR_DIR"] = os.environ.get("BEACON_VAR_DIR", str(ROOT / "var"))
    env.update(overrides)
    env = {k: v for k, v in env.items() if v != ""}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _line(out: str, tag: str) -> dict:
    return json.loads(
        next(line for line in out.splitlines() if line.startswith(tag))[len(tag) + 1 :]
    )


def test_deploy_check_is_clean_and_pages_are_hardened_under_production_settings(tmp_path):
    # Secrets given as files (<NAME>_FILE), as Docker and Kubernetes secrets are mounted.
    files = {}
    for name in ("SECRET_KEY", "BEACON_IDENTIFIER_PEPPERS", "BEACON_AUDIT_SIGNING_KEY"):
        path = tmp_path / name.lower()
        path.write_text(PRODUCTION_ENV[name] + "\n")
        files[name] = ""
        files[f"{name}_FILE"] = str(path)
    result = _production(**files)
    assert result.returncode == 0, result.stderr[-3000:]
    headers = _line(result.stdout, "HEADERS")
    assert headers["status"] == 200
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "includeSubDomains" in headers["Strict-Transport-Security"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "object-src 'none'" in headers["Content-Security-Policy"]
    redirect = _line(result.stdout, "REDIRECT")
    assert redirect["status"] == 301
    assert redirect["location"].startswith("https://beacon.example.org/")


@pytest.mark.parametrize(
    ("unset", "check_id"),
    [
        ("BEACON_IDENTIFIER_PEPPERS", "beacon.W001"),
        ("BEACON_AUDIT_SIGNING_KEY", "beacon.W002"),
        ("DATABASE_URL", "beacon.W003"),
    ],
)
def test_deploy_check_fails_when_a_production_secret_or_back_end_is_missing(unset, check_id):
    result = _production(**{unset: ""})
    assert result.returncode != 0
    assert check_id in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/login/", "/api/v1/docs", "/api/v1/me"])
def test_every_page_carries_the_security_headers(client, path):
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


postgres_only = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").split(":")[0] not in {"postgres", "postgresql"},
    reason="statement_timeout is a PostgreSQL setting",
)


@postgres_only
@pytest.mark.urls("tests.exchange.slow_urls")
@pytest.mark.django_db(transaction=True)
def test_api_statements_are_bounded_and_the_bound_is_lifted_after_the_request(
    api_for, member_a, settings
):
    settings.BEACON_API_STATEMENT_TIMEOUT_MS = 1234
    client = api_for(member_a)
    assert client.get("/api/v1/test/timeout").json() == {"statement_timeout": "1234ms"}
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "1234ms"


@postgres_only
@pytest.mark.urls("tests.exchange.slow_urls")
@pytest.mark.django_db(transaction=True)
def test_a_statement_over_the_bound_answers_503_problem_json(api_for, member_a, settings):
    settings.BEACON_API_STATEMENT_TIMEOUT_MS = 100
    client = api_for(member_a)
    client.raise_request_exception = False
    body = assert_problem(client.get("/api/v1/test/sleep"), 503)
    assert body["type"].endswith("statement-timeout")
    # The connection is usable afterwards.
    assert client.get("/api/v1/test/timeout").json() == {"statement_timeout": "100ms"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/api/v1/audit/events?action=a%00b", "/api/v1/signals?type=%00", "/api/v1/feed?%00=1"]
)
def test_nul_characters_in_the_query_are_refused_with_400(api_for, member_a, path):
    body = assert_problem(api_for(member_a).get(path), 400)
    assert body["type"].endswith("invalid-value")


@pytest.mark.urls("tests.exchange.slow_urls")
@pytest.mark.django_db
def test_a_value_the_database_cannot_store_is_400_not_an_outage(api_for, member_a):
    client = api_for(member_a)
    client.raise_request_exception = False
    body = assert_problem(client.get("/api/v1/test/bad-value"), 400)
    assert body["type"].endswith("invalid-value")
