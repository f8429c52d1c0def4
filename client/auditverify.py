"""Verify an audit export offline, with nothing but the file and the exchange's public key.

    result = verify_export("q3.csv", public_key=["exchange-audit.pem"])
    print(result.summary())

An export (JSONL, CSV or JSON, as written by ``GET /api/v1/audit/events`` or ``manage.py
audit_export``/``audit_archive``) holds the events, the signed checkpoints that fall within
it and a seal signed by the exchange over everything exported. The verifier rehashes every
event, follows the chain links, checks each checkpoint's signature and the chain's hash at
its seq, and checks the seal; it names the first bad ``seq`` and the problem: changed,
missing, inserted, reordered or bad signature.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from client.auditchain import (
    BAD_SIGNATURE,
    CHANGED,
    INSERTED,
    MISSING,
    ChainWalker,
    ExportDigest,
    VerifyResult,
    check_checkpoint,
    load_public_keys,
    parse_csv_record,
    seal_message,
    signature_ok,
)

__all__ = ["VerifyResult", "read_export", "verify_export"]


def _sniff(path: Path) -> str:
    with path.open("r", encoding="utf-8") as handle:
        first = handle.readline()
    if first.startswith("record,"):
        return "csv"
    try:
        value = json.loads(first)
    except ValueError:
        return "json"
    return "jsonl" if isinstance(value, dict) and "type" in value else "json"


def read_export(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(kind, record)`` for every record of an export; kind is event, checkpoint or
    seal. JSONL and CSV are read a line at a time."""
    path = Path(path)
    fmt = _sniff(path)
    if fmt == "csv":
        with path.open("r", encoding="utf-8", newline="") as handle:
            for cells in csv.DictReader(handle):
                yield parse_csv_record(cells)
    elif fmt == "jsonl":
        with path.open("r", encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    yield str(record.pop("type", "")), record
    else:
        document = json.loads(path.read_text("utf-8"))
        for event in document.get("events", []):
            yield "event", event
        for checkpoint in document.get("checkpoints", []):
            yield "checkpoint", checkpoint
        if document.get("seal") is not None:
            yield "seal", document["seal"]


def verify_export(path: str | Path, public_key: Sequence[str | Path]) -> VerifyResult:
    """Verify an export file against the exchange's Ed25519 public key(s) (PEM files)."""
    path = Path(path)
    keys = load_public_keys(Path(p).read_bytes() for p in public_key)
    result = VerifyResult()
    checkpoints: list[dict[str, Any]] = []
    seal: dict[str, Any] | None = None
    for kind, record in read_export(path):
        if kind == "checkpoint":
            checkpoints.append(record)
        elif kind == "seal":
            seal = record
    filters = (seal or {}).get("filters") or {}
    contiguous = (seal or {}).get("scope", "all") == "all" and not (
        filters.get("member") or filters.get("action")
    )

    def known_hash(value: str) -> bool:
        return any(k == "event" and r.get("hash") == value for k, r in read_export(path))

    walker = ChainWalker(
        result,
        contiguous=contiguous,
        known_hash=known_hash,
        keep={int(c["seq"]) for c in checkpoints},
    )
    digest = ExportDigest()
    for kind, record in read_export(path):
        if kind != "event":
            continue
        digest.add(record)
        walker.feed(record)
    if not contiguous:
        result.notes.append(
            "a filtered export: events are rehashed one by one and the seal vouches for "
            "which events it holds; the links between them are not all present"
        )
    if result.ok:
        for checkpoint in checkpoints:
            check_checkpoint(result, keys, checkpoint, walker.kept.get(int(checkpoint["seq"])))
            if not result.ok:
                break
    if result.ok:
        _check_seal(result, keys, seal, digest)
    if result.ok and contiguous and not result.checkpoints:
        result.notes.append(
            "no signed checkpoint falls within this export; the seal vouches for it"
        )
    return result


def _check_seal(
    result: VerifyResult, keys: dict[str, Any], seal: dict[str, Any] | None, digest: ExportDigest
) -> None:
    if seal is None:
        after = (result.last_seq + 1) if result.last_seq is not None else None
        result.fail(MISSING, after, "the export has no seal: it is incomplete or was cut short")
        return
    why = signature_ok(
        keys, str(seal.get("key_id", "")), str(seal.get("signature", "")), seal_message(seal)
    )
    if why is not None:
        result.fail(BAD_SIGNATURE, None, f"the export's seal: {why}")
        return
    count = int(seal.get("count", -1))
    first, last = seal.get("first_seq"), seal.get("last_seq")
    if first is not None and digest.first_seq is not None and digest.first_seq > first:
        result.fail(MISSING, first, f"the seal says the export starts at #{first}")
    elif last is not None and (digest.last_seq is None or digest.last_seq < last):
        at = (digest.last_seq + 1) if digest.last_seq is not None else first
        result.fail(MISSING, at, f"the seal says the export ends at #{last}")
    elif last is not None and digest.last_seq is not None and digest.last_seq > last:
        result.fail(INSERTED, last + 1, f"events after #{last}, where the seal says it ends")
    elif digest.count < count:
        result.fail(
            MISSING, None, f"{count - digest.count} event(s) the seal vouches for are absent"
        )
    elif digest.count > count:
        result.fail(INSERTED, None, f"{digest.count - count} event(s) the seal does not vouch for")
    elif digest.hexdigest() != seal.get("digest"):
        result.fail(CHANGED, None, "the events differ from what the seal vouches for")
    else:
        result.notes.append(
            f"sealed by key {seal.get('key_id')} at {seal.get('exported_at')} "
            f"(scope {seal.get('scope')}); check the key against the one the exchange publishes"
        )
