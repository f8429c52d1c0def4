"""Writing many signals at once, shared by the upload API and ``import_signals``.

On PostgreSQL rows go through ``COPY`` into temporary tables and are merged with
``INSERT … ON CONFLICT`` (one round trip per step, whatever the batch size); elsewhere through
the ORM's bulk writes. Either way one signal per (indicator, owner): a later item for the same
indicator in a batch wins, and uploading again updates.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from django.db import connection
from django.utils import timezone
from psycopg.types.json import set_json_dumps

from accounts.models import Member
from exchange import sequences
from signals.models import Indicator, IndicatorFrames, Signal

SIGNAL_COLUMNS = [
    "indicator_id",
    "owner_id",
    "category_id",
    "tags",
    "confidence",
    "severity",
    "audience",
    "audience_kind",
    "audience_group_id",
    "audience_members",
    "tlp",
    "expires_at",
    "status",
    "external_id",
    "quality",
    "lang",
    "seq",
    "created_at",
    "updated_at",
    "retracted_at",
    "retract_reason",
    "bundle_id",
]
UPDATED_ON_CONFLICT = [
    c for c in SIGNAL_COLUMNS if c not in {"indicator_id", "owner_id", "created_at"}
]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a batch is parsed and written: the tens of
    thousands of small dicts and tuples a batch allocates would otherwise trigger repeated full
    collections over all of them, and none of them form cycles. Restores the previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class Written:
    """What a batch wrote: per item its indicator; per indicator its signal and whether new."""

    indicator_ids: list[int]
    signals: dict[int, tuple[int, bool]]
    seq_from: int
    seq_to: int

    @cached_property
    def created(self) -> int:
        return sum(1 for _, new in self.signals.values() if new)

    @property
    def updated(self) -> int:
        return len(self.signals) - self.created


def write(*, member: Member, parsed: Sequence[Any]) -> Written:
    """Upsert ``parsed`` items (``signals.services.ParsedItem``) for ``member``. Call inside a
    transaction; allocates one feed seq per changed signal."""
    indicator_ids, created = _resolve(parsed)
    _store_frames(parsed, indicator_ids)
    last = {ind: pos for pos, ind in enumerate(indicator_ids)}
    positions = sorted(last.values())
    seq_from = sequences.allocate(sequences.FEED, len(positions))
    now = timezone.now()
    owner_id = member.pk
    postgres = connection.vendor == "postgresql"
    # On PostgreSQL rows are built as COPY writes them: for signals of indicators this batch
    # created, the new id first.
    new_ids = iter(_new_signal_ids(indicator_ids, positions, created) if postgres else ())
    new_rows: list[tuple[Any, ...]] = []
    rows: list[tuple[Any, ...]] = []
    for offset, pos in enumerate(positions):
        item = parsed[pos]
        f = item.fields
        group = f["audience_group"]
        indicator_id = indicator_ids[pos]
        row = (
            indicator_id,
            owner_id,
            item.category.id,
            f["tags"],
            f["confidence"],
            f["severity"],
            f["audience"],
            f["audience_kind"],
            group.id if group else None,
            f["audience_members"],
            f["tlp"],
            f["expires_at"],
            "active",
            f["external_id"],
            f["quality"],
            f["lang"],
            seq_from + offset,
            now,
            now,
            None,
            "",
            f.get("bundle_id"),
        )
        if postgres and indicator_id in created:
            new_rows.append((next(new_ids), *row))
        else:
            rows.append(row)
    if postgres:
        signals = _upsert_copy(new_rows, rows)
    else:
        signals = _upsert_orm(member, [dict(zip(SIGNAL_COLUMNS, row, strict=True)) for row in rows])
    return Written(
        indicator_ids=indicator_ids,
        signals=signals,
        seq_from=seq_from,
        seq_to=seq_from + len(positions) - 1,
    )


def _store_frames(parsed: Sequence[Any], indicator_ids: list[int]) -> None:
    """Video-hash indicators keep their frames beside them (the value is their digest)."""
    rows = {
        ind: IndicatorFrames(indicator_id=ind, text=item.canonical.extra["frames_text"])
        for item, ind in zip(parsed, indicator_ids, strict=True)
        if "frames_text" in item.canonical.extra
    }
    if rows:
        IndicatorFrames.objects.bulk_create(list(rows.values()), ignore_conflicts=True)


def resolve_indicators(parsed: Sequence[Any]) -> list[int]:
    """The indicator id of each item, creating missing ones. An identifier already stored under
    an older pepper version is found under that version and reused, so rotation never
    duplicates indicators."""
    return _resolve(parsed)[0]


def _resolve(parsed: Sequence[Any]) -> tuple[list[int], set[int]]:
    """``resolve_indicators``, plus the ids of the indicators this call created."""
    if connection.vendor != "postgresql":
        return _resolve_orm(parsed), set()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS beacon_bulk_indicator (pos int, id bigint, type text, value text, key_version smallint, write bool) ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE beacon_bulk_indicator")
        # Each item's would-be id is drawn up front, so the insert only has to return the ids
        # it used (ids of items that turn out to exist already are skipped in the sequence).
        ids = _next_ids(cursor, "signals_indicator", len(parsed))
        other_forms = False
        with cursor.copy(
            "COPY beacon_bulk_indicator (pos, id, type, value, key_version, write) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "int8", "text", "text", "int2", "bool"])
            for pos, item in enumerate(parsed):
                type_ = item.type
                value, version = type_.stored_value(item.canonical)
                copy.write_row((pos, ids[pos], type_.name, value, version, True))
                if type_.peppered:
                    for other in type_.lookup_values(item.canonical):
                        if other != value:
                            other_forms = True
                            copy.write_row((pos, None, type_.name, other, None, False))
        found: dict[int, int] = {}
        if other_forms:
            # An item found under any of its forms (e.g. an older pepper version) reuses the
            # oldest such indicator; only items found under none of them get a new one.
            found = _lookup(cursor)
            if found:
                cursor.execute(
                    "DELETE FROM beacon_bulk_indicator WHERE pos = ANY(%s)", [list(found)]
                )
        created: set[int] = set()
        if len(found) < len(parsed):
            cursor.execute(
                """
                INSERT INTO signals_indicator (id, type, value, key_version, created_at)
                SELECT l.id, l.type, l.value, l.key_version, now()
                FROM beacon_bulk_indicator l WHERE l.write
                ON CONFLICT (type, value) DO NOTHING RETURNING id
                """
            )
            created = {pk for (pk,) in cursor.fetchall()}
            for pos, pk in enumerate(ids):
                if pk in created and pos not in found:
                    found[pos] = pk
        if len(found) < len(parsed):
            # Stored before this batch (or by a concurrent one that has since committed), or
            # a value repeated within the batch.
            if created:
                cursor.execute(
                    "DELETE FROM beacon_bulk_indicator WHERE pos = ANY(%s)", [list(found)]
                )
            found.update(_lookup(cursor))
    return [found[pos] for pos in range(len(parsed))], created


def _next_ids(cursor: Any, table: str, count: int) -> list[int]:
    """``count`` new ids from ``table``'s id sequence, in one statement. The sequence is resolved
    once (OFFSET 0 keeps the planner from calling pg_get_serial_sequence for every row)."""
    if not count:
        return []
    cursor.execute(
        "SELECT nextval(q.seq) FROM (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq OFFSET 0) q, generate_series(1, %s)",
        [table, count],
    )
    return [pk for (pk,) in cursor.fetchall()]


def _lookup(cursor: Any) -> dict[int, int]:
    cursor.execute(
        """
        SELECT l.pos, min(i.id) FROM beacon_bulk_indicator l
        JOIN signals_indicator i ON i.type = l.type AND i.value = l.value
        GROUP BY l.pos
        """
    )
    return dict(cursor.fetchall())


def _resolve_orm(parsed: Sequence[Any]) -> list[int]:
    lookups = [item.type.lookup_values(item.canonical) for item in parsed]
    wanted: dict[str, set[str]] = {}
    for item, values in zip(parsed, lookups, strict=True):
        wanted.setdefault(item.type.name, set()).update(values)

    def fetch(found: dict[tuple[str, str], int]) -> None:
        for type_name, values in wanted.items():
            value_list = sorted(values)
            for start in range(0, len(value_list), 5000):
                for pk, value in Indicator.objects.filter(
                    type=type_name, value__in=value_list[start : start + 5000]
                ).values_list("pk", "value"):
                    found[(type_name, value)] = pk

    found: dict[tuple[str, str], int] = {}
    fetch(found)
    missing: dict[tuple[str, str], Indicator] = {}
    for item, values in zip(parsed, lookups, strict=True):
        if not any((item.type.name, v) in found for v in values):
            stored, version = item.type.stored_value(item.canonical)
            missing.setdefault(
                (item.type.name, stored),
                Indicator(type=item.type.name, value=stored, key_version=version),
            )
    if missing:
        Indicator.objects.bulk_create(
            list(missing.values()), ignore_conflicts=True, batch_size=2000
        )
        fetch(found)
    return [
        min(found[(item.type.name, v)] for v in values if (item.type.name, v) in found)
        for item, values in zip(parsed, lookups, strict=True)
    ]


# PostgreSQL type names as psycopg knows them, for binary COPY (character types go as text).
_BINARY_TYPES = {"varchar": "text", "bpchar": "text"}
_column_types: dict[str, dict[str, str]] = {}


@contextmanager
def _binary_copy(
    cursor: Any, table: str, columns: list[str], types_of: str | None = None
) -> Iterator[Any]:
    """A binary ``COPY`` into ``table``: psycopg then sends ints, timestamps and uuids as they
    are stored instead of formatting them as text for the server to parse again. Column types
    are read from ``types_of`` (default ``table``) once per process. JSON columns take Python
    values, encoded once per distinct tag list."""
    source = types_of or table
    if source not in _column_types:
        cursor.execute(
            "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            [source],
        )
        _column_types[source] = {n: _BINARY_TYPES.get(t, t) for n, t in cursor.fetchall()}
    known = _column_types[source]
    set_json_dumps(_dumps_tags, cursor)
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([known[c] for c in columns])
        yield copy


@lru_cache(maxsize=4096)
def _tags_text(tags: tuple[str, ...]) -> str:
    return json.dumps(list(tags))


def _dumps_tags(value: Any) -> str:
    """JSON for a tag list, encoded once per distinct list (a module-level function: psycopg
    keeps one dumper class per function it is given)."""
    return _tags_text(tuple(value))


def _new_signal_ids(indicator_ids: list[int], positions: list[int], created: set[int]) -> list[int]:
    """Ids for the signals of indicators this batch created, drawn in one statement."""
    count = sum(1 for pos in positions if indicator_ids[pos] in created)
    with connection.cursor() as cursor:
        return _next_ids(cursor, "signals_signal", count)


def _upsert_copy(
    new: list[tuple[Any, ...]], merge: list[tuple[Any, ...]]
) -> dict[int, tuple[int, bool]]:
    """``new`` rows (id first) belong to indicators this batch created, so no signal of theirs
    can exist yet: they are ``COPY``d straight into ``signals_signal``. The ``merge`` rows are
    merged through a temporary table with ``INSERT … ON CONFLICT``."""
    columns = ", ".join(SIGNAL_COLUMNS)
    out: dict[int, tuple[int, bool]] = {}
    with connection.cursor() as cursor:
        if new:
            with _binary_copy(cursor, "signals_signal", ["id", *SIGNAL_COLUMNS]) as copy:
                for row in new:
                    copy.write_row(row)
                    out[row[1]] = (row[0], True)
        if merge:
            # A re-upload outside a bundle keeps the signal in its bundle.
            updates = ", ".join(
                f"{c} = COALESCE(EXCLUDED.{c}, signals_signal.{c})"
                if c == "bundle_id"
                else f"{c} = EXCLUDED.{c}"
                for c in UPDATED_ON_CONFLICT
            )
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS beacon_bulk_signal ON COMMIT DELETE ROWS AS SELECT {columns} FROM signals_signal WITH NO DATA"  # noqa: S608 - fixed column names
            )
            cursor.execute("TRUNCATE beacon_bulk_signal")
            with _binary_copy(
                cursor, "beacon_bulk_signal", SIGNAL_COLUMNS, types_of="signals_signal"
            ) as copy:
                for row in merge:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO signals_signal ({columns}) SELECT {columns} FROM beacon_bulk_signal "  # noqa: S608 - fixed column names
                f"ON CONFLICT (indicator_id, owner_id) DO UPDATE SET {updates} RETURNING indicator_id, id, (xmax = 0)"
            )
            out.update({ind: (pk, inserted) for ind, pk, inserted in cursor.fetchall()})
    return out


def _upsert_orm(member: Member, rows: list[dict[str, Any]]) -> dict[int, tuple[int, bool]]:
    existing = {
        s.indicator_id: s
        for s in Signal.objects.filter(
            owner=member, indicator_id__in=[r["indicator_id"] for r in rows]
        )
    }
    create, update = [], []
    for row in rows:
        signal = existing.get(row["indicator_id"])
        if signal is None:
            create.append(Signal(**row))
        else:
            for name in UPDATED_ON_CONFLICT:
                if name == "bundle_id" and row[name] is None:
                    continue
                setattr(signal, name, row[name])
            update.append(signal)
    Signal.objects.bulk_create(create, batch_size=2000)
    if update:
        Signal.objects.bulk_update(update, UPDATED_ON_CONFLICT, batch_size=1000)
    return {s.indicator_id: (s.pk, False) for s in update} | {
        s.indicator_id: (s.pk, True) for s in create
    }
