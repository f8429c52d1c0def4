"""vPDQ video hashes: the PDQ hash of sampled frames (one per second by default), as computed by
the ``vpdq`` library, matched by its published rule (decision 0201)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from signals.types import register
from signals.types.base import Canonical, SignalType, TypeValueError

#: Ten hours at the ``vpdq`` default of one hash per second.
MAX_FRAMES = 36_000
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
DEFAULT_QUERY_PERCENT = 80.0
DEFAULT_INDEX_PERCENT = 0.0

Frame = tuple[int, int, str, float]  # frame number, quality, PDQ hex, timestamp (seconds)


def _frame(number: Any, quality: Any, hex_: Any, timestamp: Any, where: str) -> Frame:
    try:
        n = int(number)
        q = int(quality)
        ts = float(timestamp)
    except (TypeError, ValueError):
        raise TypeValueError(
            f"{where}: frame number and quality must be integers, timestamp a number"
        ) from None
    if not isinstance(hex_, str) or not HEX64.match(hex_):
        raise TypeValueError(f"{where}: the PDQ hash must be 64 hex characters")
    if n < 0 or not 0 <= q <= 100 or not ts >= 0 or ts == float("inf"):
        raise TypeValueError(
            f"{where}: frame number >= 0, quality 0-100 and timestamp >= 0 are required"
        )
    return n, q, hex_.lower(), round(ts, 3)


def _from_line(line: str, where: str) -> Frame:
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 4:
        raise TypeValueError(
            f"{where}: expected 'frame number,quality,PDQ hex,timestamp' (the vpdq text format)"
        )
    if HEX64.match(parts[2]):
        return _frame(parts[0], parts[1], parts[2], parts[3], where)
    # Also accepted: 'frame number,PDQ hex,quality,timestamp'.
    return _frame(parts[0], parts[2], parts[1], parts[3], where)


def parse_frames(value: Any) -> list[Frame]:
    """Frames from the vpdq text format (one ``frame,quality,hex,timestamp`` per line), a JSON
    list of ``{"frame", "hash", "quality", "timestamp"}`` objects, or threatexchange's JSON list
    of ``"hash,quality,timestamp"`` strings (frames numbered by position). Sorted by frame."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise TypeValueError("value is not valid JSON") from None
    frames: list[Frame] = []
    if isinstance(value, str):
        lines = [ln for ln in value.replace("\r", "").split("\n") if ln.strip()]
        if len(lines) > MAX_FRAMES:
            raise TypeValueError(f"at most {MAX_FRAMES} frames")
        frames = [_from_line(ln, f"line {i + 1}") for i, ln in enumerate(lines)]
    elif isinstance(value, list):
        if len(value) > MAX_FRAMES:
            raise TypeValueError(f"at most {MAX_FRAMES} frames")
        for i, entry in enumerate(value):
            where = f"frame {i}"
            if isinstance(entry, dict):
                frames.append(
                    _frame(
                        entry.get("frame", entry.get("frame_number")),
                        entry.get("quality"),
                        entry.get("hash", entry.get("pdq")),
                        entry.get("timestamp"),
                        where,
                    )
                )
            elif isinstance(entry, str) and entry.count(",") == 2:
                hex_, quality, timestamp = entry.split(",")
                frames.append(_frame(i, quality, hex_, timestamp, where))
            else:
                raise TypeValueError(f"{where}: expected an object or 'hash,quality,timestamp'")
    else:
        raise TypeValueError("value must be vpdq text lines or a JSON list of frames")
    if not frames:
        raise TypeValueError("a vPDQ hash has at least one frame")
    frames.sort(key=lambda f: f[0])
    if len({f[0] for f in frames}) != len(frames):
        raise TypeValueError("frame numbers must be unique")
    return frames


def frames_text(frames: list[Frame]) -> str:
    """The canonical text: the vpdq library's own format, one frame per line."""
    return "".join(f"{n},{q},{h},{ts:.3f}\n" for n, q, h, ts in frames)


def frames_from_text(text: str) -> list[Frame]:
    out = []
    for line in text.splitlines():
        n, q, h, ts = line.split(",")
        out.append((int(n), int(q), h, float(ts)))
    return out


def match_frames(frames: list[Frame], quality_floor: int) -> list[str]:
    """The frames the vPDQ rule compares: unique hashes, at or above the quality floor."""
    seen: dict[str, None] = {}
    for _, q, h, _ in frames:
        if q >= quality_floor:
            seen.setdefault(h, None)
    return list(seen)


def percent(item: dict[str, Any], field: str, default: float) -> float:
    value = item.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise TypeValueError(f"{field} must be a number from 0 to 100", field=field)
    return float(value)


@register
class VpdqType(SignalType):
    name = "vpdq"
    value_format = (
        "vPDQ frames: the vpdq text format (lines 'frame number,quality,PDQ hex,timestamp'), "
        "or a JSON list of {frame, hash, quality, timestamp}"
    )
    stored_as = "the frames in the vpdq text format; the indicator value is their SHA-256"
    matched_by = (
        "the vPDQ rule: unique frames at or above the quality floor, a frame matches within "
        "Hamming distance 31; a video matches when query_match_percent (default 80) of the "
        "query's frames and index_match_percent (default 0) of the stored video's frames match"
    )
    match_kind = "vpdq"

    def canonical(self, item: dict[str, Any]) -> Canonical:
        frames = parse_frames(item.get("value"))
        text = frames_text(frames)
        return Canonical(
            hashlib.sha256(text.encode()).hexdigest(), {"frames": frames, "frames_text": text}
        )
