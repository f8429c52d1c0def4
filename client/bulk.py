"""Reading CSV/NDJSON files of signals, hashing identifiers locally, and resumable uploads.

An input row becomes an API item (``{"type", "value", "category", ...}``). With
``hash_raw``, identifier values (email, phone, username, account id) are raw and are
normalised and SHA-256 hashed here; without it they must already be 64-hex digests, and
anything else is rejected *before* it is sent, so a raw identifier never leaves the machine.

Uploads go in chunks (10,000 items by default). Each chunk's ``Idempotency-Key`` is derived
from its content, and a state file records every chunk the exchange has answered, so an
interrupted run can be started again: answered chunks are skipped, and a chunk whose answer
was lost is sent again with the same key and answered from the exchange's record — nothing is
written twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.normalize import IDENTIFIER_TYPES, NormalizationError, identifier_digest
from client.sdk import MAX_BATCH_ITEMS, BeaconClient, UploadResult, ValidationFailed

__all__ = [
    "InputOptions",
    "Rejection",
    "Row",
    "UploadState",
    "UploadSummary",
    "count_rows",
    "detect_format",
    "read_items",
    "upload_file",
]

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_INT_FIELDS = ("confidence", "quality", "max_distance")
# Columns that steer local hashing and never go to the exchange.
_LOCAL_FIELDS = ("platform", "region")


@dataclass(frozen=True)
class InputOptions:
    """How rows of a file become API items; ``defaults`` fill fields a row leaves empty."""

    format: str = "auto"
    type: str | None = None
    value_column: str = "value"
    hash_raw: bool = False
    region: str | None = None
    platform: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    keep_columns: tuple[str, ...] = ()

    def fingerprint(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "value_column": self.value_column,
            "hash_raw": self.hash_raw,
            "region": self.region,
            "platform": self.platform,
            "defaults": dict(self.defaults),
        }


@dataclass(frozen=True)
class Rejection:
    """A row that was not uploaded, and why (``line`` is 1-based, counting a CSV header)."""

    line: int
    reason: str
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "reason": self.reason}


@dataclass
class Row:
    """One input row turned into an API item (or rejected)."""

    line: int
    item: dict[str, Any] | None
    rejection: Rejection | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def detect_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    suffix = path.suffix.lower()
    if suffix in (".ndjson", ".jsonl", ".json"):
        return "ndjson"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    raise ValueError(f"cannot tell the format of {path.name}; pass --format csv or ndjson")


def count_rows(path: Path, fmt: str) -> int:
    """Rows in the file (for a progress bar); a CSV header is not counted."""
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(0, lines - 1) if fmt == "csv" else lines


def _raw_rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        if fmt == "ndjson":
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError as exc:
                    yield number, None, f"not valid JSON: {exc}"
                    continue
                if not isinstance(value, dict):
                    yield number, None, "each line must be a JSON object"
                    continue
                yield number, value, None
        else:
            sample = handle.read(4096)
            handle.seek(0)
            delimiter = (
                "\t"
                if path.suffix.lower() == ".tsv" or sample.count("\t") > sample.count(",")
                else ","
            )
            reader = csv.DictReader(handle, delimiter=delimiter)
            for row in reader:
                yield (
                    reader.line_num,
                    {(k or "").strip(): v for k, v in row.items() if k is not None},
                    None,
                )


def _clean_csv_value(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = value.strip()
    if value == "":
        return None
    if key in _INT_FIELDS:
        return int(value)
    if key == "tags":
        return [t.strip() for t in re.split(r"[;|]", value) if t.strip()]
    return value


def _to_row(number: int, raw: dict[str, Any], options: InputOptions, fmt: str) -> Row:
    extra = {k: raw.get(k) for k in options.keep_columns if k in raw}
    try:
        values = {k: (_clean_csv_value(k, v) if fmt == "csv" else v) for k, v in raw.items()}
    except ValueError as exc:
        return Row(number, None, Rejection(number, f"not a number: {exc}"), extra)
    value = values.get(options.value_column)
    item: dict[str, Any] = {k: v for k, v in options.defaults.items() if v not in (None, [], "")}
    for key, field_value in values.items():
        if key in (options.value_column, *_LOCAL_FIELDS, *options.keep_columns):
            continue
        if field_value is None or (fmt == "csv" and key not in _API_FIELDS):
            continue
        item[key] = field_value
    item_type = values.get("type") or options.type
    if not item_type:
        return Row(
            number,
            None,
            Rejection(number, "no type: add a type column or pass --type", "type"),
            extra,
        )
    item["type"] = item_type
    if value is None or value == "":
        return Row(
            number, None, Rejection(number, f"empty {options.value_column!r}", "value"), extra
        )
    if item_type in IDENTIFIER_TYPES:
        value = str(value)
        if options.hash_raw:
            try:
                value = identifier_digest(
                    item_type,
                    value,
                    platform=values.get("platform") or options.platform,
                    region=values.get("region") or options.region,
                )
            except NormalizationError as exc:
                return Row(number, None, Rejection(number, str(exc), "value"), extra)
        elif not _HEX64.match(value):
            return Row(
                number,
                None,
                Rejection(
                    number,
                    f"{item_type} values must be SHA-256 hex digests; this looks like a raw "
                    "identifier and was not sent (use --hash-raw to hash it locally)",
                    "value",
                ),
                extra,
            )
        else:
            value = value.lower()
    item["value"] = value
    return Row(number, item, None, extra)


# Fields a CSV column may set (anything else in a CSV is ignored; NDJSON passes through).
_API_FIELDS = frozenset(
    {
        "type",
        "value",
        "category",
        "audience",
        "confidence",
        "severity",
        "tlp",
        "tags",
        "expires_at",
        "external_id",
        "lang",
        "quality",
        "max_distance",
    }
)


def read_items(path: Path, options: InputOptions) -> Iterator[Row]:
    """The file's rows as items, in order; rejected rows carry the reason instead."""
    fmt = detect_format(path, options.format)
    for number, raw, error in _raw_rows(path, fmt):
        if raw is None:
            yield Row(number, None, Rejection(number, error or "unreadable row"))
            continue
        yield _to_row(number, raw, options, fmt)


