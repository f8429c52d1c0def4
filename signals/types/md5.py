from __future__ import annotations

from signals.types import register
from signals.types.base import HexDigestType


@register
class Md5Type(HexDigestType):
    name = "md5"
    length = 32
    value_format = "32 lowercase hex characters: the MD5 of the file's bytes"
    stored_as = "lowercase hex"
    matched_by = "equality (with md5 and video_md5 signals alike)"
    aliases = ("video_md5",)
