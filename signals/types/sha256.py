from __future__ import annotations

from signals.types import register
from signals.types.base import HexDigestType


@register
class Sha256Type(HexDigestType):
    name = "sha256"
    length = 64
    value_format = "64 lowercase hex characters: the SHA256 of the file's bytes"
    stored_as = "lowercase hex"
    matched_by = "equality"
