"""NDJSON bodies for bulk endpoints: one item per line, reported by line on error."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from exchange import jsonio


class NdjsonParser(BaseParser):
    media_type = "application/x-ndjson"

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        items = []
        for number, raw in enumerate(stream.read().splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                items.append(jsonio.loads(raw))
            except json.JSONDecodeError as exc:
                raise ParseError(f"line {number} is not valid JSON: {exc.msg}") from exc
            except UnicodeDecodeError as exc:
                raise ParseError(f"line {number} is not UTF-8") from exc
        return {"items": items}


class NdjsonAliasParser(NdjsonParser):
    media_type = "application/ndjson"
