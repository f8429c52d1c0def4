"""Follow the exchange's feed into a local file of the signals currently visible to the member.

The output file is NDJSON, one signal per line (the feed's signal objects). ``upsert`` events
add or replace a signal by id; ``delete`` tombstones (retraction, expiry, loss of visibility)
remove it. A cursor file next to it holds the feed cursor and the last ``seq`` applied; it is
written only after the output file, so a run killed at any point resumes without losing an
event (re-applying an event is harmless: upserts and deletes are by id).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.sdk import BeaconClient

__all__ = ["FeedMirror", "FollowStats", "follow"]


@dataclass
class FollowStats:
    """What a follow run applied."""

    pages: int = 0
    upserts: int = 0
    deletes: int = 0
    skipped: int = 0


@dataclass
class FeedMirror:
    """A local copy of the visible signals, keyed by signal id, plus the feed position."""

    out: Path
    cursor_path: Path
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)
    cursor: str | None = None
    last_seq: int = 0
    purpose: str | None = None

    @classmethod
    def open(cls, out: Path, cursor_path: Path | None = None) -> FeedMirror:
        mirror = cls(out=out, cursor_path=cursor_path or out.with_name(out.name + ".cursor"))
        if out.is_file():
            with out.open("r", encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        signal = json.loads(line)
                        mirror.signals[str(signal["id"])] = signal
        if mirror.cursor_path.is_file():
            saved = json.loads(mirror.cursor_path.read_text("utf-8"))
            mirror.cursor = saved.get("cursor")
            mirror.last_seq = int(saved.get("seq") or 0)
            mirror.purpose = saved.get("purpose")
        return mirror

    def apply(self, events: Iterable[dict[str, Any]], stats: FollowStats) -> None:
        """Apply events in order; events at or below the last applied ``seq`` are skipped."""
        for event in events:
            seq = int(event.get("seq") or 0)
            if seq and seq <= self.last_seq:
                stats.skipped += 1  # a page seen before (e.g. after a crash): already applied
                continue
            signal = event.get("signal") or {}
            key = str(signal.get("id"))
            if event.get("op") == "delete":
                self.signals.pop(key, None)
                stats.deletes += 1
            else:
                self.signals[key] = signal
                stats.upserts += 1
            if seq:
                self.last_seq = seq

    def save(self) -> None:
        """Write the signals, then the cursor (both atomically)."""
        tmp = self.out.with_name(self.out.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for signal in self.signals.values():
                handle.write(json.dumps(signal, ensure_ascii=False, sort_keys=True) + "\n")
        os.replace(tmp, self.out)
        tmp_cursor = self.cursor_path.with_name(self.cursor_path.name + ".tmp")
        tmp_cursor.write_text(
            json.dumps(
                {
                    "cursor": self.cursor,
                    "seq": self.last_seq,
                    "purpose": self.purpose,
                    "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            ),
            "utf-8",
        )
        os.replace(tmp_cursor, self.cursor_path)


def follow(
    client: BeaconClient,
    mirror: FeedMirror,
    *,
    purpose: str = "detection",
    limit: int = 1000,
    forever: bool = False,
    interval: float = 10.0,
    flush_every: int = 100_000,
    on_page: Callable[[FollowStats, FeedMirror], None] | None = None,
    stop: threading.Event | None = None,
    events_log: Path | None = None,
) -> FollowStats:
    """Pull pages until caught up (and, with ``forever``, keep polling every ``interval`` s)."""
    if mirror.purpose and mirror.purpose != purpose:
        raise ValueError(
            f"{mirror.cursor_path} was followed with purpose {mirror.purpose!r}; "
            "use another --out to follow with a different purpose"
        )
    mirror.purpose = purpose
    stats = FollowStats()
    stop = stop or threading.Event()
    unsaved = 0
    while not stop.is_set():
        for page in client.iter_feed(purpose=purpose, cursor=mirror.cursor, limit=limit):
            stats.pages += 1
            mirror.apply(page.events, stats)
            if events_log is not None and page.events:
                with events_log.open("a", encoding="utf-8") as handle:
                    for event in page.events:
                        handle.write(json.dumps(event, ensure_ascii=False) + "\n")
            if page.next_cursor:
                mirror.cursor = page.next_cursor
            unsaved += len(page.events)
            if unsaved >= flush_every:
                mirror.save()
                unsaved = 0
            if on_page is not None:
                on_page(stats, mirror)
            if stop.is_set():
                break
        mirror.save()
        unsaved = 0
        if not forever:
            break
        stop.wait(interval)
    return stats
