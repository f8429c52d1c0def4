"""The admin in a real headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright)
against a live server: TOTP sign-in, member and token lifecycle seen from the API, retraction,
the auditor's export, and a member user refused.

Set ``BEACON_ADMIN_SCREENSHOTS=docs/admin`` to refresh the screenshots in docs/admin.md (the
dashboard, signal and audit-event lists there are taken from ``make up``'s demo data instead).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from accounts.models import Member, MemberStatus, Role, User
from exchange.audit.models import AuditEvent
from signals.models import Signal, SignalStatus
from tests.admin.conftest import PASSWORD
from tests.admin.otp import device_for, fresh_code
from tests.browser import chromium

SHOTS = os.environ.get("BEACON_ADMIN_SCREENSHOTS", "")

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # ordinary synchronous code, so Django's async guard is relaxed for this module only.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with chromium() as launched:
            yield launched
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 860}, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=False)


def sign_in(page: Any, user: User, *, code: str | None = None) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", code if code is not None else fresh_code(device_for(user)))
    page.click("input[type=submit]")


def run_action(page: Any, action: str, *, select: list[str], reason: str = "") -> None:
    for value in select:
        page.check(f"input[name=_selected_action][value='{value}']")
    page.select_option("select[name=action]", action)
    if reason:
        page.fill("input[name=reason]", reason)
    page.click("button[name=index]")


def api(live_server: Any, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{live_server.url}/api/v1", headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
def staff(transactional_db: Any) -> dict[str, User]:
    from accounts.services import member_create
    from tests.conftest import SYSTEM

    exchange_org = member_create(
        slug="beacon-exchange", name="Beacon", kind="exchange", actor=SYSTEM, activate=False
    )
    acme = member_create(
        slug="acme",
        name="Acme",
        kind="platform",
        actor=SYSTEM,
        attestations=["agreement", "human_review", "user_appeals", "no_government_disclosure"],
        activate=True,
    )
    return {
        "admin": User.objects.create_user(
            username="alice", password=PASSWORD, role=Role.EXCHANGE_ADMIN, is_staff=True
        ),
        "auditor": User.objects.create_user(
            username="olivia",
            password=PASSWORD,
            role=Role.AUDITOR,
            is_staff=True,
            member=exchange_org,
        ),
        "member": User.objects.create_user(
            username="mallory", password=PASSWORD, role=Role.MEMBER_ADMIN, member=acme
        ),
    }


def test_admin_runs_a_member_from_admission_to_suspension(page, live_server, staff):
    admin_user = staff["admin"]
    # A first sign-in enrols the authenticator.
    sign_in(page, admin_user, code="")
    page.wait_for_url("**/admin/otp/enrol/")
    shot(page, "enrol")
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=admin_user)
    page.fill("#id_otp_token", fresh_code(device))
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    assert page.locator("#user-tools").inner_text().upper().startswith("WELCOME")
    shot(page, "index")

    # Sign out and back in with the code: the normal way in from now on.
    page.click("#logout-form button")
    sign_in(page, admin_user)
    page.wait_for_url("**/admin/")

    page.goto("/admin/accounts/member/add/")
    page.fill("#id_slug", "newco")
    page.fill("#id_name", "NewCo Platform")
    for kind in ("agreement", "human_review", "user_appeals", "no_government_disclosure"):
        page.check(f"input[name=attestations][value={kind}]")
    page.check("#id_activate")
    shot(page, "member-add")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    member = Member.objects.get(slug="newco")
    assert member.status == MemberStatus.ACTIVE
    shot(page, "members")

    page.goto("/admin/accounts/apitoken/add/")
    page.fill("#id_member", str(member.pk))
    page.fill("#id_name", "integration")
    page.check("input[name=scopes_choice][value='signals:write']")
    page.uncheck("input[name=scopes_choice][value='feedback:write']")
    page.click("input[name=_save]")
    token = page.locator("#issued-token").inner_text().strip()
    assert token.startswith("bcn_")
    shot(page, "token-issued")
    page.goto("/admin/accounts/apitoken/")
    assert token not in page.content()
    shot(page, "tokens")

    with api(live_server, token) as client:
        assert client.get("/me").json()["member"]["slug"] == "newco"
        upload = client.post(
            "/signals",
            json={"items": [{"type": "sha256", "value": "cd" * 32, "category": "csea.csam"}]},
            headers={"Idempotency-Key": "browser-1"},
        )
        assert upload.status_code == 201, upload.text

        page.goto("/admin/accounts/member/?q=newco")
        run_action(page, "suspend", select=[str(member.pk)], reason="agreement breached")
        page.wait_for_selector(".messagelist .success")
        assert Member.objects.get(pk=member.pk).status == MemberStatus.SUSPENDED
        refused = client.get("/me")
        assert refused.status_code == 401
        assert "suspended" in refused.json()["detail"]

    signal = Signal.objects.get(owner=member)
    page.goto("/admin/signals/signal/")
    page.click("text=Search by value")
    page.select_option("#id_type", "sha256")
    page.fill("#id_value", "CD" * 32)
    shot(page, "signal-search")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/signals/signal/?indicator__id__in=*")
    run_action(page, "retract", select=[str(signal.pk)], reason="user appeal upheld")
    page.wait_for_selector(".messagelist .success")
    signal.refresh_from_db()
    assert signal.status == SignalStatus.RETRACTED
    assert signal.retract_reason == "user appeal upheld"
    actions = set(AuditEvent.objects.filter(actor="user:alice").values_list("action", flat=True))
    assert {
        "member.create",
        "member.activate",
        "token.issue",
        "member.suspend",
        "signal.retract",
    } <= actions

    page.goto("/admin/delivery/delivery/")
    shot(page, "deliveries")
    page.goto("/admin/")
    page.click("#dashboard-link a")
    page.wait_for_url("**/admin/dashboard/")
    assert page.locator("#dashboard-charts svg").count() >= 5


def test_auditor_exports_the_log_and_cannot_change_it(page, live_server, staff):
    sign_in(page, staff["auditor"])
    page.wait_for_url("**/admin/")
    shot(page, "auditor-index")
    page.goto("/admin/audit/auditevent/")
    total = AuditEvent.objects.count()
    page.check("#action-toggle")
    page.select_option("select[name=action]", "export_csv")
    with page.expect_download() as download_info:
        page.click("button[name=index]")
    body = Path(download_info.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert sum(1 for row in rows if row["record"] == "event") == total
    assert rows[-1]["record"] == "seal" and rows[-1]["signature"]
    assert {"seq", "hash", "prev_hash", "action"} <= set(rows[0])
    assert AuditEvent.objects.filter(action="audit.export", actor="user:olivia").count() == 1

    event = AuditEvent.objects.order_by("seq").first()
    page.goto(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("a.deletelink").count() == 0
    shot(page, "audit-event")
    page.goto("/admin/audit/auditevent/")
    page.click("#verify-chain")
    page.click("#verify-now")
    assert "chain intact" in page.locator("#verify-result").inner_text()
    shot(page, "audit-verify")
    page.goto("/admin/dashboard/")
    assert page.locator("#dashboard-charts svg").count() >= 5
    response = page.goto(f"/admin/audit/auditevent/{event.pk}/delete/")
    assert response.status == 403
    response = page.goto("/admin/accounts/apitoken/")
    assert response.status == 403
    assert AuditEvent.objects.filter(pk=event.pk, hash=event.hash).exists()


def test_a_member_user_is_refused(page, live_server, staff):
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "mallory")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector(".errornote")
    shot(page, "login-refused")
    assert "/admin/login/" in page.url
    page.goto("/admin/accounts/member/")
    assert "/admin/login/" in page.url
