from __future__ import annotations

from signals.types import register
from signals.types.base import IdentifierType


@register
class EmailType(IdentifierType):
    name = "email"
    value_format = (
        "SHA-256 hex of the normalised email (trimmed, lowercased; gmail dots and +suffix dropped)"
    )
