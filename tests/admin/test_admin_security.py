"""Signing in to the admin: TOTP second factor with enrolment, lockout after repeated failures,
CSRF, and the cookie and session settings used in production."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from exchange.audit.models import AuditEvent
from tests.admin.conftest import PASSWORD
from tests.admin.otp import device_for, fresh_code

LOGIN = "/admin/login/?next=/admin/"


def _login(client: Client, user, code: str = "", password: str = PASSWORD):
    return client.post(LOGIN, {"username": user.username, "password": password, "otp_token": code})


@pytest.mark.django_db
def test_a_staff_user_without_a_device_must_enrol_before_using_the_admin(exchange_admin):
    client = Client()
    response = _login(client, exchange_admin)
    assert response.status_code == 302
    index = client.get("/admin/")
    assert index.status_code == 302 and index["Location"].startswith("/admin/login/")
    assert client.get(index["Location"])["Location"] == reverse("admin:otp_enrol")
    # Nothing of the admin is reachable before enrolment.
    assert client.get(reverse("admin:accounts_member_changelist")).status_code == 302
    page = client.get(reverse("admin:otp_enrol"))
    assert page.status_code == 200
    assert b"<svg" in page.content and b'id="otp-secret"' in page.content
    device = TOTPDevice.objects.get(user=exchange_admin)
    assert not device.confirmed
    wrong = client.post(reverse("admin:otp_enrol"), {"otp_token": "000000"})
    assert wrong.status_code == 200
    ok = client.post(reverse("admin:otp_enrol"), {"otp_token": fresh_code(device)})
    assert ok.status_code == 302 and ok["Location"] == reverse("admin:index")
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/admin/").status_code == 200
    login, enrol = AuditEvent.objects.filter(action="admin.action", actor="user:alice")
    assert login.details == {"operation": "admin.login", "verified": False}
    assert enrol.details == {"operation": "otp.enrol"}


@pytest.mark.django_db
def test_a_staff_user_with_a_device_needs_its_code(exchange_admin):
    device = device_for(exchange_admin)
    client = Client()
    for code in ("", "123456"):
        refused = _login(client, exchange_admin, code)
        assert refused.status_code == 200 and b"errornote" in refused.content
        assert client.get("/admin/").status_code == 302
    # With a device, the enrolment page offers no way round the code.
    assert client.get(reverse("admin:otp_enrol")).status_code == 302
    ok = _login(client, exchange_admin, fresh_code(device))
    assert ok.status_code == 302
    assert client.get("/admin/").status_code == 200
    (login,) = AuditEvent.objects.filter(action="admin.action", actor="user:alice")
    assert login.details == {"operation": "admin.login", "verified": True}


@pytest.mark.django_db
def test_repeated_bad_passwords_lock_the_account_out(settings, auditor_user):
    device = device_for(auditor_user)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, auditor_user, password="wrong password!").status_code == 200
    assert _login(client, auditor_user, password="wrong password!").status_code == 429
    locked = _login(client, auditor_user, fresh_code(device))
    assert locked.status_code == 429
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_repeated_bad_codes_lock_the_account_out(settings, auditor_user):
    device = device_for(auditor_user)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, auditor_user, "000000").status_code == 200
        TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    assert _login(client, auditor_user, "000000").status_code == 429
    locked = _login(client, auditor_user, fresh_code(device))
    assert locked.status_code == 429


@pytest.mark.django_db
def test_admin_forms_need_a_csrf_token(exchange_admin):
    client = Client(enforce_csrf_checks=True)
    assert _login(client, exchange_admin).status_code == 403


def test_production_settings_secure_cookies_and_expire_sessions(tmp_path: Path):
    """Load the settings as production does (no DEBUG, not under test) in a fresh process."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "BEACON_TESTING", "DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        {
            "SECRET_KEY": "x" * 50,
            "BEACON_IDENTIFIER_PEPPERS": "v1:" + "p" * 32,
            "ALLOWED_HOSTS": "beacon.example",
            "BEACON_VAR_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "exchange.settings",
        }
    )
    code = (
        "import json; from exchange import settings as s; print(json.dumps({k: getattr(s, k, None) "
        "for k in ['DEBUG', 'TESTING', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
        "'CSRF_COOKIE_HTTPONLY', 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_AGE', "
        "'SESSION_EXPIRE_AT_BROWSER_CLOSE', 'SECURE_SSL_REDIRECT', 'AXES_FAILURE_LIMIT']}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    values = json.loads(out.stdout.strip().splitlines()[-1])
    assert values["DEBUG"] is False and values["TESTING"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True
    assert 0 < values["SESSION_COOKIE_AGE"] <= 12 * 3600
    assert values["AXES_FAILURE_LIMIT"] <= 10


@pytest.mark.django_db
def test_an_admin_session_expires(settings, staff_client, exchange_admin):
    client = staff_client(exchange_admin)
    assert client.get("/admin/").status_code == 200
    session = client.session
    assert 0 < session.get_expiry_age() <= settings.SESSION_COOKIE_AGE
    session.set_expiry(-1)
    session.save()
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_seeded_demo_staff_sign_in_with_the_printed_totp_secret(settings, tmp_path):
    from io import StringIO

    from django.core.management import call_command
    from django_otp.oath import TOTP

    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("seed_demo", "--json", "--history-weeks", "0", stdout=out)
    creds = json.loads(out.getvalue())
    for username in ("admin", "auditor"):
        secret = creds["totp"][username]["secret"]
        assert creds["totp"][username]["otpauth_url"].startswith("otpauth://totp/")
        code = StringIO()
        call_command("demo_totp", username, stdout=code)
        from base64 import b32decode

        assert code.getvalue().strip() == f"{TOTP(b32decode(secret)).token():06d}"
        client = Client()
        response = client.post(
            LOGIN,
            {
                "username": username,
                "password": creds["users"][username],
                "otp_token": code.getvalue().strip(),
            },
        )
        assert response.status_code == 302, username
        assert client.get("/admin/").status_code == 200
    again = StringIO()
    call_command("seed_demo", "--json", "--history-weeks", "0", stdout=again)
    assert json.loads(again.getvalue())["totp"] == creds["totp"]


@pytest.mark.django_db
def test_an_administrator_unlocks_a_locked_out_user(
    settings, staff_client, exchange_admin, auditor_user
):
    from axes.models import AccessAttempt

    # Signed in first: a sign-in from the same address clears that address's failures.
    admin = staff_client(exchange_admin)
    assert (
        staff_client(auditor_user).get(reverse("admin:axes_accessattempt_changelist")).status_code
        == 403
    )
    device = device_for(auditor_user)
    locked_client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(locked_client, auditor_user, password="wrong password!")
    assert _login(locked_client, auditor_user, fresh_code(device)).status_code == 429
    attempt = AccessAttempt.objects.get(username=auditor_user.username)
    listing = admin.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and b"wrong password" not in listing.content
    admin.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "unlock", "_selected_action": [attempt.pk]},
    )
    assert not AccessAttempt.objects.filter(username=auditor_user.username).exists()
    (event,) = AuditEvent.objects.filter(actor="user:alice", target="user:olivia")
    assert event.details["operation"] == "login.unlock"
    assert _login(Client(), auditor_user, fresh_code(device)).status_code == 302
