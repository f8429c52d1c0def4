from __future__ import annotations

from signals.types import register
from signals.types.base import HexDigestType


@register
class Sha1Type(HexDigestType):
    name = "sha1"
    length = 40
    value_format = "40 lowercase hex characters: the SHA1 of the file's bytes"
    stored_as = "lowercase hex"
    matched_by = "equality"
