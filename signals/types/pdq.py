from __future__ import annotations

from typing import Any

from django.conf import settings

from signals.types import register
from signals.types.base import Canonical, HexDigestType, TypeValueError

MAX_DISTANCE = 52


@register
class PdqType(HexDigestType):
    """PDQ perceptual image hash (256 bits). Not peppered: similarity must survive storage;
    the protection is that media never leaves the member."""

    name = "pdq"
    length = 64
    value_format = "64 lowercase hex characters (256-bit PDQ), optional quality 0-100"
    stored_as = "lowercase hex, with quality"
    matched_by = (
        "Hamming distance <= max_distance (default 31, at most 52); exact, never approximate"
    )
    match_kind = "hamming"

    def canonical(self, item: dict[str, Any]) -> Canonical:
        base = super().canonical(item)
        quality = item.get("quality")
        if quality is not None and (
            isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100
        ):
            raise TypeValueError("quality must be an integer from 0 to 100", field="quality")
        return Canonical(base.value, {"quality": quality})


def max_distance(item: dict[str, Any]) -> int:
    value = item.get("max_distance", settings.BEACON_PDQ_DEFAULT_DISTANCE)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DISTANCE:
        raise TypeValueError(
            f"max_distance must be an integer from 0 to {MAX_DISTANCE}", field="max_distance"
        )
    return value