# -- resumable upload -----------------------------------------------------------------------


@dataclass
class UploadSummary:
    """Totals of an upload run (including chunks answered in earlier, interrupted runs)."""

    created: int = 0
    updated: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    chunks_sent: int = 0
    chunks_skipped: int = 0
    chunks_replayed: int = 0
    rows: int = 0

    @property
    def uploaded(self) -> int:
        return self.created + self.updated


@dataclass
class UploadState:
    """What an upload run has finished, saved after every chunk (atomically)."""

    path: Path
    fingerprint: str
    chunks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, fingerprint: str, *, restart: bool = False) -> UploadState:
        if path.is_file() and not restart:
            data = json.loads(path.read_text("utf-8"))
            if data.get("fingerprint") != fingerprint:
                raise ValueError(
                    f"{path} belongs to a different file or different options; "
                    "pass --restart to start over, or --state to use another state file"
                )
            return cls(path, fingerprint, dict(data.get("chunks", {})))
        return cls(path, fingerprint)

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(
            json.dumps({"version": 1, "fingerprint": self.fingerprint, "chunks": self.chunks}),
            "utf-8",
        )
        os.replace(tmp, self.path)


def file_fingerprint(path: Path, options: InputOptions, chunk_size: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    digest.update(
        json.dumps(
            {"options": options.fingerprint(), "chunk_size": chunk_size}, sort_keys=True
        ).encode()
    )
    return digest.hexdigest()


def _send_chunk(
    client: BeaconClient, rows: list[Row]
) -> tuple[UploadResult | None, list[Rejection]]:
    """Upload one chunk; items the exchange rejects are dropped and the rest sent again.

    The exchange is all-or-nothing per request and lists every bad item by index, so the
    remainder is a new (deterministic) chunk with its own idempotency key.
    """
    rejected: list[Rejection] = []
    pending = list(rows)
    while pending:
        try:
            return client.upload([r.item for r in pending if r.item is not None]), rejected
        except ValidationFailed as exc:
            bad: dict[int, list[dict[str, Any]]] = {}
            for error in exc.errors:
                index = error.get("index")
                if isinstance(index, int) and 0 <= index < len(pending):
                    bad.setdefault(index, []).append(error)
            if not bad:
                rejected.extend(
                    Rejection(r.line, f"{exc.detail} (request {exc.request_id})") for r in pending
                )
                return None, rejected
            for index, errors in sorted(bad.items()):
                reason = "; ".join(f"{e.get('field') or 'item'}: {e.get('detail')}" for e in errors)
                rejected.append(Rejection(pending[index].line, reason, errors[0].get("field")))
            pending = [r for i, r in enumerate(pending) if i not in bad]
    return None, rejected


def upload_file(
    client: BeaconClient,
    path: Path,
    options: InputOptions,
    *,
    state_path: Path,
    chunk_size: int = MAX_BATCH_ITEMS,
    restart: bool = False,
    on_rows: Callable[[int], None] | None = None,
    after_chunk: Callable[[int, UploadResult | None], None] | None = None,
) -> UploadSummary:
    """Upload a CSV/NDJSON file in chunks, resumably; see the module docstring.

    ``on_rows(n)`` reports progress; ``after_chunk(index, result)`` runs once a chunk is
    answered and before its state is saved.
    """
    if not 1 <= chunk_size <= MAX_BATCH_ITEMS:
        raise ValueError(f"chunk size must be between 1 and {MAX_BATCH_ITEMS}")
    state = UploadState.load(
        state_path, file_fingerprint(path, options, chunk_size), restart=restart
    )
    summary = UploadSummary()
    reported = 0
    for index, chunk in enumerate(_row_chunks(read_items(path, options), chunk_size, summary)):
        done = state.chunks.get(str(index))
        if done is not None:
            summary.created += int(done["created"])
            summary.updated += int(done["updated"])
            summary.rejected.extend(Rejection(**r) for r in done.get("rejected", []))
            summary.chunks_skipped += 1
        else:
            result, rejected = _send_chunk(client, chunk)
            if after_chunk is not None:
                after_chunk(index, result)
            state.chunks[str(index)] = {
                "created": result.created if result else 0,
                "updated": result.updated if result else 0,
                "rejected": [
                    {"line": r.line, "reason": r.reason, "field": r.field} for r in rejected
                ],
                "key": result.idempotency_key if result else None,
                "request_id": result.request_id if result else None,
                "replayed": result.replayed if result else False,
            }
            state.save()
            summary.created += result.created if result else 0
            summary.updated += result.updated if result else 0
            summary.rejected.extend(rejected)
            summary.chunks_sent += 1
            summary.chunks_replayed += 1 if result and result.replayed else 0
        if on_rows is not None:
            on_rows(summary.rows - reported)
            reported = summary.rows
    if on_rows is not None and summary.rows > reported:
        on_rows(summary.rows - reported)
    summary.rejected.sort(key=lambda r: r.line)
    return summary


def _row_chunks(rows: Iterable[Row], size: int, summary: UploadSummary) -> Iterator[list[Row]]:
    """Chunks of valid rows; local rejections go straight into the summary.

    Chunk boundaries depend only on the file and the options, so a resumed run cuts the same
    chunks and derives the same idempotency keys.
    """
    chunk: list[Row] = []
    for row in rows:
        summary.rows += 1
        if row.item is None:
            if row.rejection is not None:
                summary.rejected.append(row.rejection)
            continue
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_rejections(path: Path, rejections: Iterable[Rejection]) -> None:
    """Write rejected rows as CSV (``line,field,reason``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["line", "field", "reason"])
    for rejection in rejections:
        writer.writerow([rejection.line, rejection.field or "", rejection.reason])
    path.write_text(buffer.getvalue(), "utf-8")
