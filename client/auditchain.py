"""The audit hash chain, shared by the exchange (which writes it) and by offline verifiers.

Each event's hash is ``SHA-256(prev_hash ‖ canonical JSON of the event body)`` where
``prev_hash`` is the previous event's 64-hex hash (64 zeros before the first event) and the
canonical JSON has sorted keys, no insignificant whitespace and UTF-8 text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - a verifier installed without it
    orjson = None  # type: ignore[assignment]

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


_CONTAINERS = frozenset({dict, list, tuple})
# orjson refuses what the standard encoder must decide (str and int subclasses, dataclasses,
# dates), so those take the standard path with its own answer or error.
_ORJSON_OPTIONS = (
    (
        orjson.OPT_SORT_KEYS
        | orjson.OPT_PASSTHROUGH_SUBCLASS
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_DATETIME
    )
    if orjson is not None
    else 0
)


def holds_float(document: Any) -> bool:
    """Whether a float occurs anywhere in a document of objects, lists and tuples. Walks it a
    level at a time, testing each level's values with one set of their types."""
    if type(document) not in _CONTAINERS:
        return type(document) is float
    level = [document]
    while level:
        values = list(chain.from_iterable(v.values() if type(v) is dict else v for v in level))
        kinds = set(map(type, values))
        if float in kinds:
            return True
        level = [v for v in values if type(v) in _CONTAINERS] if kinds & _CONTAINERS else []
    return False


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, text as UTF-8 (not escaped). orjson writes
    the same text several times faster for what the exchange hashes (strings, integers,
    lists, objects); anything else, floats included (the two write them differently), goes
    through the standard encoder."""
    if orjson is not None and type(value) in _CONTAINERS and not holds_float(value):
        try:
            return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
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


# -- verification ------------------------------------------------------------------------------
CHANGED = "changed"
MISSING = "missing"
INSERTED = "inserted"
REORDERED = "reordered"
BAD_SIGNATURE = "bad signature"
PROBLEMS = (CHANGED, MISSING, INSERTED, REORDERED, BAD_SIGNATURE)


@dataclass
class VerifyResult:
    """The outcome of verifying (part of) the chain: where it first breaks, and how."""

    ok: bool = True
    first_bad_seq: int | None = None
    problem: str | None = None
    detail: str = ""
    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str = ""
    checkpoints: int = 0
    notes: list[str] = field(default_factory=list)

    def fail(self, problem: str, seq: int | None, detail: str) -> None:
        if self.ok:
            self.ok = False
            self.problem = problem
            self.first_bad_seq = seq
            self.detail = detail

    def summary(self) -> str:
        span = f"#{self.first_seq}–#{self.last_seq}" if self.first_seq is not None else "no events"
        if self.ok:
            return (
                f"OK: {self.count} events ({span}) chain intact, "
                f"{self.checkpoints} signed checkpoint(s) verified"
            )
        where = f"#{self.first_bad_seq}" if self.first_bad_seq is not None else "(not located)"
        return f"FAILED at {where}: {self.problem}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "detail": self.detail,
            "count": self.count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "checkpoints": self.checkpoints,
            "notes": list(self.notes),
        }


class ChainWalker:
    """Walks events in order and records the first place the chain breaks.

    ``anchor`` is the ``(seq, hash)`` of the event just before the first one fed (``(0,
    GENESIS_HASH)`` at the start of the log, the archive boundary after retention); without
    it the first event's ``prev_hash`` is taken on trust and said so in the notes.
    ``contiguous`` is False for filtered exports, whose gaps in ``seq`` are expected.
    ``known_hash(h)`` answers whether some other event has hash ``h`` (asked only on a break,
    to tell reordering from other damage). ``keep`` is a set of seqs whose hashes to remember
    (the checkpoints').
    """

    def __init__(
        self,
        result: VerifyResult,
        *,
        anchor: tuple[int, str] | None = None,
        contiguous: bool = True,
        known_hash: Callable[[str], bool] | None = None,
        keep: set[int] | None = None,
    ) -> None:
        self.result = result
        self.anchor = anchor
        self.contiguous = contiguous
        self.known_hash = known_hash or (lambda _h: False)
        self.keep = keep or set()
        self.kept: dict[int, str] = {}
        self._prev: tuple[int, str] | None = anchor
        self._prevprev: tuple[int, str] | None = None

    def feed(self, row: dict[str, Any]) -> bool:
        """Check one event; False once the chain is broken (stop feeding)."""
        result = self.result
        if not result.ok:
            return False
        seq = int(row["seq"])
        stored = str(row.get("hash") or "")
        prev_hash = str(row.get("prev_hash") or "")
        result.count += 1
        if result.first_seq is None:
            result.first_seq = seq
            if self.anchor is None:
                if seq == 1 and prev_hash != GENESIS_HASH:
                    result.fail(
                        CHANGED, seq, "the first event does not start from the genesis hash"
                    )
                elif seq != 1:
                    result.notes.append(
                        f"starts at #{seq}, anchored on the previous hash {prev_hash[:16]}…"
                    )
                    self._prev = (seq - 1, prev_hash)
        if row.get("redacted"):
            # A redacted event cannot be rehashed; the export's seal vouches for it.
            self._advance(seq, stored)
            return result.ok
        self_ok = event_hash(prev_hash, row) == stored
        prev = self._prev
        if prev is not None and seq <= prev[0]:
            result.fail(REORDERED, seq, f"#{seq} comes after #{prev[0]}")
        elif prev is not None and seq > prev[0] + 1 and self.contiguous:
            if prev_hash == prev[1]:
                result.fail(CHANGED, prev[0] + 1, f"the event after #{prev[0]} claims seq #{seq}")
                return False
            if self_ok and self.known_hash(prev_hash):
                result.fail(REORDERED, seq, f"#{seq} comes before the event it follows")
                return False
            missing = prev[0] + 1
            last = seq - 1
            span = f"#{missing}" if missing == last else f"#{missing}–#{last}"
            result.fail(MISSING, missing, f"{span} absent: #{seq} follows #{prev[0]}")
        elif prev is not None and seq == prev[0] + 1 and prev_hash != prev[1]:
            if self._prevprev is not None and prev_hash == self._prevprev[1]:
                result.fail(INSERTED, prev[0], f"#{prev[0]} is not part of the chain")
            elif self.known_hash(prev_hash):
                result.fail(REORDERED, seq, f"#{seq} links to an event that is elsewhere")
            elif not self_ok:
                result.fail(CHANGED, seq, f"#{seq} does not match its hash")
            else:
                result.fail(
                    CHANGED, prev[0], f"#{prev[0]} was rewritten: #{seq} does not link to it"
                )
        elif not self_ok:
            result.fail(CHANGED, seq, f"#{seq} does not match its hash")
        self._advance(seq, stored)
        return result.ok

    def _advance(self, seq: int, stored: str) -> None:
        self._prevprev = self._prev
        self._prev = (seq, stored)
        self.result.last_seq = seq
        self.result.last_hash = stored
        if seq in self.keep:
            self.kept[seq] = stored


def load_public_keys(pems: Iterable[bytes]) -> dict[str, Any]:
    """``{key_id: Ed25519PublicKey}`` from PEM public keys (a file may hold several)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    end = b"-----END PUBLIC KEY-----"
    blocks = [
        part.strip() + b"\n" + end + b"\n"
        for pem in pems
        for part in pem.split(end)
        if part.strip()
    ]
    keys: dict[str, Any] = {}
    for block in blocks:
        key = serialization.load_pem_public_key(block)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the audit public key must be an Ed25519 key (PEM)")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        keys[key_id(raw)] = key
    return keys


def signature_ok(keys: dict[str, Any], kid: str, signature: str, message: bytes) -> str | None:
    """None if ``signature`` is a valid signature of ``message`` by key ``kid``; else why not."""
    from cryptography.exceptions import InvalidSignature

    key = keys.get(kid)
    if key is None:
        return f"signed by key {kid or '(none)'}, which is not among the public keys given"
    try:
        key.verify(base64.b64decode(signature), message)
    except (InvalidSignature, ValueError, binascii.Error):
        return f"the signature by key {kid} does not verify"
    return None


def check_checkpoint(
    result: VerifyResult, keys: dict[str, Any], checkpoint: dict[str, Any], chain_hash: str | None
) -> None:
    """Verify a checkpoint's signature and compare it with the chain's hash at its seq."""
    seq = int(checkpoint["seq"])
    why = signature_ok(
        keys,
        str(checkpoint.get("key_id", "")),
        str(checkpoint.get("signature", "")),
        checkpoint_message(seq, str(checkpoint["hash"]), str(checkpoint["at"])),
    )
    if why is not None:
        result.fail(BAD_SIGNATURE, seq, f"checkpoint #{seq}: {why}")
        return
    if chain_hash is not None and chain_hash != checkpoint["hash"]:
        result.fail(
            CHANGED, seq, f"the chain at #{seq} differs from its signed checkpoint: rewritten"
        )
        return
    result.checkpoints += 1


# -- export files ------------------------------------------------------------------------------
EXPORT_FORMAT = "beacon-audit-export"
EXPORT_VERSION = 1
CSV_COLUMNS = ("record", *EXPORT_FIELDS, "key_id", "signature")


def csv_event_cells(row: dict[str, Any]) -> list[str]:
    """An exported event as CSV cells (``CSV_COLUMNS`` order)."""
    norm = export_row(row)
    cells = ["event"]
    for name in EXPORT_FIELDS:
        value = norm[name]
        if name in JSON_FIELDS:
            cells.append(canonical_json(value))
        elif name == "redacted":
            cells.append("true" if value else "")
        else:
            cells.append("" if value is None else str(value))
    return [*cells, "", ""]


def csv_checkpoint_cells(checkpoint: dict[str, Any]) -> list[str]:
    cells = dict.fromkeys(CSV_COLUMNS, "")
    cells.update(
        record="checkpoint",
        seq=str(checkpoint["seq"]),
        at=str(checkpoint["at"]),
        hash=str(checkpoint["hash"]),
        key_id=str(checkpoint["key_id"]),
        signature=str(checkpoint["signature"]),
    )
    return [cells[c] for c in CSV_COLUMNS]


def csv_seal_cells(seal: dict[str, Any]) -> list[str]:
    cells = dict.fromkeys(CSV_COLUMNS, "")
    body = {k: v for k, v in seal.items() if k not in {"type", "signature", "key_id"}}
    cells.update(
        record="seal",
        details=canonical_json(body),
        key_id=str(seal["key_id"]),
        signature=str(seal["signature"]),
    )
    return [cells[c] for c in CSV_COLUMNS]


def parse_csv_record(cells: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """``(kind, record)`` from one CSV row read with ``csv.DictReader``."""
    kind = cells.get("record", "")
    if kind == "event":
        row: dict[str, Any] = {}
        for name in EXPORT_FIELDS:
            raw = cells.get(name, "")
            if name in JSON_FIELDS:
                row[name] = json.loads(raw) if raw else None
            elif name in INT_FIELDS:
                row[name] = int(raw)
            elif name == "redacted":
                row[name] = raw == "true"
            else:
                row[name] = raw
        return kind, row
    if kind == "checkpoint":
        return kind, {
            "seq": int(cells["seq"]),
            "at": cells["at"],
            "hash": cells["hash"],
            "key_id": cells["key_id"],
            "signature": cells["signature"],
        }
    if kind == "seal":
        seal = json.loads(cells.get("details") or "{}")
        seal.update(key_id=cells.get("key_id", ""), signature=cells.get("signature", ""))
        return kind, seal
    return kind, {}
