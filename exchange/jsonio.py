"""JSON in and out of the API through orjson: the same documents DRF's JSON renderer and parser
produce and accept, several times faster on the large bodies of match, feed and upload."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

from client.auditchain import holds_float

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
_fallback = JSONEncoder()


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON; datetimes in ISO 8601 with ``Z``, as DRF writes them. Values orjson
    does not know (lazy translations, decimals, sets) go through DRF's encoder."""
    return orjson.dumps(data, default=_fallback.default, option=_OPTIONS)


def loads(data: bytes) -> Any:
    """Parse JSON; raises ``json.JSONDecodeError`` (orjson's is a subclass). orjson reads an
    integer beyond 64 bits as a float, so a document holding any float is read again by the
    standard parser, which keeps such integers exact (API bodies rarely hold floats at all)."""
    document = orjson.loads(data)
    return json.loads(data) if holds_float(document) else document


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
