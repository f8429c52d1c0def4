from __future__ import annotations

from typing import Any

from client.normalize import NormalizationError, normalize_url
from signals.types import register
from signals.types.base import Canonical, SignalType, TypeValueError, text_value

MAX_URL_CHARS = 2048


@register
class UrlType(SignalType):
    name = "url"
    value_format = "an http(s) URL of up to 2048 characters"
    stored_as = (
        "normalised URL (lowercase scheme and host, IDNA, default port and fragment removed)"
    )
    matched_by = "equality, plus optional same-host match"

    def canonical(self, item: dict[str, Any]) -> Canonical:
        raw = text_value(item)
        if len(raw) > MAX_URL_CHARS:
            raise TypeValueError(f"URLs are at most {MAX_URL_CHARS} characters")
        try:
            return Canonical(normalize_url(raw))
        except NormalizationError as exc:
            raise TypeValueError(str(exc)) from exc
