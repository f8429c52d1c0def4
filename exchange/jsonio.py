"""JSON in and out of the API through orjson: the same documents DRF's JSON renderer and parser
produce and accept, several times faster on the large bodies of match, feed and upload."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
_fallback = JSONEncoder()
#: orjson reads integers beyond 64 bits as floats; a body with a number this long is read by the
#: standard parser, which keeps them exact. A number starts the document or follows ``[``, ``,``
#: or ``:``, so the digits of a hex string (an upload's values) never send a body there.
_LONG_NUMBER = re.compile(rb"(?:^|[\[,:])\s*-?[0-9]{19,}")


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON; datetimes in ISO 8601 with ``Z``, as DRF writes them. Values orjson
    does not know (lazy translations, decimals, sets) go through DRF's encoder."""
    return orjson.dumps(data, default=_fallback.default, option=_OPTIONS)


def may_hold_long_integers(data: bytes) -> bool:
    """Whether ``data`` may hold a number of 19 or more digits (a false yes only costs speed)."""
    return _LONG_NUMBER.search(data) is not None


def loads(data: bytes) -> Any:
    """Parse JSON; raises ``json.JSONDecodeError`` (orjson's is a subclass)."""
    if may_hold_long_integers(data):
        return json.loads(data)
    return orjson.loads(data)


class FastJSONRenderer(JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            return dumps(data)
        except orjson.JSONEncodeError:
            # e.g. an integer beyond 64 bits: the standard encoder writes it.
            return super().render(data, accepted_media_type, renderer_context)


class FastJSONParser(JSONParser):
    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            return loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            # The standard parser gives the error members see.
            return super().parse(io.BytesIO(raw), media_type, parser_context)
