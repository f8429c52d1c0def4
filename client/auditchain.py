"""The audit hash chain, shared by the exchange (which writes it) and by offline verifiers.

Each event's hash is ``SHA-256(prev_hash ‖ canonical JSON of the event body)`` where
``prev_hash`` is the previous event's 64-hex hash (64 zeros before the first event) and the
canonical JSON has sorted keys, no insignificant whitespace and UTF-8 text.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64

# The fields of an event that are covered by its hash, in export order.
CHAINED_FIELDS = (
    "seq",
    "at",
    "actor_member",
    "actor",
    "action",
    "purpose",
    "request_id",
    "client_ip",
    "params_digest",
    "result_count",
    "disclosed",
    "owners",
    "target",
    "details",
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(prev_hash: str, body: dict[str, Any]) -> str:
    chained = {field: body.get(field) for field in CHAINED_FIELDS}
    return hashlib.sha256((prev_hash + canonical_json(chained)).encode()).hexdigest()


def params_digest(params: Any) -> str:
    """A digest of request parameters: enough to prove what was asked, never the values."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()
