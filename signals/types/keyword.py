from __future__ import annotations

import re
from typing import Any

from client.normalize import NormalizationError, normalize_keyword
from signals.types import register
from signals.types.base import Canonical, SignalType, TypeValueError, text_value

# BCP-47, loosely: a primary language subtag and optional subtags.
_LANG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
MAX_KEYWORD_CHARS = 500


@register
class KeywordType(SignalType):
    name = "keyword"
    value_format = "text of up to 500 characters, with an optional BCP-47 'lang'"
    stored_as = "text normalised with NFKC, casefold and collapsed whitespace"
    matched_by = "equality, and occurrence in a submitted text (POST /match/text)"
    match_kind = "keyword"

    def canonical(self, item: dict[str, Any]) -> Canonical:
        raw = text_value(item)
        if len(raw) > MAX_KEYWORD_CHARS:
            raise TypeValueError(f"keywords are at most {MAX_KEYWORD_CHARS} characters")
        try:
            value = normalize_keyword(raw)
        except NormalizationError as exc:
            raise TypeValueError(str(exc)) from exc
        lang = item.get("lang")
        if lang is not None and (not isinstance(lang, str) or not _LANG.match(lang)):
            raise TypeValueError(
                "lang must be a BCP-47 language tag such as 'en' or 'pt-BR'", field="lang"
            )
        return Canonical(value, {"lang": lang.lower() if lang else ""})
