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


# -- signatures --------------------------------------------------------------------------------
# Checkpoints sign ``(seq, hash, at)``; an export's seal signs what the export contains. Both
# sign the canonical JSON of a small object tagged with its kind, with Ed25519.
CHECKPOINT_KIND = "beacon.audit.checkpoint.v1"
SEAL_KIND = "beacon.audit.seal.v1"

# The fields of an exported event, in export (and CSV column) order.
EXPORT_FIELDS = (*CHAINED_FIELDS, "prev_hash", "hash", "redacted")
JSON_FIELDS = ("disclosed", "owners", "details")
INT_FIELDS = ("seq", "result_count")


def checkpoint_message(seq: int, hash_: str, at: str) -> bytes:
    return canonical_json({"kind": CHECKPOINT_KIND, "seq": seq, "hash": hash_, "at": at}).encode()


def seal_message(seal: dict[str, Any]) -> bytes:
    body = {k: v for k, v in seal.items() if k not in {"signature", "type"}}
    body["kind"] = SEAL_KIND
    return canonical_json(body).encode()


def key_id(raw_public_key: bytes) -> str:
    """A short, stable name for an Ed25519 public key: the start of its SHA-256."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def export_row(event: dict[str, Any]) -> dict[str, Any]:
    """An exported event in its normal form (the same whatever the file format)."""
    row = {name: event.get(name) for name in EXPORT_FIELDS}
    row["redacted"] = bool(row["redacted"])
    return row


class ExportDigest:
    """The running digest an export's seal signs: SHA-256 over each exported event's
    canonical JSON, one per line, in file order."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None

    def add(self, row: dict[str, Any]) -> None:
        self._hash.update(canonical_json(export_row(row)).encode() + b"\n")
        self.count += 1
        if self.first_seq is None:
            self.first_seq = row.get("seq")
        self.last_seq = row.get("seq")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
