"""Helpers for feedback, lifecycle and report tests: upload through the API, pull the feed."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from rest_framework.test import APIClient

_keys = itertools.count()


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha_item(text: str, category: str = "csea.grooming", **extra: Any) -> dict[str, Any]:
    return {"type": "sha256", "value": digest(text), "category": category, **extra}


def upload(client: APIClient, items: list[dict[str, Any]]) -> list[int]:
    """Upload ``items``; the ids of the signals, in item order."""
    response = client.post(
        "/api/v1/signals",
        {"items": items},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"fb-{next(_keys)}",
    )
    assert response.status_code == 201, response.content[:500]
    return [s["id"] for s in response.json()["signals"]]


def react(client: APIClient, signal_id: int, reaction: str, **body: Any) -> Any:
    return client.post(
        f"/api/v1/signals/{signal_id}/feedback", {"reaction": reaction, **body}, format="json"
    )


def feed(client: APIClient, cursor: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Every event after ``cursor``, following pages; and the cursor to continue from."""
    events: list[dict[str, Any]] = []
    while True:
        params = {"purpose": "detection", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/api/v1/feed", params)
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        events.extend(body["events"])
        cursor = body["next_cursor"]
        if not body["more"]:
            return events, cursor
