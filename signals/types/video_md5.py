from __future__ import annotations

from signals.types import register
from signals.types.base import HexDigestType


@register
class VideoMd5Type(HexDigestType):
    """The MD5 of a video file's bytes: ``md5`` scoped to video, so members say what it is of."""

    name = "video_md5"
    length = 32
    value_format = "32 lowercase hex characters: the MD5 of the video file's bytes"
    stored_as = "lowercase hex"
    matched_by = (
        "equality, with md5 and video_md5 signals alike (a re-encoded copy has another MD5: "
        "use vpdq for those)"
    )
    aliases = ("md5",)
