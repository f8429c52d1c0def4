"""Token issue/revoke, member status changes and group changes each leave an event, and the
chain verifies afterwards."""

from __future__ import annotations

import pytest

from accounts.services import (
    group_add_member,
    group_remove_member,
    member_activate,
    member_suspend,
    token_issue,
    token_revoke,
)
from exchange.audit.models import AuditEvent
from exchange.audit.verify import verify_chain
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


def _last_action() -> str:
    return AuditEvent.objects.order_by("-seq").values_list("action", flat=True).first() or ""


def test_account_actions_are_audited(member_a, member_b, pilot):
    issued = token_issue(
        member=member_a, scopes=["signals:read"], purposes=["detection"], actor=SYSTEM
    )
    assert _last_action() == "token.issue"
    event = AuditEvent.objects.order_by("-seq").first()
    assert issued.plaintext not in str(event.chained_body())  # never the token itself
    token_revoke(token=issued.token, actor=SYSTEM)
    assert _last_action() == "token.revoke"
    member_suspend(member=member_b, actor=SYSTEM, reason="review")
    assert _last_action() == "member.suspend"
    member_activate(member=member_b, actor=SYSTEM)
    assert _last_action() == "member.activate"
    group_remove_member(group=pilot, member=member_b, actor=SYSTEM)
    assert _last_action() == "group.remove_member"
    group_add_member(group=pilot, member=member_b, actor=SYSTEM)
    assert _last_action() == "group.add_member"
    assert verify_chain().ok
