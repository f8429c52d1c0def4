from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import pytest

_keys = itertools.count()


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def upload(api_for: Callable[..., Any]) -> Callable[..., Any]:
    """POST items as ``member``; returns the response. Each call uses a fresh Idempotency-Key."""

    clients: dict[Any, Any] = {}

    def _upload(
        member: Any, items: list[dict[str, Any]], *, key: str | None = None, **kwargs: Any
    ) -> Any:
        client = clients.get(member.pk) or clients.setdefault(member.pk, api_for(member))
        return client.post(
            "/api/v1/signals",
            {"items": items},
            format="json",
            HTTP_IDEMPOTENCY_KEY=key or f"k-{next(_keys)}",
            **kwargs,
        )

    return _upload


def item(
    type_: str = "sha256", value: str | None = None, category: str = "csea.csam", **extra: Any
) -> dict[str, Any]:
    values = {
        "sha256": digest("x"),
        "md5": hashlib.md5(b"x").hexdigest(),
        "sha1": hashlib.sha1(b"x").hexdigest(),
        "pdq": "ab" * 32,
    }
    return {
        "type": type_,
        "value": value if value is not None else values.get(type_, digest("someone@example.com")),
        "category": category,
        **extra,
    }
