"""Bulk import for operators: a member's initial backfill of millions of signals from NDJSON.

Lines are validated with the same rules as the API; bad lines go to a rejects file with their
line numbers and never stop the import. Each batch commits on its own (with its audit event and
outbox row), and a state file records the last committed line so an interrupted import resumes
where it stopped. On PostgreSQL batches are written with ``COPY`` into temporary tables and
merged with ``INSERT … ON CONFLICT``; elsewhere through the ORM's bulk writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.db import transaction

from accounts.models import Member
from exchange import audit, jsonio, policy
from exchange.audit import Actor, AuditAction
from exchange.delivery import outbox
from exchange.delivery.models import OutboxEvent
from signals import bulk, services


@dataclass
class ImportStats:
    lines: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    batches: int = 0
    resumed_from: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _lines(stream: IO[str], skip: int) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(stream, start=1):
        if number > skip and raw.strip():
            yield number, raw


def import_stream(
    *,
    member: Member,
    stream: IO[str],
    actor: Actor,
    rejects: IO[str],
    batch_size: int = 10_000,
    state_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportStats:
    policy.check_can_submit(member=member)
    state = json.loads(state_path.read_text()) if state_path and state_path.exists() else {}
    stats = ImportStats(resumed_from=int(state.get("line", 0)))
    lookups = services._Lookups(member)
    batch: list[tuple[int, str]] = []
    for number, raw in _lines(stream, stats.resumed_from):
        batch.append((number, raw))
        if len(batch) >= batch_size:
            _flush(member, batch, actor, rejects, stats, lookups, state_path, progress)
            batch = []
    if batch:
        _flush(member, batch, actor, rejects, stats, lookups, state_path, progress)
    return stats


def _loads(line: str) -> Any:
    """One NDJSON line through orjson; a bad line is parsed again by the standard parser, whose
    error message goes to the rejects file."""
    try:
        return jsonio.loads(line.encode())
    except json.JSONDecodeError:
        return json.loads(line)


def _reject(
    rejects: IO[str], stats: ImportStats, number: int, errors: list[dict[str, Any]]
) -> None:
    stats.rejected += 1
    for error in errors:
        stats.reasons[error["field"] or "line"] = stats.reasons.get(error["field"] or "line", 0) + 1
    rejects.write(
        json.dumps(
            {
                "line": number,
                "errors": [{"field": e["field"], "detail": e["detail"]} for e in errors],
            }
        )
        + "\n"
    )


def _flush(*args: Any) -> None:
    with bulk.gc_paused():
        _flush_batch(*args)


def _flush_batch(
    member: Member,
    batch: list[tuple[int, str]],
    actor: Actor,
    rejects: IO[str],
    stats: ImportStats,
    lookups: Any,
    state_path: Path | None,
    progress: Callable[[int], None] | None,
) -> None:
    items: list[Any] = []
    numbers: list[int] = []
    for number, raw in batch:
        try:
            items.append(_loads(raw))
            numbers.append(number)
        except json.JSONDecodeError as exc:
            _reject(rejects, stats, number, [{"field": "", "detail": f"not valid JSON: {exc.msg}"}])
    parsed: list[services.ParsedItem] = []
    if items:
        try:
            parsed = services.parse_items(member, items, lookups=lookups)
        except services.ItemErrors as exc:
            by_index: dict[int, list[dict[str, Any]]] = {}
            for error in exc.errors:
                by_index.setdefault(error["index"], []).append(error)
            for index, errors in sorted(by_index.items()):
                _reject(rejects, stats, numbers[index], errors)
            good = [i for i in range(len(items)) if i not in by_index]
            parsed = (
                services.parse_items(member, [items[i] for i in good], lookups=lookups)
                if good
                else []
            )
    with transaction.atomic():
        if parsed:
            written = bulk.write(member=member, parsed=parsed)
            stats.created += written.created
            stats.updated += written.updated
            outbox.add(
                event=OutboxEvent.SIGNAL_UPSERTED, seq_from=written.seq_from, seq_to=written.seq_to
            )
            audit.record(
                actor=actor,
                action=AuditAction.SIGNAL_IMPORT,
                result_count=len(written.signals),
                details={
                    "created": written.created,
                    "updated": written.updated,
                    "first_line": batch[0][0],
                    "last_line": batch[-1][0],
                    "seq_from": written.seq_from,
                    "seq_to": written.seq_to,
                },
            )
        if state_path is not None:
            state_path.write_text(json.dumps({"line": batch[-1][0]}))
    stats.lines += len(batch)
    stats.batches += 1
    if progress is not None:
        progress(len(batch))
