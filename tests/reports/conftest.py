"""A scenario whose counts are known, shared by the report tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.feedback_support import react, sha_item, upload


@pytest.fixture
def scenario(api_for: Any, member_a: Any, member_b: Any, outsider: Any) -> dict[str, Any]:
    """acme shares 7 grooming and 2 sextortion signals; globex matches with two purposes,
    reacts, and acme retracts one signal after an appeal. initech only matches, and misses."""
    a, b, c = api_for(member_a), api_for(member_b), api_for(outsider)
    grooming = upload(a, [sha_item(f"groomer-{i}") for i in range(7)])
    sextortion = upload(a, [sha_item(f"sx-{i}", "csea.sextortion") for i in range(2)])
    # Re-sending a signal updates it: not shared twice.
    upload(a, [sha_item("groomer-0")])
    detect = [{"type": "sha256", "value": sha_item(f"groomer-{i}")["value"]} for i in range(6)]
    for _ in range(2):
        assert (
            b.post(
                "/api/v1/match", {"purpose": "detection", "items": detect}, format="json"
            ).status_code
            == 200
        )
    research = [{"type": "sha256", "value": sha_item("sx-0")["value"]}]
    assert (
        b.post(
            "/api/v1/match", {"purpose": "research", "items": research}, format="json"
        ).status_code
        == 200
    )
    assert (
        c.post(
            "/api/v1/match",
            {"purpose": "detection", "items": [{"type": "sha256", "value": "0" * 64}]},
            format="json",
        ).status_code
        == 200
    )
    for signal_id in grooming[:5]:
        assert react(b, signal_id, "actioned", action_taken="account_terminated").status_code in (
            200,
            201,
        )
    assert react(b, grooming[0], "actioned", action_taken="account_terminated").status_code in (
        200,
        201,
    )  # changing a reaction already reported does not count it again
    assert react(b, grooming[5], "false_positive").status_code in (200, 201)
    retract = a.delete(
        f"/api/v1/signals/{sextortion[1]}", {"reason": "successful user appeal"}, format="json"
    )
    assert retract.status_code in (200, 204), retract.content[:300]
    return {"grooming": grooming, "sextortion": sextortion}
